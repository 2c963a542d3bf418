"""`Store`, the one object the server holds: each method is one transaction (or one read)
over the concept parts, which hold the SQL. A change is a write transaction at the business
day of `now`, the day rolled over first if it has turned; listeners hear of its events after
the commit. Reads never write: they answer for `today()` whether or not the rollover
(at the rollover hour, `roll_over_if_due`) has run yet.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from kiosq.content.model import ItemGuide
from kiosq.queue import complaints as complaint_rules
from kiosq.queue import engine
from kiosq.queue import ratings as ratings_rules
from kiosq.queue.applications import Application, Step
from kiosq.queue.config import Hall
from kiosq.queue.engine import Actor, Outcome, Ticket, WindowState
from kiosq.queue.fleet import TerminalRecord
from kiosq.queue.people import User, check_password, hash_password
from kiosq.queue.store import sealed
from kiosq.queue.store.applications import Applications
from kiosq.queue.store.complaints import Complaint, Complaints
from kiosq.queue.store.connection import Connection
from kiosq.queue.store.database import Database, DatabaseChoice
from kiosq.queue.store.errors import StoreError
from kiosq.queue.store.events import Events
from kiosq.queue.store.idempotency import Idempotency
from kiosq.queue.store.notifications import Notifications
from kiosq.queue.store.people import Audit, AuditEntry, SessionRow, Users, Who
from kiosq.queue.store.ratings import AlreadyRated, Rating, Ratings, Subject
from kiosq.queue.store.retention import Retention
from kiosq.queue.store.schema import MIGRATIONS
from kiosq.queue.store.sealed import LABELLED, Notes, RecordKeys, Sealed, SealingKeys
from kiosq.queue.store.terminals import Terminals
from kiosq.queue.store.throttling import Limit, Throttle
from kiosq.queue.store.tickets import Tickets
from kiosq.queue.store.tokens import Token, Tokens
from kiosq.queue.store.views import Notification, StoredEvent

DB_FILE = "kiosq.db"
Clock = Callable[[], datetime]
T = TypeVar("T")


class _KeysRefused(Exception):
    def __init__(self, missing: tuple[str, ...]) -> None:
        self.missing = missing


def utcnow() -> datetime:
    return datetime.now(UTC)


class Store:
    """Tickets, windows, applications, terminals, tokens and events in one database."""

    def __init__(self, path: str | Path, hall: Hall, clock: Clock = utcnow,
                 new_secret: Callable[[], str] = lambda: secrets.token_urlsafe(12),
                 database: DatabaseChoice | None = None) -> None:
        """`path` is the SQLite file, in the data folder; `database` another database
        instead (PostgreSQL), the data folder keeping the keys, the catalog and the content."""
        self.path = Path(path)
        self.data_dir = self.path.parent
        self.hall = hall
        self.clock = clock
        self.database = database or DatabaseChoice()
        self.db: Database
        self.conn: sqlite3.Connection | None = None  # the raw SQLite connection, for tests and tools
        if self.database.url is not None:
            from kiosq.queue.store.postgres import PostgresDatabase  # psycopg only when asked for
            from kiosq.queue.store.schema_pg import MIGRATIONS_PG

            self.db = PostgresDatabase(self.database.url, MIGRATIONS_PG, clock(), self.database.password_file)
        else:
            sqlite_db = Connection(self.path, MIGRATIONS, clock())
            self.db, self.conn = sqlite_db, sqlite_db.conn
        self._events = Events(self.db, hall)
        self._idempotency = Idempotency(self.db)
        self._tickets = Tickets(self.db, hall, self._events, self._idempotency, new_secret)
        self._notes = Notes(self.db)  # staff notes are sealed: seal_notes_with gives it the keys
        self._notifications = Notifications(self.db, self._notes)
        self._applications = Applications(self.db, hall, self._events, self._idempotency, self._notifications,
                                          self._notes)
        self._tokens = Tokens(self.db, hall)
        self._terminals = Terminals(self.db, self._events, self._tokens)
        self._throttle = Throttle(self.db)
        self._users = Users(self.db, hall)
        self._audit = Audit(self.db)
        self._retention = Retention(self.db)
        self._sealed = Sealed(self.db)
        self._ratings = Ratings(self.db, hall, self._events, self._notes)
        self._complaints = Complaints(self.db, hall, self._events, self._idempotency, self._notes)
        self._day: date | None = None  # business day whose rollover is known to be done
        try:
            self.db.run(self._tickets.sync_windows, on_retry=lambda: None)
        except BaseException:
            self.db.close()
            raise

    @classmethod
    def in_dir(cls, data_dir: str | Path, hall: Hall, **kwargs: Any) -> Store:
        data_dir = Path(data_dir)
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(data_dir / DB_FILE, hall, **kwargs)

    @property
    def listeners(self) -> list[Callable[[int], None]]:
        """Told the last event id after each commit that wrote events."""
        return self._events.listeners

    def close(self) -> None:
        self.db.close()

    def start_background(self) -> None:
        """SQLite: checkpoint the WAL from a thread. PostgreSQL: hear other processes'
        events (LISTEN) and tell the listeners, as after a commit of our own."""
        self.db.start_background(self._events.listeners)

    def stop_background(self) -> None:
        self.db.stop_background()

    def start_checkpointer(self, interval: float = 1.0) -> None:
        """SQLite only: checkpoint the WAL every `interval` seconds from a thread."""
        if isinstance(self.db, Connection):
            self.db.start_checkpointer(interval)

    def schema_version(self) -> int:
        return self.db.schema_version()

    def adopt_keys(self, keys: SealingKeys) -> tuple[str, ...] | None:
        """None when `keys` (the data folder's applicant key file) are the ones the database
        goes with; else the key ids its sealed records are under that the file lacks (empty:
        it is another hall's key file altogether). A database with no check value yet (a new
        hall, or one from before it) takes this file's, if it opens the newest sealed record;
        records sealed before key ids get their key's id in the same transaction, once."""
        def adopt(_now: datetime) -> None:
            row = self.db.one("SELECT value FROM meta WHERE key = 'applicant_key_check'")
            if row is not None and not keys.matches_check(str(row[0])):
                raise _KeysRefused(())
            if self.db.one(f"SELECT 1 FROM meta WHERE key = '{LABELLED}'") is None:
                newest = self._sealed.newest_unlabelled()
                if newest is not None and keys.label_unlabelled(newest) is None:
                    raise _KeysRefused(())
                if self._sealed.label(keys.label_unlabelled):
                    raise _KeysRefused(())
                self.db.execute(f"INSERT INTO meta VALUES ('{LABELLED}', '1')")
            missing = tuple(sorted(self._sealed.key_ids() - set(keys.key_ids)))
            if missing:
                raise _KeysRefused(missing)
            self.db.execute("INSERT INTO meta VALUES ('applicant_key_check', ?) ON CONFLICT (key) DO UPDATE "
                            "SET value = excluded.value", (keys.check_value(),))
        try:
            self._write(adopt)
        except _KeysRefused as refused:
            return refused.missing
        return None

    def seal_notes_with(self, keys: RecordKeys, batch: int = 500) -> int:
        """Seal staff notes with `keys` (the applicant keys) from now on, and the notes a
        database from before sealed notes kept in clear, a transaction per `batch`; how many
        of those. A store with no keys refuses to write or read a note."""
        self._notes.keys = keys
        moved = 0
        while n := self._write(lambda _now: self._notes.move_clear(self.db, batch)):
            moved += n
        return moved

    def retire_keys(self, key_ids: tuple[str, ...]) -> None:
        """Mark keys as dropped by `rotate-key --finish`: nothing is sealed under them from now
        on, by any process of the hall (KeyRetired), and a server holding no newer key does
        not start."""
        self._write(lambda _now: sealed.retire(self.db, key_ids))

    def retired_key_ids(self) -> set[str]:
        return sealed.retired(self.db)

    def holds_sealed_data(self) -> bool:
        """Whether a server has sealed anything with, or checked, a key file on this database."""
        return self.key_check() is not None or self._sealed.any()

    def sealed_key_ids(self) -> set[str]:
        """The key ids the sealed records are under."""
        return self._sealed.key_ids()

    def sealed_not_under(self, key_id: str) -> int:
        """How many sealed values are under another key than `key_id`."""
        return self._sealed.not_under(key_id)

    def reseal_batch(self, key_id: str, reseal: Callable[[bytes], bytes | None], limit: int = 500) -> int:
        """One transaction: up to `limit` sealed values under another key than `key_id`
        sealed again by `reseal`; how many (0: none is left)."""
        return self._write(lambda _now: self._sealed.reseal(key_id, reseal, limit))

    def key_check(self) -> str | None:
        """The applicant keys' check value the database goes with, if a server has started on it."""
        row = self.db.one("SELECT value FROM meta WHERE key = 'applicant_key_check'")
        return None if row is None else str(row[0])

    def describe_database(self) -> str:
        """One line for the start-up log: which database (never a password)."""
        d = self.db.describe()
        if d["kind"] == "sqlite":
            return f"SQLite {d['path']}"
        return f"PostgreSQL {d['user']}@{d['host']}:{d['port']}/{d['database']}"

    def database_health(self) -> dict[str, Any]:
        """The database's kind, where it is, and one round trip's time in milliseconds
        (/api/health, doctor); `ok` False with the reason when it cannot be reached."""
        info: dict[str, Any] = dict(self.db.describe())
        try:
            info["latency_ms"] = round(self.db.ping() * 1000, 2)
            info["ok"] = True
        except StoreError as exc:
            info.update(ok=False, error=str(exc))
        return info

    # -- transactions ------------------------------------------------------------------

    def _change(self, work: Callable[[datetime, date], T]) -> T:
        """One change: `work(now, day)` in a write transaction at the business day of `now`,
        rolled over first if the day has turned; listeners hear of the new events after the
        commit. One change at a time across every process on the database (db.run)."""
        now = self.clock()
        day = engine.business_day(now, self.hall)

        def attempt() -> T:
            if day != self._day:
                self._tickets.roll_over(now, day)  # once per day: a second finds nothing left open
            return work(now, day)

        try:
            result = self.db.run(attempt, on_retry=self._events.rolled_back)
        except BaseException:
            self._events.rolled_back()  # a refused change rolls back, the rollover with it
            raise
        self._day = day
        self._events.committed()
        return result

    def _write(self, work: Callable[[datetime], T]) -> T:
        """A write that is no change of the queue: no rollover, no event."""
        now = self.clock()
        return self.db.run(lambda: work(now), on_retry=lambda: None)

    def roll_over_if_due(self) -> None:
        """Close the previous business day if no change has done it yet: called at the
        rollover hour and at start-up (queue/store/rollover.py), never by a read."""
        if self.today() != self._day:
            self._change(lambda now, day: None)

    # -- tickets and windows -----------------------------------------------------------

    def issue_ticket(self, service: str, priority: str = "normal", *, caller: str = "", issued_by: str = "",
                     idempotency_key: str | None = None,
                     limited: Limit | None = None) -> tuple[Ticket, bool]:
        """Issue a ticket in opening hours; returns it and whether it was an earlier answer
        to the same key. `caller` scopes idempotency keys (the token's hash); `issued_by` is
        recorded (its name). `limited`: a limit a new ticket is checked and counted against
        in the same transaction, after the replay lookup (a terminal's tickets per minute):
        RateLimited past it; a replay is neither refused nor counted."""
        def issue(now: datetime, day: date) -> tuple[Ticket, bool]:
            admit = (lambda: None) if limited is None else (lambda: self._throttle.take(limited, now))
            return self._tickets.issue(now, day, service, priority, caller, issued_by, idempotency_key, admit)
        return self._change(issue)

    def call_next(self, window: int, served_by: str | None = None) -> Outcome:
        """Call the next ticket to `window`; `served_by`: who called it (a rating names them)."""
        def call(now: datetime, day: date) -> Outcome:
            outcome = self._tickets.call_next(now, day, window)
            if served_by:
                self._tickets.mark_served(outcome, window, served_by)
            return outcome
        return self._change(call)

    def act(self, window: int, action: str, to_service: str | None = None, served_by: str | None = None) -> Outcome:
        """recall, start, finish, no_show or transfer the ticket at a window; `served_by`:
        who did (kept on the ticket for its rating)."""
        def act(now: datetime, day: date) -> Outcome:
            outcome = self._tickets.act(now, day, window, action, to_service)
            if served_by:
                self._tickets.mark_served(outcome, window, served_by)
            return outcome
        return self._change(act)

    # -- 好差评 -------------------------------------------------------------------------

    def rate_ticket(self, ticket_id: str, channel: str, level: int, reasons: list[str],
                    comment: str | None) -> Rating:
        """A finished ticket's service rated, once, until the end of its business day plus
        the hall's grace; a 差评 opens its case (RatingRefused otherwise)."""
        return self._change(lambda now, _day: self._rate_finished(now, self._tickets.by_id(ticket_id), channel,
                                                                  level, reasons, comment))

    def rate_at_window(self, window: int, label: str, level: int, reasons: list[str], comment: str | None) -> Rating:
        """The window's rating device (评价器): ticket `label` of today, finished at `window`
        within the last `[ratings] device_minutes`, rated on channel `window`."""
        minutes = self.hall.ratings.device_minutes

        def rate(now: datetime, day: date) -> Rating:
            ticket = self._tickets.by_label(label, day)
            if ticket.window != window:
                raise ratings_rules.RatingRefused("not_this_window", f"ticket {ticket.label} was not served at "
                                                  f"window {window}; its device rates only its own", 403)
            if ticket.status == engine.DONE and ticket.ended_at is not None and \
                    now - ticket.ended_at > timedelta(minutes=minutes):
                raise ratings_rules.RatingRefused("too_late", f"ticket {ticket.label} was finished more than "
                                                  f"{minutes} minutes ago: the window's device rates the one just "
                                                  "finished (the slip's QR code still can)")
            return self._rate_finished(now, ticket, "window", level, reasons, comment)
        return self._change(rate)

    def _rate_finished(self, now: datetime, ticket: Ticket, channel: str, level: int, reasons: list[str],
                       comment: str | None) -> Rating:
        if ticket.status != engine.DONE:
            raise ratings_rules.RatingRefused("not_finished", f"ticket {ticket.label} is {ticket.status}: a "
                                              "service can be rated once the window has finished it")
        closes = ratings_rules.rating_closes(ticket.day, self.hall.info.rollover_hour, self.hall.tz,
                                             self.hall.ratings.grace_hours)
        if now > closes:
            raise ratings_rules.RatingRefused("too_late", f"ticket {ticket.label} could be rated until "
                                              f"{closes.isoformat(timespec='minutes')}")
        subject = Subject(f"ticket:{ticket.queue_seq}", ticket.day, ticket.label, ticket.service, ticket.window,
                          self._tickets.served_by(ticket))
        return self._rate(now, subject, channel, level, reasons, comment)

    def rate_application(self, number: str, channel: str, level: int, reasons: list[str],
                         comment: str | None) -> Rating:
        """一事一评: a completed or rejected application rated, once, within the hall's
        `application_days` of its closing."""
        settings = self.hall.ratings

        def rate(now: datetime, _day: date) -> Rating:
            app = self._applications.require(number)
            if app.finished_at is None:
                raise ratings_rules.RatingRefused("not_finished", f"application {app.tracking_no} is {app.status}: "
                                                  "it can be rated once it is completed or rejected")
            closed_on = app.finished_at.astimezone(self.hall.tz).date()
            if now.astimezone(self.hall.tz).date() > closed_on + timedelta(days=settings.application_days):
                raise ratings_rules.RatingRefused("too_late", f"application {app.tracking_no} could be rated for "
                                                  f"{settings.application_days} days after it closed on {closed_on}")
            # Who took its last step (an opening of the personal data is no step of its handling).
            last = [s for s in self._applications.steps(app.tracking_no) if s.action != "view_personal"][-1]
            subject = Subject(f"application:{app.tracking_no}", closed_on, app.tracking_no, app.service, None,
                              last.actor, app.item, app.department)
            return self._rate(now, subject, channel, level, reasons, comment)
        return self._change(rate)

    def rate_kiosk_session(self, terminal: str, session: str, level: int, reasons: list[str],
                           comment: str | None) -> Rating:
        """A self-service session at a kiosk rated (its done screen's one tap): the subject
        is the terminal's session, once; the service is the kiosk itself (no window, no clerk)."""
        def rate(now: datetime, day: date) -> Rating:
            subject = Subject(f"kiosk:{terminal}:{session}", day, terminal, None, None, None)
            return self._rate(now, subject, "kiosk", level, reasons, comment)
        return self._change(rate)

    def _rate(self, now: datetime, subject: Subject, channel: str, level: int, reasons: list[str],
              comment: str | None) -> Rating:
        settings = self.hall.ratings
        deadlines = None
        if ratings_rules.is_bad(level):
            deadlines = ratings_rules.deadlines(now.astimezone(self.hall.tz).date(), self.hall.calendar,
                                                settings.callback_days, settings.fix_days)
        try:
            return self._ratings.rate(now, subject, channel, level, reasons, comment, deadlines)
        except AlreadyRated:
            raise ratings_rules.RatingRefused("already_rated", f"{subject.label} was rated already: one rating "
                                              "per service") from None

    def rating_step(self, rating_id: int, step: str, actor: str, note: str | None,
                    uphold: bool | None = None) -> Rating:
        """Record a 差评 case's call-back, fix, appeal or the decision on the appeal."""
        return self._change(lambda now, _day: self._ratings.step(now, rating_id, step, actor, note, uphold))

    # -- 效能投诉 -------------------------------------------------------------------------

    def file_complaint(self, *, channel: str, about: dict[str, Any], category: str, sealed: bytes, lookup_hash: str,
                       caller: str, key: str | None, fingerprint: str) -> tuple[Complaint, bool]:
        """A complaint received now, its deadlines in working days from today (True: an
        earlier answer to the same Idempotency-Key)."""
        settings = self.hall.complaints

        def file(now: datetime, _day: date) -> tuple[Complaint, bool]:
            deadlines = complaint_rules.deadlines(now.astimezone(self.hall.tz).date(), self.hall.calendar,
                                                  settings.accept_days, settings.reply_days)
            return self._complaints.file(now, channel=channel, about=about, category=category, sealed=sealed,
                                         lookup_hash=lookup_hash, deadlines=deadlines, caller=caller, key=key,
                                         fingerprint=fingerprint)
        return self._change(file)

    def act_on_complaint(self, number: str, action: str, actor: str, text: str | None = None,
                         satisfaction: int | None = None) -> Complaint:
        """accept, decline (with the reason), answer (with the answer) or close (with the
        citizen's satisfaction)."""
        return self._change(lambda now, _day: self._complaints.act(now, number, action, actor, text, satisfaction))

    def complaint(self, number: str) -> Complaint | None:
        return self._complaints.find(number)

    def complaint_secrets(self, number: str) -> tuple[bytes, str] | None:
        """The sealed record (text, phone, lookup code) and the lookup code's hash."""
        return self._complaints.secrets(number)

    def complaints(self, states: tuple[str, ...] | None = None) -> list[Complaint]:
        return self._complaints.listing(states)

    def rating(self, rating_id: int) -> Rating:
        return self._ratings.require(rating_id)

    def rating_of(self, subject: str) -> Rating | None:
        """The rating of "ticket:<seq>" or "application:<tracking_no>", if any."""
        return self._ratings.of_subject(subject)

    def rating_cases(self, states: tuple[str, ...] | None = None, window: int | None = None) -> list[Rating]:
        return self._ratings.cases(states, window)

    def ratings_between(self, first: date, last: date) -> list[Rating]:
        return self._ratings.between(first, last)

    def reinstate(self, window: int, label: str) -> Outcome:
        return self._change(lambda now, day: self._tickets.reinstate(now, day, window, label))

    def cancel(self, ticket_id: str, by: Actor | None = None) -> Outcome:
        """Cancel a ticket, if `by` may (engine.may_cancel; None: the hall itself)."""
        return self._change(lambda now, _day: self._tickets.cancel(now, ticket_id, by))

    def set_window_state(self, window: int, paused: bool) -> Outcome:
        self._tickets.window_config(window)
        return self._change(lambda now, day: self._tickets.set_window_state(now, day, window, paused))

    def today(self) -> date:
        return engine.business_day(self.clock(), self.hall)

    def windows(self) -> list[WindowState]:
        day = self.today()
        return [self._tickets.window_state(n, day) for n in self.hall.windows]

    def window(self, window: int) -> WindowState:
        self._tickets.window_config(window)
        return self._tickets.window_state(window, self.today())

    def ticket(self, ticket_id: str) -> Ticket:
        """A ticket as it stands today: one of a past day that is still open reads as the
        rollover will leave it (finished or cancelled), before the rollover has run."""
        return self._as_left_by_rollover(self._tickets.by_id(ticket_id))

    def _as_left_by_rollover(self, ticket: Ticket) -> Ticket:
        if ticket.day < self.today() and ticket.status in (engine.WAITING, engine.CALLED, engine.SERVING):
            return engine.close_day([ticket], self.clock())[0]
        return ticket

    def ahead(self, ticket: Ticket) -> int:
        """People who will be called before this ticket in its service's queue."""
        return self._tickets.ahead(ticket)

    def waiting_line(self) -> dict[str, tuple[str, int]]:
        """Today's waiting tickets by id: (service, how many are ahead), all in one read."""
        return self._tickets.waiting_line(self.today())

    def open_windows(self) -> dict[str, int]:
        """For each service, how many windows serving it are open (not paused)."""
        return self._tickets.open_windows()

    def waiting_counts(self) -> dict[str, int]:
        return self._tickets.waiting_counts(self.today())

    def eta(self, ticket: Ticket, ahead: int | None = None) -> int | None:
        service = self.hall.services.get(ticket.service)
        if service is None:  # a service since removed from the hall file: nobody can say
            return None
        ahead = self.ahead(ticket) if ahead is None else ahead
        return engine.eta_minutes(ahead, service, self.open_windows()[ticket.service])

    def tickets_of_day(self, day: date | None = None) -> list[Ticket]:
        """A business day's tickets; a past day's as its rollover leaves them, whether or
        not the rollover has run yet (the figures of a closed day do not wait for it)."""
        return [self._as_left_by_rollover(t) for t in self._tickets.of_day(day or self.today())]

    # -- events and the notice ---------------------------------------------------------

    def recent_calls(self, limit: int = 8) -> list[StoredEvent]:
        """Today's last calls and recalls, newest first."""
        return self._events.recent_calls(self.today(), limit)

    def notice(self) -> str:
        return self._events.notice()

    def set_notice(self, text: str) -> None:
        """The line the hall display shows under the calls; an event tells open displays."""
        self._change(lambda now, _day: self._events.set_notice(text, now))

    def last_event_id(self) -> int:
        return self._events.last_id()

    def events_after(self, event_id: int, limit: int = 500) -> list[StoredEvent]:
        return self._events.after(event_id, limit)

    def events_with_tickets_after(self, event_id: int, limit: int = 500) -> list[StoredEvent]:
        return self._events.with_tickets_after(event_id, limit)

    def public_events_after(self, event_id: int, limit: int = 500) -> list[StoredEvent]:
        """What GET /api/events may replay: today's ticket, window and notice events."""
        return self._events.public_after(event_id, self.today(), limit)

    def ticket_events_after(self, ticket_id: str, event_id: int) -> list[StoredEvent]:
        """One ticket's events after `event_id`, of today's business day at most."""
        return self._events.of_ticket_after(ticket_id, max(event_id, self.event_day_floor()))

    def event_day_floor(self) -> int:
        """The last event id before today's business day: a replay starts after it at the earliest."""
        return self._events.day_floor(self.today())

    def record_event(self, kind: str, data: dict[str, Any]) -> None:
        """An event that belongs to no ticket (content.published, ...), for the live pages."""
        self._change(lambda now, _day: self._events.append(engine.Event(kind, None, None), now, data))

    # -- applications ------------------------------------------------------------------

    def submit_application(self, item: ItemGuide, *, terminal: str, id_hash: str, sealed: bytes, fingerprint: str,
                           provisional_no: str | None, caller: str, idempotency_key: str,
                           notify: bool = False, lookup_hash: str | None = None) -> tuple[Application, bool]:
        """File an application for `item`; returns it and whether it is an earlier answer
        to the same Idempotency-Key or provisional number. `sealed` is the applicant record
        already encrypted, `id_hash` the keyed hash of the ID number, `fingerprint` a keyed
        hash of the request body: a replay must match it; `lookup_hash` the keyed hash of
        the application's lookup code (a replay keeps the first one)."""
        return self._change(lambda now, _day: self._applications.submit(
            now, item, terminal=terminal, id_hash=id_hash, sealed=sealed, fingerprint=fingerprint,
            provisional_no=provisional_no, caller=caller, idempotency_key=idempotency_key, notify=notify,
            lookup_hash=lookup_hash))

    def act_on_application(self, number: str, action: str, actor: str, note: str | None = None, *,
                           by: Actor | None = None, notify: bool = False,
                           who: Who | None = None) -> tuple[Application, Step]:
        """One step of an application's life (applications.transition), if `by` may take
        it (applications.may_act; None: the hall itself); `who` took it goes to the audit log."""
        def act(now: datetime, _day: date) -> tuple[Application, Step]:
            app, step = self._applications.act(now, number, action, actor, note, by, notify)
            if who is not None:
                self._audit.append(now, f"application.{action}", who, app.tracking_no,
                                   {"status": app.status, "item": app.item})
            return app, step
        return self._change(act)

    def application(self, number: str) -> Application | None:
        """By tracking number, or by the provisional number a terminal printed while offline."""
        return self._applications.find(number)

    def record_personal_access(self, tracking_no: str, actor: str, who: Who | None = None) -> None:
        """Who opened an applicant's personal data, and when: a step staff see, the public does
        not, and a line of the audit log (with the address) in the same transaction."""
        app = self._applications.require(tracking_no)

        def record(now: datetime) -> None:
            self._applications.record_personal_access(now, app, actor)
            self._audit.append(now, "application.personal_viewed", who or Who(actor, "token"), tracking_no,
                               {"item": app.item})
        self._write(record)

    def applicant_record(self, tracking_no: str) -> tuple[str, bytes]:
        """The keyed hash of the ID number and the sealed applicant record."""
        return self._applications.applicant_record(tracking_no)

    def application_lookup_hash(self, tracking_no: str) -> str | None:
        """The keyed hash of an application's lookup code (None: filed before lookup codes)."""
        return self._applications.lookup_hash(tracking_no)

    def application_steps(self, tracking_no: str) -> list[Step]:
        return self._applications.steps(tracking_no)

    def applications_of_person(self, id_hash: str, limit: int = 50) -> list[Application]:
        """A person's applications (by the keyed hash of the ID number), newest first."""
        return self._applications.of_person(id_hash, limit)

    def applications(self, services: tuple[str, ...] | None = None,
                     statuses: tuple[str, ...] | None = None) -> list[Application]:
        """Applications of the given queue services and statuses (all if None), oldest first."""
        return self._applications.listing(services, statuses)

    def applications_filed(self, first: date, last: date) -> list[Application]:
        """Applications filed on the hall's local dates `first` to `last`, inclusive."""
        return self._applications.filed(first, last)

    # -- throttling --------------------------------------------------------------------

    def throttle_hits(self, scopes: tuple[str, ...], since: datetime,
                      newest: int | None = None) -> dict[str, list[datetime]]:
        """When each scope was counted since `since`, oldest first (`newest`: that many of the latest)."""
        return self._throttle.hits(scopes, since, newest)

    def throttle_tally(self, prefix: str, since: datetime) -> dict[str, tuple[int, datetime]]:
        """For each scope starting with `prefix`: how many tries since `since`, and the last."""
        return self._throttle.tally(prefix, since)

    def throttle_take(self, limit: Limit) -> None:
        """Count one try against `limit`, checked and counted in one transaction: RateLimited
        (nothing counted) when it is full."""
        self._write(lambda now: self._throttle.take(limit, now))

    def throttle_count(self, scopes: tuple[str, ...], forget_before: datetime) -> None:
        """Count one try against each scope; forget its tries older than `forget_before`."""
        self._write(lambda now: self._throttle.count(scopes, now, forget_before))

    # -- notifications -----------------------------------------------------------------

    def notifications_due(self, now: datetime, limit: int = 20) -> list[Notification]:
        return self._notifications.due(now, limit)

    def claim_notifications(self, lease_seconds: float, limit: int = 20) -> list[Notification]:
        """Take the due notifications for sending, for `lease_seconds`: with several server
        processes, each notification is sent by one (again by any after the lease, should
        that one die)."""
        return self._write(lambda now: self._notifications.claim(now, now + timedelta(seconds=lease_seconds),
                                                                 limit))

    def next_notification_at(self) -> datetime | None:
        return self._notifications.next_at()

    def notification_sent(self, notification_id: int) -> None:
        self._write(lambda now: self._notifications.sent(notification_id, now))

    def notification_failed(self, notification_id: int, error: str, retry_at: datetime | None) -> None:
        """A failed attempt: try again at `retry_at`, or give up (state 'failed') if None."""
        self._write(lambda _now: self._notifications.failed(notification_id, error, retry_at))

    def notifications(self, limit: int = 200, state: str | None = None) -> list[Notification]:
        """The newest notifications first."""
        return self._notifications.newest(limit, state)

    # -- terminals ---------------------------------------------------------------------

    def add_enroll_code(self, terminal: str, code_hash: str, expires_at: datetime, created_by: str,
                        who: Who | None = None) -> None:
        """Record a one-time enrollment code (its hash); older unused codes of the terminal
        stop working."""
        def add(now: datetime) -> None:
            self._terminals.add_enroll_code(now, terminal, code_hash, expires_at, created_by)
            self._audit.append(now, "enroll_code.created", who or Who(created_by, "token"), terminal,
                               {"expires_at": expires_at.astimezone(UTC).isoformat()})
        self._write(add)

    def enroll(self, code_hash: str, address: str | None = None) -> tuple[str, str]:
        """Trade a code for a new terminal token; returns (terminal, token secret)."""
        def enroll(now: datetime, _day: date) -> tuple[str, str]:
            terminal, secret = self._terminals.enroll(now, code_hash)
            self._audit.append(now, "terminal.enrolled", Who(terminal, "terminal", address), terminal)
            return terminal, secret
        return self._change(enroll)

    def revoke_terminal(self, terminal: str, who: Who | None = None) -> None:
        """Refuse the terminal's token from now on (and any unused enrollment code for it)."""
        def revoke(now: datetime, _day: date) -> None:
            self._terminals.revoke(now, terminal)
            self._audit.append(now, "terminal.revoked", who or Who("hall", "system"), terminal)
        self._change(revoke)

    def record_heartbeat(self, terminal: str, heartbeat: dict[str, Any], state: dict[str, Any],
                         offline_before: datetime) -> None:
        """Keep a terminal's last heartbeat; `terminal.changed` tells /admin of a change."""
        self._change(lambda now, _day: self._terminals.record_heartbeat(now, terminal, heartbeat, state,
                                                                        offline_before))

    def terminals(self) -> list[TerminalRecord]:
        return self._terminals.listing()

    # -- tokens ------------------------------------------------------------------------

    def create_token(self, role: str, name: str, windows: tuple[int, ...] = (), *,
                     ttl: timedelta | None = None, who: Who | None = None) -> str:
        """Make a token and return its secret; only its hash is stored. `ttl`: it expires
        that long from now (None: the hall's [sessions] token_ttl_days, 90 by default, for a
        staff, supervisor or admin token; a terminal's lives until revoked)."""
        if ttl is None and role != "terminal":
            ttl = timedelta(days=self.hall.sessions.token_ttl_days)

        def create(now: datetime) -> str:
            expires = None if ttl is None or role == "terminal" else now + ttl
            secret = self._tokens.create(role, name, windows, now, expires)
            self._audit.append(now, "token.created", who or Who("hall", "system"), name,
                               {"role": role, "windows": list(windows), "expires_at": expires and expires.isoformat()})
            return secret
        return self._write(create)

    def tokens(self, every: bool = False) -> list[dict[str, Any]]:
        """Active tokens (names and roles, never secrets); `every`: revoked and expired ones
        too, each with its state."""
        now = self.clock()
        return self._tokens.listing(now) if every else self._tokens.active(now)

    def token(self, secret: str) -> Token | None:
        """The token of a secret unless revoked (an expired one too: see Token.expires_at)."""
        return self._tokens.by_secret(secret)

    def token_used(self, hashed: str) -> None:
        self._write(lambda now: self._tokens.used(hashed, now))

    def revoke_tokens(self, name: str, who: Who | None = None) -> int:
        """Revoke every active token named `name`, of any role; how many."""
        def revoke(now: datetime) -> int:
            n = self._tokens.revoke(name, now)
            if n:
                self._audit.append(now, "token.revoked", who or Who("hall", "system"), name, {"tokens": n})
            return n
        return self._write(revoke)

    # -- people ------------------------------------------------------------------------

    def create_user(self, login: str, name: str, role: str, windows: tuple[int, ...], password: str,
                    who: Who | None = None) -> User:
        """A staff account; ValueError (or LookupError: the login is taken) saying what to change.
        Hashing takes a tenth of a second: the server hashes in a thread and calls add_user."""
        check_password(password, login)
        return self.add_user(login, name, role, windows, hash_password(password), who)

    def add_user(self, login: str, name: str, role: str, windows: tuple[int, ...], password_hash: str,
                 who: Who | None = None) -> User:
        def add(now: datetime) -> User:
            user = self._users.create(now, login, name, role, windows, password_hash)
            self._audit.append(now, "user.created", who or Who("hall", "system"), user.login,
                               {"name": user.name, "role": role, "windows": list(windows)})
            return user
        return self._write(add)

    def user(self, login: str) -> User | None:
        return self._users.get(login)

    def users(self) -> list[tuple[User, int]]:
        """Every user with how many sessions it has open."""
        return self._users.listing()

    def user_password_hash(self, login: str) -> str | None:
        """For checking a password at sign-in (None: no such user)."""
        return self._users.password_hash(login)

    def change_user(self, login: str, *, name: str | None = None, role: str | None = None,
                    windows: tuple[int, ...] | None = None, who: Who | None = None) -> User:
        def change(now: datetime) -> User:
            before = self._users.require(login)
            user = self._users.change(login, name, role, windows)
            changed = {k: [getattr(before, k) if k != "windows" else list(before.windows),
                           getattr(user, k) if k != "windows" else list(user.windows)]
                       for k in ("name", "role", "windows") if getattr(before, k) != getattr(user, k)}
            if changed:
                self._audit.append(now, "user.changed", who or Who("hall", "system"), user.login, changed)
            return user
        return self._write(change)

    def set_user_disabled(self, login: str, disabled: bool, who: Who | None = None) -> User:
        """Disable (its sessions end at once) or enable a user."""
        def toggle(now: datetime) -> User:
            user = self._users.set_disabled(now, login, disabled)
            self._audit.append(now, "user.disabled" if disabled else "user.enabled", who or Who("hall", "system"),
                               user.login)
            return user
        return self._write(toggle)

    def set_user_password(self, login: str, password_hash: str, who: Who | None = None) -> User:
        """A new password hash (queue/people.py hash_password); the user's sessions end."""
        def set_password(now: datetime) -> User:
            user = self._users.set_password(now, login, password_hash)
            self._audit.append(now, "user.password_set", who or Who("hall", "system"), user.login)
            return user
        return self._write(set_password)

    def open_session(self, login: str, session_hash: str, expires_at: datetime, who: Who) -> None:
        def open_(now: datetime) -> None:
            self._users.open_session(now, session_hash, login, expires_at)
            self._users.signed_in(now, login)
            self._audit.append(now, "session.signed_in", who, login)
        self._write(open_)

    def session(self, session_hash: str) -> SessionRow | None:
        """An open session of an enabled user, whether or not it has expired."""
        return self._users.session(session_hash)

    def touch_session(self, session_hash: str, expires_at: datetime) -> None:
        self._write(lambda now: self._users.touch_session(now, session_hash, expires_at))

    def end_session(self, session_hash: str, who: Who | None, reason: str = "signed_out") -> None:
        def end(now: datetime) -> None:
            login = self._users.end_session(now, session_hash)
            if login is not None:
                self._audit.append(now, f"session.{reason}", who or Who(login, "user"), login)
        self._write(end)

    # -- the audit log -----------------------------------------------------------------

    def audit(self, action: str, who: Who, target: str | None = None, detail: dict[str, Any] | None = None) -> None:
        """Append one line to the audit log (never personal data in `detail`)."""
        self._write(lambda now: self._audit.append(now, action, who, target, detail))

    def audit_entries(self, *, since: datetime | None = None, until: datetime | None = None,
                      action: str | None = None, actor: str | None = None, limit: int = 200) -> list[AuditEntry]:
        """Newest first."""
        return self._audit.entries(since=since, until=until, action=action, actor=actor, limit=limit)

    # -- retention (queue/retention.py runs it) ------------------------------------------

    def claim_retention(self, force: bool = False, stale_after: timedelta = timedelta(hours=1)) -> datetime | None:
        """Take today's (the business day's) retention run: when it starts, or None when a
        process of the hall has done it today or is doing it (`force`: take it anyway)."""
        def claim(now: datetime) -> datetime | None:
            taken = self._retention.claim(now, engine.business_day(now, self.hall), force, stale_after)
            return now if taken else None
        return self._write(claim)

    def erase_personal_data(self, closed_before: datetime, limit: int) -> int:
        """Erase the personal data of up to `limit` applications closed before `closed_before`."""
        return self._write(lambda _now: self._retention.erase_personal(closed_before, limit))

    def erase_rating_texts(self, before: date) -> int:
        """Comments and case notes of ratings of services before the local date `before`."""
        return self._write(lambda _now: self._retention.erase_rating_texts(before))

    def delete_events(self, before: datetime, limit: int) -> int:
        return self._write(lambda _now: self._retention.delete_events(before, limit))

    def delete_leftovers(self, sessions_before: datetime, throttle_before: datetime) -> tuple[int, int]:
        """Sessions ended or expired before `sessions_before`, throttle rows older than
        `throttle_before`; how many of each."""
        return self._write(lambda _now: (self._retention.delete_sessions(sessions_before),
                                         self._throttle.prune(throttle_before)))

    def finish_retention(self, result: dict[str, Any], who: Who) -> None:
        """Keep a run's result (GET /api/retention) and its line of the audit log, together."""
        def finish(now: datetime) -> None:
            self._retention.finish({**result, "finished_at": now.astimezone(UTC).isoformat()})
            self._audit.append(now, "retention.ran", who, None, {k: v for k, v in result.items() if k != "started_at"})
        self._write(finish)

    def retention_run(self) -> dict[str, Any] | None:
        """The last retention run as kept: its day, state, times (UTC) and counts."""
        return self._retention.last_run()

    def retention_pending(self, closed_before: datetime, events_before: datetime,
                          sessions_before: datetime) -> dict[str, int]:
        """What a retention run would erase and delete now (a dry run)."""
        return self._retention.pending(closed_before, events_before, sessions_before)
