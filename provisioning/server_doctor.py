"""`kiosq doctor --server`: checks the hall server's machine, one line per check with OK,
WARN or FAIL and what to do, as the terminal's doctor (provisioning/doctor.py) does: the hall
file, the database (kind, where, schema, latency), the applicant key file (the owner's only,
and the one the database's applications are sealed with), the running server (its health,
and that it runs on the same database), disk space. It makes nothing that is not there yet.
"""

from __future__ import annotations

import http.client
import socket
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosq.provisioning.doctor import FAIL, OK, WARN, Check, check_disk, get_json, readable_by_others

if TYPE_CHECKING:
    from kiosq.queue.config import Hall
    from kiosq.queue.store import Store

LATENCY_WARN = 20.0  # ms: a hall database answers within a few
FIRST_START = "the server makes it at first start; if it has started, pass its --data-dir " \
              "(the installed unit's is /var/lib/kiosq)"


def run_server_checks(data_dir: Path, hall_file: Path | None, database_url: str | None, url: str) -> list[Check]:
    """Every check of the hall server on this machine, in the order they print."""
    hall_check, hall = check_hall(data_dir, hall_file)
    if hall is None:
        return [hall_check, check_keys(data_dir, shared=False), check_running_server(url, None, _ca(data_dir)),
                check_disk(data_dir)]
    database_check, mine, key_check = check_database(data_dir, hall, database_url)
    shared = mine is not None and mine.get("kind") == "postgresql"
    return [hall_check, database_check, check_keys(data_dir, shared, key_check),
            check_running_server(url, mine, _ca(data_dir)), check_disk(data_dir)]


def check_hall(data_dir: Path, hall_file: Path | None) -> tuple[Check, Hall | None]:
    from kiosq.queue.config import HallConfigError
    from kiosq.queue.server import resolve_hall

    try:
        hall = resolve_hall(data_dir, hall_file)
    except HallConfigError as exc:
        return Check(FAIL, "hall", str(exc), "docs/hall-config.md explains every key"), None
    return Check(OK, "hall", f"{hall.source}: hall {hall.info.name!r}, {len(hall.services)} services, "
                             f"{len(hall.windows)} windows"), hall


def check_database(data_dir: Path, hall: Hall,
                   database_url: str | None) -> tuple[Check, dict[str, Any] | None, str | None]:
    """The database this data folder, hall and --database open, what it is (or would be)
    for the server line to compare, and the applicant keys' check value it goes with (for
    the keys line). What is not there yet the doctor does not make."""
    from kiosq.queue.server import ServerError, choose_database
    from kiosq.queue.store import DB_FILE

    path = data_dir / DB_FILE
    try:
        sqlite = choose_database(data_dir, hall, database_url).url is None
        if not data_dir.is_dir() or (sqlite and not path.is_file()):
            missing = f"database at {path}" if sqlite else f"data folder {data_dir}"
            return Check(WARN, "database", f"no {missing} yet", FIRST_START), \
                ({"kind": "sqlite", "path": str(path)} if sqlite else None), None
        store = _open_store_unnoted(data_dir, hall, database_url)
    except ServerError as exc:
        return Check(FAIL, "database", " ".join(str(exc).split())), None, None  # one line: libpq's has tabs
    try:
        health = store.database_health()
        schema = store.schema_version() if health["ok"] else None
        key_check = store.key_check() if health["ok"] else None
    finally:
        store.close()
    return classify_database(health, schema), health, key_check


def _open_store_unnoted(data_dir: Path, hall: Hall, database_url: str | None) -> Store:
    """open_store, without the note it leaves (DATA_DIR/database.url, the PostgreSQL
    database the folder goes with): a --database given to the doctor must not change it."""
    from kiosq.queue.server import open_store

    return open_store(data_dir, hall, database_url, note=False)


def classify_database(health: dict[str, Any], schema: int | None) -> Check:
    """health: Store.database_health(); schema: its schema version."""
    where = _where(health)
    if not health["ok"]:
        return Check(FAIL, "database", f"{where}: {health.get('error')}",
                     "check that the database runs and this machine reaches it")
    detail = f"{where}, schema {schema}, {health['latency_ms']} ms"
    if health["latency_ms"] > LATENCY_WARN:
        return Check(WARN, "database", detail, "a hall database should answer within a few ms; "
                                               "check the network to the database")
    return Check(OK, "database", detail)


