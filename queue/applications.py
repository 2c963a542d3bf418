"""The rules of an application's life (申报 → 受理 → 审查 → 办结), as pure functions.

No SQL, HTTP or clock: callers pass `now`, the hall's local `today` and its working-day
calendar, and get back the new application and the step to record in its history. The
store applies both, with an event, in one transaction.

    submitted ─accept─▶ accepted ─review─▶ in_review ─complete─▶ completed
        │                 │  └─complete─▶ completed   │
        └──────────── return (补正) ◀─────────────────┘ ─▶ returned ─accept─▶ accepted
    reject (any open state but returned): recorded as a pending rejection; the status stays
    until a supervisor approves it (→ rejected) or denies it (窗口无否决权).

Deadlines: `promised_date` and `legal_date` are the item's promised and legal limits in
working days after `clock_from` (the local day of filing). When an application returned for
more material (补正) is accepted again, the clock starts again from that day, as time limits
run from acceptance (受理之日起) once the material is complete.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime

from kiosq.queue.engine import Refusal
from kiosq.queue.workdays import WorkCalendar

SUBMITTED, ACCEPTED, IN_REVIEW = "submitted", "accepted", "in_review"
COMPLETED, REJECTED, RETURNED = "completed", "rejected", "returned"
STATUSES = (SUBMITTED, ACCEPTED, IN_REVIEW, RETURNED, COMPLETED, REJECTED)
FINISHED = (COMPLETED, REJECTED)
# What staff act on now: RETURNED waits for the citizen, so it is open but not on the clock.
ON_THE_CLOCK = (SUBMITTED, ACCEPTED, IN_REVIEW)
NEAR_SHARE = (4, 5)  # a warning once 4/5 (80 %) of the promised working days are used

# action -> the statuses it may start from, and the status it leads to
MOVES: dict[str, tuple[tuple[str, ...], str]] = {
    "accept": ((SUBMITTED, RETURNED), ACCEPTED),
    "review": ((ACCEPTED,), IN_REVIEW),
    "complete": ((ACCEPTED, IN_REVIEW), COMPLETED),
    "return": ((SUBMITTED, ACCEPTED, IN_REVIEW), RETURNED),
}
REJECTABLE = (SUBMITTED, ACCEPTED, IN_REVIEW)
NEEDS_NOTE = ("return", "reject")
SUPERVISOR_ACTIONS = ("approve_rejection", "deny_rejection")
ACTIONS = (*MOVES, "reject", *SUPERVISOR_ACTIONS)


class InvalidTransition(Refusal):
    """The action does not apply to the application's present state (409)."""

    code = "invalid_transition"

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


class NotPermitted(Exception):
    """The action applies, but not by this person (403): e.g. approving one's own rejection."""


class NoteRequired(ValueError):
    """Returning or rejecting needs a note saying why (what material, which ground)."""


@dataclass(frozen=True, slots=True)
class Rejection:
    by: str  # the staff token's name; never shown to the public
    at: datetime
    note: str


@dataclass(frozen=True, slots=True)
class Application:
    tracking_no: str
    provisional_no: str | None
    item: str
    item_name: str
    department: str
    service: str
    status: str
    submitted_at: datetime
    clock_from: date
    promised_days: int
    legal_days: int
    promised_date: date
    legal_date: date
    terminal: str
    finished_at: datetime | None = None
    rejection: Rejection | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One line of an application's history."""

    action: str  # submit, accept, review, complete, return, reject, approve_rejection, deny_rejection
    status: str  # the status after it
    at: datetime
    actor: str | None  # staff name (None for the filing terminal's step shown publicly)
    note: str | None


def deadlines(clock_from: date, promised_days: int, legal_days: int, calendar: WorkCalendar) -> tuple[date, date]:
    return calendar.add(clock_from, promised_days), calendar.add(clock_from, legal_days)


def transition(app: Application, action: str, actor: str, note: str | None, now: datetime, today: date,
               calendar: WorkCalendar) -> tuple[Application, Step]:
    """The application after `action` by `actor`, and the step to record."""
    note = (note or "").strip() or None
    if action in NEEDS_NOTE and not note:
        raise NoteRequired(f"{'returning' if action == 'return' else 'rejecting'} an application needs a note "
                           f"saying {'which material is missing' if action == 'return' else 'on what ground'}")
    if app.status in FINISHED:
        raise InvalidTransition(f"application {app.tracking_no} is {app.status}; nothing more can be done", app.status)
    if action in SUPERVISOR_ACTIONS:
        return _decide_rejection(app, action, actor, note, now)
    if app.rejection is not None:
        raise InvalidTransition(f"a rejection of {app.tracking_no} waits for a supervisor's decision; "
                                "it must be approved or denied first", app.status)
    if action == "reject":
        if app.status not in REJECTABLE:
            raise InvalidTransition(f"application {app.tracking_no} is {app.status}; only a submitted, accepted or "
                                    "in-review application can be rejected", app.status)
        pending = Rejection(actor, now, note or "")
        return dataclasses.replace(app, rejection=pending), Step("reject", app.status, now, actor, note)
    if action not in MOVES:
        raise ValueError(f"unknown action {action!r}; actions are: {', '.join(ACTIONS)}")
    sources, target = MOVES[action]
    if app.status not in sources:
        raise InvalidTransition(f"cannot {action} application {app.tracking_no}: it is {app.status} "
                                f"(allowed from {' or '.join(sources)})", app.status)
    new = dataclasses.replace(app, status=target, finished_at=now if target in FINISHED else None)
    if action == "accept" and app.status == RETURNED:
        promised, legal = deadlines(today, app.promised_days, app.legal_days, calendar)
        new = dataclasses.replace(new, clock_from=today, promised_date=promised, legal_date=legal)
    return new, Step(action, target, now, actor, note)


def _decide_rejection(app: Application, action: str, actor: str, note: str | None,
                      now: datetime) -> tuple[Application, Step]:
    if app.rejection is None:
        raise InvalidTransition(f"no rejection of {app.tracking_no} is waiting for a decision", app.status)
    if action == "approve_rejection":
        if app.rejection.by == actor:
            raise NotPermitted(f"{actor!r} asked for this rejection and cannot approve it too; "
                               "another supervisor or an admin must (窗口无否决权)")
        new = dataclasses.replace(app, status=REJECTED, rejection=None, finished_at=now)
        return new, Step(action, REJECTED, now, actor, note or app.rejection.note)
    return dataclasses.replace(app, rejection=None), Step(action, app.status, now, actor, note)


def due_state(app: Application, today: date, calendar: WorkCalendar) -> str | None:
    """'over' past the promised date, 'near' once 80 % of the promised working days are used,
    'ok' before; None when the clock does not run (finished, or returned to the citizen)."""
    if app.status not in ON_THE_CLOCK:
        return None
    if today > app.promised_date:
        return "over"
    used = calendar.between(app.clock_from, today)
    num, den = NEAR_SHARE
    return "near" if used * den >= app.promised_days * num else "ok"


def used_share(app: Application, today: date, calendar: WorkCalendar) -> float | None:
    """The share of the promised working days used by `today` (1.0 and more when due or over)."""
    if app.promised_days == 0:
        return None
    return calendar.between(app.clock_from, today) / app.promised_days
