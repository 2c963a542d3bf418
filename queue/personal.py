"""Applicants' personal data: sealed with AES-GCM at rest, found by a keyed hash, shown masked.

The keys live in `DATA_DIR/applicant.key` (JSON, mode 0600, made on a new hall's first
start), never in the database: a copied database file reveals no ID number, name or phone.
Two kinds of 256-bit key: seal keys for AES-GCM, each with its id (kiosq.base.keyring: every
sealed record starts with the id of the key that sealed it; the newest seals, the older ones
only open, until `kiosq server rotate-key --finish` drops them), and one hash key for
HMAC-SHA256 of ID numbers (lookups by card), of request bodies (idempotency fingerprints)
and of lookup codes, so that neither a plain hash of an 18-digit number nor of a body
holding one is on disk. The hash key is not rotated: the values it hashes are not all kept
(a lookup code is stored only as its hash), so they could not be hashed again.

Losing the key file loses the personal data of every application: back it up apart from
the database. The server refuses to start without it once the database holds sealed
records (queue/server.py), and re-reads it when it changes (a rotation while it runs).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import stat
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag

from kiosq.base import keyring
from kiosq.base.keyring import KeyRing, SealKey, UnknownKey
from kiosq.base.privacy import (
    mask_field_value,
    mask_id_number,
    mask_name,
    mask_phone,
    mask_text,
    replace_secret_file,
    write_secret_file,
)

KEY_FILE = "applicant.key"
KEY_FORMAT = keyring.FORMAT
_AAD = b"kiosq applicant v1"  # every sealed blob is an applicant record of this format
log = logging.getLogger("kiosq.personal")

__all__ = ["KeyFileError", "Personal", "mask_field_value", "mask_id_number", "mask_name", "mask_phone", "mask_text"]


class KeyFileError(Exception):
    """The key file cannot be made or used; the message says what to do."""


class Personal:
    """Seals and opens applicant records, and hashes ID numbers for lookups. With `path`
    (the key file it was read from), a record under a key it does not hold, and every seal,
    first re-read the file if it has changed: `rotate-key` adds keys while servers run."""

    def __init__(self, seal_keys: bytes | Sequence[bytes | SealKey], hash_key: bytes,
                 path: Path | None = None) -> None:
        given = [seal_keys] if isinstance(seal_keys, bytes) else list(seal_keys)
        keys = [k if isinstance(k, SealKey) else SealKey(keyring.key_id(k), k, "") for k in given]
        if len(hash_key) != 32 or any(len(k.key) != 32 for k in keys):
            raise ValueError("applicant keys are 32 bytes each")
        self._ring = KeyRing(keys)
        self._hash_key = hash_key
        self.path = path
        self._signature = keyring.signature(path) if path is not None else None
        self._reload = threading.Lock()

    def __repr__(self) -> str:
        return f"Personal(keys {', '.join(self.key_ids)}; hidden)"

    # -- which keys ------------------------------------------------------------------

    @property
    def key_id(self) -> str:
        """The id of the key that seals."""
        return self._ring.newest.id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key that opens, oldest first."""
        return self._ring.ids

    @property
    def keys(self) -> tuple[SealKey, ...]:
        return self._ring.keys

    def check_value(self) -> str:
        """Says which hall's keys these are, and nothing of them: the database keeps it, so that
        a server process whose data folder holds another hall's key file is refused. Made with
        the hash key, which a rotation keeps."""
        return self.digest("kiosq applicant key check v2")

    def matches_check(self, value: str) -> bool:
        """Whether `value` is this key file's check value, or the one a server before key ids
        kept (made from the seal key it had)."""
        legacy = (self.digest("kiosq applicant key check|" + hashlib.sha256(k.key).hexdigest()) for k in self.keys)
        return hmac.compare_digest(value, self.check_value()) or any(hmac.compare_digest(value, v) for v in legacy)

    # -- the file --------------------------------------------------------------------

    @classmethod
    def in_dir(cls, data_dir: str | Path, create: bool = True) -> Personal:
        """The keys of a data folder; made (0600) the first time if `create`, else
        KeyFileError when there is no key file."""
        path = Path(data_dir) / KEY_FILE
        if not path.exists():
            if not create:
                raise KeyFileError(f"there is no {KEY_FILE} in {data_dir}")
            _create_key_file(path)
        return cls.read(path)

    @classmethod
    def read(cls, path: Path) -> Personal:
        seal, hash_key = _read_file(path)
        return cls(seal, hash_key, path)

    def refresh(self) -> bool:
        """Re-read the key file if it changed since it was read; whether it did. A file that
        cannot be read now leaves the keys as they were (the next call tries again)."""
        if self.path is None or keyring.signature(self.path) == self._signature:
            return False
        with self._reload:
            now = keyring.signature(self.path)
            if now == self._signature:
                return False
            try:
                seal, hash_key = _read_file(self.path)
            except KeyFileError:
                return False
            if hash_key != self._hash_key:  # another hall's file: keep ours (the next start refuses it)
                log.warning("%s was replaced by another hall's key file; keeping the keys read before", self.path)
                return False
            self._ring, self._signature = KeyRing(seal), now
            return True

    def write(self, keys: Sequence[SealKey]) -> None:
        """Replace the key file with these seal keys (the hash key stays), atomically."""
        assert self.path is not None
        data = json.dumps({"format": KEY_FORMAT, "cipher": "AES-256-GCM", "hmac": "SHA-256",
                           "hash": base64.b64encode(self._hash_key).decode(), "seal": keyring.dump_keys(keys)},
                          indent=1).encode()
        try:
            replace_secret_file(self.path, data)
        except OSError as exc:
            raise KeyFileError(f"cannot write the applicant key file {self.path} ({exc.strerror})") from None
        with self._reload:
            self._ring, self._signature = KeyRing(keys), keyring.signature(self.path)

    # -- sealing ---------------------------------------------------------------------

    def seal(self, record: dict) -> bytes:
        """A record (applicant and form values) as key id + nonce + AES-GCM ciphertext."""
        self.refresh()
        plain = json.dumps(record, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
        return self._ring.seal(plain, _AAD)

    def open(self, blob: bytes) -> dict:
        try:
            try:
                plain = self._ring.open(bytes(blob), _AAD)
            except UnknownKey:
                if not self.refresh():
                    raise
                plain = self._ring.open(bytes(blob), _AAD)
        except UnknownKey as exc:
            raise KeyFileError(f"an applicant record is sealed under key {exc.key_id}, which {KEY_FILE} does not "
                               "hold; restore applicant.key from the backup (or copy the hall's newest one)") from None
        except InvalidTag:
            raise KeyFileError("an applicant record does not open with this key file; was applicant.key "
                               "replaced? Restore the one this database was written with") from None
        return json.loads(plain)

    def opens(self, blob: bytes) -> bool:
        """Whether a sealed record was sealed with these keys."""
        try:
            self.open(blob)
        except KeyFileError:
            return False
        return True

    def reseal(self, blob: bytes) -> bytes | None:
        """The record sealed again under the newest key; None if it already is."""
        if keyring.id_of(bytes(blob)) == self.key_id:
            return None
        return self.seal(self.open(blob))

    def label_unlabelled(self, blob: bytes) -> bytes | None:
        """A record sealed before key ids, with its key's id in front (the ciphertext as it
        was); the record as it is if it carries a key id of this file already; None if no
        key of the file opens it."""
        blob = bytes(blob)
        if keyring.id_of(blob) in self.key_ids and self.opens(blob):
            return blob
        found = self._ring.open_unlabelled(blob, _AAD)
        return None if found is None else keyring.header(found.id) + blob

    # -- hashing ---------------------------------------------------------------------

    def id_hash(self, id_number: str) -> str:
        """HMAC-SHA256 of a normalised ID number: equal numbers, equal hashes; no key, no guessing."""
        return self.digest("id:" + "".join(id_number.split()).upper())

    def digest(self, text: str) -> str:
        return hmac.new(self._hash_key, text.encode(), hashlib.sha256).hexdigest()


def add_key(personal: Personal, now: datetime | None = None) -> SealKey:
    """A new newest key in the key file (the older ones kept, to open what they sealed)."""
    key = keyring.new_key(now)
    personal.write([*personal.keys, key])
    return key


def _read_file(path: Path) -> tuple[list[SealKey], bytes]:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise KeyFileError(f"{path} can be read by others (mode {mode:o}); run `chmod 600 {path}` "
                               "and check who copied it")
        data = json.loads(path.read_text("ascii"))
        return keyring.parse_keys(data, "seal"), base64.b64decode(data["hash"], validate=True)
    except OSError as exc:
        raise KeyFileError(f"cannot read the applicant key file {path} ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError):
        raise KeyFileError(f"{path} is not a kiosq applicant key file; restore it from the backup "
                           "(without it the personal data of applications cannot be read)") from None


def _create_key_file(path: Path) -> None:
    data = json.dumps({"format": KEY_FORMAT, "cipher": "AES-256-GCM", "hmac": "SHA-256",
                       "hash": base64.b64encode(os.urandom(32)).decode(),
                       "seal": keyring.dump_keys([keyring.new_key()])}, indent=1).encode()
    try:
        write_secret_file(path, data)  # two servers starting at once: one key, the other's link fails
    except OSError as exc:
        raise KeyFileError(f"cannot create the applicant key file {path} ({exc.strerror}); "
                           "pass a writable --data-dir") from None
