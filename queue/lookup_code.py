"""An application's lookup code (查询密码): 8 random characters from an alphabet without
look-alikes (no 0/O, 1/I/L), printed on the receipt and put in its QR code's URL fragment.
The server keeps only a keyed hash (HMAC, queue/personal.py `digest`); a citizen may type it
in either case, with spaces or dashes (`ABCD-EFGH`, `abcd efgh`)."""

import hmac
import secrets

from kiosq.queue.fleet import CODE_ALPHABET
from kiosq.queue.personal import Personal

LENGTH = 8
TYPED_MAX = 32  # what a lookup may send: the code with spaces and dashes


def new_code() -> str:
    """A fresh code: 31^8 (about 8.5e11) possibilities, from the OS's random source."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(LENGTH))


def normal(typed: str) -> str:
    """A typed code as it is hashed: capitals, without spaces and dashes."""
    return "".join(c for c in typed.upper() if c not in " -\t")


def code_hash(personal: Personal, code: str) -> str:
    return personal.digest("lookup code:" + normal(code))


def matches(personal: Personal, typed: str, stored_hash: str | None) -> bool:
    """Whether a typed code is the application's (False for an application without one)."""
    given = normal(typed)
    if stored_hash is None or len(given) != LENGTH or any(c not in CODE_ALPHABET for c in given):
        return False
    return hmac.compare_digest(code_hash(personal, given), stored_hash)

