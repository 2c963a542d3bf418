"""The ticket engine: the hall's queue rules as pure functions.

No SQL, no HTTP, no clock of its own: callers pass `now` (an aware datetime) and the
tickets involved, and get back new values and the events to record. The store applies
them in one transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from kiosq.queue.config import Hall, Service, Window

# Priority classes, lowest first: a ticket's rank is its index here.
PRIORITIES = ("normal", "elderly", "appointment", "green")
RANK = {name: rank for rank, name in enumerate(PRIORITIES)}

WAITING, CALLED, SERVING, DONE = "waiting", "called", "serving", "done"
NO_SHOW, CANCELLED = "no_show", "cancelled"
OPEN, PAUSED = "open", "paused"


class Refusal(Exception):
    """A request the hall's rules do not allow; `code` is stable, the message says why."""

    code = "refused"


class NotAllowed(Refusal):
    code = "not_allowed"


class RangeExhausted(Refusal):
    code = "range_exhausted"


class NothingWaiting(Refusal):
    code = "nothing_waiting"


class WindowPaused(Refusal):
    code = "window_paused"


class NotPermitted(Exception):
    """The request applies, but not by this caller (403): a terminal issuing a green-channel
    ticket, cancelling a ticket called to someone else's window, approving one's own rejection."""


class Actor(Protocol):
    """Who asks: a token's name, role and windows (store.Token is one)."""

    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def windows(self) -> tuple[int, ...]: ...
    def may_act_at(self, window: int) -> bool: ...


@dataclass(frozen=True, slots=True)
class Ticket:
    id: str
    day: date
    number_service: str  # the service that numbered it; (number_service, day, number) is unique
    number: int
    label: str  # "A001": prefix and zero-padded number, kept through transfers
    service: str  # the service whose queue it is in now
    priority: str
    status: str
    issued_at: datetime
    queue_seq: int = 0  # place in line among equal ranks; assigned at issue, kept on transfer
    window: int | None = None
    called_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    recalls: int = 0
    transfers: int = 0

    @property
    def rank(self) -> int:
        return RANK[self.priority]


@dataclass(frozen=True, slots=True)
class WindowState:
    number: int
    state: str = OPEN
    current: Ticket | None = None  # derived: the ticket called to or served at this window


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    ticket: Ticket | None
    window: int | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one request changes: tickets to write (in order), a window state, events."""

    tickets: tuple[Ticket, ...] = ()
    window: WindowState | None = None
    events: tuple[Event, ...] = ()

    @property
    def ticket(self) -> Ticket | None:
        """The ticket the request was about (the last one written)."""
        return self.tickets[-1] if self.tickets else None


def business_day(now: datetime, hall: Hall) -> date:
    """The hall's business day at `now`: local date, starting at the rollover hour."""
    local = now.astimezone(hall.tz)
    return (local - timedelta(hours=hall.info.rollover_hour)).date()


def queue_key(ticket: Ticket) -> tuple[int, int]:
    """Order within one service's queue: higher priority class first, then place in line."""
    return (-ticket.rank, ticket.queue_seq)


def issue(service: Service, last_number: int | None, day: date, now: datetime,
          ticket_id: str, priority: str = "normal") -> Ticket:
    """A new waiting ticket numbered after `last_number` (None: first of the day)."""
    if priority not in RANK:
        raise NotAllowed(f"unknown priority {priority!r}; use one of: {', '.join(PRIORITIES)}")
    number = service.first_number if last_number is None else last_number + 1
    if number > service.last_number:
        raise RangeExhausted(
            f"service {service.code} has issued every number up to "
            f"{service.label(service.last_number)} today; raise last_number in the hall file "
            "or send citizens to another service")
    return Ticket(id=ticket_id, day=day, number_service=service.code, number=number,
                  label=service.label(number), service=service.code, priority=priority,
                  status=WAITING, issued_at=now)


