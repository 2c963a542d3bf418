"""People who sign in as themselves: staff accounts, their passwords and sessions. The rules
(what a login and a password may be, how long a session lives); no I/O, the store keeps
the rows (queue/store/people.py) and routers/people.py serves them.

Passwords are hashed with argon2id (argon2-cffi, RFC 9106's low-memory profile: 64 MiB,
3 passes), so a copied database does not give them away. A session's id is 32 random
bytes, in the cookie only; the database keeps its SHA-256, as for tokens: there is
nothing to brute-force in 256 random bits.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

STAFF_ROLES = ("staff", "supervisor", "admin")
LOGIN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 256
COOKIE = "kiosq_session"
# Wrong passwords: this many per login and address in throttle.WINDOW, then 429. Counted
# per login *and* address, so that nobody elsewhere can lock a clerk out of their account.
WRONG_PASSWORDS = 5

_hasher = PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)


@cache
def _dummy_hash() -> str:
    """Verified against when the login is unknown, so that a wrong login costs what a wrong
    password costs: the answer's time does not tell which logins exist."""
    return _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class User:
    login: str
    name: str
    role: str
    windows: tuple[int, ...]
    created_at: datetime
    disabled_at: datetime | None
    last_sign_in_at: datetime | None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


def check_login(login: str) -> str:
    """The login as stored (lower case), or ValueError saying what a login may be."""
    login = login.strip().lower()
    if not LOGIN.match(login):
        raise ValueError(f"{login!r} cannot be a login: 2-32 lower-case letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit, e.g. zhangmin or s.li")
    return login


def check_password(password: str, login: str) -> None:
    """ValueError saying what to change, for a password that must not be set."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password is too short: at least {MIN_PASSWORD} characters "
                         "(a few words are easier to remember than symbols)")
    if len(password) > MAX_PASSWORD:
        raise ValueError(f"the password is too long: at most {MAX_PASSWORD} characters")
    if login and login.lower() in password.lower():
        raise ValueError("the password must not contain the login; choose another")
    if len(set(password)) < 4:
        raise ValueError("the password repeats too few characters; choose another")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password: str, stored: str | None) -> bool:
    """Whether `password` is the one `stored` was made from. With no stored hash (an unknown
    login) the same work is done, and the answer is False."""
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_session_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_session(secret: str) -> str:
    return hashlib.sha256(("kiosq-session:" + secret).encode()).hexdigest()


def session_ends(created_at: datetime, last_seen: datetime, idle: timedelta, lifetime: timedelta) -> datetime:
    """When a session ends if it is not used again: the idle timeout from its last use, but
    never past its absolute lifetime from sign-in."""
    return min(last_seen + idle, created_at + lifetime)


def check_windows(role: str, windows: tuple[int, ...], hall_windows: Mapping[int, object]) -> None:
    """ValueError for windows a user of `role` cannot be given."""
    if role not in STAFF_ROLES:
        raise ValueError(f"unknown role {role!r}; use one of: {', '.join(STAFF_ROLES)}")
    if role == "staff" and not windows:
        raise ValueError("a staff account needs the windows it may act at, e.g. --windows 1,2")
    if windows and role == "admin":
        raise ValueError("an admin account acts at every window and takes no windows")
    unknown = [w for w in windows if w not in hall_windows]
    if unknown:
        raise ValueError(f"no window {', '.join(map(str, unknown))} in this hall; "
                         f"windows are: {', '.join(map(str, hall_windows))}")
