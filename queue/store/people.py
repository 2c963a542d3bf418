"""Staff accounts, their sign-in sessions, and the audit log (queue/people.py has the rules).
A password hash never leaves this module but to be checked; a session is found by the hash
of its secret. The audit log is only ever appended to (the schema's triggers refuse the rest).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kiosq.queue.config import Hall
from kiosq.queue.people import User, check_login, check_windows
from kiosq.queue.store.database import Database
from kiosq.queue.store.errors import AlreadyExists, NotFound
from kiosq.queue.store.views import dt, ts

USER_COLUMNS = "login, name, role, windows, created_at, disabled_at, last_sign_in_at"


def row_user(row: tuple[Any, ...]) -> User:
    return User(row[0], row[1], row[2], tuple(json.loads(row[3])), datetime.fromisoformat(row[4]), dt(row[5]),
                dt(row[6]))


@dataclass(frozen=True, slots=True)
class Who:
    """Who did something, for the audit log: a login, a token's name, or the command line."""

    actor: str
    kind: str  # user, token, terminal, cli, citizen
    address: str | None = None


@dataclass(frozen=True, slots=True)
class SessionRow:
    user: User
    created_at: datetime
    last_seen: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    action: str
    actor: str
    actor_kind: str
    address: str | None
    target: str | None
    detail: dict[str, Any]


