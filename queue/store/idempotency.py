"""Idempotency keys: what a caller's key was first used for, so that a retried request gets
the first answer (a ticket, an application) and a reused key for another request is refused."""

from __future__ import annotations

from datetime import datetime

from kiosq.queue.store.database import Database
from kiosq.queue.store.views import ts


class Idempotency:
    def __init__(self, db: Database) -> None:
        self.db = db

    def find(self, caller: str, key: str) -> tuple[str, str] | None:
        """(fingerprint of the first request, what it made) for a caller's key, or None."""
        row = self.db.one("SELECT fingerprint, ticket FROM idempotency WHERE caller = ? AND key = ?", (caller, key))
        return None if row is None else (row[0], row[1])

    def remember(self, caller: str, key: str, fingerprint: str, made: str, now: datetime) -> None:
        self.db.execute("INSERT INTO idempotency VALUES (?, ?, ?, ?, ?)", (caller, key, fingerprint, made, ts(now)))

    def forget_before(self, moment: datetime) -> None:
        self.db.execute("DELETE FROM idempotency WHERE created_at < ?", (ts(moment),))
