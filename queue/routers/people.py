"""People and credentials: signing in and out (the session cookie), the hall's staff
accounts, its tokens, and the audit log.

Who may call:
- `POST /api/session`: anyone (the login and password are the right); wrong passwords are
  throttled per login and address. `GET`/`DELETE /api/session`: the session's holder.
- `/api/users`, `/api/tokens`, `/api/audit`: an admin (token or account).
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from kiosq.queue import people, throttle
from kiosq.queue.auth import Caller, check_origin, client_address, require_admin, who_of
from kiosq.queue.context import Context, Ctx
from kiosq.queue.errors import ApiError
from kiosq.queue.people import User
from kiosq.queue.store import AlreadyExists, AuditEntry, Token, Who

log = logging.getLogger("kiosq.server")
router = APIRouter(tags=["people"])

# Hashing takes 64 MiB and a tenth of a second: at most two at a time, off the event loop.
_hashing = anyio.CapacityLimiter(2)
# Wrong passwords from one address, whatever the logins: past this, 429 for that address.
WRONG_PER_ADDRESS = 30

Login = Annotated[str, Field(min_length=1, max_length=64)]
Password = Annotated[str, Field(min_length=1, max_length=people.MAX_PASSWORD)]
Windows = Annotated[list[Annotated[int, Field(ge=1, le=999)]], Field(max_length=100)]
Role = Literal["staff", "supervisor", "admin"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SignIn(_Body):
    login: Login
    password: Annotated[str, Field(min_length=1, max_length=people.MAX_PASSWORD)]


class UserIn(_Body):
    login: Login
    name: Annotated[str, Field(min_length=1, max_length=64)]
    role: Role
    windows: Windows = []
    password: Password


class UserChange(_Body):
    name: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    role: Role | None = None
    windows: Windows | None = None
    disabled: bool | None = None


class PasswordIn(_Body):
    password: Password


async def _hash(password: str) -> str:
    return await anyio.to_thread.run_sync(people.hash_password, password, limiter=_hashing)


async def _matches(password: str, stored: str | None) -> bool:
    return await anyio.to_thread.run_sync(people.password_matches, password, stored, limiter=_hashing)


# -- signing in and out ----------------------------------------------------------------

def _me(ctx: Context, login: str, name: str, role: str, windows: tuple[int, ...],
        expires_at: datetime | None) -> dict[str, Any]:
    return {"login": login, "name": name, "role": role, "windows": list(windows),
            "expires_at": ctx.local(expires_at), "via": "session"}


@router.post("/api/session")
async def sign_in(body: SignIn, request: Request, ctx: Ctx) -> JSONResponse:
    """Sign in with a login and password: sets the session cookie (HttpOnly, SameSite=Strict,
    Secure under TLS). 401 `wrong_login` alike for an unknown login and a wrong password."""
    store = ctx.store
    if request.headers.get("origin"):
        check_origin(ctx, request)  # no signing in from another site's page
    login = body.login.strip().lower()
    address = client_address(request)
    # Per login and address (a victim cannot be locked out from elsewhere), and per address;
    # both keyed hashes: what was typed as a login may be a password typed in the wrong field.
    by_address = throttle.client_scope(ctx.personal, request, "signin-address")
    scopes = (by_address + ":" + ctx.personal.digest("login:" + login)[:16], by_address)
    hits = store.throttle_hits(scopes, store.clock() - throttle.WINDOW)
    until = throttle.free_at({scopes[0]: hits[scopes[0]]}, people.WRONG_PASSWORDS, throttle.WINDOW) or throttle.free_at(
        {scopes[1]: hits[scopes[1]]}, WRONG_PER_ADDRESS, throttle.WINDOW)
    if until is not None:
        seconds = max(1, int((until - store.clock()).total_seconds()) + 1)
        raise throttle.too_many(f"too many wrong passwords from this address; try again in {-(-seconds // 60)} "
                                "minute(s), or ask the hall admin to reset the password",
                                throttle.Wait(until, seconds))
    stored = store.user_password_hash(login)
    matches = await _matches(body.password, stored)
    user = store.user(login) if stored is not None else None
    if not matches or user is None:
        throttle.count_try(store, scopes)
        # An unknown login is not written down as typed: people type passwords into it.
        store.audit("session.failed", Who(login if user else "(unknown login)", "user", address),
                    login if user else None, {"reason": "wrong_password" if user else "unknown_login"})
        raise ApiError(401, "wrong_login", "wrong login or password; check both and try again "
                       f"({people.WRONG_PASSWORDS} wrong tries in {throttle.WINDOW_MINUTES} minutes pause sign-in "
                       "from this address)")
    if user.disabled:
        store.audit("session.failed", Who(login, "user", address), login, {"reason": "disabled"})
        raise ApiError(403, "disabled", "this account is disabled; ask the hall admin")
    settings = ctx.hall.sessions
    now = store.clock()
    expires = people.session_ends(now, now, timedelta(minutes=settings.idle_minutes),
                                  timedelta(hours=settings.lifetime_hours))
    secret = people.new_session_secret()
    store.open_session(user.login, people.hash_session(secret), expires, Who(user.login, "user", address))
    log.info("%s signed in", user.login)
    response = JSONResponse(_me(ctx, user.login, user.name, user.role, user.windows, expires))
    response.set_cookie(people.COOKIE, secret, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


@router.get("/api/session")
async def session(token: Caller, ctx: Ctx) -> JSONResponse:
    """Who is signed in with this cookie (401 when nobody is)."""
    if token.via != "session":
        raise ApiError(401, "unauthorized", "no session: this is a bearer token (GET /api/me says whose)")
    return JSONResponse(_me(ctx, token.name, token.display_name, token.role, token.windows, token.expires_at))


@router.delete("/api/session")
async def sign_out(request: Request, ctx: Ctx) -> JSONResponse:
    """Sign out: the session ends on the server and the cookie is cleared. Signing out when
    already signed out is no error."""
    secret = request.cookies.get(people.COOKIE)
    if secret:
        if request.headers.get("origin"):
            check_origin(ctx, request)
        ctx.store.end_session(people.hash_session(secret), None)
    response = JSONResponse({"signed_out": True})
    response.delete_cookie(people.COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
    return response


# -- users -----------------------------------------------------------------------------

def _admin(token: Token) -> Token:
    return require_admin(token, f"managing people and credentials needs an admin; {token.name!r} is a "
                         f"{token.role}")


def user_view(ctx: Context, user: User, sessions: int | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {"login": user.login, "name": user.name, "role": user.role,
                            "windows": list(user.windows), "created_at": ctx.local(user.created_at),
                            "disabled_at": ctx.local(user.disabled_at),
                            "last_sign_in_at": ctx.local(user.last_sign_in_at)}
    if sessions is not None:
        view["sessions"] = sessions
    return view


def _refused(exc: Exception) -> ApiError:
    if isinstance(exc, AlreadyExists):
        return ApiError(409, "login_taken", str(exc))
    return ApiError(422, "invalid_user", str(exc))


LoginPath = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("/api/users")
async def list_users(token: Caller, ctx: Ctx) -> JSONResponse:
    _admin(token)
    return JSONResponse({"users": [user_view(ctx, u, n) for u, n in ctx.store.users()]})


@router.post("/api/users", status_code=201)
async def create_user(body: UserIn, token: Caller, request: Request, ctx: Ctx) -> JSONResponse:
    """A staff account with its first password (the person changes it with `user passwd`
    or an admin resets it here)."""
    _admin(token)
    try:
        login = people.check_login(body.login)
        people.check_password(body.password, login)
        people.check_windows(body.role, tuple(body.windows), ctx.hall.windows)
    except ValueError as exc:
        raise _refused(exc) from None
    password_hash = await _hash(body.password)
    try:
        user = ctx.store.add_user(login, body.name, body.role, tuple(body.windows), password_hash,
                                  who_of(request, token))
    except (ValueError, AlreadyExists) as exc:
        raise _refused(exc) from None
    return JSONResponse(user_view(ctx, user, 0), status_code=201)


@router.patch("/api/users/{login}")
async def change_user(login: LoginPath, body: UserChange, token: Caller, request: Request, ctx: Ctx) -> JSONResponse:
    """Change a user's name, role or windows, or disable (its sessions end at once) or
    enable it. An admin cannot disable their own account or take away their own admin role."""
    _admin(token)
    store, who = ctx.store, who_of(request, token)
    target = store.user(login)
    if target is None:
        raise ApiError(404, "not_found", f"no user {login!r}")
    if token.via == "session" and target.login == token.name and (body.disabled or body.role not in (None, "admin")):
        raise ApiError(409, "own_account", "you cannot disable your own account or drop your own admin role; "
                       "ask another admin")
    try:
        user = target
        if body.name is not None or body.role is not None or body.windows is not None:
            user = store.change_user(target.login, name=body.name, role=body.role,
                                     windows=None if body.windows is None else tuple(body.windows), who=who)
        if body.disabled is not None and body.disabled != user.disabled:
            user = store.set_user_disabled(target.login, body.disabled, who)
    except ValueError as exc:
        raise _refused(exc) from None
    sessions = dict((u.login, n) for u, n in store.users()).get(user.login, 0)
    return JSONResponse(user_view(ctx, user, sessions))


@router.post("/api/users/{login}/password")
async def set_password(login: LoginPath, body: PasswordIn, token: Caller, request: Request,
                       ctx: Ctx) -> JSONResponse:
    """Reset a user's password; their open sessions end."""
    _admin(token)
    target = ctx.store.user(login)
    if target is None:
        raise ApiError(404, "not_found", f"no user {login!r}")
    try:
        people.check_password(body.password, target.login)
    except ValueError as exc:
        raise _refused(exc) from None
    user = ctx.store.set_user_password(target.login, await _hash(body.password), who_of(request, token))
    return JSONResponse(user_view(ctx, user, 0))


