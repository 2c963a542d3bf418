"""The hall server's storage: the only module that speaks SQL.

SQLite in WAL mode through sqlite-utils. Every change is one `BEGIN IMMEDIATE`
transaction that writes the tickets, the window and an event row together; numbering is
guarded by UNIQUE(number_service, day, number) as well as by the write lock, so two
writers can never hand out the same number. Nothing about the queue lives only in memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import secrets
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator

import sqlite_utils

from kiosq.queue import applications as rules
from kiosq.queue import engine
from kiosq.queue.applications import Application, Rejection, Step
from kiosq.queue.config import Hall
from kiosq.queue.engine import Event, Outcome, Ticket, WindowState
from kiosq.queue.fleet import TerminalRecord

# supervisor: acts at its windows like staff (all windows if it names none) and decides
# on rejections (窗口无否决权)
ROLES = ("terminal", "staff", "supervisor", "admin")
TRACKING_PREFIX = "SQ"
DB_FILE = "kiosq.db"
IDEMPOTENCY_DAYS = 2  # how long an Idempotency-Key is remembered
SAFETY_CHECKPOINT_PAGES = 20000  # ~80 MB of WAL: the writer checkpoints itself past this
log = logging.getLogger("kiosq.store")
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class NotFound(Exception):
    """No such ticket, window or token."""


class IdempotencyConflict(Exception):
    """An Idempotency-Key was reused for a different request."""


class EnrollmentRefused(Exception):
    """An enrollment code that cannot be used: unknown, used, replaced, expired, or its
    terminal's name is held by a token of another role (name_taken)."""

    def __init__(self, reason: str, terminal: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.terminal = reason, terminal


@dataclass(frozen=True, slots=True)
class Token:
    name: str
    role: str
    windows: tuple[int, ...]  # staff: the windows this token may act at
    key: str = ""  # the stored hash: identifies the holder (idempotency keys are scoped by it)

    def may_act_at(self, window: int) -> bool:
        """Window actions: admin anywhere, staff at its windows, a supervisor at its windows
        (at every window when it names none: the hall's duty supervisor)."""
        if self.role == "admin":
            return True
        if self.role == "supervisor":
            return not self.windows or window in self.windows
        return self.role == "staff" and window in self.windows


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    tracking_no: str
    status: str
    payload: dict  # no personal data: the sender adds the phone when it sends
    state: str  # queued, sent, failed
    attempts: int
    next_at: datetime | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    type: str
    data: str  # JSON, as sent to SSE clients


# Numbered migrations: each runs once, in its own transaction, and is recorded.
MIGRATIONS: list[tuple[str, list[str]]] = [
    ("tickets, windows, events, tokens", [
        """CREATE TABLE tickets (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL,  -- "<seq>-<random>": found through seq, so it needs no index of its own
            day TEXT NOT NULL,
            number_service TEXT NOT NULL,
            number INTEGER NOT NULL,
            label TEXT NOT NULL,
            service TEXT NOT NULL,
            priority TEXT NOT NULL,
            rank INTEGER NOT NULL,
            status TEXT NOT NULL,
            window INTEGER,
            issued_at TEXT NOT NULL,
            called_at TEXT,
            started_at TEXT,
            ended_at TEXT,
            recalls INTEGER NOT NULL DEFAULT 0,
            transfers INTEGER NOT NULL DEFAULT 0,
            issued_by TEXT,
            UNIQUE (number_service, day, number)
        )""",
        # The head of each service's queue, and the count of people ahead.
        "CREATE INDEX tickets_waiting ON tickets (day, service, rank DESC, seq) WHERE status = 'waiting'",
        # At most one ticket is called to or served at a window at a time.
        "CREATE UNIQUE INDEX tickets_at_window ON tickets (window) WHERE status IN ('called', 'serving')",
        """CREATE TABLE windows (
            number INTEGER PRIMARY KEY,
            state TEXT NOT NULL DEFAULT 'open',
            changed_at TEXT
        )""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            type TEXT NOT NULL,
            at TEXT NOT NULL,
            day TEXT NOT NULL,
            ticket TEXT,
            window INTEGER,
            data TEXT NOT NULL
        )""",
        """CREATE TABLE idempotency (
            caller TEXT NOT NULL,
            key TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            ticket TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (caller, key)
        ) WITHOUT ROWID""",
        """CREATE TABLE tokens (
            hash TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            windows TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ]),
    # How many tickets wait, per day, service and priority class, kept by triggers in the
    # transaction of each change: counting a long queue's index costs more than the rest
    # of issuing a ticket (BENCHMARKS.md).
    ("waiting counts", [
        """CREATE TABLE waiting_counts (
            day TEXT NOT NULL,
            service TEXT NOT NULL,
            rank INTEGER NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (day, service, rank)
        ) WITHOUT ROWID""",
        """CREATE TRIGGER waiting_insert AFTER INSERT ON tickets WHEN NEW.status = 'waiting' BEGIN
            INSERT INTO waiting_counts VALUES (NEW.day, NEW.service, NEW.rank, 1)
                ON CONFLICT DO UPDATE SET n = n + 1;
        END""",
        """CREATE TRIGGER waiting_leave AFTER UPDATE OF status, service ON tickets WHEN OLD.status = 'waiting' BEGIN
            UPDATE waiting_counts SET n = n - 1 WHERE day = OLD.day AND service = OLD.service AND rank = OLD.rank;
        END""",
        """CREATE TRIGGER waiting_enter AFTER UPDATE OF status, service ON tickets WHEN NEW.status = 'waiting' BEGIN
            INSERT INTO waiting_counts VALUES (NEW.day, NEW.service, NEW.rank, 1)
                ON CONFLICT DO UPDATE SET n = n + 1;
        END""",
        """INSERT INTO waiting_counts SELECT day, service, rank, COUNT(*) FROM tickets
            WHERE status = 'waiting' GROUP BY day, service, rank""",
    ]),
    # The last calls of the day, for a display that opens (or reopens) in the middle of it.
    ("recent calls", [
        "CREATE INDEX events_calls ON events (day, id) WHERE type IN ('ticket.called', 'ticket.recalled')",
    ]),
    # Simple applications filed at terminals (queue/applications.py). Personal data is only
    # in `applicant`, sealed with AES-GCM under a key kept outside the database, and in
    # `id_hash`, an HMAC of the ID number for lookups by card.
    ("applications", [
        """CREATE TABLE applications (
            seq INTEGER PRIMARY KEY,
            tracking_no TEXT NOT NULL UNIQUE,
            provisional_no TEXT UNIQUE,  -- a terminal's number from its outbox; NULLs do not clash
            day TEXT NOT NULL,  -- the hall's local date of filing, as in the tracking number
            item TEXT NOT NULL,
            item_name TEXT NOT NULL,
            department TEXT NOT NULL,
            service TEXT NOT NULL,
            status TEXT NOT NULL,
            submitted_at TEXT NOT NULL,
            clock_from TEXT NOT NULL,
            promised_days INTEGER NOT NULL,
            legal_days INTEGER NOT NULL,
            promised_date TEXT NOT NULL,
            legal_date TEXT NOT NULL,
            finished_at TEXT,
            terminal TEXT NOT NULL,
            id_hash TEXT NOT NULL,
            applicant BLOB NOT NULL,
            fingerprint TEXT NOT NULL,  -- HMAC of the filed body: a replay must match it
            rejection_by TEXT,
            rejection_at TEXT,
            rejection_note TEXT
        )""",
        "CREATE INDEX applications_by_person ON applications (id_hash, seq)",
        "CREATE INDEX applications_by_service ON applications (service, status)",
        "CREATE INDEX applications_by_day ON applications (day)",
        "CREATE TABLE application_counters (day TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
        """CREATE TABLE application_steps (
            id INTEGER PRIMARY KEY,
            tracking_no TEXT NOT NULL,
            action TEXT NOT NULL,
            status TEXT NOT NULL,
            at TEXT NOT NULL,
            actor TEXT,
            note TEXT
        )""",
        "CREATE INDEX application_steps_by_no ON application_steps (tracking_no, id)",
        # Wrong lookups and lookups by card, per scope (a tracking number, a hashed client
        # address, a terminal), for throttling; rows older than the window are dropped.
        "CREATE TABLE throttle (scope TEXT NOT NULL, at TEXT NOT NULL)",
        "CREATE INDEX throttle_by_scope ON throttle (scope, at)",
        """CREATE TABLE notifications (
            id INTEGER PRIMARY KEY,
            tracking_no TEXT NOT NULL,
            status TEXT NOT NULL,
            payload TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'queued',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at TEXT,
            last_error TEXT,
            created_at TEXT NOT NULL,
            sent_at TEXT
        )""",
        "CREATE INDEX notifications_due ON notifications (next_at) WHERE state = 'queued'",
        "CREATE INDEX notifications_queued_by_no ON notifications (tracking_no, id) WHERE state = 'queued'",
    ]),
    # The fleet (queue/fleet.py): one-time enrollment codes (hashed) and each terminal's
    # enrollment, revocation and last heartbeat. A terminal's token is in `tokens` under its name.
    ("terminals", [
        """CREATE TABLE enroll_codes (
            hash TEXT PRIMARY KEY,
            terminal TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            created_by TEXT,
            used_at TEXT,
            replaced_at TEXT  -- a newer code was made for the same terminal
        ) WITHOUT ROWID""",
        "CREATE INDEX enroll_codes_by_terminal ON enroll_codes (terminal)",
        """CREATE TABLE terminals (
            name TEXT PRIMARY KEY,
            enrolled_at TEXT,
            revoked_at TEXT,
            last_seen TEXT,
            heartbeat TEXT,  -- the last heartbeat's body (JSON)
            state TEXT  -- what the last terminal.changed event said (JSON), to send changes only
        ) WITHOUT ROWID""",
    ]),
]

_APPLICATION_COLUMNS = ("tracking_no, provisional_no, item, item_name, department, service, status, submitted_at, "
                        "clock_from, promised_days, legal_days, promised_date, legal_date, terminal, finished_at, "
                        "rejection_by, rejection_at, rejection_note")
_NOTIFICATION_COLUMNS = "id, tracking_no, status, payload, state, attempts, next_at, last_error, created_at, sent_at"


def _row_application(row: tuple) -> Application:
    rejection = None if row[15] is None else Rejection(row[15], datetime.fromisoformat(row[16]), row[17] or "")
    return Application(tracking_no=row[0], provisional_no=row[1], item=row[2], item_name=row[3], department=row[4],
                       service=row[5], status=row[6], submitted_at=datetime.fromisoformat(row[7]),
                       clock_from=date.fromisoformat(row[8]), promised_days=row[9], legal_days=row[10],
                       promised_date=date.fromisoformat(row[11]), legal_date=date.fromisoformat(row[12]),
                       terminal=row[13], finished_at=_dt(row[14]), rejection=rejection)


def _row_notification(row: tuple) -> Notification:
    return Notification(id=row[0], tracking_no=row[1], status=row[2], payload=json.loads(row[3]), state=row[4],
                        attempts=row[5], next_at=_dt(row[6]), last_error=row[7],
                        created_at=datetime.fromisoformat(row[8]), sent_at=_dt(row[9]))


def application_event_data(app: Application, step: Step) -> dict:
    """What the public event stream and the webhook say of a change: no personal data and
    no staff names."""
    return {"tracking_no": app.tracking_no, "item": app.item, "item_name": app.item_name,
            "department": app.department, "service": app.service, "status": app.status,
            "action": step.action, "rejection_pending": app.rejection is not None,
            "promised_date": app.promised_date.isoformat(), "legal_date": app.legal_date.isoformat()}

# seq is the order of issue, and so the place in line (engine.Ticket.queue_seq): a transfer
# or reinstatement keeps it.
_TICKET_COLUMNS = ("id, day, number_service, number, label, service, priority, status, issued_at, "
                   "seq, window, called_at, started_at, ended_at, recalls, transfers")


def hash_token(secret: str) -> str:
    # Tokens are 32 random bytes, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _row_ticket(row: tuple) -> Ticket:
    return Ticket(id=row[0], day=date.fromisoformat(row[1]), number_service=row[2], number=row[3],
                  label=row[4], service=row[5], priority=row[6], status=row[7],
                  issued_at=datetime.fromisoformat(row[8]), queue_seq=row[9], window=row[10],
                  called_at=_dt(row[11]), started_at=_dt(row[12]), ended_at=_dt(row[13]),
                  recalls=row[14], transfers=row[15])


def ticket_data(ticket: Ticket, hall: Hall) -> dict:
    """A ticket as displays and clients see it (no id: ids are the holder's secret)."""
    tz = hall.tz

    def local(value: datetime | None) -> str | None:
        return None if value is None else value.astimezone(tz).isoformat(timespec="seconds")

    svc = hall.services.get(ticket.service)
    return {"number": ticket.label, "service": ticket.service,
            "service_name": svc.name if svc else ticket.service,
            "service_name_en": svc.name_en if svc else ticket.service,
            "priority": ticket.priority, "status": ticket.status, "window": ticket.window,
            "day": ticket.day.isoformat(), "issued_at": local(ticket.issued_at),
            "called_at": local(ticket.called_at), "started_at": local(ticket.started_at),
            "ended_at": local(ticket.ended_at), "recalls": ticket.recalls, "transfers": ticket.transfers}


class Store:
    """Tickets, windows, events and tokens in one SQLite file."""

    def __init__(self, path: str | Path, hall: Hall, clock: Clock = utcnow,
                 new_secret: Callable[[], str] = lambda: secrets.token_urlsafe(12)) -> None:
        self.path = Path(path)
        self.hall = hall
        self.clock = clock
        self.new_secret = new_secret
        self.listeners: list[Callable[[int], None]] = []  # told the last event id after each commit
        self._day: date | None = None  # business day whose rollover is known to be done
        self._last_written = 0  # id of the last event written by the open transaction
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        # The database holds token hashes and ticket ids now, personal data later: owner only
        # (SQLite gives its -wal and -shm files the database file's mode).
        self.path.touch(mode=0o600, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # Small pages: a ticket's transaction dirties about six pages (table, indexes, event,
        # idempotency key), and the commit writes each whole into the WAL; 1 KiB instead of
        # 4 KiB pages gave +8 % tickets/s (BENCHMARKS.md). Applies to new databases only.
        conn.execute("PRAGMA page_size = 1024")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA busy_timeout = 10000")
        # Checkpoints (copying the WAL into the database, with fsyncs) cost a ticket request
        # ~30 us on average and spikes of milliseconds; start_checkpointer() moves them to a
        # thread. This threshold stays as a safety net should that thread fall behind.
        conn.execute(f"PRAGMA wal_autocheckpoint = {SAFETY_CHECKPOINT_PAGES}")
        self.db = sqlite_utils.Database(conn)
        self.conn = conn
        self.migrate()
        self._sync_windows()

    @classmethod
    def in_dir(cls, data_dir: str | Path, hall: Hall, **kwargs) -> "Store":
        data_dir = Path(data_dir)
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(data_dir / DB_FILE, hall, **kwargs)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._stop_checkpoints.set()
            self._checkpointer.join()
            self._checkpointer = None
        self.conn.close()

    def start_checkpointer(self, interval: float = 1.0) -> None:
        """Checkpoint the WAL from a thread of its own every `interval` seconds, so that
        requests never wait for it (SQLite releases the GIL while it works)."""
        if self._checkpointer is not None:
            return

        def run() -> None:
            conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                conn.execute("PRAGMA busy_timeout = 10000")
                while not self._stop_checkpoints.wait(interval):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                log.exception("WAL checkpoints stopped; the writer's own checkpoints take over")
            finally:
                conn.close()

        self._stop_checkpoints.clear()
        self._checkpointer = threading.Thread(target=run, name="kiosq-checkpoint", daemon=True)
        self._checkpointer.start()

    # -- schema --------------------------------------------------------------------

    def migrate(self) -> None:
        self.conn.execute("CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, "
                          "name TEXT NOT NULL, applied_at TEXT NOT NULL)")
        for version, (name, statements) in enumerate(MIGRATIONS, 1):
            with self._transaction():
                if self.conn.execute("SELECT 1 FROM migrations WHERE version = ?", (version,)).fetchone():
                    continue
                for sql in statements:
                    self.conn.execute(sql)
                self.conn.execute("INSERT INTO migrations VALUES (?, ?, ?)", (version, name, _ts(self.clock())))

    def schema_version(self) -> int:
        return self.conn.execute("SELECT COALESCE(MAX(version), 0) FROM migrations").fetchone()[0]

    def _sync_windows(self) -> None:
        """Every window of the hall file gets a row; rows of windows since removed stay, unused."""
        self.db["windows"].insert_all(({"number": n} for n in self.hall.windows), ignore=True)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            self._last_written = 0
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def _change(self) -> Iterator[tuple[datetime, date]]:
        """One change: a write transaction at the business day of `now`, rolled over first
        if the day has turned; listeners hear of the new events after the commit."""
        now = self.clock()
        day = engine.business_day(now, self.hall)
        with self._transaction():
            if day != self._day:
                self._rollover(now, day)
            yield now, day
        # Only now: a refused change rolls its transaction back, the rollover with it.
        self._day = day
        self._notify()

    def _notify(self) -> None:
        if self._last_written:
            for listener in self.listeners:
                listener(self._last_written)
            self._last_written = 0

    # -- writing -------------------------------------------------------------------

    def _rollover(self, now: datetime, day: date) -> None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'business_day'").fetchone()
        if row is None or row[0] < day.isoformat():
            # Two index-backed queries rather than one more index that every insert would pay for.
            stale = [_row_ticket(r) for r in self.conn.execute(
                f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE status = 'waiting' AND day < ? UNION ALL "
                f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE status IN ('called', 'serving') AND day < ?",
                (day.isoformat(), day.isoformat()))]
            closed = engine.close_day(stale, now)
            self._apply(Outcome(tuple(closed), None, tuple(
                Event(f"ticket.{'finished' if t.status == engine.DONE else 'cancelled'}", t, t.window,
                      "business day ended") for t in closed)), now)
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('business_day', ?)", (day.isoformat(),))
            # A retry is seconds or minutes late, never days: old keys can go.
            self.conn.execute("DELETE FROM idempotency WHERE created_at < ?",
                              (_ts(now - timedelta(days=IDEMPOTENCY_DAYS)),))

    def _apply(self, outcome: Outcome, now: datetime) -> None:
        for t in outcome.tickets:
            self.conn.execute(
                "UPDATE tickets SET service = ?, status = ?, window = ?, called_at = ?, started_at = ?, "
                "ended_at = ?, recalls = ?, transfers = ? WHERE seq = ?",
                (t.service, t.status, t.window, _ts(t.called_at), _ts(t.started_at), _ts(t.ended_at),
                 t.recalls, t.transfers, t.queue_seq))
        if outcome.window is not None:
            self.conn.execute("UPDATE windows SET state = ?, changed_at = ? WHERE number = ?",
                              (outcome.window.state, _ts(now), outcome.window.number))
        for ev in outcome.events:
            self._append_event(ev, now)

    def _append_event(self, ev: Event, now: datetime, extra: dict | None = None) -> None:
        data: dict = {"ticket": None if ev.ticket is None else ticket_data(ev.ticket, self.hall),
                      "window": ev.window, "at": now.astimezone(self.hall.tz).isoformat(timespec="seconds"),
                      **(extra or {})}
        if ev.reason:
            data["reason"] = ev.reason
        if ev.type.startswith("window."):
            data["state"] = ev.type.removeprefix("window.")
        day = ev.ticket.day if ev.ticket else engine.business_day(now, self.hall)
        self._last_written = self.conn.execute(
            "INSERT INTO events (type, at, day, ticket, window, data) VALUES (?, ?, ?, ?, ?, ?)",
            (ev.type, _ts(now), day.isoformat(), ev.ticket.id if ev.ticket else None, ev.window,
             json.dumps(data, ensure_ascii=False, separators=(",", ":")))).lastrowid

    def issue_ticket(self, service: str, priority: str = "normal", *, caller: str = "", issued_by: str = "",
                     idempotency_key: str | None = None,
                     guard: Callable[[datetime], None] | None = None) -> tuple[Ticket, bool]:
        """Issue a ticket; returns it and whether it was an earlier answer to the same key.

        `caller` scopes idempotency keys (the token's hash); `issued_by` is recorded (its name).
        `guard` sees the moment of issue after a replay was ruled out, and may refuse (opening
        hours): a retry of a ticket issued just before closing still gets that ticket.
        """
        svc = self.hall.services.get(service)
        if svc is None:
            raise NotFound(f"unknown service {service!r}; services are: {', '.join(self.hall.services)}")
        fingerprint = f"{service}|{priority}"
        with self._change() as (now, day):
            if idempotency_key is not None:
                row = self.conn.execute("SELECT fingerprint, ticket FROM idempotency WHERE caller = ? AND key = ?",
                                        (caller, idempotency_key)).fetchone()
                if row is not None:
                    if row[0] != fingerprint:
                        raise IdempotencyConflict(
                            f"Idempotency-Key {idempotency_key!r} was already used for another request "
                            f"({row[0].replace('|', ', ')}); use a new key for a new ticket")
                    return self._ticket_by_id(row[1]), True
            if guard is not None:
                guard(now)
            last, seq = self.conn.execute(
                "SELECT (SELECT MAX(number) FROM tickets WHERE number_service = ? AND day = ?), "
                "(SELECT COALESCE(MAX(seq), 0) + 1 FROM tickets)", (service, day.isoformat())).fetchone()
            ticket = engine.issue(svc, last, day, now, f"{seq}-{self.new_secret()}", priority)
            ticket = dataclasses.replace(ticket, queue_seq=seq)
            self.conn.execute(
                "INSERT INTO tickets (seq, id, day, number_service, number, label, service, priority, rank, "
                "status, issued_at, issued_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, ticket.id, day.isoformat(), ticket.number_service, ticket.number, ticket.label,
                 ticket.service, ticket.priority, ticket.rank, ticket.status, _ts(now), issued_by or None))
            if idempotency_key is not None:
                self.conn.execute("INSERT INTO idempotency VALUES (?, ?, ?, ?, ?)",
                                  (caller, idempotency_key, fingerprint, ticket.id, _ts(now)))
            self._append_event(Event("ticket.issued", ticket, None), now)
        return ticket, False

    def call_next(self, window: int) -> Outcome:
        win = self._window_config(window)
        with self._change() as (now, day):
            state = self._window_state(window, day)
            heads = [h for code in win.services if (h := self._head(code, day)) is not None]
            outcome = engine.call_next(win, state, heads, now)
            self._apply(outcome, now)
        return outcome

    def act(self, window: int, action: str, to_service: str | None = None) -> Outcome:
        """recall, start, finish, no_show or transfer the ticket at a window."""
        win = self._window_config(window)
        if action == "transfer" and to_service not in self.hall.services:
            raise NotFound(f"unknown service {to_service!r}; services are: {', '.join(self.hall.services)}")
        with self._change() as (now, day):
            outcome = engine.act_on_current(action, win, self._window_state(window, day), now, self.hall,
                                            to_service)
            self._apply(outcome, now)
        return outcome

    def reinstate(self, window: int, label: str) -> Outcome:
        win = self._window_config(window)
        with self._change() as (now, day):
            ticket = self._ticket_by_label(label, day)
            if ticket.service not in win.services:
                raise engine.NotAllowed(f"ticket {ticket.label} is for service {ticket.service}, "
                                        f"which window {window} does not serve")
            back = engine.reinstate(ticket, now, self.hall.info.reinstate_minutes)
            outcome = Outcome((back,), None, (Event("ticket.reinstated", back, window),))
            self._apply(outcome, now)
        return outcome

    def cancel(self, ticket_id: str, guard: Callable[[Ticket], None] | None = None) -> Outcome:
        """Cancel a ticket; `guard` sees it first, inside the transaction, and may refuse."""
        with self._change() as (now, _day):
            ticket = self._ticket_by_id(ticket_id)
            if guard is not None:
                guard(ticket)
            gone = engine.cancel(ticket, now)
            outcome = Outcome((gone,), None, (Event("ticket.cancelled", gone, ticket.window),))
            self._apply(outcome, now)
        return outcome

    def set_window_state(self, window: int, paused: bool) -> Outcome:
        self._window_config(window)
        with self._change() as (now, day):
            state = self._window_state(window, day)
            new = engine.pause(state) if paused else engine.resume(state)
            outcome = Outcome((), new, (Event("window.paused" if paused else "window.resumed", None, window),))
            self._apply(outcome, now)
        return outcome

    # -- reading -------------------------------------------------------------------

    def today(self) -> date:
        return engine.business_day(self.clock(), self.hall)

    def _window_config(self, window: int):
        win = self.hall.windows.get(window)
        if win is None:
            raise NotFound(f"no window {window} in this hall; windows are: {', '.join(map(str, self.hall.windows))}")
        return win

    def _window_state(self, window: int, day: date) -> WindowState:
        state = self.conn.execute("SELECT state FROM windows WHERE number = ?", (window,)).fetchone()[0]
        # Today's only: until the first change of a new day rolls it over, yesterday's last
        # call must not show as current.
        row = self.conn.execute(f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE window = ? AND "
                                "status IN ('called', 'serving') AND day = ?", (window, day.isoformat())).fetchone()
        return WindowState(window, state, _row_ticket(row) if row else None)

    def windows(self) -> list[WindowState]:
        self.roll_over_if_due()
        day = self.today()
        return [self._window_state(n, day) for n in self.hall.windows]

    def window(self, window: int) -> WindowState:
        self._window_config(window)
        self.roll_over_if_due()
        return self._window_state(window, self.today())

    def roll_over_if_due(self) -> None:
        """Close the previous business day now if no change has done it yet, so that
        readers never see yesterday's tickets as still waiting."""
        if self.today() != self._day:
            with self._change():
                pass

    def _head(self, service: str, day: date) -> Ticket | None:
        row = self.conn.execute(
            f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE day = ? AND service = ? AND status = 'waiting' "
            "ORDER BY rank DESC, seq LIMIT 1", (day.isoformat(), service)).fetchone()
        return _row_ticket(row) if row else None

    def _ticket_by_id(self, ticket_id: str) -> Ticket:
        seq, _, secret = ticket_id.partition("-")
        ok = seq.isascii() and seq.isdigit() and len(seq) <= 18 and secret
        row = None if not ok else self.conn.execute(
            f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE seq = ? AND id = ?", (int(seq), ticket_id)).fetchone()
        if row is None:
            raise NotFound("no such ticket; check the link or the QR code on the slip")
        return _row_ticket(row)

    def _ticket_by_label(self, label: str, day: date) -> Ticket:
        """A ticket of `day` by its printed number ("A012"), through the numbering index."""
        text = label.strip().upper()
        prefix = text.rstrip("0123456789")
        svc = next((s for s in self.hall.services.values() if s.prefix == prefix), None)
        digits = text[len(prefix):]
        row = None if svc is None or not digits else self.conn.execute(
            f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE number_service = ? AND day = ? AND number = ?",
            (svc.code, day.isoformat(), int(digits))).fetchone()
        if row is None:
            raise NotFound(f"no ticket {label} today")
        return _row_ticket(row)

    def ticket(self, ticket_id: str) -> Ticket:
        self.roll_over_if_due()
        return self._ticket_by_id(ticket_id)

    def ahead(self, ticket: Ticket) -> int:
        """People who will be called before this ticket in its service's queue."""
        if ticket.status != engine.WAITING:
            return 0
        # Everyone waiting in its class or a higher one, less itself and those behind it in
        # its class: for a new ticket nobody is behind, so nothing is walked.
        return self.conn.execute(
            "SELECT (SELECT COALESCE(SUM(n), 0) FROM waiting_counts WHERE day = ?1 AND service = ?2 AND rank >= ?3)"
            " - 1 - (SELECT COUNT(*) FROM tickets WHERE day = ?1 AND service = ?2 AND status = 'waiting' "
            "AND rank = ?3 AND seq > ?4)",
            (ticket.day.isoformat(), ticket.service, ticket.rank, ticket.queue_seq)).fetchone()[0]

    def open_windows(self) -> dict[str, int]:
        """For each service, how many windows serving it are open (not paused)."""
        paused = {n for (n,) in self.conn.execute("SELECT number FROM windows WHERE state = 'paused'")}
        counts = dict.fromkeys(self.hall.services, 0)
        for win in self.hall.windows.values():
            if win.number not in paused:
                for code in win.services:
                    counts[code] += 1
        return counts

    def waiting_counts(self) -> dict[str, int]:
        self.roll_over_if_due()
        counts = dict.fromkeys(self.hall.services, 0)
        for service, n in self.conn.execute(
                "SELECT service, SUM(n) FROM waiting_counts WHERE day = ? GROUP BY service",
                (self.today().isoformat(),)):
            counts[service] = n
        return counts

    def eta(self, ticket: Ticket, ahead: int | None = None) -> int | None:
        service = self.hall.services.get(ticket.service)
        if service is None:  # a service since removed from the hall file: nobody can say
            return None
        ahead = self.ahead(ticket) if ahead is None else ahead
        return engine.eta_minutes(ahead, service, self.open_windows()[ticket.service])

    def tickets_of_day(self, day: date | None = None) -> list[Ticket]:
        day = day or self.today()
        return [_row_ticket(r) for r in self.conn.execute(
            f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE day = ? ORDER BY seq", (day.isoformat(),))]

    def recent_calls(self, limit: int = 8) -> list[StoredEvent]:
        """Today's last calls and recalls, newest first."""
        return [StoredEvent(*row) for row in self.conn.execute(
            "SELECT id, type, data FROM events WHERE day = ? AND type IN ('ticket.called', 'ticket.recalled') "
            "ORDER BY id DESC LIMIT ?", (self.today().isoformat(), limit))]

    def notice(self) -> str:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'notice'").fetchone()
        return row[0] if row else ""

    def set_notice(self, text: str) -> None:
        """The line the hall display shows under the calls; an event tells open displays."""
        with self._change() as (now, _day):
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('notice', ?)", (text,))
            self._append_event(Event("hall.notice", None, None), now, {"notice": text})

    def last_event_id(self) -> int:
        return self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]

    def events_after(self, event_id: int, limit: int = 500) -> list[StoredEvent]:
        return [StoredEvent(*row) for row in self.conn.execute(
            "SELECT id, type, data FROM events WHERE id > ? ORDER BY id LIMIT ?", (event_id, limit))]

    # -- applications ----------------------------------------------------------------

    def submit_application(self, item, *, terminal: str, id_hash: str, sealed: bytes, fingerprint: str,
                           provisional_no: str | None, caller: str, idempotency_key: str,
                           notify: bool = False) -> tuple[Application, bool]:
        """File an application for `item` (a content.model.ItemGuide); returns it and whether
        it is an earlier answer to the same Idempotency-Key or provisional number.

        `sealed` is the applicant record already encrypted, `id_hash` the keyed hash of the ID
        number, `fingerprint` a keyed hash of the request body: a replay must match it.
        """
        fingerprint = f"application|{fingerprint}"
        with self._change() as (now, _day):
            row = self.conn.execute("SELECT fingerprint, ticket FROM idempotency WHERE caller = ? AND key = ?",
                                    (caller, idempotency_key)).fetchone()
            if row is not None:
                if row[0] != fingerprint:
                    raise IdempotencyConflict(f"Idempotency-Key {idempotency_key!r} was already used for another "
                                              "request; use a new key for a new application")
                return self._application(row[1].removeprefix("application:")), True
            if provisional_no is not None:
                row = self.conn.execute("SELECT fingerprint, tracking_no FROM applications WHERE provisional_no = ?",
                                        (provisional_no,)).fetchone()
                if row is not None:
                    if row[0] != fingerprint:
                        raise IdempotencyConflict(f"provisional number {provisional_no} already belongs to another "
                                                  f"application ({row[1]}); a terminal must not reuse one")
                    self.conn.execute("INSERT INTO idempotency VALUES (?, ?, ?, ?, ?)",
                                      (caller, idempotency_key, fingerprint, f"application:{row[1]}", _ts(now)))
                    return self._application(row[1]), True
            day = now.astimezone(self.hall.tz).date()
            # The day's counter, in this write transaction: two terminals never share a number.
            n = self.conn.execute("INSERT INTO application_counters VALUES (?, 1) ON CONFLICT DO UPDATE "
                                  "SET n = n + 1 RETURNING n", (day.isoformat(),)).fetchone()[0]
            promised, legal = rules.deadlines(day, item.promised_days, item.legal_days, self.hall.calendar)
            app = Application(tracking_no=f"{TRACKING_PREFIX}{day:%Y%m%d}-{n:04d}", provisional_no=provisional_no,
                              item=item.code, item_name=item.name, department=item.department,
                              service=item.service, status=rules.SUBMITTED, submitted_at=now, clock_from=day,
                              promised_days=item.promised_days, legal_days=item.legal_days,
                              promised_date=promised, legal_date=legal, terminal=terminal)
            self.conn.execute(
                "INSERT INTO applications (tracking_no, provisional_no, day, item, item_name, department, service, "
                "status, submitted_at, clock_from, promised_days, legal_days, promised_date, legal_date, terminal, "
                "id_hash, applicant, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (app.tracking_no, provisional_no, day.isoformat(), app.item, app.item_name, app.department,
                 app.service, app.status, _ts(now), day.isoformat(), app.promised_days, app.legal_days,
                 promised.isoformat(), legal.isoformat(), terminal, id_hash, sealed, fingerprint))
            self.conn.execute("INSERT INTO idempotency VALUES (?, ?, ?, ?, ?)",
                              (caller, idempotency_key, fingerprint, f"application:{app.tracking_no}", _ts(now)))
            self._record_step(app, Step("submit", app.status, now, terminal, None), notify)
        return app, False

    def act_on_application(self, number: str, action: str, actor: str, note: str | None = None,
                           guard: Callable[[Application], None] | None = None,
                           notify: bool = False) -> tuple[Application, Step]:
        """One step of an application's life (applications.transition); `guard` sees the
        application first, inside the transaction, and may refuse."""
        with self._change() as (now, _day):
            app = self._application(number)
            if guard is not None:
                guard(app)
            new, step = rules.transition(app, action, actor, note, now, now.astimezone(self.hall.tz).date(),
                                         self.hall.calendar)
            rej = new.rejection
            self.conn.execute(
                "UPDATE applications SET status = ?, clock_from = ?, promised_date = ?, legal_date = ?, "
                "finished_at = ?, rejection_by = ?, rejection_at = ?, rejection_note = ? WHERE tracking_no = ?",
                (new.status, new.clock_from.isoformat(), new.promised_date.isoformat(), new.legal_date.isoformat(),
                 _ts(new.finished_at), rej and rej.by, rej and _ts(rej.at), rej and rej.note, new.tracking_no))
            self._record_step(new, step, notify)
        return new, step

    def _record_step(self, app: Application, step: Step, notify: bool) -> None:
        self.conn.execute("INSERT INTO application_steps (tracking_no, action, status, at, actor, note) "
                          "VALUES (?, ?, ?, ?, ?, ?)",
                          (app.tracking_no, step.action, step.status, _ts(step.at), step.actor, step.note))
        data = application_event_data(app, step)
        kind = "application.submitted" if step.action == "submit" else "application.changed"
        self._append_event(Event(kind, None, None), step.at, {"application": data})
        # Only changes a citizen cares about: not a pending rejection, nor its denial.
        if notify and step.action not in ("reject", "deny_rejection"):
            payload = {**data, "at": step.at.astimezone(self.hall.tz).isoformat(timespec="seconds"),
                       "note": step.note if step.action in ("return", "approve_rejection") else None}
            self.conn.execute("INSERT INTO notifications (tracking_no, status, payload, next_at, created_at) "
                              "VALUES (?, ?, ?, ?, ?)",
                              (app.tracking_no, app.status, json.dumps(payload, ensure_ascii=False),
                               _ts(step.at), _ts(step.at)))

    def _application(self, number: str) -> Application:
        app = self.application(number)
        if app is None:
            raise NotFound(f"no application {number}; check the number on the receipt")
        return app

    def application(self, number: str) -> Application | None:
        """By tracking number, or by the provisional number a terminal printed while offline."""
        row = self.conn.execute(f"SELECT {_APPLICATION_COLUMNS} FROM applications WHERE tracking_no = ?",
                                (number,)).fetchone()
        if row is None:
            row = self.conn.execute(f"SELECT {_APPLICATION_COLUMNS} FROM applications WHERE provisional_no = ?",
                                    (number,)).fetchone()
        return None if row is None else _row_application(row)

    def record_personal_access(self, tracking_no: str, actor: str) -> None:
        """Who opened an applicant's personal data, and when: a step staff see, the public does not."""
        app = self._application(tracking_no)
        with self._transaction():
            self.conn.execute("INSERT INTO application_steps (tracking_no, action, status, at, actor) "
                              "VALUES (?, 'view_personal', ?, ?, ?)", (tracking_no, app.status, _ts(self.clock()), actor))

    def applicant_record(self, tracking_no: str) -> tuple[str, bytes]:
        """The keyed hash of the ID number and the sealed applicant record."""
        row = self.conn.execute("SELECT id_hash, applicant FROM applications WHERE tracking_no = ?",
                                (tracking_no,)).fetchone()
        if row is None:
            raise NotFound(f"no application {tracking_no}")
        return row[0], row[1]

    def application_steps(self, tracking_no: str) -> list[Step]:
        return [Step(r[0], r[1], datetime.fromisoformat(r[2]), r[3], r[4]) for r in self.conn.execute(
            "SELECT action, status, at, actor, note FROM application_steps WHERE tracking_no = ? ORDER BY id",
            (tracking_no,))]

    def applications_of_person(self, id_hash: str, limit: int = 50) -> list[Application]:
        """A person's applications (by the keyed hash of the ID number), newest first."""
        return [_row_application(r) for r in self.conn.execute(
            f"SELECT {_APPLICATION_COLUMNS} FROM applications WHERE id_hash = ? ORDER BY seq DESC LIMIT ?",
            (id_hash, limit))]

    def applications(self, services: tuple[str, ...] | None = None,
                     statuses: tuple[str, ...] | None = None) -> list[Application]:
        """Applications of the given queue services and statuses (all if None), oldest first."""
        where, args = [], []
        for column, values in (("service", services), ("status", statuses)):
            if values is not None:
                where.append(f"{column} IN ({', '.join('?' * len(values))})")
                args += values
        sql = f"SELECT {_APPLICATION_COLUMNS} FROM applications"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_row_application(r) for r in self.conn.execute(sql + " ORDER BY seq", args)]

    def applications_filed(self, first: date, last: date) -> list[Application]:
        """Applications filed on the hall's local dates `first` to `last`, inclusive."""
        return [_row_application(r) for r in self.conn.execute(
            f"SELECT {_APPLICATION_COLUMNS} FROM applications WHERE day BETWEEN ? AND ? ORDER BY seq",
            (first.isoformat(), last.isoformat()))]

    # -- throttling ------------------------------------------------------------------

    def throttle_hits(self, scopes: tuple[str, ...], since: datetime) -> dict[str, list[datetime]]:
        """When each scope was last counted since `since`, oldest first."""
        hits: dict[str, list[datetime]] = {s: [] for s in scopes}
        for scope in scopes:
            hits[scope] = [datetime.fromisoformat(at) for (at,) in self.conn.execute(
                "SELECT at FROM throttle WHERE scope = ? AND at > ? ORDER BY at", (scope, _ts(since)))]
        return hits

    def throttle_count(self, scopes: tuple[str, ...], forget_before: datetime) -> None:
        """Count one try against each scope; forget tries older than `forget_before`."""
        now = _ts(self.clock())
        with self._transaction():
            self.conn.executemany("INSERT INTO throttle VALUES (?, ?)", [(s, now) for s in scopes])
            self.conn.execute("DELETE FROM throttle WHERE at < ?", (_ts(forget_before),))

    # -- notifications -----------------------------------------------------------------

    def notifications_due(self, now: datetime, limit: int = 20) -> list[Notification]:
        """Queued notifications whose time has come; one application's go out in order, so a
        later one waits while an earlier one is being retried."""
        return [_row_notification(r) for r in self.conn.execute(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications AS n WHERE state = 'queued' AND next_at <= ? "
            "AND NOT EXISTS (SELECT 1 FROM notifications AS o WHERE o.tracking_no = n.tracking_no "
            "AND o.state = 'queued' AND o.id < n.id) ORDER BY next_at, id LIMIT ?", (_ts(now), limit))]

    def next_notification_at(self) -> datetime | None:
        row = self.conn.execute("SELECT MIN(next_at) FROM notifications WHERE state = 'queued'").fetchone()
        return _dt(row[0])

    def notification_sent(self, notification_id: int) -> None:
        with self._transaction():
            self.conn.execute("UPDATE notifications SET state = 'sent', attempts = attempts + 1, sent_at = ?, "
                              "next_at = NULL WHERE id = ?", (_ts(self.clock()), notification_id))

    def notification_failed(self, notification_id: int, error: str, retry_at: datetime | None) -> None:
        """A failed attempt: try again at `retry_at`, or give up (state 'failed') if None."""
        with self._transaction():
            self.conn.execute("UPDATE notifications SET state = ?, attempts = attempts + 1, last_error = ?, "
                              "next_at = ? WHERE id = ?",
                              ("queued" if retry_at else "failed", error[:500], _ts(retry_at), notification_id))

    def notifications(self, limit: int = 200, state: str | None = None) -> list[Notification]:
        """The newest notifications first."""
        where = "WHERE state = ?" if state else ""
        args: tuple = (state, limit) if state else (limit,)
        return [_row_notification(r) for r in self.conn.execute(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications {where} ORDER BY id DESC LIMIT ?", args)]

    # -- terminals ---------------------------------------------------------------------

    def add_enroll_code(self, terminal: str, code_hash: str, expires_at: datetime, created_by: str) -> None:
        """Record a one-time enrollment code (its hash); older unused codes of the terminal
        stop working."""
        taken = self.conn.execute("SELECT role FROM tokens WHERE name = ? AND role != 'terminal' AND "
                                  "revoked_at IS NULL", (terminal,)).fetchone()
        if taken:
            raise ValueError(f"an active {taken[0]} token is named {terminal!r}; a terminal needs a name of its own")
        now = _ts(self.clock())
        with self._transaction():
            self.conn.execute("UPDATE enroll_codes SET replaced_at = ? WHERE terminal = ? AND used_at IS NULL "
                              "AND replaced_at IS NULL", (now, terminal))
            self.conn.execute("INSERT INTO enroll_codes (hash, terminal, created_at, expires_at, created_by) "
                              "VALUES (?, ?, ?, ?, ?)", (code_hash, terminal, now, _ts(expires_at), created_by))

    def enroll(self, code_hash: str) -> tuple[str, str]:
        """Trade a code for a new terminal token; returns (terminal, token secret). The
        terminal's earlier tokens are revoked in the same transaction."""
        with self._change() as (now, _day):
            row = self.conn.execute("SELECT terminal, expires_at, used_at, replaced_at FROM enroll_codes "
                                    "WHERE hash = ?", (code_hash,)).fetchone()
            if row is None:
                raise EnrollmentRefused("unknown")
            terminal, expires_at, used_at, replaced_at = row
            if used_at is not None:
                raise EnrollmentRefused("used", terminal)
            if replaced_at is not None:
                raise EnrollmentRefused("replaced", terminal)
            if datetime.fromisoformat(expires_at) <= now:
                raise EnrollmentRefused("expired", terminal)
            if self.conn.execute("SELECT 1 FROM tokens WHERE name = ? AND role != 'terminal' AND revoked_at IS NULL",
                                 (terminal,)).fetchone():
                raise EnrollmentRefused("name_taken", terminal)
            self.conn.execute("UPDATE enroll_codes SET used_at = ? WHERE hash = ?", (_ts(now), code_hash))
            self.conn.execute("UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                              (_ts(now), terminal))
            secret = f"kq_t_{secrets.token_urlsafe(32)}"
            self.conn.execute("INSERT INTO tokens (hash, name, role, windows, created_at) VALUES (?, ?, 'terminal', "
                              "'[]', ?)", (hash_token(secret), terminal, _ts(now)))
            self.conn.execute("INSERT INTO terminals (name, enrolled_at) VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                              "SET enrolled_at = excluded.enrolled_at, revoked_at = NULL", (terminal, _ts(now)))
            self._append_event(Event("terminal.enrolled", None, None), now, {"terminal": terminal})
        return terminal, secret

    def revoke_terminal(self, terminal: str) -> None:
        """Refuse the terminal's token from now on (and any unused enrollment code for it)."""
        with self._change() as (now, _day):
            known = self.conn.execute("SELECT 1 FROM terminals WHERE name = ? UNION ALL SELECT 1 FROM tokens "
                                      "WHERE name = ? AND role = 'terminal'", (terminal, terminal)).fetchone()
            if known is None:
                raise NotFound(f"no terminal {terminal!r}; GET /api/terminals lists them")
            self.conn.execute("UPDATE tokens SET revoked_at = ? WHERE name = ? AND role = 'terminal' AND "
                              "revoked_at IS NULL", (_ts(now), terminal))
            self.conn.execute("UPDATE enroll_codes SET replaced_at = ? WHERE terminal = ? AND used_at IS NULL AND "
                              "replaced_at IS NULL", (_ts(now), terminal))
            self.conn.execute("INSERT INTO terminals (name, revoked_at) VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                              "SET revoked_at = excluded.revoked_at", (terminal, _ts(now)))
            self._append_event(Event("terminal.revoked", None, None), now, {"terminal": terminal})

    def record_heartbeat(self, terminal: str, heartbeat: dict, state: dict, offline_before: datetime) -> None:
        """Keep a terminal's last heartbeat. An event `terminal.changed` (with `state`) tells
        /admin when the state differs from the last one told, or the terminal was offline
        (last seen before `offline_before`) or never seen."""
        with self._change() as (now, _day):
            row = self.conn.execute("SELECT last_seen, state FROM terminals WHERE name = ?", (terminal,)).fetchone()
            self.conn.execute(
                "INSERT INTO terminals (name, last_seen, heartbeat, state) VALUES (?, ?, ?, ?) ON CONFLICT (name) "
                "DO UPDATE SET last_seen = excluded.last_seen, heartbeat = excluded.heartbeat, state = excluded.state",
                (terminal, _ts(now), json.dumps(heartbeat, ensure_ascii=False), json.dumps(state, sort_keys=True)))
            came_back = row is None or row[0] is None or datetime.fromisoformat(row[0]) < offline_before
            if came_back or row[1] != json.dumps(state, sort_keys=True):
                self._append_event(Event("terminal.changed", None, None), now,
                                   {"terminal_state": {**state, "online": True}})

    def terminals(self) -> list[TerminalRecord]:
        """Every terminal: those with a row (enrolled, revoked or seen) and those that only
        hold a terminal token made with `kiosq server token`."""
        records = {r[0]: TerminalRecord(r[0], _dt(r[1]), r[2] is not None, _dt(r[3]), r[4] and json.loads(r[4]))
                   for r in self.conn.execute("SELECT name, enrolled_at, revoked_at, last_seen, heartbeat "
                                              "FROM terminals")}
        for name, created in self.conn.execute("SELECT name, MIN(created_at) FROM tokens WHERE role = 'terminal' "
                                               "AND revoked_at IS NULL GROUP BY name"):
            records.setdefault(name, TerminalRecord(name, _dt(created), False, None, None))
        return sorted(records.values(), key=lambda r: r.name)

    def record_event(self, kind: str, data: dict) -> None:
        """An event that belongs to no ticket (content.published, ...), for the live pages."""
        with self._change() as (now, _day):
            self._append_event(Event(kind, None, None), now, data)

    # -- tokens --------------------------------------------------------------------

    def create_token(self, role: str, name: str, windows: tuple[int, ...] = ()) -> str:
        """Make a token and return its secret; only its hash is stored."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; use one of: {', '.join(ROLES)}")
        if not name.strip():
            raise ValueError("a token needs a name: who or what holds it, e.g. T01 or 张敏")
        if any(t["name"] == name for t in self.tokens()):
            raise ValueError(f"an active token is already named {name!r}; choose another name")
        if role == "staff" and not windows:
            raise ValueError("a staff token needs the windows it may act at, e.g. --windows 1,2")
        if windows and role not in ("staff", "supervisor"):
            raise ValueError(f"a {role} token takes no windows")
        unknown = [w for w in windows if w not in self.hall.windows]
        if unknown:
            raise ValueError(f"no window {', '.join(map(str, unknown))} in this hall; "
                             f"windows are: {', '.join(map(str, self.hall.windows))}")
        secret = f"kq_{role[0]}_{secrets.token_urlsafe(32)}"
        self.db["tokens"].insert({"hash": hash_token(secret), "name": name, "role": role,
                                  "windows": json.dumps(list(windows)), "created_at": _ts(self.clock())})
        return secret

    def tokens(self) -> list[dict]:
        """Active tokens (names and roles, never secrets)."""
        return [{**row, "windows": json.loads(row["windows"])} for row in self.db["tokens"].rows_where(
            "revoked_at IS NULL", select="name, role, windows, created_at", order_by="created_at")]

    def token(self, secret: str) -> Token | None:
        hashed = hash_token(secret)
        row = self.conn.execute("SELECT name, role, windows FROM tokens WHERE hash = ? AND revoked_at IS NULL",
                                (hashed,)).fetchone()
        return None if row is None else Token(row[0], row[1], tuple(json.loads(row[2])), hashed)

    def revoke_tokens(self, name: str) -> int:
        with self._transaction():
            return self.conn.execute("UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                                     (_ts(self.clock()), name)).rowcount
