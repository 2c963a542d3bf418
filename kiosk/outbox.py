"""The terminal's outbox: every application filed at this kiosk is written here first, with
its personal data sealed, and a background sender (kiosk/outbox_sender.py) delivers it to
the hall server exactly once, now if the server answers, or when it is back.

One path for online and offline: `submit()` adds to the outbox, kicks the sender and waits a
few seconds. Delivered in time, the receipt shows the tracking number; if not, it shows the
provisional number (`T01-20261122-0007`), which the server links to the tracking number
when the application arrives, so that both look it up.

Exactly once: each application gets its Idempotency-Key and its provisional number in the
same transaction that stores it, before add() returns, and every attempt sends both. A kiosk
killed after the server committed but before the answer was recorded sends again after the
restart and gets the same application back (by the key, or by the provisional number should
the server have forgotten the key, or the terminal have a new token).

Storage: `<data_dir>/outbox.db`, SQLite in WAL mode with synchronous=FULL (a commit is on the
disk before add() returns: an application the kiosk accepted survives a power cut), mode
0600 like its -wal and -shm files, secure_delete on. It is plain sqlite3 with explicit
`BEGIN IMMEDIATE` transactions under one lock, because every write here is a hot-path,
one-row change whose durability is the point; sqlite-utils reads the listings. The schema is
a list of numbered migrations recorded in the database, run by the same kiosq.base.sqlite
helpers as the server's.

Personal data (the whole applicant and the form's values) is sealed with AES-256-GCM under
`<data_dir>/outbox.key` (0600, made on first use, never in the database; the provisional
number is the associated data, so a blob cannot be moved to another row). The key file holds
keys with ids (kiosq.base.keyring, the server's applicant.key has the same form): each blob
starts with the id of its key, the newest key seals, and `kiosq kiosk rotate-outbox-key`
adds a new one, seals every waiting application again, and drops the old once none is under
it. A key file that is missing, or lacks a key in use, while sealed applications wait is an
OutboxError (the kiosk shows it on the maintenance screen and stops filing), never a new key. Once delivered,
the blob is deleted: only the item, the numbers, the dates and the server's answer stay, and
those go after `KEEP_DAYS`. An application the server refuses (a 4xx that retrying cannot
change: the catalog changed, the values do not pass any more) is kept as `refused`, with the
server's code and detail, for staff to see on the maintenance screen; it is never retried
by itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import stat
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils
from cryptography.exceptions import InvalidTag

from kiosq.base import keyring, sqlite
from kiosq.base.keyring import KeyRing, SealKey, UnknownKey
from kiosq.base.privacy import replace_secret_file, write_secret_file

log = logging.getLogger(__name__)

DB_FILE = "outbox.db"
KEY_FILE = "outbox.key"
KEY_FORMAT = keyring.FORMAT
LABELLED = "sealed_key_ids"  # meta: every sealed blob starts with its key id
KEEP_DAYS = 30  # delivered rows (no personal data) and refused rows (sealed) are kept this long
PREFIX_MAX = 24  # characters of the terminal id in a provisional number (the whole: 4 to 40)
DETAIL_MAX = 500

PENDING, DELIVERED, REFUSED = "pending", "delivered", "refused"

MIGRATIONS: list[sqlite.Migration] = [
    ("applications", [
        """CREATE TABLE applications (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            provisional_no TEXT NOT NULL UNIQUE,
            idempotency_key TEXT NOT NULL UNIQUE,
            item TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'refused')),
            sealed BLOB,
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_attempt_at TEXT,
            last_error TEXT,
            tracking_no TEXT,
            filed TEXT,
            delivered_at TEXT,
            refused_status INTEGER,
            refused_code TEXT,
            refused_detail TEXT,
            refused_at TEXT)""",
        "CREATE INDEX applications_state ON applications (state, seq)",
        # The day's last provisional number, per terminal day (local date).
        "CREATE TABLE counters (day TEXT PRIMARY KEY, n INTEGER NOT NULL)",
    ]),
    # Key ids: blobs sealed before them get their key's id on the first open (Outbox._label).
    ("key ids", ["CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"]),
]
_HEAD = f"substr(sealed, 1, {keyring.HEADER_BYTES})"


class OutboxError(Exception):
    """The outbox cannot be used as asked; the message says what to do."""


@dataclass(frozen=True)
class Pending:
    """An application waiting in the outbox (no personal data: see Outbox.open())."""

    provisional_no: str
    key: str  # its Idempotency-Key, the same on every attempt
    item: str = ""
    created_at: str = ""  # UTC, ISO 8601
    attempts: int = 0
    last_error: str = ""


@dataclass(frozen=True)
class Refused:
    """An application the server refused: for staff, with the server's own words."""

    provisional_no: str
    item: str
    created_at: str
    status: int  # the HTTP status; 0: refused at the terminal (its data could not be opened)
    code: str
    detail: str
    refused_at: str


