"""Applicants' personal data: sealed with AES-GCM at rest, found by a keyed hash, shown masked.

The keys live in `DATA_DIR/applicant.key` (JSON, mode 0600, made on the server's first
start), never in the database: a copied database file reveals no ID number, name or phone.
Two independent 256-bit keys: one for AES-GCM, one for HMAC-SHA256 of ID numbers (lookups
by card) and of request bodies (idempotency fingerprints), so that neither a plain hash of
an 18-digit number nor of a body holding one is on disk. Losing the key file loses the
personal data of every application: back it up apart from the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kiosq.base.privacy import (
    mask_field_value,
    mask_id_number,
    mask_name,
    mask_phone,
    mask_text,
    write_secret_file,
)

KEY_FILE = "applicant.key"
KEY_FORMAT = 1
NONCE_BYTES = 12
_AAD = b"kiosq applicant v1"  # every sealed blob is an applicant record of this format

__all__ = ["KeyFileError", "Personal", "mask_field_value", "mask_id_number", "mask_name", "mask_phone", "mask_text"]


class KeyFileError(Exception):
    """The key file cannot be made or used; the message says what to do."""


class Personal:
    """Seals and opens applicant records, and hashes ID numbers for lookups."""

    def __init__(self, seal_key: bytes, hash_key: bytes) -> None:
        if len(seal_key) != 32 or len(hash_key) != 32:
            raise ValueError("applicant keys are 32 bytes each")
        self._aead = AESGCM(seal_key)
        self._hash_key = hash_key
        self._seal_id = hashlib.sha256(seal_key).hexdigest()

    def check_value(self) -> str:
        """Says which keys these are, and nothing of them: the database keeps it, so that a
        server process whose data folder holds other keys (several processes on one database,
        each with a copy of the folder) is refused before it seals records the others cannot open."""
        return self.digest("kiosq applicant key check|" + self._seal_id)

    def __repr__(self) -> str:
        return "Personal(<keys hidden>)"

    @classmethod
    def in_dir(cls, data_dir: str | Path) -> Personal:
        """The keys of a data folder, made (0600) the first time."""
        path = Path(data_dir) / KEY_FILE
        if not path.exists():
            _create_key_file(path)
        return cls._read(path)

    @classmethod
    def _read(cls, path: Path) -> Personal:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise KeyFileError(f"{path} can be read by others (mode {mode:o}); run `chmod 600 {path}` "
                                   "and check who copied it")
            data = json.loads(path.read_text("ascii"))
            return cls(base64.b64decode(data["seal"], validate=True), base64.b64decode(data["hash"], validate=True))
        except OSError as exc:
            raise KeyFileError(f"cannot read the applicant key file {path} ({exc.strerror})") from None
        except (ValueError, KeyError, TypeError):
            raise KeyFileError(f"{path} is not a kiosq applicant key file; restore it from the backup "
                               "(without it the personal data of applications cannot be read)") from None

    def seal(self, record: dict) -> bytes:
        """A record (applicant and form values) as nonce + AES-GCM ciphertext."""
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps(record, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
        return nonce + self._aead.encrypt(nonce, plain, _AAD)

    def open(self, blob: bytes) -> dict:
        try:
            return json.loads(self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _AAD))
        except InvalidTag:
            raise KeyFileError("an applicant record does not open with this key file; was applicant.key "
                               "replaced? Restore the one this database was written with") from None

    def opens(self, blob: bytes) -> bool:
        """Whether a sealed record was sealed with these keys."""
        try:
            self.open(blob)
        except KeyFileError:
            return False
        return True

    def id_hash(self, id_number: str) -> str:
        """HMAC-SHA256 of a normalised ID number: equal numbers, equal hashes; no key, no guessing."""
        return self.digest("id:" + "".join(id_number.split()).upper())

    def digest(self, text: str) -> str:
        return hmac.new(self._hash_key, text.encode(), hashlib.sha256).hexdigest()


def _create_key_file(path: Path) -> None:
    data = json.dumps({"format": KEY_FORMAT, "cipher": "AES-256-GCM", "hmac": "SHA-256",
                       "seal": base64.b64encode(os.urandom(32)).decode(),
                       "hash": base64.b64encode(os.urandom(32)).decode()}).encode()
    try:
        write_secret_file(path, data)  # two servers starting at once: one key, the other's link fails
    except OSError as exc:
        raise KeyFileError(f"cannot create the applicant key file {path} ({exc.strerror}); "
                           "pass a writable --data-dir") from None


