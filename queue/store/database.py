"""What the store's concept modules ask of a database, and where the database is.

Two kinds implement `Database`: SQLite in the data folder (queue/store/connection.py, the
embedded default) and PostgreSQL (queue/store/postgres.py, for several server processes on
one database). The concept modules write one SQL for both: `?` parameters, `RETURNING`
for new ids, `ON CONFLICT (...)` with its target, the column `"window"` quoted (a reserved
word in PostgreSQL). What must differ lives in those two modules, one method per concept:
the schema (schema.py, schema_pg.py), the write transaction, one at a time across
processes (`run`), the next ticket's row number (`next_ticket_seq`) and waking the other
processes when events are written (`announce_events`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
Row = tuple[Any, ...]

ENV_URL = "KIOSQ_DATABASE_URL"


class Database(Protocol):
    kind: str  # "sqlite" or "postgresql"

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any: ...

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def one(self, sql: str, args: Sequence[Any] = ()) -> Row | None: ...

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[Row]: ...

    def count(self, sql: str, args: Sequence[Any] = ()) -> int: ...

    def run(self, work: Callable[[], T], on_retry: Callable[[], None]) -> T:
        """`work` in one write transaction, one change at a time across every process on
        the database (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock); run again
        (after `on_retry`) if PostgreSQL reports a deadlock with something outside kiosq."""
        ...

    def next_ticket_seq(self) -> int:
        """The row number of the next ticket (inside the write transaction)."""
        ...

    def announce_events(self, last_id: int) -> None:
        """Events up to `last_id` are written in this transaction: other processes hear it."""
        ...

    def start_background(self, listeners: list[Callable[[int], None]]) -> None:
        """SQLite: checkpoint the WAL from a thread. PostgreSQL: hear the events of other
        processes on a connection of its own and tell `listeners`."""
        ...

    def stop_background(self) -> None:
        """Stop what start_background started (the server's shutdown; close() does it too)."""
        ...

    def schema_version(self) -> int: ...

    def ping(self) -> float:
        """Seconds one round trip to the database takes."""
        ...

    def describe(self) -> dict[str, Any]:
        """What /api/health and doctor say of the database: its kind and where (no password)."""
        ...

    def close(self) -> None: ...


class DatabaseUrlError(ValueError):
    """A database URL kiosq cannot use; the message says what to write instead."""


@dataclass(frozen=True)
class DatabaseChoice:
    """Where the hall's data lives: `url` None is SQLite in the data folder."""

    url: str | None = None
    password_file: str | None = None  # a file that holds the password alone
    source: str = "default"  # what chose it: --database, KIOSQ_DATABASE_URL, the hall file

    @property
    def is_postgresql(self) -> bool:
        return self.url is not None


def check_url(url: str, source: str = "") -> str:
    """A postgresql:// URL without a password in it (one on a command line is seen by
    every user of the machine, and URLs end up in logs). `source` names where it was given."""
    where = f"{source}: " if source else ""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise DatabaseUrlError(f"{where}{url!r} is not a PostgreSQL URL; write "
                               "postgresql://USER@HOST:PORT/DATABASE, or leave it out for SQLite in the data folder")
    if parts.password is not None:
        raise DatabaseUrlError(f"{where}the URL holds a password; take it out and put it in a password file "
                               "([database] password_file in the hall file) or in PGPASSFILE")
    if not parts.path.strip("/"):
        raise DatabaseUrlError(f"{where}the URL names no database; write postgresql://USER@HOST:PORT/DATABASE")
    return url


def check_password_file(path: str | None) -> str | None:
    """[database] password_file: there, readable, and the owner's only (as libpq asks of a
    PGPASSFILE)."""
    if path is None:
        return None
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        with open(path, encoding="utf-8") as f:
            f.read(1)
    except OSError as exc:
        raise DatabaseUrlError(f"[database] password_file {path} cannot be read ({exc.strerror}); write the "
                               "database password alone in it, mode 0600, owned by the server's user") from None
    if mode & 0o077:
        raise DatabaseUrlError(f"[database] password_file {path} can be read by others (mode {mode:o}); "
                               f"run `chmod 600 {path}`")
    return path


REMEMBERED = "database.url"  # in the data folder: the PostgreSQL database it was last used with


def choose(cli_url: str | None, hall_url: str | None, hall_password_file: str | None,
           data_dir: Path | None = None) -> DatabaseChoice:
    """--database first, then KIOSQ_DATABASE_URL, then the hall file's [database] url, then
    the database the data folder was last used with (so that `kiosq server token --data-dir D`
    finds the hall's PostgreSQL database, not a new SQLite file beside it)."""
    env_url = os.environ.get(ENV_URL) or None
    remembered = None
    if data_dir is not None and (data_dir / REMEMBERED).is_file():
        remembered = (data_dir / REMEMBERED).read_text("utf-8").strip() or None
    for url, source in ((cli_url, "--database"), (env_url, ENV_URL), (hall_url, "[database] url"),
                        (remembered, str(data_dir and data_dir / REMEMBERED))):
        if url:
            return DatabaseChoice(check_url(url, source), check_password_file(hall_password_file), source)
    return DatabaseChoice()


def remember(data_dir: Path, choice: DatabaseChoice) -> None:
    """Note in the data folder which PostgreSQL database it goes with (the URL holds no
    password); nothing for SQLite, whose file is in the folder itself."""
    if choice.url is None:
        return
    path = data_dir / REMEMBERED
    if path.is_file() and path.read_text("utf-8").strip() == choice.url:
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(choice.url + "\n", "utf-8")
    tmp.replace(path)


def safe_url(url: str) -> str:
    """The URL as it may be shown: without a password, should one be there after all."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()