def provisional_prefix(terminal_id: str) -> str:
    """The terminal's part of a provisional number: its id in letters, digits and dashes,
    at most PREFIX_MAX long, never starting like a tracking number (SQ + date). When the id
    had to be changed to fit (other characters, too long), four hex digits of its hash are
    added, so that two terminals whose ids read alike (自助机01 and 二楼机01, T_01 and T-01)
    never make the same provisional number: the server keeps them unique in the hall."""
    readable = re.sub(r"[^A-Za-z0-9]+", "-", terminal_id).strip("-")
    if readable != terminal_id or len(readable) > PREFIX_MAX:
        tag = hashlib.sha256(terminal_id.encode()).hexdigest()[:4]
        readable = (readable[:PREFIX_MAX - 5].rstrip("-") or "T") + "-" + tag
    if readable.upper().startswith("SQ"):
        readable = ("T" + readable)[:PREFIX_MAX].rstrip("-")
    return readable


def _utc(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="microseconds")


class Outbox:
    """The applications of one terminal, in `data_dir`. Safe to share between threads."""

    def __init__(self, data_dir: Path, terminal_id: str, *,
                 clock: Callable[[], datetime] = lambda: datetime.now().astimezone()) -> None:
        self.data_dir = Path(data_dir)
        self.prefix = provisional_prefix(terminal_id)
        self.clock = clock
        self.path = self.data_dir / DB_FILE
        self.key_path = self.data_dir / KEY_FILE
        self._lock = threading.RLock()
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        sqlite.create_private(self.path)
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        try:
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA secure_delete = ON")  # a deleted blob is overwritten, not left in a free page
            self.db = sqlite_utils.Database(self.conn)
            sqlite.migrate(self.conn, MIGRATIONS, self.clock())
            self._ring = KeyRing(self._read_keys())
            self._signature = keyring.signature(self.key_path)
            self._label()
            self._check_keys()
            self.prune()
        except BaseException:
            self.conn.close()
            raise

    def __repr__(self) -> str:
        return f"Outbox({str(self.data_dir)!r}, prefix={self.prefix!r})"

    def close(self) -> None:
        """Close the database (stop the Sender first: it uses it)."""
        with self._lock:
            self.conn.close()

    # -- writing -------------------------------------------------------------------

    def add(self, item: str, applicant: dict[str, Any], values: dict[str, Any]) -> Pending:
        """Store an application (committed to the disk before this returns) and give it its
        provisional number and Idempotency-Key. `applicant` and `values` are what
        HallClient.file_application sends; they must be JSON."""
        if not item:
            raise ValueError("an application needs the item's code")
        now = self.clock()
        day = now.date()
        key = str(uuid.uuid4())
        with self._transaction():
            n = self.conn.execute("INSERT INTO counters VALUES (?, 1) ON CONFLICT DO UPDATE SET n = n + 1 "
                                  "RETURNING n", (day.isoformat(),)).fetchone()[0]
            number = f"{self.prefix}-{day:%Y%m%d}-{n:04d}"
            sealed = self._seal(number, {"applicant": applicant, "values": values})
            self.conn.execute("INSERT INTO applications (provisional_no, idempotency_key, item, sealed, created_at) "
                              "VALUES (?, ?, ?, ?, ?)", (number, key, item, sealed, _utc(now)))
        log.info("application %s (%s) in the outbox", number, item)
        return Pending(number, key, item, _utc(now))

    def mark_delivered(self, provisional_no: str, filed: dict[str, Any]) -> bool:
        """Record the server's answer (less its lookup code: the citizen's secret, never on
        the kiosk's disk) and delete the personal data; False if the row was not pending
        (already recorded by another sender, or refused)."""
        filed = {k: v for k, v in filed.items() if k != "lookup_code"}
        with self._transaction():
            done = self.conn.execute(
                "UPDATE applications SET state = ?, sealed = NULL, tracking_no = ?, filed = ?, delivered_at = ? "
                "WHERE provisional_no = ? AND state = ?",
                (DELIVERED, filed["tracking_no"], json.dumps(filed, ensure_ascii=False), _utc(self.clock()),
                 provisional_no, PENDING)).rowcount
        if done:
            log.info("application %s delivered: %s", provisional_no, filed["tracking_no"])
        return bool(done)

    def mark_refused(self, provisional_no: str, status: int, code: str, detail: str) -> bool:
        """Set a pending application aside as refused, with the server's code and detail
        (which carry field names and rules, never values). It is not sent again."""
        with self._transaction():
            done = self.conn.execute(
                "UPDATE applications SET state = ?, refused_status = ?, refused_code = ?, refused_detail = ?, "
                "refused_at = ? WHERE provisional_no = ? AND state = ?",
                (REFUSED, status, code, detail[:DETAIL_MAX], _utc(self.clock()), provisional_no, PENDING)).rowcount
        if done:
            log.warning("application %s refused by the server: HTTP %s %s", provisional_no, status, code)
        return bool(done)

    def note_attempt(self, provisional_no: str, error: str) -> None:
        """An attempt that did not settle the application: counted, with why (no personal data)."""
        with self._transaction():
            self.conn.execute("UPDATE applications SET attempts = attempts + 1, last_attempt_at = ?, last_error = ? "
                              "WHERE provisional_no = ? AND state = ?",
                              (_utc(self.clock()), error[:DETAIL_MAX], provisional_no, PENDING))

    def retry(self, provisional_no: str) -> bool:
        """Staff: send a refused application again (after the catalog or the server was fixed)."""
        with self._transaction():
            return bool(self.conn.execute(
                "UPDATE applications SET state = ?, refused_status = NULL, refused_code = NULL, refused_detail = NULL, "
                "refused_at = NULL WHERE provisional_no = ? AND state = ? AND sealed IS NOT NULL",
                (PENDING, provisional_no, REFUSED)).rowcount)

    def discard(self, provisional_no: str) -> bool:
        """Staff: delete a refused application and its personal data."""
        with self._transaction():
            return bool(self.conn.execute("DELETE FROM applications WHERE provisional_no = ? AND state = ?",
                                          (provisional_no, REFUSED)).rowcount)

    def prune(self, days: float = KEEP_DAYS) -> int:
        """Delete delivered and refused rows settled more than `days` ago; how many."""
        cutoff = _utc(self.clock() - timedelta(days=days))
        with self._transaction():
            return self.conn.execute(
                "DELETE FROM applications WHERE (state = ? AND delivered_at < ?) OR (state = ? AND refused_at < ?)",
                (DELIVERED, cutoff, REFUSED, cutoff)).rowcount

    # -- reading -------------------------------------------------------------------

    def pending(self) -> list[Pending]:
        """The applications still to send, oldest first."""
        with self._lock:
            return [Pending(r["provisional_no"], r["idempotency_key"], r["item"], r["created_at"], r["attempts"],
                            r["last_error"] or "")
                    for r in self.db["applications"].rows_where("state = ?", [PENDING], order_by="seq")]

    def pending_count(self) -> int:
        with self._lock:
            return self.db["applications"].count_where("state = ?", [PENDING])

    def refused(self) -> list[Refused]:
        """The applications the server refused, oldest first: for the maintenance screen."""
        with self._lock:
            return [self._refused(r) for r in self.db["applications"].rows_where("state = ?", [REFUSED],
                                                                                 order_by="seq")]

    def refused_count(self) -> int:
        with self._lock:
            return self.db["applications"].count_where("state = ?", [REFUSED])

    def state(self, provisional_no: str) -> str | None:
        """"pending", "delivered", "refused", or None for a number this outbox does not hold."""
        row = self._row(provisional_no, "state")
        return None if row is None else row[0]

    def attempts(self, provisional_no: str) -> int:
        row = self._row(provisional_no, "attempts")
        return 0 if row is None else row[0]

    def result(self, provisional_no: str) -> dict[str, Any] | None:
        """The server's answer (tracking_no, status, promised_date, ...) once delivered."""
        row = self._row(provisional_no, "filed")
        return None if row is None or row[0] is None else json.loads(row[0])

    def refusal(self, provisional_no: str) -> Refused | None:
        with self._lock:
            rows = list(self.db["applications"].rows_where("provisional_no = ? AND state = ?",
                                                           [provisional_no, REFUSED]))
        return self._refused(rows[0]) if rows else None

    def open(self, provisional_no: str) -> dict[str, Any]:
        """The sealed data of a pending or refused application: {"applicant", "values"}."""
        row = self._row(provisional_no, "sealed")
        if row is None or row[0] is None:
            raise OutboxError(f"application {provisional_no} holds no personal data (unknown, or delivered)")
        return json.loads(self._open(provisional_no, row[0]))

    def _open(self, provisional_no: str, blob: bytes) -> bytes:
        try:
            try:
                return self._ring.open(blob, self._aad(provisional_no))
            except UnknownKey:
                if not self._refresh():
                    raise
                return self._ring.open(blob, self._aad(provisional_no))
        except UnknownKey as exc:
            raise OutboxError(f"application {provisional_no} is sealed under key {exc.key_id}, which {self.key_path} "
                              "does not hold; restore outbox.key from the terminal's backup") from None
        except InvalidTag:
            raise OutboxError(f"application {provisional_no} does not open with {self.key_path}; was the "
                              "key file replaced? Restore the one the outbox was written with") from None

    # -- keys ----------------------------------------------------------------------

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The key file's keys, oldest first; the last seals."""
        return self._ring.ids

    def sealed_key_ids(self) -> set[str]:
        with self._lock:
            return {keyring.id_of(bytes(h)) or "?" for (h,) in self.conn.execute(
                f"SELECT DISTINCT {_HEAD} FROM applications WHERE sealed IS NOT NULL")}

    def sealed_not_under(self, key_id: str) -> int:
        with self._lock:
            return int(self.conn.execute(f"SELECT COUNT(*) FROM applications WHERE sealed IS NOT NULL AND {_HEAD} <> ?",
                                         (keyring.header(key_id),)).fetchone()[0])

    def rotate_key(self, batch: int = 100, batches: int | None = None) -> tuple[bool, int, int]:
        """Start a rotation (a new newest key in outbox.key) unless one is under way, and seal
        the waiting applications again under the newest key, `batch` per transaction, at most
        `batches` batches (None: all); (started, sealed again, left under an older key).
        Resumable: what is under the newest key already is passed over."""
        self._refresh()
        started = False
        if self.sealed_not_under(self._ring.newest.id) == 0:
            if len(self._ring.keys) > 1:
                raise OutboxError(f"every waiting application is under key {self._ring.newest.id} already; drop the "
                                  "older key first (`kiosq kiosk rotate-outbox-key --finish`)")
            self._write_keys([*self._ring.keys, keyring.new_key(self.clock())])
            started = True
        done = n = 0
        while batches is None or n < batches:
            moved = self._reseal_batch(batch)
            if not moved:
                break
            done, n = done + moved, n + 1
        return started, done, self.sealed_not_under(self._ring.newest.id)

    def finish_rotation(self) -> tuple[str, ...]:
        """Drop every key but the newest, once no application is sealed under one; the ids dropped."""
        self._refresh()
        newest = self._ring.newest.id
        older = self.sealed_key_ids() - {newest}
        if older:
            raise OutboxError(f"{self.sealed_not_under(newest)} waiting applications are still under key "
                              f"{', '.join(sorted(older))}: run `kiosq kiosk rotate-outbox-key` again first")
        dropped = self._ring.ids[:-1]
        if dropped:
            self._write_keys([self._ring.newest])
        return dropped

    def _reseal_batch(self, batch: int) -> int:
        newest = self._ring.newest.id
        with self._transaction():
            rows = self.conn.execute(f"SELECT seq, provisional_no, sealed FROM applications WHERE sealed IS NOT NULL "
                                     f"AND {_HEAD} <> ? ORDER BY seq LIMIT ?",
                                     (keyring.header(newest), batch)).fetchall()
            for seq, number, blob in rows:
                self.conn.execute("UPDATE applications SET sealed = ? WHERE seq = ?",
                                  (self._ring.seal(self._open(number, blob), self._aad(number)), seq))
        return len(rows)

    # -- inside --------------------------------------------------------------------

    def _row(self, provisional_no: str, column: str) -> tuple | None:
        with self._lock:
            return self.conn.execute(f"SELECT {column} FROM applications WHERE provisional_no = ?",
                                     (provisional_no,)).fetchone()

    @staticmethod
    def _refused(r: dict) -> Refused:
        return Refused(r["provisional_no"], r["item"], r["created_at"], r["refused_status"], r["refused_code"] or "",
                       r["refused_detail"] or "", r["refused_at"])

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock, sqlite.transaction(self.conn):
            yield

    @staticmethod
    def _aad(provisional_no: str) -> bytes:
        return b"kiosq outbox v1 " + provisional_no.encode()

    def _seal(self, provisional_no: str, record: dict[str, Any]) -> bytes:
        self._refresh()
        plain = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
        return self._ring.seal(plain, self._aad(provisional_no))

    def _refresh(self) -> bool:
        """Re-read outbox.key if it changed (a rotation by `kiosq kiosk rotate-outbox-key`
        while the kiosk runs); whether it did. A file unreadable now leaves the keys as they were."""
        now = keyring.signature(self.key_path)
        if now == self._signature:
            return False
        with self._lock:
            try:
                self._ring, self._signature = KeyRing(self._read_keys(create=False)), now
            except OutboxError as exc:
                log.warning("outbox.key changed but cannot be read (%s); keeping the keys read before", exc)
                return False
        return True

    def _write_keys(self, keys: list[SealKey]) -> None:
        data = json.dumps({"format": KEY_FORMAT, "cipher": "AES-256-GCM", "seal": keyring.dump_keys(keys)},
                          indent=1).encode()
        try:
            replace_secret_file(self.key_path, data)
        except OSError as exc:
            raise OutboxError(f"cannot write the outbox key file {self.key_path} ({exc.strerror})") from None
        with self._lock:
            self._ring, self._signature = KeyRing(keys), keyring.signature(self.key_path)

    def _label(self) -> None:
        """Once: put its key's id in front of every blob sealed before key ids."""
        with self._transaction():
            if self.conn.execute("SELECT 1 FROM meta WHERE key = ?", (LABELLED,)).fetchone():
                return
            for seq, number, blob in self.conn.execute(
                    "SELECT seq, provisional_no, sealed FROM applications WHERE sealed IS NOT NULL").fetchall():
                found = self._ring.open_unlabelled(blob, self._aad(number))
                if found is None:
                    raise OutboxError(f"application {number} does not open with {self.key_path}; restore the "
                                      "outbox.key the outbox was written with from the terminal's backup")
                self.conn.execute("UPDATE applications SET sealed = ? WHERE seq = ?",
                                  (keyring.header(found.id) + blob, seq))
            self.conn.execute("INSERT INTO meta VALUES (?, '1')", (LABELLED,))

    def _check_keys(self) -> None:
        missing = sorted(self.sealed_key_ids() - set(self._ring.ids))
        if missing:
            raise OutboxError(f"{self.key_path} lacks the key {', '.join(missing)} that applications waiting in "
                              f"{self.path} are sealed with; restore outbox.key from the terminal's backup")

    def _read_keys(self, create: bool = True) -> list[SealKey]:
        path = self.key_path
        if not path.exists():
            if self.conn.execute("SELECT 1 FROM applications WHERE sealed IS NOT NULL LIMIT 1").fetchone():
                # A new key would make every waiting application unreadable: stop instead.
                raise OutboxError(f"{path} is missing but {self.path} holds sealed applications; restore outbox.key "
                                  "from the terminal's backup (no new key is made: it would open none of them)")
            if not create:
                raise OutboxError(f"{path} is missing")
            _create_key_file(path)
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise OutboxError(f"{path} can be read by others (mode {mode:o}); run `chmod 600 {path}`")
            return keyring.parse_keys(json.loads(path.read_text("ascii")), "key")
        except OSError as exc:
            raise OutboxError(f"cannot read the outbox key file {path} ({exc.strerror})") from None
        except (ValueError, KeyError, TypeError):
            raise OutboxError(f"{path} is not a kiosq outbox key file; restore it from the terminal's backup") from None


def _create_key_file(path: Path) -> None:
    data = json.dumps({"format": KEY_FORMAT, "cipher": "AES-256-GCM", "seal": keyring.dump_keys([keyring.new_key()])},
                      indent=1).encode()
    try:
        write_secret_file(path, data)  # two openers at once: one key, the other's link fails
    except OSError as exc:
        raise OutboxError(f"cannot create the outbox key file {path} ({exc.strerror}); check the data folder") from None