class Users:
    def __init__(self, db: Database, hall: Hall) -> None:
        self.db, self.hall = db, hall

    def create(self, now: datetime, login: str, name: str, role: str, windows: tuple[int, ...],
               password_hash: str) -> User:
        login = check_login(login)
        if not name.strip():
            raise ValueError("a user needs a name as staff and citizens know them, e.g. --name 张敏")
        check_windows(role, windows, self.hall.windows)
        if self.db.one("SELECT 1 FROM users WHERE login = ?", (login,)) is not None:
            raise AlreadyExists(f"there is already a user {login!r}; choose another login "
                              "(a disabled user keeps the login: enable it instead)")
        self.db.execute("INSERT INTO users (login, name, role, windows, password_hash, created_at, password_set_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (login, name.strip(), role, json.dumps(list(windows)), password_hash, ts(now), ts(now)))
        return self.require(login)

    def get(self, login: str) -> User | None:
        row = self.db.one(f"SELECT {USER_COLUMNS} FROM users WHERE login = ?", (login.strip().lower(),))
        return None if row is None else row_user(row)

    def require(self, login: str) -> User:
        user = self.get(login)
        if user is None:
            raise NotFound(f"no user {login!r}; `kiosq server user list` shows the hall's users")
        return user

    def password_hash(self, login: str) -> str | None:
        row = self.db.one("SELECT password_hash FROM users WHERE login = ?", (login.strip().lower(),))
        return None if row is None else str(row[0])

    def listing(self) -> list[tuple[User, int]]:
        """Every user with how many sessions it has open, by login."""
        return [(row_user(r[:7]), int(r[7])) for r in self.db.rows(
            f"SELECT {', '.join('u.' + c.strip() for c in USER_COLUMNS.split(','))}, "
            "(SELECT COUNT(*) FROM sessions s WHERE s.login = u.login AND s.ended_at IS NULL) "
            "FROM users u ORDER BY u.login")]

    def change(self, login: str, name: str | None, role: str | None, windows: tuple[int, ...] | None) -> User:
        user = self.require(login)
        role = user.role if role is None else role
        windows = user.windows if windows is None else windows
        if role == "admin":
            windows = ()
        check_windows(role, windows, self.hall.windows)
        if name is not None and not name.strip():
            raise ValueError("a user's name cannot be empty")
        self.db.execute("UPDATE users SET name = ?, role = ?, windows = ? WHERE login = ?",
                        (user.name if name is None else name.strip(), role, json.dumps(list(windows)), user.login))
        return self.require(login)

    def set_disabled(self, now: datetime, login: str, disabled: bool) -> User:
        user = self.require(login)
        self.db.execute("UPDATE users SET disabled_at = ? WHERE login = ?",
                        (ts(now) if disabled else None, user.login))
        if disabled:
            self.end_sessions(now, user.login)
        return self.require(login)

    def set_password(self, now: datetime, login: str, password_hash: str) -> User:
        user = self.require(login)
        self.db.execute("UPDATE users SET password_hash = ?, password_set_at = ? WHERE login = ?",
                        (password_hash, ts(now), user.login))
        self.end_sessions(now, user.login)
        return user

    def signed_in(self, now: datetime, login: str) -> None:
        self.db.execute("UPDATE users SET last_sign_in_at = ? WHERE login = ?", (ts(now), login))

    # -- sessions ----------------------------------------------------------------------

    def open_session(self, now: datetime, session_hash: str, login: str, expires_at: datetime) -> None:
        self.db.execute("INSERT INTO sessions (hash, login, created_at, last_seen, expires_at) VALUES (?, ?, ?, ?, ?)",
                        (session_hash, login, ts(now), ts(now), ts(expires_at)))

    def session(self, session_hash: str) -> SessionRow | None:
        """An open session of an enabled user (its expiry is the caller's to check)."""
        row = self.db.one(
            f"SELECT {', '.join('u.' + c.strip() for c in USER_COLUMNS.split(','))}, s.created_at, s.last_seen, "
            "s.expires_at FROM sessions s JOIN users u ON u.login = s.login "
            "WHERE s.hash = ? AND s.ended_at IS NULL AND u.disabled_at IS NULL", (session_hash,))
        if row is None:
            return None
        return SessionRow(row_user(row[:7]), datetime.fromisoformat(row[7]), datetime.fromisoformat(row[8]),
                          datetime.fromisoformat(row[9]))

    def touch_session(self, now: datetime, session_hash: str, expires_at: datetime) -> None:
        self.db.execute("UPDATE sessions SET last_seen = ?, expires_at = ? WHERE hash = ? AND ended_at IS NULL",
                        (ts(now), ts(expires_at), session_hash))

    def end_session(self, now: datetime, session_hash: str) -> str | None:
        """End one session; the login it was of, if it was open."""
        row = self.db.one("SELECT login FROM sessions WHERE hash = ? AND ended_at IS NULL", (session_hash,))
        if row is None:
            return None
        self.db.execute("UPDATE sessions SET ended_at = ? WHERE hash = ?", (ts(now), session_hash))
        return str(row[0])

    def end_sessions(self, now: datetime, login: str) -> int:
        return self.db.count("UPDATE sessions SET ended_at = ? WHERE login = ? AND ended_at IS NULL",
                             (ts(now), login))


class Audit:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, now: datetime, action: str, who: Who, target: str | None = None,
               detail: dict[str, Any] | None = None) -> None:
        self.db.execute("INSERT INTO audit (at, action, actor, actor_kind, address, target, detail) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (ts(now), action, who.actor, who.kind, who.address, target,
                         json.dumps(detail or {}, ensure_ascii=False, sort_keys=True)))

    def entries(self, *, since: datetime | None = None, until: datetime | None = None, action: str | None = None,
                actor: str | None = None, limit: int = 200) -> list[AuditEntry]:
        """Newest first. `action` matches exactly, or a prefix when it ends with '.' or '*'."""
        where, args = [], []
        if since is not None:
            where.append("at >= ?")
            args.append(ts(since))
        if until is not None:
            where.append("at < ?")
            args.append(ts(until))
        if action:
            if action.endswith(("*", ".")):
                prefix = action.rstrip("*")
                where.append(f"substr(action, 1, {len(prefix)}) = ?")
                args.append(prefix)
            else:
                where.append("action = ?")
                args.append(action)
        if actor:
            where.append("actor = ?")
            args.append(actor)
        sql = ("SELECT id, at, action, actor, actor_kind, address, target, detail FROM audit"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?")
        return [AuditEntry(int(r[0]), datetime.fromisoformat(r[1]), r[2], r[3], r[4], r[5], r[6], json.loads(r[7]))
                for r in self.db.rows(sql, (*args, limit))]
