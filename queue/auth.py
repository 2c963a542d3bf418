"""Who is asking: a bearer token (scripts, terminals, devices) or a person signed in with
the session cookie (the staff console, /admin), the roles' rules (one name per rule), and
the FastAPI dependencies that apply them to a route. Either way the route sees a `Token`:
for a session, `name` is the person's login, so every record names the person.
"""

from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kiosq.queue import people
from kiosq.queue.context import Context, Ctx, context_of
from kiosq.queue.errors import ApiError
from kiosq.queue.store import Token, Who

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
# A credential's last use is written at most this often (a write per request would cost
# the ticket path a transaction); a session's idle timeout counts from it, to the minute.
USE_RECORDED_EVERY = timedelta(seconds=60)
UNSAFE_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))


def _recent_uses(request: Request) -> dict[str, datetime]:
    uses: dict[str, datetime] | None = getattr(request.app.state, "credential_uses", None)
    if uses is None:
        uses = request.app.state.credential_uses = {}
    return uses


def _bearer(ctx: Context, request: Request, authorization: str, record_use: bool) -> Token:
    """The token named by an `Authorization: Bearer <token>` header, or a 401."""
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(401, "unauthorized", "malformed Authorization header: send 'Authorization: Bearer <token>' "
                       "(create one with `kiosq server token`)", _CHALLENGE)
    token = ctx.store.token(secret.strip())
    if token is None:
        raise ApiError(401, "unauthorized", "unknown or revoked token: ask the hall admin for a valid one", _CHALLENGE)
    now = ctx.store.clock()
    if token.expires_at is not None and token.expires_at <= now:
        raise ApiError(401, "token_expired", f"token {token.name!r} expired at {ctx.local(token.expires_at)}; "
                       "ask the hall admin for a new one (`kiosq server token`)", _CHALLENGE)
    if not record_use:
        return token
    uses = _recent_uses(request)
    if now - uses.get(token.key, datetime.min.replace(tzinfo=now.tzinfo)) >= USE_RECORDED_EVERY:
        uses[token.key] = now
        ctx.store.token_used(token.key)
    return token


def check_origin(ctx: Context, request: Request) -> None:
    """A change under cookie auth must come from the hall's own pages: the Origin header
    names this server (as the browser reached it, or [hall] public_url). SameSite=Strict
    keeps the cookie off other sites' requests already; this is the second lock."""
    origin = request.headers.get("origin")
    if not origin:
        raise ApiError(403, "origin_required", "a change under a signed-in session must come from the hall's own "
                       "pages (the request has no Origin header); scripts use a bearer token")
    ours = {request.headers.get("host", "")}
    if ctx.hall.info.public_url is not None:
        ours.add(urlsplit(str(ctx.hall.info.public_url)).netloc)
    if urlsplit(origin).netloc not in ours:
        raise ApiError(403, "cross_origin", f"a change under a signed-in session from {origin} is refused: "
                       "only the hall's own pages may make changes with the session cookie")


def _session(ctx: Context, request: Request, secret: str, record_use: bool) -> Token:
    store, settings = ctx.store, ctx.hall.sessions
    hashed = people.hash_session(secret)
    row = store.session(hashed)
    if row is None:
        raise ApiError(401, "session_ended", "you are signed out (the session ended, or the account was disabled); "
                       "sign in again")
    now = store.clock()
    if row.expires_at <= now:
        store.end_session(hashed, Who(row.user.login, "user", client_address(request)), reason="expired")
        raise ApiError(401, "session_expired", f"your session ended at {ctx.local(row.expires_at)} (unused for "
                       f"{settings.idle_minutes:g} minutes, or {settings.lifetime_hours:g} hours after signing in); "
                       "sign in again")
    if request.method in UNSAFE_METHODS:
        check_origin(ctx, request)
    expires = row.expires_at
    if record_use and now - row.last_seen >= USE_RECORDED_EVERY:
        expires = people.session_ends(row.created_at, now, timedelta(minutes=settings.idle_minutes),
                                      timedelta(hours=settings.lifetime_hours))
        store.touch_session(hashed, expires)
    user = row.user
    return Token(user.login, user.role, user.windows, "user:" + user.login, expires, "session", user.name)


def client_address(request: Request) -> str:
    """The caller's address (uvicorn takes it from X-Forwarded-For when the hall's own proxy
    on 127.0.0.1 sends the request)."""
    return request.client.host if request.client else "unknown"


