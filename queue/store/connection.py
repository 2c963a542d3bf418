"""The store's connection to its SQLite file (WAL): pragmas, the write transaction, the
migrations and the WAL checkpointer thread.

The only module of the store that knows the database is SQLite (queue/store/database.py
says what the concept modules ask of a database; postgres.py is the other kind). One
process writes the file; BEGIN IMMEDIATE queues writers, so nothing is ever retried.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from kiosq.base import sqlite
from kiosq.queue.store.errors import Unusable

SAFETY_CHECKPOINT_PAGES = 20000  # ~80 MB of WAL: the writer checkpoints itself past this
log = logging.getLogger("kiosq.store")
T = TypeVar("T")


class Connection:
    """One SQLite connection, shared by the server's threads (each change is one
    transaction), and its checkpointer."""

    kind = "sqlite"

    def __init__(self, path: Path, migrations: Sequence[sqlite.Migration], now: datetime) -> None:
        self.path = path
        # The database holds token hashes, ticket ids and sealed personal data: owner only.
        sqlite.create_private(path)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        try:
            self._configure()
            sqlite.migrate(self.conn, migrations, now)
        except sqlite3.DatabaseError as exc:  # not a database, or not ours
            self.conn.close()
            raise Unusable(str(exc)) from None

    def _configure(self) -> None:
        # Small pages: a ticket's transaction dirties about six pages (table, indexes, event,
        # idempotency key), and the commit writes each whole into the WAL; 1 KiB instead of
        # 4 KiB pages gave +8 % tickets/s (BENCHMARKS.md). Applies to new databases only.
        self.conn.execute("PRAGMA page_size = 1024")
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA busy_timeout = 10000")
        # What is deleted or erased (personal data past the hall's retention) is overwritten
        # with zeros in the file, not left readable in free pages. A per-connection setting.
        self.conn.execute("PRAGMA secure_delete = ON")
        # Checkpoints (copying the WAL into the database, with fsyncs) cost a ticket request
        # ~30 us on average and spikes of milliseconds; start_checkpointer() moves them to a
        # thread. This threshold stays as a safety net should that thread fall behind.
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {SAFETY_CHECKPOINT_PAGES}")

    # -- running SQL -------------------------------------------------------------------

    def execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, args)

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def one(self, sql: str, args: Sequence[Any] = ()) -> tuple | None:
        """The first row, or None."""
        row: tuple | None = self.conn.execute(sql, args).fetchone()
        return row

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        return self.conn.execute(sql, args).fetchall()

    def count(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Rows changed by one UPDATE or DELETE."""
        return self.conn.execute(sql, args).rowcount

    def transaction(self) -> AbstractContextManager[None]:
        return sqlite.transaction(self.conn)  # not wrapped in a generator of our own: every ticket pays for one

    def run(self, work: Callable[[], T], on_retry: Callable[[], None]) -> T:
        with sqlite.transaction(self.conn):  # the write lock is taken first: no retries
            return work()

    def next_ticket_seq(self) -> int:
        # Under the write lock taken by BEGIN IMMEDIATE nobody else can take the same one.
        row = self.conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM tickets").fetchone()
        return int(row[0])

    def announce_events(self, last_id: int) -> None:
        """Nobody else to tell: another process on the file finds new events by polling."""

    def start_background(self, listeners: list[Callable[[int], None]]) -> None:
        self.start_checkpointer()

    def ping(self) -> float:
        started = time.perf_counter()
        self.conn.execute("SELECT 1").fetchone()
        return time.perf_counter() - started

    def describe(self) -> dict[str, Any]:
        return {"kind": "sqlite", "path": str(self.path)}

    def schema_version(self) -> int:
        return sqlite.schema_version(self.conn)

    # -- life --------------------------------------------------------------------------

    def stop_background(self) -> None:
        if self._checkpointer is not None:
            self._stop_checkpoints.set()
            self._checkpointer.join()
            self._checkpointer = None

    def close(self) -> None:
        self.stop_background()
        self.conn.close()

    def start_checkpointer(self, interval: float = 1.0) -> None:
        """Checkpoint the WAL from a thread of its own every `interval` seconds, so that
        requests never wait for it (SQLite releases the GIL while it works)."""
        if self._checkpointer is not None:
            return
        self._stop_checkpoints.clear()
        self._checkpointer = threading.Thread(target=self._checkpoint, args=(interval,), name="kiosq-checkpoint",
                                              daemon=True)
        self._checkpointer.start()

    def _checkpoint(self, interval: float) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            while not self._stop_checkpoints.wait(interval):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            log.exception("WAL checkpoints stopped; the writer's own checkpoints take over")
        finally:
            conn.close()
