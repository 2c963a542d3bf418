"""效能投诉: complaints about how staff work (推诿, 吃拿卡要, 冷横硬 …), the rules.

Pure: no clock, no I/O. A complaint is received, then accepted or declined (with a
reason) by `accept_by`, answered by `reply_by` (working days after the day it came, on
the hall's calendar), and closed with the citizen's satisfaction with the answer. The
citizen follows it with the number and the lookup code they were given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from kiosq.queue.workdays import WorkCalendar

CATEGORIES = {  # code -> (zh, en)
    "evasion": ("推诿扯皮", "Passing the buck"),
    "favours": ("吃拿卡要", "Asking for favours or fees"),
    "rudeness": ("冷横硬", "Cold, harsh or rude"),
    "inaction": ("不作为、慢作为", "Doing nothing, or too slowly"),
    "other": ("其他", "Other"),
}
RECEIVED, ACCEPTED, DECLINED, ANSWERED, CLOSED = "received", "accepted", "declined", "answered", "closed"
STATES = (RECEIVED, ACCEPTED, DECLINED, ANSWERED, CLOSED)
ACTIONS = {"accept": (RECEIVED, ACCEPTED), "decline": (RECEIVED, DECLINED), "answer": (ACCEPTED, ANSWERED),
           "close": (ANSWERED, CLOSED)}
PREFIX = "TS"  # 投诉: TS20261208-0001


class ComplaintRefused(Exception):
    """An action that does not fit the complaint's state (409)."""

    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code, self.status = code, status


@dataclass(frozen=True)
class Deadlines:
    accept_by: date
    reply_by: date


def deadlines(received_on: date, calendar: WorkCalendar, accept_days: int, reply_days: int) -> Deadlines:
    return Deadlines(calendar.add(received_on, accept_days), calendar.add(received_on, reply_days))


def next_state(state: str, action: str) -> str:
    """The state `action` leads to from `state` (ComplaintRefused when it does not apply)."""
    start, end = ACTIONS[action]
    if state != start:
        words = {"accept": "accepted or declined", "decline": "accepted or declined", "answer": "answered",
                 "close": "closed"}
        raise ComplaintRefused("invalid_transition", f"a complaint is {words[action]} when it is {start}; this one "
                               f"is {state}")
    return end


def due_state(due: date, done: bool, today: date) -> str | None:
    """'overdue' after its day, 'due_today' on it, 'ok' before; None once done."""
    if done:
        return None
    if today > due:
        return "overdue"
    return "due_today" if today == due else "ok"
