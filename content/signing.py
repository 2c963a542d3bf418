"""Signed content bundles: the hall's Ed25519 key signs every bundle it publishes, and a
terminal installs only what that key signed.

A bundle's sha256 travels in the same manifest as the bundle, so on its own it proves only
that the download was not cut short; whoever can change the answer can change both. The
signature is over the bundle file's bytes exactly as `GET /api/content/bundles/{version}`
serves them, made with `DATA_DIR/signing.key` (0600; its public half `signing.pub`), which
the hall makes at its first publish or enrollment. A terminal receives the public key at
enrollment, over TLS pinned to the hall CA, and keeps it beside its config
(`[content] signing_key`).

Keys and signatures are base64 text (the raw 32-byte public key, the 64-byte signature).
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosq.base.privacy import write_secret_file

PRIVATE_FILE, PUBLIC_FILE = "signing.key", "signing.pub"
SIGNATURE_FILE = "signature"  # beside a published bundle's manifest on the server


class SigningError(Exception):
    """A bundle that is not signed by the hall's key, or a key that cannot be used; the
    message says which and what to do."""


def hall_key(data_dir: Path) -> Ed25519PrivateKey:
    """The hall's signing key, made (0600, with signing.pub beside it) the first time. Two
    processes making it at once: one key, the other reads it."""
    path = Path(data_dir) / PRIVATE_FILE
    if not path.is_file():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        Path(data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        write_secret_file(path, pem)  # False if another process made it meanwhile: read that one
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningError(f"the hall's signing key {path} cannot be read ({exc}); restore it from the backup "
                           "(terminals refuse bundles signed by another key until they enroll again)") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise SigningError(f"{path} is not an Ed25519 key; restore the hall's signing key from the backup")
    key = loaded
    public = Path(data_dir) / PUBLIC_FILE
    text = public_text(key.public_key())
    if not public.is_file() or public.read_text("ascii").strip() != text:
        public.write_text(text + "\n", "ascii")
    return key


def public_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def sign(key: Ed25519PrivateKey, path: Path) -> str:
    """The base64 signature of a file's bytes."""
    return base64.b64encode(key.sign(Path(path).read_bytes())).decode()


def load_public(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise SigningError("the hall's signing key is not a base64 Ed25519 public key; enroll the terminal "
                           "again") from None


def verify(public: str, path: Path, signature: object) -> None:
    """SigningError unless `signature` (base64) is the hall key's over the file's bytes."""
    if not isinstance(signature, str) or not signature:
        raise SigningError("the bundle is not signed by the hall; publish it again on the hall server "
                           "(`kiosq server publish` signs it)")
    try:
        raw = base64.b64decode(signature, validate=True)
    except binascii.Error:
        raise SigningError("the bundle's signature is not base64; it was altered on the way") from None
    try:
        load_public(public).verify(raw, Path(path).read_bytes())
    except InvalidSignature:
        raise SigningError("the bundle's signature does not match its bytes and the hall's key: it was altered, "
                           "or signed by another hall") from None
