"""The one throttling rule: at most `limit` counted tries per scope (a tracking number, a
terminal, a hashed client address) in `WINDOW`; past it, a 429 that says when to retry."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request

from kiosq.queue.errors import ApiError
from kiosq.queue.personal import Personal
from kiosq.queue.store import Store

WINDOW = timedelta(minutes=10)
WINDOW_MINUTES = int(WINDOW.total_seconds() // 60)


@dataclass(frozen=True, slots=True)
class Wait:
    """How long a full scope stays closed."""

    until: datetime
    seconds: int

    @property
    def minutes(self) -> int:
        return math.ceil(self.seconds / 60)


def free_at(hits: dict[str, list[datetime]], limit: int) -> datetime | None:
    """When every full scope has room again: enough of its counted tries have aged out of
    the window (None: none is full). Pure."""
    full = [h for h in hits.values() if len(h) >= limit]
    if not full:
        return None
    return max(h[len(h) - limit] for h in full) + WINDOW


def check(store: Store, scopes: tuple[str, ...], limit: int) -> Wait | None:
    now = store.clock()
    until = free_at(store.throttle_hits(scopes, now - WINDOW), limit)
    if until is None:
        return None
    return Wait(until, max(1, math.ceil((until - now).total_seconds())))


def too_many(detail: str, wait: Wait) -> ApiError:
    return ApiError(429, "too_many_tries", detail, {"Retry-After": str(wait.seconds)}, retry_after=wait.seconds)


def count_try(store: Store, scopes: tuple[str, ...]) -> None:
    store.throttle_count(scopes, store.clock() - WINDOW)


def client_scope(personal: Personal, request: Request, prefix: str) -> str:
    # Addresses count as personal data: only a keyed hash is stored.
    host = request.client.host if request.client else "unknown"
    return f"{prefix}:" + personal.digest("client:" + host)[:32]
