"""Applications filed at terminals: tracking numbers, the link to a terminal's provisional
number, each step of their life with its event (and its notification), and the lookups.

Personal data is only in `applicant`, sealed before it gets here, and in `id_hash`, a keyed
hash of the ID number for lookups by card; the lookup code only as `lookup_hash`, its keyed
hash (and, for a replay's answer, inside the sealed record). The rules are queue/applications.py's.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from kiosq.content.model import ItemGuide
from kiosq.queue import applications as rules
from kiosq.queue.applications import Application, Step
from kiosq.queue.config import Hall
from kiosq.queue.engine import Actor, Event
from kiosq.queue.store.database import Database
from kiosq.queue.store.errors import IdempotencyConflict, NotFound
from kiosq.queue.store.events import Events
from kiosq.queue.store.idempotency import Idempotency
from kiosq.queue.store.notifications import Notifications
from kiosq.queue.store.sealed import Notes, refuse_retired
from kiosq.queue.store.views import (
    APPLICATION_COLUMNS,
    STEP_COLUMNS,
    application_event_data,
    row_application,
    row_step,
    ts,
)

TRACKING_PREFIX = "SQ"
REF = "application:"  # what an idempotency key made, for an application


class Applications:
    def __init__(self, db: Database, hall: Hall, events: Events, idempotency: Idempotency,
                 notifications: Notifications, notes: Notes) -> None:
        self.db, self.hall, self.events = db, hall, events
        self.idempotency, self.notifications, self.notes = idempotency, notifications, notes

    # -- writing (inside a change) -----------------------------------------------------

    def submit(self, now: datetime, item: ItemGuide, *, terminal: str, id_hash: str, sealed: bytes, fingerprint: str,
               provisional_no: str | None, caller: str, idempotency_key: str,
               notify: bool, lookup_hash: str | None = None) -> tuple[Application, bool]:
        """File an application; True when it is an earlier answer to the same key or
        provisional number (a replay must match `fingerprint`)."""
        fingerprint = f"application|{fingerprint}"
        earlier = self._replayed(now, fingerprint, provisional_no, caller, idempotency_key)
        if earlier is not None:
            return earlier, True
        sealed = refuse_retired(self.db, sealed)
        day = now.astimezone(self.hall.tz).date()
        # The day's counter, in this write transaction: two terminals never share a number.
        row = self.db.one("INSERT INTO application_counters VALUES (?, 1) ON CONFLICT (day) DO UPDATE "
                          "SET n = application_counters.n + 1 RETURNING n", (day.isoformat(),))
        assert row is not None
        app = rules.new_application(item, f"{TRACKING_PREFIX}{day:%Y%m%d}-{row[0]:04d}", provisional_no, terminal,
                                    now, day, self.hall.calendar)
        self.db.execute(
            "INSERT INTO applications (tracking_no, provisional_no, day, item, item_name, department, service, "
            "status, submitted_at, clock_from, promised_days, legal_days, promised_date, legal_date, terminal, "
            "id_hash, applicant, fingerprint, lookup_hash) "
            f"VALUES ({', '.join('?' * 19)})",
            (app.tracking_no, provisional_no, day.isoformat(), app.item, app.item_name, app.department,
             app.service, app.status, ts(now), day.isoformat(), app.promised_days, app.legal_days,
             app.promised_date.isoformat(), app.legal_date.isoformat(), terminal, id_hash, sealed, fingerprint,
             lookup_hash))
        self.idempotency.remember(caller, idempotency_key, fingerprint, REF + app.tracking_no, now)
        self._record_step(app, Step("submit", app.status, now, terminal, None), notify)
        return app, False

    def _replayed(self, now: datetime, fingerprint: str, provisional_no: str | None, caller: str,
                  key: str) -> Application | None:
        """The application an earlier try of this request filed, by its key or by its
        provisional number (should the server have forgotten the key, or the terminal have
        a new token); IdempotencyConflict when either belongs to another request."""
        earlier = self.idempotency.find(caller, key)
        if earlier is not None:
            if earlier[0] != fingerprint:
                raise IdempotencyConflict(f"Idempotency-Key {key!r} was already used for another "
                                          "request; use a new key for a new application")
            return self.require(earlier[1].removeprefix(REF))
        if provisional_no is None:
            return None
        row = self.db.one("SELECT fingerprint, tracking_no FROM applications WHERE provisional_no = ?",
                          (provisional_no,))
        if row is None:
            return None
        if row[0] != fingerprint:
            raise IdempotencyConflict(f"provisional number {provisional_no} already belongs to another "
                                      f"application ({row[1]}); a terminal must not reuse one")
        self.idempotency.remember(caller, key, fingerprint, REF + row[1], now)
        return self.require(row[1])

    def act(self, now: datetime, number: str, action: str, actor: str, note: str | None, by: Actor | None,
            notify: bool) -> tuple[Application, Step]:
        """One step (applications.transition); `by` (the caller) must be allowed to
        (applications.may_act); None: the hall itself."""
        app = self.require(number)
        if by is not None:
            rules.may_act(by, action, app, self.hall.windows)
        new, step = rules.transition(app, action, actor, note, now, now.astimezone(self.hall.tz).date(),
                                     self.hall.calendar)
        rej = new.rejection
        self.db.execute(
            "UPDATE applications SET status = ?, clock_from = ?, promised_date = ?, legal_date = ?, "
            "finished_at = ?, rejection_by = ?, rejection_at = ?, rejection_note = NULL, rejection_sealed = ? "
            "WHERE tracking_no = ?",
            (new.status, new.clock_from.isoformat(), new.promised_date.isoformat(), new.legal_date.isoformat(),
             ts(new.finished_at), rej and rej.by, rej and ts(rej.at),
             self.notes.seal(rej.note or None) if rej else None, new.tracking_no))
        self._record_step(new, step, notify)
        return new, step

    def _record_step(self, app: Application, step: Step, notify: bool) -> None:
        self.db.execute("INSERT INTO application_steps (tracking_no, action, status, at, actor, sealed_note) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (app.tracking_no, step.action, step.status, ts(step.at), step.actor,
                         self.notes.seal(step.note)))
        data = application_event_data(app, step)
        kind = "application.submitted" if step.action == "submit" else "application.changed"
        self.events.append(Event(kind, None, None), step.at, {"application": data})
        # Only changes a citizen cares about: not a pending rejection, nor its denial.
        if notify and step.action not in ("reject", "deny_rejection"):
            payload: dict[str, Any] = {
                **data, "at": step.at.astimezone(self.hall.tz).isoformat(timespec="seconds"),
                "note": step.note if step.action in ("return", "approve_rejection") else None}
            self.notifications.queue(app.tracking_no, app.status, payload, step.at)

    def record_personal_access(self, now: datetime, app: Application, actor: str) -> None:
        """Who opened an applicant's personal data, and when: a step staff see, the public does not."""
        self.db.execute("INSERT INTO application_steps (tracking_no, action, status, at, actor) "
                        "VALUES (?, 'view_personal', ?, ?, ?)", (app.tracking_no, app.status, ts(now), actor))

    # -- reading -----------------------------------------------------------------------

    def require(self, number: str) -> Application:
        app = self.find(number)
        if app is None:
            raise NotFound(f"no application {number}; check the number on the receipt")
        return app

    def find(self, number: str) -> Application | None:
        """By tracking number, or by the provisional number a terminal printed while offline."""
        row = self.db.one(f"SELECT {APPLICATION_COLUMNS} FROM applications WHERE tracking_no = ?", (number,))
        if row is None:
            row = self.db.one(f"SELECT {APPLICATION_COLUMNS} FROM applications WHERE provisional_no = ?", (number,))
        return None if row is None else row_application(row, self.notes.open)

    def applicant_record(self, tracking_no: str) -> tuple[str, bytes]:
        """The keyed hash of the ID number and the sealed applicant record."""
        row = self.db.one("SELECT id_hash, applicant FROM applications WHERE tracking_no = ?", (tracking_no,))
        if row is None:
            raise NotFound(f"no application {tracking_no}")
        return row[0], row[1]

    def lookup_hash(self, tracking_no: str) -> str | None:
        """The keyed hash of the application's lookup code (None: filed before lookup codes)."""
        row = self.db.one("SELECT lookup_hash FROM applications WHERE tracking_no = ?", (tracking_no,))
        return None if row is None else row[0]

    def steps(self, tracking_no: str) -> list[Step]:
        return [row_step(r, self.notes.open) for r in self.db.rows(
            f"SELECT {STEP_COLUMNS} FROM application_steps WHERE tracking_no = ? ORDER BY id",
            (tracking_no,))]

    def of_person(self, id_hash: str, limit: int = 50) -> list[Application]:
        """A person's applications (by the keyed hash of the ID number), newest first."""
        return [row_application(r, self.notes.open) for r in self.db.rows(
            f"SELECT {APPLICATION_COLUMNS} FROM applications WHERE id_hash = ? ORDER BY seq DESC LIMIT ?",
            (id_hash, limit))]

    def listing(self, services: tuple[str, ...] | None = None,
                statuses: tuple[str, ...] | None = None) -> list[Application]:
        """Applications of the given queue services and statuses (all if None), oldest first."""
        where: list[str] = []
        args: list[str] = []
        for column, values in (("service", services), ("status", statuses)):
            if values is not None:
                where.append(f"{column} IN ({', '.join('?' * len(values))})")
                args += values
        sql = f"SELECT {APPLICATION_COLUMNS} FROM applications"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [row_application(r, self.notes.open) for r in self.db.rows(sql + " ORDER BY seq", args)]

    def filed(self, first: date, last: date) -> list[Application]:
        """Applications filed on the hall's local dates `first` to `last`, inclusive."""
        return [row_application(r, self.notes.open) for r in self.db.rows(
            f"SELECT {APPLICATION_COLUMNS} FROM applications WHERE day BETWEEN ? AND ? ORDER BY seq",
            (first.isoformat(), last.isoformat()))]
