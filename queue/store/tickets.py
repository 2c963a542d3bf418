"""Tickets and windows: numbering, the queue's heads, the window actions and the close of a
business day, each applied with its events inside the caller's transaction.

Numbering is guarded by UNIQUE(number_service, day, number) as well as by the write lock,
so two writers can never hand out the same number. The rules are the engine's; this module
reads the tickets they need and writes back what they decided.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date, datetime, timedelta

from kiosq.queue import engine, hours
from kiosq.queue.config import Hall, Window
from kiosq.queue.engine import Actor, Event, Outcome, Ticket, WindowState
from kiosq.queue.store.database import Database
from kiosq.queue.store.errors import IdempotencyConflict, NotFound
from kiosq.queue.store.events import Events
from kiosq.queue.store.idempotency import Idempotency
from kiosq.queue.store.views import TICKET_COLUMNS, row_ticket, ts

IDEMPOTENCY_DAYS = 2  # how long an Idempotency-Key is remembered


class Tickets:
    def __init__(self, db: Database, hall: Hall, events: Events, idempotency: Idempotency,
                 new_secret: Callable[[], str]) -> None:
        self.db, self.hall, self.events, self.idempotency = db, hall, events, idempotency
        self.new_secret = new_secret

    def sync_windows(self) -> None:
        """Every window of the hall file gets a row; rows of windows since removed stay, unused."""
        self.db.many("INSERT INTO windows (number) VALUES (?) ON CONFLICT DO NOTHING",
                     [(n,) for n in self.hall.windows])

    # -- writing (inside a change) -----------------------------------------------------

    def issue(self, now: datetime, day: date, service: str, priority: str, caller: str, issued_by: str,
              idempotency_key: str | None, admit: Callable[[], None] = lambda: None) -> tuple[Ticket, bool]:
        """A new ticket, or the one issued earlier for the same key (True). Opening hours
        and then `admit` (a terminal's rate, which may raise) are checked after a replay was
        ruled out: a retry of a ticket issued just before closing, or just before the limit,
        still gets that ticket."""
        svc = self.hall.services.get(service)
        if svc is None:
            raise NotFound(f"unknown service {service!r}; services are: {', '.join(self.hall.services)}")
        fingerprint = f"{service}|{priority}"
        if idempotency_key is not None and (earlier := self.idempotency.find(caller, idempotency_key)):
            if earlier[0] != fingerprint:
                raise IdempotencyConflict(
                    f"Idempotency-Key {idempotency_key!r} was already used for another request "
                    f"({earlier[0].replace('|', ', ')}); use a new key for a new ticket")
            return self.by_id(earlier[1]), True
        hours.refuse_when_closed(self.hall.hours, now, self.hall.tz)
        admit()
        # The day's last number: the write lock (BEGIN IMMEDIATE on SQLite, the hall's
        # advisory lock on PostgreSQL) makes the read and the insert one step across every
        # process, and the UNIQUE key on (number_service, day, number) is the last guard.
        row = self.db.one("SELECT MAX(number) FROM tickets WHERE number_service = ? AND day = ?",
                          (service, day.isoformat()))
        last = row[0] if row else None
        seq = self.db.next_ticket_seq()
        ticket = engine.issue(svc, last, day, now, f"{seq}-{self.new_secret()}", priority)
        ticket = dataclasses.replace(ticket, queue_seq=seq)
        self.db.execute(
            "INSERT INTO tickets (seq, id, day, number_service, number, label, service, priority, rank, "
            "status, issued_at, issued_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, ticket.id, day.isoformat(), ticket.number_service, ticket.number, ticket.label,
             ticket.service, ticket.priority, ticket.rank, ticket.status, ts(now), issued_by or None))
        if idempotency_key is not None:
            self.idempotency.remember(caller, idempotency_key, fingerprint, ticket.id, now)
        self.events.append(Event("ticket.issued", ticket, None), now)
        return ticket, False

    def call_next(self, now: datetime, day: date, window: int) -> Outcome:
        win = self.window_config(window)
        heads = [h for code in win.services if (h := self.head(code, day)) is not None]
        return self.apply(engine.call_next(win, self.window_state(window, day), heads, now), now)

    def act(self, now: datetime, day: date, window: int, action: str, to_service: str | None) -> Outcome:
        win = self.window_config(window)
        if action == "transfer" and to_service not in self.hall.services:
            raise NotFound(f"unknown service {to_service!r}; services are: {', '.join(self.hall.services)}")
        return self.apply(engine.act_on_current(action, win, self.window_state(window, day), now, self.hall,
                                                to_service), now)

    def reinstate(self, now: datetime, day: date, window: int, label: str) -> Outcome:
        win = self.window_config(window)
        ticket = self.by_label(label, day)
        if ticket.service not in win.services:
            raise engine.NotAllowed(f"ticket {ticket.label} is for service {ticket.service}, "
                                    f"which window {window} does not serve")
        back = engine.reinstate(ticket, now, self.hall.info.reinstate_minutes)
        return self.apply(Outcome((back,), None, (Event("ticket.reinstated", back, window),)), now)

    def cancel(self, now: datetime, ticket_id: str, by: Actor | None) -> Outcome:
        """`by` (the caller) must be allowed to (engine.may_cancel); None: the hall itself."""
        ticket = self.by_id(ticket_id)
        if by is not None:
            engine.may_cancel(ticket, by)
        gone = engine.cancel(ticket, now)
        return self.apply(Outcome((gone,), None, (Event("ticket.cancelled", gone, ticket.window),)), now)

    def set_window_state(self, now: datetime, day: date, window: int, paused: bool) -> Outcome:
        state = self.window_state(window, day)
        new = engine.pause(state) if paused else engine.resume(state)
        return self.apply(Outcome((), new, (Event("window.paused" if paused else "window.resumed", None, window),)),
                          now)

    def roll_over(self, now: datetime, day: date) -> None:
        """Close the business days before `day` (once: the day done is kept in meta)."""
        row = self.db.one("SELECT value FROM meta WHERE key = 'business_day'")
        if row is not None and row[0] >= day.isoformat():
            return
        closed = engine.close_day(self.stale(day), now)
        self.apply(Outcome(tuple(closed), None, tuple(
            Event(f"ticket.{'finished' if t.status == engine.DONE else 'cancelled'}", t, t.window,
                  "business day ended") for t in closed)), now)
        self.db.execute("INSERT INTO meta VALUES ('business_day', ?) ON CONFLICT (key) DO UPDATE "
                        "SET value = excluded.value", (day.isoformat(),))
        # A retry is seconds or minutes late, never days: old keys can go.
        self.idempotency.forget_before(now - timedelta(days=IDEMPOTENCY_DAYS))

    def apply(self, outcome: Outcome, now: datetime) -> Outcome:
        """Write what the engine decided: tickets, the window, the events."""
        for t in outcome.tickets:
            self.db.execute(
                'UPDATE tickets SET service = ?, status = ?, "window" = ?, called_at = ?, started_at = ?, '
                'ended_at = ?, recalls = ?, transfers = ? WHERE seq = ?',
                (t.service, t.status, t.window, ts(t.called_at), ts(t.started_at), ts(t.ended_at),
                 t.recalls, t.transfers, t.queue_seq))
        if outcome.window is not None:
            self.db.execute("UPDATE windows SET state = ?, changed_at = ? WHERE number = ?",
                            (outcome.window.state, ts(now), outcome.window.number))
        for ev in outcome.events:
            self.events.append(ev, now)
        return outcome

    # -- reading -----------------------------------------------------------------------

    def window_config(self, window: int) -> Window:
        win = self.hall.windows.get(window)
        if win is None:
            raise NotFound(f"no window {window} in this hall; windows are: {', '.join(map(str, self.hall.windows))}")
        return win

    def window_state(self, window: int, day: date) -> WindowState:
        row = self.db.one("SELECT state FROM windows WHERE number = ?", (window,))
        assert row is not None
        # Today's only: until the day is rolled over, yesterday's last call must not show
        # as current.
        current = self.db.one(f'SELECT {TICKET_COLUMNS} FROM tickets WHERE "window" = ? AND '
                              "status IN ('called', 'serving') AND day = ?", (window, day.isoformat()))
        return WindowState(window, row[0], row_ticket(current) if current else None)

    def stale(self, day: date) -> list[Ticket]:
        """Tickets of days before `day` still waiting, called or being served."""
        # Two index-backed queries rather than one more index that every insert would pay for.
        return [row_ticket(r) for r in self.db.rows(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE status = 'waiting' AND day < ? UNION ALL "
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE status IN ('called', 'serving') AND day < ?",
            (day.isoformat(), day.isoformat()))]

    def head(self, service: str, day: date) -> Ticket | None:
        row = self.db.one(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE day = ? AND service = ? AND "
                          "status = 'waiting' ORDER BY rank DESC, seq LIMIT 1", (day.isoformat(), service))
        return row_ticket(row) if row else None

    def by_id(self, ticket_id: str) -> Ticket:
        seq, _, secret = ticket_id.partition("-")
        ok = seq.isascii() and seq.isdigit() and len(seq) <= 18 and secret
        row = None if not ok else self.db.one(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE seq = ? AND id = ?",
                                              (int(seq), ticket_id))
        if row is None:
            raise NotFound("no such ticket; check the link or the QR code on the slip")
        return row_ticket(row)

    def mark_served(self, outcome: Outcome, window: int, name: str) -> None:
        """Who called, started or finished the ticket at `window` (the clerk a rating names)."""
        for t in outcome.tickets:
            if t.window == window and t.status in (engine.CALLED, engine.SERVING, engine.DONE):
                self.db.execute("UPDATE tickets SET served_by = ? WHERE seq = ?", (name, t.queue_seq))

    def served_by(self, ticket: Ticket) -> str | None:
        row = self.db.one("SELECT served_by FROM tickets WHERE seq = ?", (ticket.queue_seq,))
        return None if row is None else row[0]

    def by_label(self, label: str, day: date) -> Ticket:
        """A ticket of `day` by its printed number ("A012"), through the numbering index."""
        text = label.strip().upper()
        prefix = text.rstrip("0123456789")
        svc = next((s for s in self.hall.services.values() if s.prefix == prefix), None)
        digits = text[len(prefix):]
        row = None if svc is None or not digits else self.db.one(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE number_service = ? AND day = ? AND number = ?",
            (svc.code, day.isoformat(), int(digits)))
        if row is None:
            raise NotFound(f"no ticket {label} today")
        return row_ticket(row)

    def ahead(self, ticket: Ticket) -> int:
        """People who will be called before this ticket in its service's queue."""
        if ticket.status != engine.WAITING:
            return 0
        # Everyone waiting in its class or a higher one, less itself and those behind it in
        # its class: for a new ticket nobody is behind, so nothing is walked.
        day = ticket.day.isoformat()
        row = self.db.one(
            "SELECT (SELECT COALESCE(SUM(n), 0) FROM waiting_counts WHERE day = ? AND service = ? AND rank >= ?)"
            " - 1 - (SELECT COUNT(*) FROM tickets WHERE day = ? AND service = ? AND status = 'waiting' "
            "AND rank = ? AND seq > ?)",
            (day, ticket.service, ticket.rank, day, ticket.service, ticket.rank, ticket.queue_seq))
        assert row is not None
        return int(row[0])

    def open_windows(self) -> dict[str, int]:
        """For each service, how many windows serving it are open (not paused)."""
        paused = {n for (n,) in self.db.rows("SELECT number FROM windows WHERE state = 'paused'")}
        counts = dict.fromkeys(self.hall.services, 0)
        for win in self.hall.windows.values():
            if win.number not in paused:
                for code in win.services:
                    counts[code] += 1
        return counts

    def waiting_counts(self, day: date) -> dict[str, int]:
        counts = dict.fromkeys(self.hall.services, 0)
        for service, n in self.db.rows("SELECT service, SUM(n) FROM waiting_counts WHERE day = ? GROUP BY service",
                                       (day.isoformat(),)):
            counts[service] = n
        return counts

    def waiting_line(self, day: date) -> dict[str, tuple[str, int]]:
        """Every waiting ticket of `day` by id: its service and how many will be called
        before it (what `ahead` says of each, in one read for all of them)."""
        line: dict[str, tuple[str, int]] = {}
        places: dict[str, int] = {}
        for ticket_id, service in self.db.rows(
                "SELECT id, service FROM tickets WHERE day = ? AND status = 'waiting' ORDER BY service, rank DESC, seq",
                (day.isoformat(),)):
            line[ticket_id] = (service, places.get(service, 0))
            places[service] = line[ticket_id][1] + 1
        return line

    def of_day(self, day: date) -> list[Ticket]:
        return [row_ticket(r) for r in self.db.rows(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE day = ? ORDER BY seq",
                                                    (day.isoformat(),))]
