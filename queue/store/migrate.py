"""Copy a hall from SQLite to PostgreSQL: `kiosq server migrate-db --from DATA_DIR --to URL`.

Both databases are first brought to the current schema by their own migrations (the same
numbers), so every table has the same columns on both sides. The copy is one PostgreSQL
transaction (a failure leaves the target as it was) under SQLite's write lock (a server
still running on the file waits, and a consistent snapshot is read). It refuses a target
that holds any kiosq data, or tables that are not kiosq's. The waiting counts are not
copied: the tickets' insert trigger keeps them on PostgreSQL, and the copy checks that
they came out as SQLite's. Identity columns and the tickets' sequence continue after the
highest id copied.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kiosq.base import sqlite
from kiosq.queue.store.connection import Connection
from kiosq.queue.store.database import DatabaseChoice
from kiosq.queue.store.errors import StoreError, Unusable
from kiosq.queue.store.postgres import PostgresDatabase
from kiosq.queue.store.schema import MIGRATIONS
from kiosq.queue.store.schema_pg import MIGRATIONS_PG

# Parents before children; waiting_counts is the trigger's (see above).
TABLES = ("meta", "windows", "tokens", "tickets", "events", "idempotency", "applications", "application_counters",
          "application_steps", "throttle", "notifications", "ratings", "rating_cases", "complaints",
          "complaint_counters", "enroll_codes", "terminals",
          "users", "sessions", "audit")
DERIVED = ("waiting_counts",)
KEPT_EMPTY = ("migrations", "windows")  # a server's first start writes these; nothing else
IDENTITIES = {"events": "id", "applications": "seq", "application_steps": "id", "notifications": "id", "audit": "id",
              "ratings": "id", "complaints": "seq"}


class MigrationRefused(StoreError):
    """The copy cannot be made; the message says why and what to do."""


@dataclass(frozen=True)
class Copied:
    rows: dict[str, int]  # table -> rows copied

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def copy_to_postgresql(db_file: Path, target: DatabaseChoice, now: datetime) -> Copied:
    """Copy every row of the SQLite database `db_file` into the PostgreSQL database `target`."""
    if not db_file.is_file():
        raise MigrationRefused(f"there is no kiosq database at {db_file}; pass the data folder of the hall "
                               "(--from DATA_DIR, the folder that holds kiosq.db)")
    assert target.url is not None
    source = Connection(db_file, MIGRATIONS, now)  # brought to the current schema first
    try:
        destination = PostgresDatabase(target.url, MIGRATIONS_PG, now, target.password_file)
        try:
            _refuse_unless_empty(destination)
            with sqlite.transaction(source.conn):  # BEGIN IMMEDIATE: a running server's writes wait
                return destination.run(lambda: _copy(source.conn, destination), on_retry=lambda: None)
        finally:
            destination.close()
    finally:
        source.close()


def _refuse_unless_empty(db: PostgresDatabase) -> None:
    theirs = {name for (name,) in db.rows(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}
    foreign = sorted(theirs - set(TABLES) - set(DERIVED) - {"migrations"})
    if foreign:
        raise MigrationRefused(f"the target database holds tables that are not kiosq's ({', '.join(foreign[:5])}); "
                               "copy into a new, empty database: createdb -O kiosq kiosq")
    full = [t for t in (*TABLES, *DERIVED) if t not in KEPT_EMPTY and db.one(f"SELECT 1 FROM {t} LIMIT 1")]
    if full:
        raise MigrationRefused(f"the target database already holds kiosq data (in {', '.join(full)}); "
                               "migrate-db copies into an empty database only: drop it and create it again, "
                               "or pass another one")


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _copy(source: sqlite3.Connection, db: PostgresDatabase) -> Copied:
    pg = db.conn
    pg.execute("DELETE FROM windows")  # made by the target's first open; the hall's own come next
    rows: dict[str, int] = {}
    for table in TABLES:
        columns = _columns(source, table)
        quoted = ", ".join(f'"{c}"' for c in columns)
        n = 0
        with pg.cursor() as cur, cur.copy(f"COPY {table} ({quoted}) FROM STDIN".encode()) as copy:
            for row in source.execute(f"SELECT {quoted} FROM {table}"):
                copy.write_row(row)
                n += 1
        rows[table] = n
    for table, column in IDENTITIES.items():
        pg.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                   f"COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)".encode())
    pg.execute(b"SELECT setval('tickets_seq', COALESCE((SELECT MAX(seq) FROM tickets), 0) + 1, false)")
    counted = "SELECT day, service, rank, n FROM waiting_counts WHERE n > 0 ORDER BY 1, 2, 3"
    theirs = pg.execute(counted.encode()).fetchall()
    ours = source.execute(counted).fetchall()
    if [tuple(r) for r in theirs] != [tuple(r) for r in ours]:
        raise Unusable("the waiting counts differ after the copy (the SQLite file's counts are wrong?); "
                       "nothing was copied. Run `kiosq doctor --server` on the data folder")
    return Copied(rows)
