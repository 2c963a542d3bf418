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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from kiosq.base.privacy import mask_numbers_in_text
from kiosq.content.model import PHONE, ItemGuide, check_values, id_number_valid
from kiosq.queue.config import Window
from kiosq.queue.engine import Actor, NotPermitted, Refusal
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
STAFF_ROLES = ("staff", "supervisor", "admin")  # who handles applications
DECIDING_ROLES = ("supervisor", "admin")  # who approves or denies a rejection (窗口无否决权)


class InvalidTransition(Refusal):
    """The action does not apply to the application's present state (409)."""

    code = "invalid_transition"

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


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
    """The application after `action` by `actor`, and the step to record. ID, phone and
    bank-card numbers typed into the note are masked here, before it is stored or sent."""
    note = mask_numbers_in_text((note or "").strip()) or None
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


def workdays_left(app: Application, today: date, calendar: WorkCalendar) -> int | None:
    """Working days to the promised date (negative once past it); None off the clock."""
    if app.status not in ON_THE_CLOCK:
        return None
    if today > app.promised_date:
        return -calendar.between(app.promised_date, today)
    return calendar.between(today, app.promised_date)


def new_application(item: ItemGuide, tracking_no: str, provisional_no: str | None, terminal: str,
                    now: datetime, today: date, calendar: WorkCalendar) -> Application:
    """An application for `item` filed at `terminal` now: submitted, its clock running from today."""
    promised, legal = deadlines(today, item.promised_days, item.legal_days, calendar)
    return Application(tracking_no=tracking_no, provisional_no=provisional_no, item=item.code,
                       item_name=item.name, department=item.department, service=item.service,
                       status=SUBMITTED, submitted_at=now, clock_from=today, promised_days=item.promised_days,
                       legal_days=item.legal_days, promised_date=promised, legal_date=legal, terminal=terminal)


# -- who may see and act on what ------------------------------------------------------

def services_of(actor: Actor, windows: Mapping[int, Window]) -> tuple[str, ...] | None:
    """The queue services whose applications `actor` handles (None: all of them)."""
    if actor.role == "admin" or (actor.role == "supervisor" and not actor.windows):
        return None
    if actor.role not in STAFF_ROLES:
        raise NotPermitted(f"applications are handled with a staff, supervisor or admin token; "
                           f"{actor.name!r} is a {actor.role} token")
    return tuple(dict.fromkeys(s for w in actor.windows if w in windows for s in windows[w].services))


def may_handle(actor: Actor, app: Application, windows: Mapping[int, Window]) -> None:
    """Staff handle the applications of the services their windows serve."""
    services = services_of(actor, windows)
    if services is not None and app.service not in services:
        raise NotPermitted(f"{app.tracking_no} is an application for service {app.service}, "
                           f"which none of {actor.name!r}'s windows serves")


def may_decide(actor: Actor, app: Application, windows: Mapping[int, Window]) -> None:
    """A rejection is approved or denied by a supervisor or an admin who may handle it."""
    if actor.role not in DECIDING_ROLES:
        raise NotPermitted("a rejection is approved or denied by a supervisor or an admin (窗口无否决权)")
    may_handle(actor, app, windows)


def may_act(actor: Actor, action: str, app: Application, windows: Mapping[int, Window]) -> None:
    """The access rule for one action: deciding a rejection, or handling the application."""
    if action in SUPERVISOR_ACTIONS:
        may_decide(actor, app, windows)
    else:
        may_handle(actor, app, windows)


# -- what a filing must say -------------------------------------------------------------

def filing_problems(item: ItemGuide, applicant: dict[str, Any], values: dict[str, Any]) -> dict[str, str]:
    """Field -> what is wrong, for the applicant and the form's values (empty: all fine)."""
    return applicant_problems(applicant) | check_values(item, values) | card_consistency(item, applicant, values)


def applicant_problems(applicant: dict[str, Any]) -> dict[str, str]:
    problems = {}
    if not id_number_valid(applicant["id_number"]):
        problems["applicant.id_number"] = "not a valid resident ID number (check its last character)"
    if not PHONE.fullmatch(applicant["phone"].replace(" ", "")):
        problems["applicant.phone"] = "must be a mobile (11 digits) or a landline with its area code"
    return problems


def card_consistency(item: ItemGuide, applicant: dict[str, Any], values: dict[str, Any]) -> dict[str, str]:
    """A field prefilled from the ID card must say what the card (the applicant) says."""
    problems = {}
    for field in item.form.fields if item.form else ():
        value = values.get(field.name)
        if field.prefill == "id_number" and isinstance(value, str) and value.upper() != applicant["id_number"]:
            problems[field.name] = "must be the applicant's own ID number"
    return problems
