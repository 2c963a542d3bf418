"""好差评's SQL (queue/ratings.py has the rules): one rating per service (`subject`: a
ticket or an application), and for each 差评 its case (call-back, fix, appeal) in
`rating_cases`. The citizen's comment and the supervisors' notes are sealed like staff
notes (queue/store/sealed.py `Notes`); what the figures count (level, window, clerk,
service, item, department, channel, day) is in clear.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from kiosq.queue import ratings as rules
from kiosq.queue.config import Hall
from kiosq.queue.engine import Event
from kiosq.queue.store.database import Database
from kiosq.queue.store.errors import NotFound
from kiosq.queue.store.events import Events
from kiosq.queue.store.sealed import Notes
from kiosq.queue.store.views import dt, ts

_RATING = ("r.id, r.subject, r.day, r.rated_at, r.channel, r.level, r.reasons, r.comment, r.service, r.\"window\", "
           "r.clerk, r.item, r.department, r.label")
_CASE = ("c.state, c.opened_on, c.callback_due, c.fix_due, c.callback_at, c.callback_by, c.callback_note, "
         "c.fixed_at, c.fixed_by, c.fix_note, c.appeal_at, c.appeal_by, c.appeal_note, c.decided_at, "
         "c.decided_by, c.decision_note")


@dataclass(frozen=True)
class Subject:
    """What is rated: a ticket's service or an application, with what the figures group by."""

    key: str  # "ticket:<seq>" or "application:<tracking_no>"
    day: date  # the business day of the service (the ticket's), or the day the application closed
    label: str  # the ticket's number or the tracking number
    service: str | None
    window: int | None
    clerk: str | None
    item: str | None = None
    department: str | None = None


@dataclass(frozen=True)
class Case:
    state: str
    opened_on: date
    callback_due: date
    fix_due: date
    callback_at: datetime | None
    callback_by: str | None
    callback_note: str | None
    fixed_at: datetime | None
    fixed_by: str | None
    fix_note: str | None
    appeal_at: datetime | None
    appeal_by: str | None
    appeal_note: str | None
    decided_at: datetime | None
    decided_by: str | None
    decision_note: str | None


@dataclass(frozen=True)
class Rating:
    id: int
    subject: str
    day: date
    rated_at: datetime
    channel: str
    level: int
    reasons: list[str]
    comment: str | None
    service: str | None
    window: int | None
    clerk: str | None
    item: str | None
    department: str | None
    label: str
    case: Case | None


class AlreadyRated(Exception):
    """The subject has its rating already (one per service)."""


