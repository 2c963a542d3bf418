"""SQLite helpers every room shares: a database file only its owner can read, one write
transaction, and numbered schema migrations recorded in the database itself."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

# A migration: its name and its statements, applied once, in one transaction.
Migration = tuple[str, Sequence[str]]

MIGRATIONS_TABLE = ("CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                    "applied_at TEXT NOT NULL)")


def create_private(path: Path) -> None:
    """Make the database file owner-only (0600) before SQLite opens it: SQLite gives its
    -wal and -shm files the database file's mode. Files already there are set to 0600 too."""
    path.touch(mode=0o600, exist_ok=True)
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists():
            os.chmod(file, 0o600)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction. BEGIN IMMEDIATE takes the write lock at the start, so two
    writers queue up (busy_timeout) instead of failing when a read turns into a write."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:  # some errors (a full disk) have rolled it back already
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration], now: datetime) -> list[int]:
    """Apply the migrations the database has not recorded yet, in order, each in its own
    transaction with its record (version = position, from 1); returns the versions applied."""
    conn.execute(MIGRATIONS_TABLE)
    applied = []
    for version, (name, statements) in enumerate(migrations, 1):
        with transaction(conn):
            if conn.execute("SELECT 1 FROM migrations WHERE version = ?", (version,)).fetchone():
                continue
            for sql in statements:
                conn.execute(sql)
            conn.execute("INSERT INTO migrations VALUES (?, ?, ?)",
                         (version, name, now.astimezone(UTC).isoformat()))
        applied.append(version)
    return applied


def schema_version(conn: sqlite3.Connection) -> int:
    """The last migration applied (0: none)."""
    return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM migrations").fetchone()[0])
