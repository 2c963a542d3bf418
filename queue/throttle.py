"""The one throttling rule: at most `limit` counted tries per scope (a tracking number, a
terminal, a hashed client address) in a window (`WINDOW` unless said); past it, a 429 that
says when to retry. Terminals' per-minute limits on tickets and lookups ([terminals] in the
hall file) are this rule too; each refusal is remembered for an hour for the fleet view."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from fastapi import Request

from kiosq.queue.errors import ApiError
from kiosq.queue.fleet import Throttled
from kiosq.queue.personal import Personal
from kiosq.queue.store import Limit, RateLimited, Store, Token
from kiosq.queue.store.throttling import free_at as free_at  # the rule itself (pure): the store applies it too

WINDOW = timedelta(minutes=10)
WINDOW_MINUTES = int(WINDOW.total_seconds() // 60)
MINUTE = timedelta(minutes=1)  # the window of a terminal's tickets_per_minute and lookups_per_minute
THROTTLED_KEPT = timedelta(hours=1)  # how long a terminal's refusals are remembered (GET /api/terminals)
LONGEST = THROTTLED_KEPT  # no scope looks further back: the daily retention run drops older rows
TerminalWhat = Literal["tickets", "lookups"]
THROTTLED = "throttled:"  # scope prefix of a terminal's refusals: throttled:<what>:<terminal>


@dataclass(frozen=True, slots=True)
class Wait:
    """How long a full scope stays closed."""

    until: datetime
    seconds: int

    @property
    def minutes(self) -> int:
        return math.ceil(self.seconds / 60)


def check(store: Store, scopes: tuple[str, ...], limit: int, window: timedelta = WINDOW) -> Wait | None:
    now = store.clock()
    # Only the newest `limit` tries matter: a scope with a high limit costs no more to check.
    until = free_at(store.throttle_hits(scopes, now - window, newest=limit), limit, window)
    if until is None:
        return None
    return Wait(until, max(1, math.ceil((until - now).total_seconds())))


def too_many(detail: str, wait: Wait, code: str = "too_many_tries") -> ApiError:
    return ApiError(429, code, detail, {"Retry-After": str(wait.seconds)}, retry_after=wait.seconds)


def count_try(store: Store, scopes: tuple[str, ...], window: timedelta = WINDOW) -> None:
    store.throttle_count(scopes, store.clock() - window)


# -- a terminal's tickets and lookups per minute ------------------------------------------

def terminal_limit(store: Store, token: Token, what: TerminalWhat) -> Limit | None:
    """For a terminal token, the hall's [terminals] `<what>_per_minute` on it; staff,
    supervisor and admin tokens, and a limit of 0: None."""
    limit: int = getattr(store.hall.terminals, f"{what}_per_minute")
    if token.role != "terminal" or limit == 0:
        return None
    return Limit(f"{what}:{token.name}", limit, MINUTE)


def terminal_refused(store: Store, token: Token, what: TerminalWhat, refused: RateLimited) -> ApiError:
    """The 429 with Retry-After for a terminal past its limit; the refusal is remembered
    (apart from the refused transaction, which rolled back) for the fleet view."""
    store.throttle_count((f"{THROTTLED}{what}:{token.name}",), store.clock() - THROTTLED_KEPT)
    wait = Wait(refused.until, max(1, math.ceil((refused.until - store.clock()).total_seconds())))
    return too_many(f"terminal {token.name!r} asked for more than {refused.limit} {what} in a minute (the hall "
                    f"file's [terminals] {what}_per_minute); try again in {wait.seconds} s", wait, "rate_limited")


def limit_terminal_lookup(store: Store, token: Token | None) -> None:
    """Count one application lookup by a terminal token against [terminals]
    lookups_per_minute, checked and counted in one transaction (a 429 past it); any other
    caller passes. Every lookup route calls it."""
    limit = None if token is None else terminal_limit(store, token, "lookups")
    if limit is None or token is None:
        return
    try:
        store.throttle_take(limit)
    except RateLimited as refused:
        raise terminal_refused(store, token, "lookups", refused) from None


def throttled_terminals(store: Store) -> dict[str, Throttled]:
    """Each terminal refused in the last hour: how often, for what, and when last."""
    out: dict[str, Throttled] = {}
    for scope, (n, last) in store.throttle_tally(THROTTLED, store.clock() - THROTTLED_KEPT).items():
        what, _, terminal = scope.removeprefix(THROTTLED).partition(":")
        seen = out.get(terminal, Throttled())
        out[terminal] = seen.add(what, n, last)
    return out


def client_address(request: Request) -> str:
    """The caller's address (uvicorn takes it from X-Forwarded-For when the hall's own proxy
    on 127.0.0.1 sends the request); hash it before it is stored."""
    return request.client.host if request.client else "unknown"


def client_scope(personal: Personal, request: Request, prefix: str) -> str:
    # Addresses count as personal data: only a keyed hash is stored.
    return f"{prefix}:" + personal.digest("client:" + client_address(request))[:32]
