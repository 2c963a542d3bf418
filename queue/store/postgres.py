"""The store on PostgreSQL (psycopg 3): several `kiosq server` processes on one database.

The only module of the store that knows the database is PostgreSQL; it offers what
queue/store/database.py asks of a database, for the same SQL as SQLite (`?` parameters are
turned into psycopg's `%s` here, once per statement).

How several processes stay exactly-once: every change is one READ COMMITTED transaction
whose first statement takes the hall's write lock, a transaction-level advisory lock, so
changes run one at a time across all processes, as under SQLite's single writer (BEGIN
IMMEDIATE). Every statement after the lock sees everything committed before it, so the
concept modules' read-then-write steps (the day's next number, an idempotency key, the
ticket at a window, the day's rollover) cannot race, and the unique keys stay the last
guard. The lock is released by the commit (or by the connection's end, should a process
die holding it). Reads take no lock and run in parallel in every process.

Why not SERIALIZABLE with retries: measured with four writers on one counter, serializable
transactions failed over and over on the same rows (a ticket's number is one hot row per
service) until the retries ran out; a lock that queues writers never fails and costs one
round trip. Event ids are committed in their order for the same reason, so a stream that
read "after id N" can never later find an id below N appear. `pg_notify` in the same
transaction wakes every process's streams when it commits; the events table stays the truth.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg import errors

from kiosq.base.sqlite import MIGRATIONS_TABLE, Migration
from kiosq.queue.store.database import Row
from kiosq.queue.store.errors import Unavailable, Unusable

T = TypeVar("T")
log = logging.getLogger("kiosq.store")

CHANNEL = "kiosq_events"
WRITE_LOCK = 0x6B696F7371  # "kiosq": the hall's write lock, held by one change at a time
MIGRATION_LOCK = 0x6B696F7372  # held while one process migrates; the others wait
MAX_TRIES = 5
CONNECT_TIMEOUT = 10
# Under the write lock neither should happen; a deadlock with something outside kiosq (an
# operator's transaction holding rows) is run again rather than shown to a citizen.
RETRYABLE = (errors.DeadlockDetected, errors.SerializationFailure)
# A change's first and last round trips: BEGIN with the write lock (it waits while another
# process's change runs), and the notification with the COMMIT; each is one simple query.
BEGIN = f"BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({WRITE_LOCK})".encode()
COMMIT = b"COMMIT"


def _translate(sql: str, cache: dict[str, str] = {}) -> str:  # noqa: B006 (the cache is meant to be shared)
    """`?` placeholders to psycopg's `%s` (and a literal `%` doubled). The store's SQL has
    no `?` inside its string literals."""
    out = cache.get(sql)
    if out is None:
        out = cache[sql] = sql.replace("%", "%%").replace("?", "%s")
    return out


def _reason(exc: Exception) -> str:
    """What libpq says went wrong, on one line: its first line (where it failed: refused,
    or the server's FATAL, e.g. a wrong password), any FATAL line after, and its last (the
    hint, or where the password came from), without the tabs it indents them with."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    fatal = [line for line in lines[1:] if "FATAL:" in line]
    return "; ".join(dict.fromkeys([lines[0], *fatal[:1], lines[-1]]))


def _password(password_file: str | None) -> dict[str, str]:
    if password_file is None:
        return {}  # libpq reads PGPASSFILE (or ~/.pgpass) itself
    try:
        with open(password_file, encoding="utf-8") as f:
            return {"password": f.read().strip()}
    except OSError as exc:
        raise Unusable(f"cannot read the database password file {password_file} ({exc.strerror})") from None


