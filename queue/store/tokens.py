"""Bearer tokens: who holds one (a name), its role and, for staff, its windows. Only a
token's hash is stored; the secret is shown once, when it is made."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from kiosq.queue.config import Hall
from kiosq.queue.store.database import Database
from kiosq.queue.store.views import dt, ts

# supervisor: acts at its windows like staff (all windows if it names none) and decides
# on rejections (窗口无否决权)
ROLES = ("terminal", "staff", "supervisor", "admin")


@dataclass(frozen=True, slots=True)
class Token:
    """A caller, as the rules see it (engine.Actor): plain data, no secret."""

    name: str
    role: str
    windows: tuple[int, ...]  # staff: the windows this token may act at
    key: str = ""  # the stored hash: identifies the holder (idempotency keys are scoped by it)
    expires_at: datetime | None = None  # None: until revoked
    # "token": a bearer token, `name` its holder's name; "session": a person signed in,
    # `name` their login, `display_name` their name as people know it
    via: Literal["token", "session"] = "token"
    display_name: str = ""

    def may_act_at(self, window: int) -> bool:
        """Window actions: admin anywhere, staff at its windows, a supervisor at its windows
        (at every window when it names none: the hall's duty supervisor)."""
        if self.role == "admin":
            return True
        if self.role == "supervisor":
            return not self.windows or window in self.windows
        return self.role == "staff" and window in self.windows


def hash_token(secret: str) -> str:
    # Tokens are 32 random bytes, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def check_token_request(role: str, name: str, windows: tuple[int, ...], hall: Hall,
                        active_names: set[str]) -> None:
    """ValueError saying what to change, for a token that must not be made."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of: {', '.join(ROLES)}")
    if not name.strip():
        raise ValueError("a token needs a name: who or what holds it, e.g. T01 or 张敏")
    if name in active_names:
        raise ValueError(f"an active token is already named {name!r}; choose another name")
    if role == "staff" and not windows:
        raise ValueError("a staff token needs the windows it may act at, e.g. --windows 1,2")
    if windows and role not in ("staff", "supervisor"):
        raise ValueError(f"a {role} token takes no windows")
    unknown = [w for w in windows if w not in hall.windows]
    if unknown:
        raise ValueError(f"no window {', '.join(map(str, unknown))} in this hall; "
                         f"windows are: {', '.join(map(str, hall.windows))}")


class Tokens:
    def __init__(self, db: Database, hall: Hall) -> None:
        self.db, self.hall = db, hall

    def create(self, role: str, name: str, windows: tuple[int, ...], now: datetime,
               expires_at: datetime | None = None) -> str:
        """Make a token and return its secret."""
        check_token_request(role, name, windows, self.hall, {t["name"] for t in self.active(now)})
        secret = f"kq_{role[0]}_{secrets.token_urlsafe(32)}"
        self.insert(secret, name, role, windows, now, expires_at)
        return secret

    def insert(self, secret: str, name: str, role: str, windows: tuple[int, ...], now: datetime,
               expires_at: datetime | None = None) -> None:
        self.db.execute("INSERT INTO tokens (hash, name, role, windows, created_at, expires_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (hash_token(secret), name, role, json.dumps(list(windows)), ts(now), ts(expires_at)))

    def active(self, now: datetime) -> list[dict[str, Any]]:
        """Tokens neither revoked nor expired (names and roles, never secrets), oldest first."""
        return [t for t in self.listing(now) if t["state"] == "active"]

    def listing(self, now: datetime) -> list[dict[str, Any]]:
        """Every token ever made, oldest first, with its state: active, expired or revoked."""
        out = []
        for name, role, windows, created, expires, used, revoked in self.db.rows(
                "SELECT name, role, windows, created_at, expires_at, last_used_at, revoked_at FROM tokens "
                "ORDER BY created_at"):
            state = ("revoked" if revoked is not None
                     else "expired" if expires is not None and datetime.fromisoformat(expires) <= now else "active")
            out.append({"name": name, "role": role, "windows": json.loads(windows), "created_at": created,
                        "expires_at": expires, "last_used_at": used, "revoked_at": revoked, "state": state})
        return out

    def by_secret(self, secret: str) -> Token | None:
        """The token of `secret` unless revoked; an expired one too (the caller says so)."""
        hashed = hash_token(secret)
        row = self.db.one("SELECT name, role, windows, expires_at FROM tokens WHERE hash = ? AND revoked_at IS NULL",
                          (hashed,))
        return None if row is None else Token(row[0], row[1], tuple(json.loads(row[2])), hashed, dt(row[3]))

    def used(self, hashed: str, now: datetime) -> None:
        self.db.execute("UPDATE tokens SET last_used_at = ? WHERE hash = ?", (ts(now), hashed))

    def other_role_holding(self, name: str) -> str | None:
        """The role of an active token other than a terminal's named `name`, if any."""
        row = self.db.one("SELECT role FROM tokens WHERE name = ? AND role != 'terminal' AND revoked_at IS NULL",
                          (name,))
        return None if row is None else row[0]

    def has_terminal_token(self, name: str) -> bool:
        return self.db.one("SELECT 1 FROM tokens WHERE name = ? AND role = 'terminal'", (name,)) is not None

    def revoke(self, name: str, now: datetime, role: str | None = None) -> int:
        """Revoke the active tokens named `name` (of `role` only, if given); how many."""
        if role is None:
            return self.db.count("UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                                 (ts(now), name))
        return self.db.count("UPDATE tokens SET revoked_at = ? WHERE name = ? AND role = ? AND revoked_at IS NULL",
                             (ts(now), name, role))

    def terminals_first_made(self) -> list[tuple[str, str]]:
        """(name, when its first active token was made) of every terminal token's holder."""
        return [(r[0], r[1]) for r in self.db.rows(
            "SELECT name, MIN(created_at) FROM tokens WHERE role = 'terminal' AND revoked_at IS NULL GROUP BY name")]