class Ratings:
    def __init__(self, db: Database, hall: Hall, events: Events, notes: Notes) -> None:
        self.db, self.hall, self.events, self.notes = db, hall, events, notes

    # -- writing (inside a change) -----------------------------------------------------

    def rate(self, now: datetime, subject: Subject, channel: str, level: int, reasons: list[str],
             comment: str | None, deadlines: rules.Deadlines | None) -> Rating:
        """Keep a rating (AlreadyRated if the subject has one) and, with `deadlines`, its case."""
        row = self.db.one(
            'INSERT INTO ratings (subject, day, rated_at, channel, level, reasons, comment, service, "window", clerk, '
            "item, department, label) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (subject) DO NOTHING RETURNING id",
            (subject.key, subject.day.isoformat(), ts(now), channel, level, json.dumps(reasons, ensure_ascii=False),
             self.notes.seal(comment), subject.service, subject.window, subject.clerk, subject.item,
             subject.department, subject.label))
        if row is None:
            raise AlreadyRated(subject.key)
        rating_id = int(row[0])
        if deadlines is not None:
            self.db.execute("INSERT INTO rating_cases (rating_id, state, opened_on, callback_due, fix_due) "
                            "VALUES (?, ?, ?, ?, ?)",
                            (rating_id, rules.OPEN, now.astimezone(self.hall.tz).date().isoformat(),
                             deadlines.callback_due.isoformat(), deadlines.fix_due.isoformat()))
        rating = self.require(rating_id)
        self.events.append(Event("rating.given", None, subject.window), now, {"rating": event_data(rating)})
        return rating

    def step(self, now: datetime, rating_id: int, step: str, actor: str, note: str | None,
             uphold: bool | None = None) -> Rating:
        """callback, fix, appeal or decide (the rules were checked by the caller on the
        case as read in this transaction: queue/ratings.py `check_step`)."""
        rating = self.require(rating_id)
        case = rating.case
        if case is None:
            raise NotFound(f"rating {rating_id} is not a 差评: it has no case")
        rules.check_step(case.state, step, case.callback_at is not None, case.appeal_by, actor)
        sealed = self.notes.seal(note)
        if step == "callback":
            self.db.execute("UPDATE rating_cases SET callback_at = ?, callback_by = ?, callback_note = ? "
                            "WHERE rating_id = ?", (ts(now), actor, sealed, rating_id))
        elif step == "fix":
            self.db.execute("UPDATE rating_cases SET state = ?, fixed_at = ?, fixed_by = ?, fix_note = ? "
                            "WHERE rating_id = ?", (rules.FIXED, ts(now), actor, sealed, rating_id))
        elif step == "appeal":
            self.db.execute("UPDATE rating_cases SET state = ?, appeal_at = ?, appeal_by = ?, appeal_note = ? "
                            "WHERE rating_id = ?", (rules.APPEALED, ts(now), actor, sealed, rating_id))
        else:  # decide
            self.db.execute("UPDATE rating_cases SET state = ?, decided_at = ?, decided_by = ?, decision_note = ? "
                            "WHERE rating_id = ?",
                            (rules.UPHELD if uphold else rules.OPEN, ts(now), actor, sealed, rating_id))
        new = self.require(rating_id)
        self.events.append(Event(f"rating.{step}", None, new.window), now, {"rating": event_data(new)})
        return new

    # -- reading -----------------------------------------------------------------------

    def find(self, rating_id: int) -> Rating | None:
        row = self.db.one(f"SELECT {_RATING}, {_CASE} FROM ratings AS r LEFT JOIN rating_cases AS c "
                          "ON c.rating_id = r.id WHERE r.id = ?", (rating_id,))
        return None if row is None else self._row(row)

    def require(self, rating_id: int) -> Rating:
        rating = self.find(rating_id)
        if rating is None:
            raise NotFound(f"no rating {rating_id}; GET /api/ratings/cases lists the cases")
        return rating

    def of_subject(self, key: str) -> Rating | None:
        row = self.db.one("SELECT id FROM ratings WHERE subject = ?", (key,))
        return None if row is None else self.find(int(row[0]))

    def cases(self, states: tuple[str, ...] | None = None, window: int | None = None) -> list[Rating]:
        """The 差评 with their cases, oldest first."""
        where: list[str] = ["c.rating_id IS NOT NULL"]
        args: list[Any] = []
        if states:
            where.append(f"c.state IN ({', '.join('?' * len(states))})")
            args += list(states)
        if window is not None:
            where.append('r."window" = ?')
            args.append(window)
        return [self._row(r) for r in self.db.rows(
            f"SELECT {_RATING}, {_CASE} FROM ratings AS r JOIN rating_cases AS c ON c.rating_id = r.id "
            f"WHERE {' AND '.join(where)} ORDER BY r.id", args)]

    def between(self, first: date, last: date) -> list[Rating]:
        """Every rating of services on business days `first` to `last`, inclusive."""
        return [self._row(r) for r in self.db.rows(
            f"SELECT {_RATING}, {_CASE} FROM ratings AS r LEFT JOIN rating_cases AS c ON c.rating_id = r.id "
            "WHERE r.day BETWEEN ? AND ? ORDER BY r.id", (first.isoformat(), last.isoformat()))]

    def _row(self, row: tuple[Any, ...]) -> Rating:
        case = None
        if row[14] is not None:
            c = row[14:]
            case = Case(state=c[0], opened_on=date.fromisoformat(c[1]), callback_due=date.fromisoformat(c[2]),
                        fix_due=date.fromisoformat(c[3]), callback_at=dt(c[4]), callback_by=c[5],
                        callback_note=self.notes.open(c[6]), fixed_at=dt(c[7]), fixed_by=c[8],
                        fix_note=self.notes.open(c[9]), appeal_at=dt(c[10]), appeal_by=c[11],
                        appeal_note=self.notes.open(c[12]), decided_at=dt(c[13]), decided_by=c[14],
                        decision_note=self.notes.open(c[15]))
        return Rating(id=int(row[0]), subject=row[1], day=date.fromisoformat(row[2]),
                      rated_at=datetime.fromisoformat(row[3]), channel=row[4], level=int(row[5]),
                      reasons=list(json.loads(row[6])), comment=self.notes.open(row[7]), service=row[8],
                      window=row[9], clerk=row[10], item=row[11], department=row[12], label=row[13], case=case)


def event_data(rating: Rating) -> dict[str, Any]:
    """What the staff stream says of a rating: no comment, no notes."""
    case = rating.case
    return {"id": rating.id, "level": rating.level, "bad": rules.is_bad(rating.level), "channel": rating.channel,
            "service": rating.service, "window": rating.window, "label": rating.label,
            "case_state": None if case is None else case.state}
