"""Who is asking: bearer tokens, the roles' rules (one name per rule), and the FastAPI
dependencies that apply them to a route."""

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kiosq.queue.context import Ctx, context_of
from kiosq.queue.errors import ApiError
from kiosq.queue.store import Store, Token

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def authenticate(store: Store, authorization: str | None) -> Token:
    """The token named by an `Authorization: Bearer <token>` header, or a 401."""
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(401, "unauthorized", "missing bearer token: send 'Authorization: Bearer <token>' "
                       "(create one with `kiosq server token`)", _CHALLENGE)
    token = store.token(secret.strip())
    if token is None:
        raise ApiError(401, "unauthorized", "unknown or revoked token: ask the hall admin for a valid one", _CHALLENGE)
    return token


def token_of(request: Request) -> Token:
    return authenticate(context_of(request).store, request.headers.get("authorization"))


def optional_token(request: Request) -> Token | None:
    """The caller's token if the request names one (a citizen's request names none)."""
    return token_of(request) if request.headers.get("authorization") else None


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
        raise ApiError(403, "forbidden", f"this needs a {' or '.join(roles)} token; {token.name!r} is a "
                       f"{token.role} token")
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
        raise ApiError(403, "forbidden", f"staff token {token.name!r} may act at windows "
                       f"{', '.join(map(str, token.windows))}, not at window {window}")
    raise ApiError(403, "forbidden", f"window actions need a staff, supervisor or admin token; "
                   f"{token.name!r} is a {token.role} token")


StaffWindow = Annotated[int, Depends(window_staff)]