# -- tokens ----------------------------------------------------------------------------

@router.get("/api/tokens")
async def list_tokens(token: Caller, ctx: Ctx) -> JSONResponse:
    """Every token ever made (never a secret), with its state: active, expired or revoked."""
    _admin(token)
    return JSONResponse({"tokens": [{k: ctx.local(datetime.fromisoformat(v)) if k.endswith("_at") and v else v
                                     for k, v in t.items()} for t in ctx.store.tokens(every=True)]})


@router.post("/api/tokens/{name}/revoke")
async def revoke_token(name: Annotated[str, Path(min_length=1, max_length=64)], token: Caller, request: Request,
                       ctx: Ctx) -> JSONResponse:
    """Revoke the active tokens named `name`, whatever their role: refused from the next
    request on (an open staff event stream ends at its next check of the caller). A
    terminal's is revoked as the fleet's revoke does (the fleet view shows it)."""
    _admin(token)
    store, who = ctx.store, who_of(request, token)
    active = [t for t in store.tokens() if t["name"] == name]
    if not active:
        raise ApiError(404, "not_found", f"no active token named {name!r}; GET /api/tokens lists them")
    if any(t["role"] == "terminal" for t in active):
        store.revoke_terminal(name, who)
    store.revoke_tokens(name, who)
    return JSONResponse({"name": name, "revoked": len(active)})


