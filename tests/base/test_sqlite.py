"""The shared SQLite helpers: numbered migrations applied once and recorded, one write
transaction that rolls back whole, and owner-only database files."""

import sqlite3
import stat
from contextlib import closing
from datetime import UTC, datetime

import pytest

from kiosq.base import sqlite

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
MIGRATIONS = [("one", ["CREATE TABLE a (x INTEGER)"]),
              ("two", ["CREATE TABLE b (y INTEGER)", "INSERT INTO b VALUES (1)"])]


@pytest.fixture
def conn(tmp_path):
    with closing(sqlite3.connect(tmp_path / "t.db", isolation_level=None)) as c:
        yield c


def test_migrations_run_once_in_order_and_are_recorded(conn):
    assert sqlite.migrate(conn, MIGRATIONS[:1], NOW) == [1]
    assert sqlite.migrate(conn, MIGRATIONS, NOW) == [2]  # a newer release adds one
    assert sqlite.migrate(conn, MIGRATIONS, NOW) == []
    assert sqlite.schema_version(conn) == 2
    assert conn.execute("SELECT version, name, applied_at FROM migrations").fetchall() == [
        (1, "one", NOW.isoformat()), (2, "two", NOW.isoformat())]
    assert conn.execute("SELECT COUNT(*) FROM b").fetchone() == (1,)


def test_a_failing_migration_leaves_nothing_of_itself(conn):
    broken = [*MIGRATIONS[:1], ("broken", ["CREATE TABLE c (z INTEGER)", "INSERT INTO nowhere VALUES (1)"])]
    with pytest.raises(sqlite3.OperationalError):
        sqlite.migrate(conn, broken, NOW)
    assert sqlite.schema_version(conn) == 1
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'c'").fetchone() is None


def test_a_transaction_commits_or_rolls_back_whole(conn):
    conn.execute("CREATE TABLE t (x INTEGER)")
    with sqlite.transaction(conn):
        conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(ValueError), sqlite.transaction(conn):
        conn.execute("INSERT INTO t VALUES (2)")
        raise ValueError("refused")
    assert conn.execute("SELECT x FROM t").fetchall() == [(1,)] and not conn.in_transaction


def test_database_files_are_owner_only(tmp_path):
    path = tmp_path / "t.db"
    wal = tmp_path / "t.db-wal"
    wal.write_bytes(b"")
    wal.chmod(0o644)
    sqlite.create_private(path)
    assert {stat.S_IMODE(p.stat().st_mode) for p in (path, wal)} == {0o600}
