"""The webhook's queue: one row per change a citizen is told of, sent in order per
application and retried with a backoff (queue/notify.py sends them)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from kiosq.queue.store.database import Database
from kiosq.queue.store.sealed import Notes
from kiosq.queue.store.views import NOTIFICATION_COLUMNS, Notification, dt, row_notification, ts


class Notifications:
    def __init__(self, db: Database, notes: Notes) -> None:
        self.db, self.notes = db, notes

    def queue(self, tracking_no: str, status: str, payload: dict[str, Any], at: datetime) -> None:
        """Inside the change that caused it: due at once. The payload's note is kept sealed
        in a column of its own (the payload says null), and put back when it is read."""
        note = payload.get("note")
        self.db.execute("INSERT INTO notifications (tracking_no, status, payload, next_at, created_at, sealed_note) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (tracking_no, status, json.dumps({**payload, "note": None} if note else payload,
                                                         ensure_ascii=False), ts(at), ts(at), self.notes.seal(note)))

    def due(self, now: datetime, limit: int = 20) -> list[Notification]:
        """Queued notifications whose time has come; one application's go out in order, so a
        later one waits while an earlier one is being retried."""
        return [row_notification(r, self.notes.open) for r in self.db.rows(
            f"SELECT {NOTIFICATION_COLUMNS} FROM notifications AS n WHERE state = 'queued' AND next_at <= ? "
            "AND NOT EXISTS (SELECT 1 FROM notifications AS o WHERE o.tracking_no = n.tracking_no "
            "AND o.state = 'queued' AND o.id < n.id) ORDER BY next_at, id LIMIT ?", (ts(now), limit))]

    def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[Notification]:
        """The due ones, taken for sending until `lease_until` (inside a write): another
        server process on the same database does not send them too. A sender that dies
        with them leased leaves them to whoever comes after the lease."""
        due = self.due(now, limit)
        self.db.many("UPDATE notifications SET next_at = ? WHERE id = ? AND state = 'queued'",
                     [(ts(lease_until), n.id) for n in due])
        return due

    def next_at(self) -> datetime | None:
        row = self.db.one("SELECT MIN(next_at) FROM notifications WHERE state = 'queued'")
        return dt(row[0]) if row else None

    def sent(self, notification_id: int, now: datetime) -> None:
        self.db.execute("UPDATE notifications SET state = 'sent', attempts = attempts + 1, sent_at = ?, "
                        "next_at = NULL WHERE id = ?", (ts(now), notification_id))

    def failed(self, notification_id: int, error: str, retry_at: datetime | None) -> None:
        """A failed attempt: try again at `retry_at`, or give up (state 'failed') if None."""
        self.db.execute("UPDATE notifications SET state = ?, attempts = attempts + 1, last_error = ?, "
                        "next_at = ? WHERE id = ?",
                        ("queued" if retry_at else "failed", error[:500], ts(retry_at), notification_id))

    def newest(self, limit: int = 200, state: str | None = None) -> list[Notification]:
        """The newest notifications first."""
        where = "WHERE state = ?" if state else ""
        args: tuple[Any, ...] = (state, limit) if state else (limit,)
        return [row_notification(r, self.notes.open) for r in self.db.rows(
            f"SELECT {NOTIFICATION_COLUMNS} FROM notifications {where} ORDER BY id DESC LIMIT ?", args)]