class PostgresDatabase:
    """One connection for the server's requests (all on its event loop, as with SQLite),
    and, once started, a second one that listens for other processes' events."""

    kind = "postgresql"

    def __init__(self, url: str, migrations: Sequence[Migration], now: datetime,
                 password_file: str | None = None) -> None:
        self.url = url
        self._connect_args: dict[str, Any] = {"autocommit": True, "connect_timeout": CONNECT_TIMEOUT,
                                              "application_name": "kiosq server", **_password(password_file)}
        self.conn = self._connect()
        self._lock = threading.RLock()  # one transaction at a time on the connection, whatever the thread
        self._in_transaction = False
        self._announce: int | None = None
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        self.retries = 0  # changes run again after a deadlock, since start (the bench reads it from the log)
        try:
            self._migrate(migrations, now)
        except psycopg.Error as exc:
            self.conn.close()
            raise Unusable(f"{self.where()}: {exc}") from None

    def where(self) -> str:
        parts = urlsplit(self.url)
        return f"PostgreSQL database {parts.path.lstrip('/')!r} on {parts.hostname or 'the local socket'}" + (
            f":{parts.port}" if parts.port else "")

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.url, **self._connect_args)
        except psycopg.OperationalError as exc:
            raise Unavailable(f"cannot connect to the {self.where()}: {_reason(exc)}") from None

    def _migrate(self, migrations: Sequence[Migration], now: datetime) -> None:
        """As kiosq.base.sqlite.migrate, under a session lock: processes started together
        migrate one after the other, and the second finds nothing left to do."""
        self.conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            self.conn.execute(MIGRATIONS_TABLE)
            for version, (name, statements) in enumerate(migrations, 1):
                with self.conn.transaction():
                    if self.conn.execute("SELECT 1 FROM migrations WHERE version = %s", (version,)).fetchone():
                        continue
                    for sql in statements:
                        self.conn.execute(sql)  # the schema's own SQL: no parameters
                    self.conn.execute("INSERT INTO migrations VALUES (%s, %s, %s)",
                                      (version, name, now.astimezone(UTC).isoformat()))
        finally:
            self.conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))

    # -- running SQL -------------------------------------------------------------------

    def _cursor(self, sql: str, args: Sequence[Any]) -> psycopg.Cursor:
        with self._lock:  # a read from another thread waits for a change in progress
            try:
                return self.conn.execute(_translate(sql), args)  # our SQL, never user text
            except psycopg.OperationalError as exc:
                if not self._in_transaction and (self.conn.broken or self.conn.closed):
                    return self._reconnected(sql, args, exc)
                if self._in_transaction:
                    raise  # run() says Unavailable
                raise Unavailable(f"the {self.where()} is unavailable: {_reason(exc)}") from None

    def _reconnected(self, sql: str, args: Sequence[Any], exc: Exception) -> psycopg.Cursor:
        """A read outside a transaction on a connection that broke (the database restarted,
        or a failover): connect again and read once more; writes are never sent twice."""
        log.warning("the connection to the %s broke (%s); connecting again", self.where(), _reason(exc))
        self.conn = self._connect()
        try:
            return self.conn.execute(_translate(sql), args)
        except psycopg.OperationalError as again:
            raise Unavailable(f"the {self.where()} is unavailable: {_reason(again)}") from None

    def execute(self, sql: str, args: Sequence[Any] = ()) -> psycopg.Cursor:
        return self._cursor(sql, args)

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock, self.conn.cursor() as cur:
            cur.executemany(_translate(sql), list(rows))

    def one(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self._cursor(sql, args).fetchone()
        return row

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        return self._cursor(sql, args).fetchall()

    def count(self, sql: str, args: Sequence[Any] = ()) -> int:
        return self._cursor(sql, args).rowcount

    # -- transactions ------------------------------------------------------------------

    def run(self, work: Callable[[], T], on_retry: Callable[[], None]) -> T:
        with self._lock:
            for attempt in range(1, MAX_TRIES + 1):
                self._begin()
                try:
                    result = work()
                    if self._announce is None:
                        self.conn.execute(COMMIT)
                    else:  # the id is ours, an int: no quoting to get wrong
                        self.conn.execute(f"SELECT pg_notify('{CHANNEL}', '{int(self._announce)}'); COMMIT".encode())
                    return result
                except RETRYABLE as exc:
                    self._rollback()
                    if attempt == MAX_TRIES:
                        raise Unavailable(f"the {self.where()} is too busy: {MAX_TRIES} tries of one change "
                                          f"deadlocked with others ({type(exc).__name__})") from None
                    self.retries += 1
                    on_retry()
                    # A short random pause, longer each time: two transactions that
                    # deadlocked do not meet again at once.
                    time.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))
                except psycopg.OperationalError as exc:
                    # The connection broke (or the server went away) inside the change: it
                    # may or may not have been committed, so it is not run again here; a
                    # client retries with its Idempotency-Key.
                    self._rollback()
                    raise Unavailable(f"the {self.where()} is unavailable: {_reason(exc)}") from None
                except BaseException:
                    self._rollback()
                    raise
                finally:
                    self._in_transaction = False
                    self._announce = None
            raise AssertionError("unreachable")

    def _begin(self) -> None:
        """BEGIN and the write lock, on a new connection if the last one broke since it was
        used (the database restarted, a failover): nothing of the change has been sent yet."""
        if self.conn.broken or self.conn.closed:
            self.conn = self._connect()
        try:
            self.conn.execute(BEGIN)
        except psycopg.OperationalError as exc:
            if not self.conn.broken:
                raise Unavailable(f"the {self.where()} is unavailable: {_reason(exc)}") from None
            log.warning("the connection to the %s broke (%s); connecting again", self.where(), _reason(exc))
            self.conn = self._connect()
            try:
                self.conn.execute(BEGIN)
            except psycopg.OperationalError as again:
                raise Unavailable(f"the {self.where()} is unavailable: {_reason(again)}") from None
        self._in_transaction = True

    def _rollback(self) -> None:
        if self.conn.broken or self.conn.closed:
            return
        try:
            self.conn.execute("ROLLBACK")
        except psycopg.Error:
            log.exception("ROLLBACK failed on the %s", self.where())

    def next_ticket_seq(self) -> int:
        row = self.conn.execute("SELECT nextval('tickets_seq')").fetchone()
        assert row is not None
        return int(row[0])

    def announce_events(self, last_id: int) -> None:
        self._announce = last_id

    # -- other processes' events -------------------------------------------------------

    def start_background(self, listeners: list[Callable[[int], None]]) -> None:
        """LISTEN on a connection of its own, in a thread; each notification (another
        process's commit, or our own) tells `listeners` the last id it announced."""
        if self._listener is not None:
            return
        self._stop.clear()
        self._listener = threading.Thread(target=self._listen, args=(listeners,), name="kiosq-listen", daemon=True)
        self._listener.start()

    def _listen(self, listeners: list[Callable[[int], None]]) -> None:
        pause = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, **self._connect_args) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    pause = 0.5
                    for listener in list(listeners):  # events written while we were not listening
                        listener(0)
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            last = int(note.payload) if note.payload.isdigit() else 0
                            for listener in list(listeners):
                                listener(last)
            except psycopg.Error as exc:
                if self._stop.is_set():
                    return
                log.warning("listening for other processes' events on the %s failed (%s); again in %.1f s; "
                            "streams poll meanwhile", self.where(), exc, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, 10.0)

    # -- the rest ----------------------------------------------------------------------

    def schema_version(self) -> int:
        row = self.one("SELECT COALESCE(MAX(version), 0) FROM migrations")
        return int(row[0]) if row else 0

    def ping(self) -> float:
        started = time.perf_counter()
        self.one("SELECT 1")
        return time.perf_counter() - started

    def describe(self) -> dict[str, Any]:
        parts = urlsplit(self.url)
        return {"kind": "postgresql", "host": parts.hostname or "", "port": parts.port or 5432,
                "database": parts.path.lstrip("/"), "user": parts.username or ""}

    def stop_background(self) -> None:
        if self._listener is not None:
            # How often concurrent processes made a change run again (bench/tickets.py reads it).
            log.info("leaving the %s: %d changes were run again after conflicting with others", self.where(),
                     self.retries)
            self._stop.set()
            self._listener.join(5)
            self._listener = None

    def close(self) -> None:
        self.stop_background()
        self.conn.close()
