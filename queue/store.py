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

from kiosq.queue import engine
from kiosq.queue.config import Hall
from kiosq.queue.engine import Event, Outcome, Ticket, WindowState

ROLES = ("terminal", "staff", "admin")
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


@dataclass(frozen=True, slots=True)
class Token:
    name: str
    role: str
    windows: tuple[int, ...]  # staff: the windows this token may act at
    key: str = ""  # the stored hash: identifies the holder (idempotency keys are scoped by it)


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
]

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
                     idempotency_key: str | None = None) -> tuple[Ticket, bool]:
        """Issue a ticket; returns it and whether it was an earlier answer to the same key.

        `caller` scopes idempotency keys (the token's hash); `issued_by` is recorded (its name).
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
