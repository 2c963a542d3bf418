"""Sealing keys with ids, for the server's applicant.key and the terminal's outbox.key.

A key file holds one or more AES-256-GCM keys, each with its id (the first 8 bytes of a
SHA-256 of the key, in hex: it names the key and reveals nothing of it); the newest (the
last) seals, every one opens. Each sealed blob starts with a version byte and its key's id,
so that a record says which key opens it, a rotation finds the records still under an
older key, and a key file that lacks a key in use is noticed before anything is sealed.

Blob: 0x02 | key id (8 bytes) | nonce (12 bytes) | AES-GCM ciphertext and tag.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = 2  # key files with a list of keys and their ids (format 1: one key, no id)
VERSION = b"\x02"
ID_BYTES = 8
NONCE_BYTES = 12
HEADER_BYTES = len(VERSION) + ID_BYTES


class UnknownKey(Exception):
    """A blob sealed under a key this ring does not hold (`key_id`), or not a blob at all."""

    def __init__(self, key_id: str | None) -> None:
        super().__init__(key_id or "no key id")
        self.key_id = key_id


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"kiosq key id|" + key).digest()[:ID_BYTES].hex()


@dataclass(frozen=True, repr=False)
class SealKey:
    id: str
    key: bytes
    created: str  # UTC, ISO 8601; "" for a key from a format-1 file

    def __repr__(self) -> str:
        return f"SealKey({self.id!r}, <hidden>)"


def new_key(now: datetime | None = None) -> SealKey:
    key = os.urandom(32)
    return SealKey(key_id(key), key, (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds"))


def header(key: str) -> bytes:
    """What every blob sealed under key id `key` starts with (for finding them in SQL)."""
    return VERSION + bytes.fromhex(key)


def id_of(blob: bytes) -> str | None:
    """The key id a blob (or its first HEADER_BYTES) was sealed under; None for one without."""
    if len(blob) < HEADER_BYTES or blob[:1] != VERSION:
        return None
    return blob[1:HEADER_BYTES].hex()


def parse_keys(data: dict[str, Any], legacy_field: str) -> list[SealKey]:
    """The seal keys of a key file's JSON, oldest first. Format 1 held one key under
    `legacy_field`; format 2 a list under "seal". ValueError, KeyError or TypeError when
    it is not a key file."""
    if data.get("format", 1) == 1:
        key = _b64(data[legacy_field])
        return [SealKey(key_id(key), key, "")]
    if data["format"] != FORMAT:
        raise ValueError(f"key file format {data['format']!r}")
    keys = []
    for entry in data["seal"]:
        key = _b64(entry["key"])
        if entry["id"] != key_id(key):
            raise ValueError("a key does not match its id")
        keys.append(SealKey(entry["id"], key, str(entry.get("created", ""))))
    if not keys or len({k.id for k in keys}) != len(keys):
        raise ValueError("no keys, or one twice")
    return keys


def dump_keys(keys: Iterable[SealKey]) -> list[dict[str, str]]:
    return [{"id": k.id, "key": base64.b64encode(k.key).decode(), "created": k.created} for k in keys]


def _b64(text: str) -> bytes:
    key = base64.b64decode(text, validate=True)
    if len(key) != 32:
        raise ValueError("not a 256-bit key")
    return key


class KeyRing:
    """Seals under the newest key, opens under any; immutable (a reloaded file is a new ring)."""

    def __init__(self, keys: Sequence[SealKey]) -> None:
        if not keys:
            raise ValueError("a key ring needs a key")
        self.keys = tuple(keys)
        self._aead = {k.id: AESGCM(k.key) for k in keys}

    def __repr__(self) -> str:
        return f"KeyRing({', '.join(k.id for k in self.keys)})"

    @property
    def newest(self) -> SealKey:
        return self.keys[-1]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(k.id for k in self.keys)

    def seal(self, plain: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return header(self.newest.id) + nonce + self._aead[self.newest.id].encrypt(nonce, plain, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        """UnknownKey when no key of the ring sealed it; InvalidTag when it was changed."""
        found = id_of(blob)
        aead = self._aead.get(found) if found else None
        if aead is None:
            raise UnknownKey(found)
        body = blob[HEADER_BYTES:]
        return aead.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], aad)

    def open_unlabelled(self, blob: bytes, aad: bytes) -> SealKey | None:
        """The key that opens a blob sealed before key ids (nonce and ciphertext only), if any."""
        for k in self.keys:
            try:
                self._aead[k.id].decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
            except InvalidTag:
                continue
            return k
        return None


def signature(path: Path) -> tuple[int, int, int] | None:
    """Changes whenever the file is replaced or written (for reloading a key file)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size
