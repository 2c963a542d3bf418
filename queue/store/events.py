"""The events table: what each change tells the displays and consoles, written in the
change's transaction (ids strictly increasing), and the hall notice. Listeners hear the last
id after the commit; they read the rows themselves (`after`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from kiosq.queue import engine
from kiosq.queue.config import Hall
from kiosq.queue.engine import Event
from kiosq.queue.store.database import Database
from kiosq.queue.store.views import StoredEvent, ticket_data, ts

# What the public stream (GET /api/events) carries: tickets, windows and the notice. Every
# other kind (application.*, terminal.*, content.*) is for signed-in staff only.
PUBLIC_PREFIXES = ("ticket.", "window.")
PUBLIC_TYPES = ("hall.notice",)
_PUBLIC_SQL = ("(" + " OR ".join([f"substr(type, 1, {len(p)}) = '{p}'" for p in PUBLIC_PREFIXES]
                                  + [f"type = '{t}'" for t in PUBLIC_TYPES]) + ")")


def is_public(event_type: str) -> bool:
    return event_type.startswith(PUBLIC_PREFIXES) or event_type in PUBLIC_TYPES


class Events:
    def __init__(self, db: Database, hall: Hall) -> None:
        self.db, self.hall = db, hall
        self.listeners: list[Callable[[int], None]] = []  # told the last event id after each commit
        self._last_written = 0  # id of the last event written by the open transaction
        self._floor: tuple[date, int] | None = None  # (business day, the last event id before it)

    def append(self, ev: Event, now: datetime, extra: dict[str, Any] | None = None) -> None:
        data: dict[str, Any] = {"ticket": None if ev.ticket is None else ticket_data(ev.ticket, self.hall),
                                "window": ev.window, "at": now.astimezone(self.hall.tz).isoformat(timespec="seconds"),
                                **(extra or {})}
        day = ev.ticket.day if ev.ticket else engine.business_day(now, self.hall)
        if ev.ticket is not None:
            # The ticket's service's line as the change leaves it, so that the displays need
            # not ask GET /api/services after every event (the ticket rows are written first).
            data["waiting"] = {ev.ticket.service: self._waiting(day, ev.ticket.service)}
        if ev.reason:
            data["reason"] = ev.reason
        if ev.type.startswith("window."):
            data["state"] = ev.type.removeprefix("window.")
        row = self.db.one(
            'INSERT INTO events (type, at, day, ticket, "window", data) VALUES (?, ?, ?, ?, ?, ?) RETURNING id',
            (ev.type, ts(now), day.isoformat(), ev.ticket.id if ev.ticket else None, ev.window,
             json.dumps(data, ensure_ascii=False, separators=(",", ":"))))
        assert row is not None
        self._last_written = row[0]
        self.db.announce_events(row[0])

    def _waiting(self, day: date, service: str) -> int:
        """How many tickets of `service` wait on `day`: the counts the triggers keep (one
        row per priority class), not a count of the tickets."""
        row = self.db.one("SELECT COALESCE(SUM(n), 0) FROM waiting_counts WHERE day = ? AND service = ?",
                          (day.isoformat(), service))
        return int(row[0]) if row else 0

    def committed(self) -> None:
        """After a commit: tell the listeners of the events it wrote."""
        if self._last_written:
            for listener in self.listeners:
                listener(self._last_written)
            self._last_written = 0

    def rolled_back(self) -> None:
        self._last_written = 0

    def last_id(self) -> int:
        row = self.db.one("SELECT COALESCE(MAX(id), 0) FROM events")
        return row[0] if row else 0

    def after(self, event_id: int, limit: int = 500) -> list[StoredEvent]:
        return [StoredEvent(*row) for row in self.db.rows(
            "SELECT id, type, data FROM events WHERE id > ? ORDER BY id LIMIT ?", (event_id, limit))]

    def with_tickets_after(self, event_id: int, limit: int = 500) -> list[StoredEvent]:
        """`after`, each event with its ticket's id (for the streams that filter by ticket)."""
        return [StoredEvent(*row) for row in self.db.rows(
            "SELECT id, type, data, ticket FROM events WHERE id > ? ORDER BY id LIMIT ?", (event_id, limit))]

    def public_after(self, event_id: int, day: date, limit: int = 500) -> list[StoredEvent]:
        """The public events of business day `day` (and later) after `event_id`."""
        return [StoredEvent(*row) for row in self.db.rows(
            f"SELECT id, type, data FROM events WHERE id > ? AND day >= ? AND {_PUBLIC_SQL} ORDER BY id LIMIT ?",
            (event_id, day.isoformat(), limit))]

    def of_ticket_after(self, ticket_id: str, event_id: int) -> list[StoredEvent]:
        """One ticket's events after `event_id` (callers start at most at the day's floor:
        `ticket` has no index, and the day's events are few)."""
        return [StoredEvent(*row) for row in self.db.rows(
            "SELECT id, type, data, ticket FROM events WHERE id > ? AND ticket = ? ORDER BY id", (event_id, ticket_id))]

    def day_floor(self, day: date) -> int:
        """The id of the last event of a business day before `day` (0: none), where a replay
        of `day` starts. Found walking the log back from its end, so only the day's own
        events are read; kept until the day changes (ids only grow)."""
        if self._floor is not None and self._floor[0] == day:
            return self._floor[1]
        row = self.db.one("SELECT id FROM events WHERE day < ? ORDER BY id DESC LIMIT 1", (day.isoformat(),))
        floor = row[0] if row else 0
        self._floor = (day, floor)
        return floor

    def recent_calls(self, day: date, limit: int = 8) -> list[StoredEvent]:
        """The day's last calls and recalls, newest first."""
        return [StoredEvent(*row) for row in self.db.rows(
            "SELECT id, type, data FROM events WHERE day = ? AND type IN ('ticket.called', 'ticket.recalled') "
            "ORDER BY id DESC LIMIT ?", (day.isoformat(), limit))]

    # -- the hall notice ---------------------------------------------------------------

    def notice(self) -> str:
        row = self.db.one("SELECT value FROM meta WHERE key = 'notice'")
        return row[0] if row else ""

    def set_notice(self, text: str, now: datetime) -> None:
        """The line the hall display shows under the calls; an event tells open displays."""
        self.db.execute("INSERT INTO meta VALUES ('notice', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (text,))
        self.append(Event("hall.notice", None, None), now, {"notice": text})