# -- the audit log ---------------------------------------------------------------------

AUDIT_COLUMNS = ("id", "at", "action", "actor", "actor_kind", "address", "target", "detail")


def audit_view(ctx: Context, entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": ctx.local(entry.at), "action": entry.action, "actor": entry.actor,
            "actor_kind": entry.actor_kind, "address": entry.address, "target": entry.target,
            "detail": entry.detail}


def _local_midnight(ctx: Context, day: date) -> datetime:
    return datetime.combine(day, time(0), ctx.hall.tz)


@router.get("/api/audit", response_class=Response,
            responses={200: {"content": {"application/json": {}, "text/csv": {}},
                             "description": "the newest entries first; CSV with format=csv"}})
async def audit(token: Caller, ctx: Ctx,
                action: Annotated[str | None, Query(max_length=64, description="e.g. session.failed, or "
                                                    "application.* for a prefix")] = None,
                actor: Annotated[str | None, Query(max_length=64, description="a login or a token's name")] = None,
                first: Annotated[date | None, Query(alias="from", description="YYYY-MM-DD, the hall's date")] = None,
                last: Annotated[date | None, Query(alias="to", description="YYYY-MM-DD, inclusive")] = None,
                limit: Annotated[int, Query(ge=1, le=10000)] = 200,
                format: Literal["json", "csv"] = "json") -> Response:
    """The audit log, newest first: sign-ins, failed sign-ins, user and token changes,
    enrollment codes and enrollments, openings of applicants' personal data, decisions."""
    _admin(token)
    if first and last and last < first:
        raise ApiError(422, "invalid_request", f"to ({last}) is before from ({first})")
    entries = ctx.store.audit_entries(since=_local_midnight(ctx, first) if first else None,
                                      until=_local_midnight(ctx, last + timedelta(days=1)) if last else None,
                                      action=action or None, actor=actor or None, limit=limit)
    views = [audit_view(ctx, e) for e in entries]
    if format == "json":
        return JSONResponse({"entries": views})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(AUDIT_COLUMNS)
    for v in views:
        writer.writerow([_cell(v[c] if c != "detail" else _detail_text(v[c])) for c in AUDIT_COLUMNS])
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="kiosq-audit.csv"'})


def _cell(value: Any) -> Any:
    """A text a spreadsheet would run as a formula (a token's name is free text) is quoted."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _detail_text(detail: dict[str, Any]) -> str:
    return "; ".join(f"{k}={v}" for k, v in sorted(detail.items()))