def may_issue(priority: str, actor: Actor, terminal_priorities: tuple[str, ...] = ("normal", "elderly")) -> None:
    """Green-channel tickets are for staff to give out, never taken at a terminal; a terminal
    asks only for the priorities the hall file gives terminals ([terminals] priorities)."""
    if actor.role != "terminal":
        return
    if priority == "green":
        raise NotPermitted("green-channel tickets are issued by staff or an admin, not at a terminal")
    if priority not in terminal_priorities:
        raise NotPermitted(f"a terminal may issue {' or '.join(terminal_priorities)} tickets (the hall file's "
                           f"[terminals] priorities); {priority} tickets are issued by staff or an admin")


def may_cancel(ticket: Ticket, actor: Actor) -> None:
    """A waiting ticket: anyone holding its id. A called one: staff of its window, or admin."""
    if ticket.window is None or actor.role == "admin":
        return  # not at a window: the queue rules decide
    if actor.role in ("staff", "supervisor") and actor.may_act_at(ticket.window):
        return
    raise NotPermitted(f"ticket {ticket.label} is {ticket.status.replace('_', '-')} at window "
                       f"{ticket.window}; only staff of that window or an admin can cancel it now")


def pick_next(window: Window, heads: Iterable[Ticket]) -> Ticket | None:
    """The ticket `window` calls next, from the head of each of its services' queues.

    Priority class first; then by the window's policy: the oldest ticket across its
    services, or its services in the order listed.
    """
    order = {code: i for i, code in enumerate(window.services)}
    candidates = [t for t in heads if t.status == WAITING and t.service in order]
    if not candidates:
        return None
    if window.policy == "service_order":
        return min(candidates, key=lambda t: (-t.rank, order[t.service], t.queue_seq))
    return min(candidates, key=queue_key)


def call_next(window: Window, state: WindowState, heads: Iterable[Ticket], now: datetime) -> Outcome:
    """Call the next ticket to `window`, first closing the one it has.

    Moving on means the current ticket is done if it was being served, or a no-show if
    its holder never came.
    """
    if state.state == PAUSED:
        raise WindowPaused(f"window {window.number} is paused; resume it before calling")
    nxt = pick_next(window, heads)
    if nxt is None:
        raise NothingWaiting(f"no ticket is waiting for window {window.number} "
                             f"(services {', '.join(window.services)})")
    outcome = Outcome()
    if state.current is not None:
        outcome = _close(state.current, now, window.number)
    called = dataclasses.replace(nxt, status=CALLED, window=window.number, called_at=now,
                                 started_at=None, ended_at=None, recalls=0)
    return Outcome(outcome.tickets + (called,), None,
                   outcome.events + (Event("ticket.called", called, window.number),))


def _close(current: Ticket, now: datetime, window: int) -> Outcome:
    if current.status == SERVING:
        done = finish(current, now)
        return Outcome((done,), None, (Event("ticket.finished", done, window),))
    gone = no_show(current, now)
    return Outcome((gone,), None, (Event("ticket.no_show", gone, window, "skipped"),))


def act_on_current(action: str, window: Window, state: WindowState, now: datetime, hall: Hall,
                   to_service: str | None = None) -> Outcome:
    """recall, start, finish, no_show or transfer the ticket at `window`."""
    ticket = state.current
    if ticket is None:
        raise NotAllowed(f"window {window.number} has no current ticket; call the next one first")
    reason = None
    if action == "recall":
        ticket = recall(ticket, now, hall.info.no_show_after_recalls)
        kind = "recalled" if ticket.status == CALLED else "no_show"
        reason = None if ticket.status == CALLED else f"recalled {hall.info.no_show_after_recalls} times"
    elif action == "start":
        ticket, kind = start(ticket, now), "started"
    elif action == "finish":
        ticket, kind = finish(ticket, now), "finished"
    elif action == "no_show":
        ticket, kind = no_show(ticket, now), "no_show"
    elif action == "transfer":
        if to_service not in hall.services:
            raise NotAllowed(f"unknown service {to_service!r}; services are: {', '.join(hall.services)}")
        ticket, kind = transfer(ticket, hall.services[to_service], now), "transferred"
    else:
        raise ValueError(f"unknown window action {action!r}")
    return Outcome((ticket,), None, (Event(f"ticket.{kind}", ticket, window.number, reason),))


