"""Tries counted per scope (a tracking number, a hashed client address, a terminal) for
throttling wrong lookups, lookups by card and terminals' tickets and lookups per minute;
a scope's rows older than its window go when it is counted again, the rest with the daily
retention run (`prune`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from kiosq.queue.store.database import Database
from kiosq.queue.store.errors import RateLimited
from kiosq.queue.store.views import ts


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `tries` counted against `scope` in `window`."""

    scope: str
    tries: int
    window: timedelta


def free_at(hits: dict[str, list[datetime]], limit: int, window: timedelta) -> datetime | None:
    """When every full scope has room again: enough of its counted tries have aged out of
    the window (None: none is full). Pure."""
    full = [h for h in hits.values() if len(h) >= limit]
    if not full:
        return None
    return max(h[len(h) - limit] for h in full) + window


class Throttle:
    def __init__(self, db: Database) -> None:
        self.db = db

    def hits(self, scopes: tuple[str, ...], since: datetime, newest: int | None = None) -> dict[str, list[datetime]]:
        """When each scope was counted since `since`, oldest first; `newest`: only that many
        of the latest."""
        limit = "" if newest is None else f" LIMIT {int(newest)}"
        return {scope: sorted(datetime.fromisoformat(at) for (at,) in self.db.rows(
            f"SELECT at FROM throttle WHERE scope = ? AND at > ? ORDER BY at DESC{limit}", (scope, ts(since))))
            for scope in scopes}

    def count(self, scopes: tuple[str, ...], now: datetime, forget_before: datetime) -> None:
        """Count one try against each scope; forget its tries older than `forget_before`."""
        self.db.many("INSERT INTO throttle VALUES (?, ?)", [(s, ts(now)) for s in scopes])
        self.db.many("DELETE FROM throttle WHERE scope = ? AND at < ?", [(s, ts(forget_before)) for s in scopes])

    def take(self, limit: Limit, now: datetime) -> None:
        """Count one try against `limit`'s scope, or raise RateLimited (nothing counted) when
        it is full. Exact under concurrency because it runs inside the write transaction,
        which is one at a time across every process (Database.run)."""
        until = free_at(self.hits((limit.scope,), now - limit.window, newest=limit.tries), limit.tries, limit.window)
        if until is not None:
            raise RateLimited(limit.scope, limit.tries, until)
        self.count((limit.scope,), now, now - limit.window)

    def tally(self, prefix: str, since: datetime) -> dict[str, tuple[int, datetime]]:
        """For each scope starting with `prefix`: how many tries since `since`, and the last.
        The prefix is compared as it is (substr), not as a range: under a PostgreSQL collation
        other than C, `scope < 'throttled;'` is not byte order and misses or adds scopes."""
        return {scope: (int(n), datetime.fromisoformat(last)) for scope, n, last in self.db.rows(
            "SELECT scope, COUNT(*), MAX(at) FROM throttle WHERE substr(scope, 1, ?) = ? AND at > ? GROUP BY scope",
            (len(prefix), prefix, ts(since)))}

    def prune(self, before: datetime) -> int:
        """Drop every try older than `before` (older than any scope's window); how many."""
        return self.db.count("DELETE FROM throttle WHERE at < ?", (ts(before),))
