"""Tries counted per scope (a tracking number, a hashed client address, a terminal) for
throttling wrong lookups and lookups by card; rows older than the window are dropped."""

from __future__ import annotations

from datetime import datetime

from kiosq.queue.store.database import Database
from kiosq.queue.store.views import ts


class Throttle:
    def __init__(self, db: Database) -> None:
        self.db = db

    def hits(self, scopes: tuple[str, ...], since: datetime) -> dict[str, list[datetime]]:
        """When each scope was counted since `since`, oldest first."""
        return {scope: [datetime.fromisoformat(at) for (at,) in self.db.rows(
            "SELECT at FROM throttle WHERE scope = ? AND at > ? ORDER BY at", (scope, ts(since)))]
            for scope in scopes}

    def count(self, scopes: tuple[str, ...], now: datetime, forget_before: datetime) -> None:
        """Count one try against each scope; forget tries older than `forget_before`."""
        self.db.many("INSERT INTO throttle VALUES (?, ?)", [(s, ts(now)) for s in scopes])
        self.db.execute("DELETE FROM throttle WHERE at < ?", (ts(forget_before),))