def token_of(request: Request, record_use: bool = True) -> Token:
    """The caller: the bearer token if the request sends one, else the session cookie's
    person, else a 401 that says how to sign in. `record_use=False` checks the caller
    again (a long stream does, from time to time) without counting it as a use: an open
    stream does not keep an idle session alive."""
    ctx = context_of(request)
    authorization = request.headers.get("authorization")
    if authorization:
        return _bearer(ctx, request, authorization, record_use)
    cookie = request.cookies.get(people.COOKIE)
    if cookie:
        return _session(ctx, request, cookie, record_use)
    raise ApiError(401, "unauthorized", "not signed in: sign in at the staff console, or send "
                   "'Authorization: Bearer <token>' (create one with `kiosq server token`)", _CHALLENGE)


def optional_token(request: Request) -> Token | None:
    """The caller's token if the request names one (a citizen's request names none). A
    stale session cookie on a public request is no error: the request is a citizen's."""
    if request.headers.get("authorization"):
        return token_of(request)
    if request.cookies.get(people.COOKIE):
        try:
            return token_of(request)
        except ApiError:
            return None
    return None


def who_of(request: Request, token: Token) -> Who:
    """Who did it, for the audit log: the person's login, or the token's holder."""
    kind = "user" if token.via == "session" else "terminal" if token.role == "terminal" else "token"
    return Who(token.name, kind, client_address(request))


def describe(token: Token) -> str:
    """How an error names the caller: 'zhangmin (张敏)' or "token 'S1'"."""
    if token.via == "session":
        return f"{token.name} ({token.display_name})" if token.display_name else token.name
    return f"token {token.name!r}"


# -- the roles' rules -------------------------------------------------------------------

def require_admin(token: Token, detail: str) -> Token:
    """Hall settings, the hall's ticket figures, the notification record: admin only."""
    if token.role != "admin":
        raise ApiError(403, "forbidden", detail)
    return token


def require_admin_or_supervisor(token: Token, detail: str) -> Token:
    """The applications' figures: an admin or a supervisor."""
    if token.role not in ("admin", "supervisor"):
        raise ApiError(403, "forbidden", detail)
    return token


def require_terminal(token: Token, detail: str) -> Token:
    """What only a citizen at a terminal does: file an application, look up by ID card."""
    if token.role != "terminal":
        raise ApiError(403, "forbidden", detail)
    return token


def require_role(request: Request, *roles: str) -> Token:
    """The fleet and content routes: the caller's token, of one of `roles`."""
    token = token_of(request)
    if token.role not in roles:
        raise ApiError(403, "forbidden", f"this needs a {' or '.join(roles)} token or account; {describe(token)} "
                       f"is a {token.role}")
    return token


# -- dependencies -----------------------------------------------------------------------

# Dependencies are `async def` so that FastAPI runs them on the event loop: a plain `def`
# goes through the thread pool, costs 40 % of the throughput, and would touch the store's
# connection from another thread.
bearer = HTTPBearer(auto_error=False, description="a terminal, staff or admin token from `kiosq server token`")


async def caller(request: Request, _doc: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Token:
    return token_of(request)


async def caller_undocumented(request: Request) -> Token:
    return token_of(request)


Caller = Annotated[Token, Depends(caller)]
# The applications' routes never declared the bearer scheme in /openapi.json; they keep
# not declaring it, so that the published document does not change with this module.
CallerUndocumented = Annotated[Token, Depends(caller_undocumented)]


async def window_staff(window: Annotated[int, Path(ge=1, le=999)], token: Caller, ctx: Ctx) -> int:
    """A window of this hall at which the caller may act, or a 404 or 403."""
    windows = ctx.hall.windows
    if window not in windows:
        raise ApiError(404, "not_found", f"no window {window} in this hall; windows are: "
                       f"{', '.join(map(str, windows))}")
    if token.may_act_at(window):
        return window
    if token.role in ("staff", "supervisor"):
        raise ApiError(403, "forbidden", f"{describe(token)} may act at windows "
                       f"{', '.join(map(str, token.windows))}, not at window {window}")
    raise ApiError(403, "forbidden", f"window actions need a staff, supervisor or admin token; "
                   f"{token.name!r} is a {token.role} token")


StaffWindow = Annotated[int, Depends(window_staff)]