def _require(ticket: Ticket, action: str, *allowed: str) -> None:
    if ticket.status not in allowed:
        raise NotAllowed(f"cannot {action} ticket {ticket.label}: it is {ticket.status.replace('_', '-')}"
                         f" (only a {' or '.join(s.replace('_', '-') for s in allowed)} ticket can be)")


def recall(ticket: Ticket, now: datetime, no_show_after: int) -> Ticket:
    """Announce a called ticket again; past `no_show_after` recalls it becomes a no-show."""
    _require(ticket, "recall", CALLED)
    if ticket.recalls >= no_show_after:
        return no_show(ticket, now)
    return dataclasses.replace(ticket, recalls=ticket.recalls + 1)


def start(ticket: Ticket, now: datetime) -> Ticket:
    _require(ticket, "start serving", CALLED)
    return dataclasses.replace(ticket, status=SERVING, started_at=now)


def finish(ticket: Ticket, now: datetime) -> Ticket:
    """Done. A called ticket may be finished directly (staff who skip "start")."""
    _require(ticket, "finish", CALLED, SERVING)
    return dataclasses.replace(ticket, status=DONE, started_at=ticket.started_at or ticket.called_at,
                               ended_at=now)


def no_show(ticket: Ticket, now: datetime) -> Ticket:
    _require(ticket, "mark as no-show", CALLED)
    return dataclasses.replace(ticket, status=NO_SHOW, ended_at=now)


def reinstate(ticket: Ticket, now: datetime, within_minutes: float) -> Ticket:
    """Put a no-show back in line at its original place, if it is recent enough."""
    _require(ticket, "reinstate", NO_SHOW)
    assert ticket.ended_at is not None
    if now - ticket.ended_at > timedelta(minutes=within_minutes):
        raise NotAllowed(f"ticket {ticket.label} was marked no-show more than {within_minutes:g} minutes "
                         "ago; issue a new ticket instead")
    return dataclasses.replace(ticket, status=WAITING, window=None, called_at=None, ended_at=None, recalls=0)


def transfer(ticket: Ticket, to_service: Service, now: datetime) -> Ticket:
    """Move a ticket to another service's queue. It keeps its number and its place in line
    (the citizen has already waited once), so it is called ahead of later tickets."""
    _require(ticket, "transfer", WAITING, CALLED, SERVING)
    if to_service.code == ticket.service:
        raise NotAllowed(f"ticket {ticket.label} is already in service {to_service.code}")
    return dataclasses.replace(ticket, service=to_service.code, status=WAITING, window=None,
                               called_at=None, started_at=None, recalls=0,
                               transfers=ticket.transfers + 1)


def cancel(ticket: Ticket, now: datetime) -> Ticket:
    _require(ticket, "cancel", WAITING, CALLED)
    return dataclasses.replace(ticket, status=CANCELLED, ended_at=now)


def pause(state: WindowState) -> WindowState:
    if state.state == PAUSED:
        raise NotAllowed(f"window {state.number} is already paused")
    return dataclasses.replace(state, state=PAUSED)


def resume(state: WindowState) -> WindowState:
    if state.state != PAUSED:
        raise NotAllowed(f"window {state.number} is not paused")
    return dataclasses.replace(state, state=OPEN)


def close_day(stale: Iterable[Ticket], now: datetime) -> list[Ticket]:
    """At rollover, end what the previous business day left open: waiting and called
    tickets are cancelled, tickets being served are finished."""
    return [finish(t, now) if t.status == SERVING else cancel(t, now)
            for t in stale if t.status in (WAITING, CALLED, SERVING)]


def eta_minutes(ahead: int, service: Service, open_windows: int) -> int | None:
    """Estimated wait: people ahead x average service time / open windows serving it.

    None when no open window serves the service (nobody can say how long).
    """
    if open_windows <= 0:
        return None
    return round(ahead * service.avg_service_minutes / open_windows)
