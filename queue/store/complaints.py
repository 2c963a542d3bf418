"""效能投诉's SQL (queue/complaints.py has the rules): complaint numbers (a per-day counter
in the write transaction, like tracking numbers), the sealed record (the citizen's text,
phone and lookup code: sealed before it gets here), each step, and the lookups. What staff
write (a decline's reason, the answer) is sealed as staff notes are (`Notes`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from kiosq.queue import complaints as rules
from kiosq.queue.config import Hall
from kiosq.queue.engine import Event
from kiosq.queue.store.database import Database
from kiosq.queue.store.errors import IdempotencyConflict, NotFound
from kiosq.queue.store.events import Events
from kiosq.queue.store.idempotency import Idempotency
from kiosq.queue.store.sealed import Notes, refuse_retired
from kiosq.queue.store.views import dt, ts

REF = "complaint:"
EVENTS = {"accept": "complaint.accepted", "decline": "complaint.declined", "answer": "complaint.answered",
          "close": "complaint.closed"}
_COLUMNS = ("complaint_no, day, received_at, channel, about_window, about_staff, about_item, category, state, "
            "accept_by, reply_by, accepted_at, accepted_by, declined_at, declined_by, decline_reason, answered_at, "
            "answered_by, answer, closed_at, satisfaction")


@dataclass(frozen=True)
class Complaint:
    complaint_no: str
    day: date
    received_at: datetime
    channel: str
    about_window: int | None
    about_staff: str | None
    about_item: str | None
    category: str
    state: str
    accept_by: date
    reply_by: date
    accepted_at: datetime | None
    accepted_by: str | None
    declined_at: datetime | None
    declined_by: str | None
    decline_reason: str | None
    answered_at: datetime | None
    answered_by: str | None
    answer: str | None
    closed_at: datetime | None
    satisfaction: int | None


class Complaints:
    def __init__(self, db: Database, hall: Hall, events: Events, idempotency: Idempotency, notes: Notes) -> None:
        self.db, self.hall, self.events, self.idempotency, self.notes = db, hall, events, idempotency, notes

    def file(self, now: datetime, *, channel: str, about: dict[str, Any], category: str, sealed: bytes,
             lookup_hash: str, deadlines: rules.Deadlines, caller: str, key: str | None,
             fingerprint: str) -> tuple[Complaint, bool]:
        """A new complaint; True when it is an earlier answer to the same Idempotency-Key."""
        fingerprint = f"complaint|{fingerprint}"
        if key is not None:
            earlier = self.idempotency.find(caller, key)
            if earlier is not None:
                if earlier[0] != fingerprint:
                    raise IdempotencyConflict(f"Idempotency-Key {key!r} was already used for another request")
                return self.require(earlier[1].removeprefix(REF)), True
        sealed = refuse_retired(self.db, sealed)
        day = now.astimezone(self.hall.tz).date()
        row = self.db.one("INSERT INTO complaint_counters VALUES (?, 1) ON CONFLICT (day) DO UPDATE "
                          "SET n = complaint_counters.n + 1 RETURNING n", (day.isoformat(),))
        assert row is not None
        number = f"{rules.PREFIX}{day:%Y%m%d}-{row[0]:04d}"
        self.db.execute(
            "INSERT INTO complaints (complaint_no, day, received_at, channel, about_window, about_staff, about_item, "
            "category, record, lookup_hash, state, accept_by, reply_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (number, day.isoformat(), ts(now), channel, about.get("window"), about.get("staff_name"),
             about.get("item"), category, sealed, lookup_hash, rules.RECEIVED, deadlines.accept_by.isoformat(),
             deadlines.reply_by.isoformat()))
        if key is not None:
            self.idempotency.remember(caller, key, fingerprint, REF + number, now)
        complaint = self.require(number)
        self.events.append(Event("complaint.received", None, complaint.about_window), now,
                           {"complaint": event_data(complaint)})
        return complaint, False

    def act(self, now: datetime, number: str, action: str, actor: str, text: str | None,
            satisfaction: int | None) -> Complaint:
        c = self.require(number)
        state = rules.next_state(c.state, action)
        sealed = self.notes.seal(text)
        if action == "accept":
            self.db.execute("UPDATE complaints SET state = ?, accepted_at = ?, accepted_by = ? WHERE complaint_no = ?",
                            (state, ts(now), actor, number))
        elif action == "decline":
            self.db.execute("UPDATE complaints SET state = ?, declined_at = ?, declined_by = ?, decline_reason = ? "
                            "WHERE complaint_no = ?", (state, ts(now), actor, sealed, number))
        elif action == "answer":
            self.db.execute("UPDATE complaints SET state = ?, answered_at = ?, answered_by = ?, answer = ? "
                            "WHERE complaint_no = ?", (state, ts(now), actor, sealed, number))
        else:
            self.db.execute("UPDATE complaints SET state = ?, closed_at = ?, satisfaction = ? WHERE complaint_no = ?",
                            (state, ts(now), satisfaction, number))
        new = self.require(number)
        self.events.append(Event(EVENTS[action], None, new.about_window), now,
                           {"complaint": event_data(new)})
        return new

    def find(self, number: str) -> Complaint | None:
        row = self.db.one(f"SELECT {_COLUMNS} FROM complaints WHERE complaint_no = ?", (number.upper(),))
        return None if row is None else self._row(row)

    def require(self, number: str) -> Complaint:
        c = self.find(number)
        if c is None:
            raise NotFound(f"no complaint {number}; check the number on the slip")
        return c

    def secrets(self, number: str) -> tuple[bytes, str] | None:
        """The sealed record and the lookup code's hash."""
        row = self.db.one("SELECT record, lookup_hash FROM complaints WHERE complaint_no = ?", (number.upper(),))
        return None if row is None else (bytes(row[0]), row[1])

    def listing(self, states: tuple[str, ...] | None = None) -> list[Complaint]:
        where = f"WHERE state IN ({', '.join('?' * len(states))})" if states else ""
        return [self._row(r) for r in self.db.rows(f"SELECT {_COLUMNS} FROM complaints {where} ORDER BY seq",
                                                   list(states or ()))]

    def _row(self, r: tuple[Any, ...]) -> Complaint:
        return Complaint(complaint_no=r[0], day=date.fromisoformat(r[1]), received_at=datetime.fromisoformat(r[2]),
                         channel=r[3], about_window=r[4], about_staff=r[5], about_item=r[6], category=r[7],
                         state=r[8], accept_by=date.fromisoformat(r[9]), reply_by=date.fromisoformat(r[10]),
                         accepted_at=dt(r[11]), accepted_by=r[12], declined_at=dt(r[13]), declined_by=r[14],
                         decline_reason=self.notes.open(r[15]), answered_at=dt(r[16]), answered_by=r[17],
                         answer=self.notes.open(r[18]), closed_at=dt(r[19]), satisfaction=r[20])


def event_data(c: Complaint) -> dict[str, Any]:
    """What the staff stream says of a complaint: no text, no phone, no answer."""
    return {"complaint_no": c.complaint_no, "category": c.category, "state": c.state, "window": c.about_window,
            "accept_by": c.accept_by.isoformat(), "reply_by": c.reply_by.isoformat()}
