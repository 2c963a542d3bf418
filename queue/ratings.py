"""好差评: the rules of rating a service and following up a bad rating (国办发〔2019〕51号).

Pure: no clock, no I/O. A citizen rates one service once, on five levels (5 非常满意 …
1 非常不满意; 1 and 2 are 差评), until the end of the service's business day plus the
hall's grace. Every 差评 opens a case: a call-back (回访) due `callback_days` working days
after the rating and a fix (整改) due `fix_days` working days after it, on the hall's
calendar. The window may appeal a rating it thinks malicious (申诉); a supervisor upholds
the appeal (the rating stays on record, out of the figures) or rejects it. A case is
closed once it is fixed, or once its appeal is upheld.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from kiosq.queue.workdays import WorkCalendar

LEVELS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
LEVELS_EN = {5: "very satisfied", 4: "satisfied", 3: "fair", 2: "dissatisfied", 1: "very dissatisfied"}
BAD = (1, 2)  # 差评
GOOD = (4, 5)  # 好评
CHANNELS = ("window", "kiosk", "online", "application")  # 评价器, terminal, the slip's QR / /t/{id}, /a/{no}
MAX_REASONS = 8
MAX_COMMENT = 500

# A case's states: open (waiting for the call-back and the fix), fixed, appealed (waiting
# for a supervisor), and the appeal's outcome (upheld: closed, out of the figures).
OPEN, FIXED, APPEALED, UPHELD = "open", "fixed", "appealed", "upheld"
CASE_STATES = (OPEN, FIXED, APPEALED, UPHELD)
WARN_SHARE = 0.8  # a deadline 80 % used is a warning on /admin


class RatingRefused(Exception):
    """A rating that cannot be taken; `code` says why (not_finished, already_rated,
    too_late, reason_required)."""

    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code, self.status = code, status


class CaseRefused(Exception):
    """A case step that does not fit the case's state, or the caller (status 403 / 409)."""

    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code, self.status = code, status


def is_bad(level: int) -> bool:
    return level in BAD


def check_rating(level: int, reasons: list[str], comment: str | None) -> None:
    """A 差评 must say why: a reason or a comment (422 otherwise)."""
    if is_bad(level) and not reasons and not (comment and comment.strip()):
        raise RatingRefused("reason_required", f"a rating of {level} ({LEVELS[level]}, 差评) needs a reason or a "
                            "comment: pick one of the reasons or write what went wrong", 422)


def rating_closes(day: date, rollover_hour: int, tz: Any, grace_hours: float) -> datetime:
    """The last moment a service of business day `day` can be rated: the end of that
    business day (the next rollover) plus the hall's grace."""
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz) + timedelta(hours=rollover_hour)
    return end + timedelta(hours=grace_hours)


@dataclass(frozen=True)
class Deadlines:
    callback_due: date
    fix_due: date


def deadlines(rated_on: date, calendar: WorkCalendar, callback_days: int, fix_days: int) -> Deadlines:
    """A 差评's call-back and fix deadlines, in working days after the day it was given
    (the day itself is not counted: workdays.py)."""
    return Deadlines(calendar.add(rated_on, callback_days), calendar.add(rated_on, fix_days))


def due_state(opened_on: date, due: date, done: bool, today: date, calendar: WorkCalendar) -> str | None:
    """'overdue' after its day, 'warning' once 80 % of its working days are used, 'ok'
    before; None once done."""
    if done:
        return None
    if today > due:
        return "overdue"
    total = calendar.between(opened_on, due)
    used = calendar.between(opened_on, today)
    if total == 0 or used / total >= WARN_SHARE:
        return "warning"
    return "ok"


def counted(case_state: str | None) -> bool:
    """Whether a rating counts in the figures: every rating but one whose appeal was upheld."""
    return case_state != UPHELD


def figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of some ratings (each a dict with `level` and, for a 差评, the case's
    `state`, `callback_at`, `fixed_at`, `fix_due`): counts per level, 好评率 (levels 4-5
    over all counted), 差评, 回访率 and 整改率 (of the 差评), 按时整改率 (fixed by the due
    day, of the 差评); ratings whose appeal was upheld are out (`upheld` counts them)."""
    kept = [r for r in rows if counted(r.get("state"))]
    bad = [r for r in kept if is_bad(r["level"])]
    called = sum(1 for r in bad if r.get("callback_at"))
    fixed = [r for r in bad if r.get("fixed_at")]
    on_time = sum(1 for r in fixed if str(r["fixed_at"])[:10] <= str(r["fix_due"]))

    def share(n: int, of: int) -> float | None:
        return None if of == 0 else round(n / of, 4)

    return {"ratings": len(kept), "levels": {str(level): sum(1 for r in kept if r["level"] == level)
                                             for level in sorted(LEVELS, reverse=True)},
            "good": sum(1 for r in kept if r["level"] in GOOD), "good_rate": share(
                sum(1 for r in kept if r["level"] in GOOD), len(kept)),
            "bad": len(bad), "called_back": called, "callback_rate": share(called, len(bad)),
            "fixed": len(fixed), "fix_rate": share(len(fixed), len(bad)),
            "fixed_on_time": on_time, "on_time_fix_rate": share(on_time, len(bad)),
            "upheld": len(rows) - len(kept)}


STEPS = ("callback", "fix", "appeal", "decide")


def check_step(state: str, step: str, called_back: bool, appeal_by: str | None, actor: str) -> None:
    """Whether a case in `state` takes `step` from `actor` (CaseRefused otherwise): one
    call-back, recorded any time before the case is closed; the fix, while the case is open
    (not during an appeal); one appeal, while open; the decision on it, by someone else
    than who appealed."""
    closed = state in (FIXED, UPHELD)
    if step == "callback":
        if called_back:
            raise CaseRefused("already_called_back", "the call-back (回访) of this case is recorded already")
        if closed:
            raise CaseRefused("case_closed", f"the case is closed ({state}); nothing more is recorded on it")
    elif step == "fix":
        if state != OPEN:
            raise CaseRefused("case_closed" if closed else "appeal_pending",
                              f"the fix (整改) is recorded on an open case; this one is {state}"
                              + ("" if closed else ": a supervisor decides the appeal first"))
    elif step == "appeal":
        if appeal_by is not None:
            raise CaseRefused("already_appealed", "this rating was appealed already; one appeal per rating")
        if state != OPEN:
            raise CaseRefused("case_closed", f"an open case can be appealed; this one is {state}")
    elif step == "decide":
        if state != APPEALED:
            raise CaseRefused("no_appeal", f"no appeal of this rating waits for a decision (the case is {state})")
        if actor == appeal_by:
            raise CaseRefused("own_appeal", "who appealed cannot decide the appeal too; another supervisor or "
                              "an admin does", 403)
    else:
        raise ValueError(f"unknown case step {step!r}")