def _where(database: dict[str, Any]) -> str:
    """The kind of database and where it is, as Store.describe_database says it (no password)."""
    if database.get("kind") == "sqlite":
        return f"SQLite {database.get('path')}"
    return (f"PostgreSQL {database.get('user')}@{database.get('host')}:{database.get('port')}"
            f"/{database.get('database')}")


def check_keys(data_dir: Path, shared: bool, expected: str | None = None) -> Check:
    """The applicant key file: there, the owner's only, and (`expected`: the check value the
    database keeps) the one the database's applications are sealed with."""
    from kiosq.queue.personal import KEY_FILE, KeyFileError, Personal

    path = data_dir / KEY_FILE
    if not path.is_file() and expected is not None:
        return Check(FAIL, "keys", f"no applicant key file {path}, but the database holds records sealed with one: "
                                   "the server refuses to start", "restore applicant.key from the backup of this "
                                   "data folder")
    if not path.is_file():
        return Check(WARN, "keys", f"no applicant key file {path}", FIRST_START)
    mode = stat.S_IMODE(path.stat().st_mode)
    if readable_by_others(path):
        return Check(FAIL, "keys", f"{path} may be read by others (mode {mode:o}): the server refuses it",
                     f"chmod 600 {path}, and check who copied it")
    if expected is not None:
        try:
            mine = Personal.in_dir(data_dir, create=False)
        except KeyFileError as exc:
            return Check(FAIL, "keys", str(exc))
        if not mine.matches_check(expected):
            return Check(FAIL, "keys", f"{path} is not the key file this database's applications are sealed with: "
                                       "the server refuses to start with it",
                         "copy applicant.key (mode 0600) from the data folder of the hall's other processes")
    return Check(OK, "keys", f"{path} (mode {mode:o})"
                             + ("; every server process of this hall needs this same file" if shared else ""))


def _ca(data_dir: Path) -> Path | None:
    """The hall CA of the data folder, which a server on HTTPS is checked against."""
    ca = data_dir / "tls" / "ca.pem"
    return ca if ca.is_file() else None


def check_running_server(url: str, mine: dict[str, Any] | None, ca_file: Path | None = None) -> Check:
    """GET /api/health; `mine` is the database the doctor's options give: the server's should be it."""
    try:
        status, health, _, _ = get_json(url, "/api/health", None, ca_file)
    except (OSError, http.client.HTTPException) as exc:
        return Check(WARN, "server", f"no server answers at {url} ({exc})",
                     "systemctl status kiosq-server; journalctl -u kiosq-server")
    theirs = health.get("database")
    theirs = theirs if isinstance(theirs, dict) and "kind" in theirs else None
    hall = f"hall {health.get('hall', '?')!r} at {url}"
    if status == 503 and theirs is not None:
        return Check(FAIL, "server", f"{hall} cannot reach its database {_where(theirs)}: {theirs.get('error')}",
                     "check that the database runs; journalctl -u kiosq-server")
    if status != 200 or health.get("ok") is not True or theirs is None:
        return Check(FAIL, "server", f"{url}/api/health answered {status}, not a kiosq server's health",
                     "pass --url: the hall server's address and port")
    if mine is not None and not _same_database(mine, theirs):
        return Check(FAIL, "server", f"{hall} runs on {_where(theirs)}; this doctor's --data-dir, --hall and "
                                     f"--database give {_where(mine)}",
                     "pass the server's --database (or --data-dir), or set [database] url in the hall file, "
                     "so that the server and every kiosq command open the same database")
    return Check(OK, "server", f"{hall} answers; its database: {_where(theirs)}, {theirs.get('latency_ms')} ms")


def _same_database(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.get("kind") != b.get("kind"):
        return False
    if a.get("kind") == "sqlite":
        return Path(str(a.get("path"))).resolve() == Path(str(b.get("path"))).resolve()
    return (a.get("port"), a.get("database")) == (b.get("port"), b.get("database")) and \
        _same_host(str(a.get("host")), str(b.get("host")))


def _same_host(a: str, b: str) -> bool:
    """localhost and 127.0.0.1 are one host."""
    def addresses(host: str) -> set[str]:
        try:
            return {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
        except OSError:
            return {host}

    return a == b or bool(addresses(a) & addresses(b))
