"""The fleet: one-time enrollment codes (hashed), each terminal's enrollment, revocation
and last heartbeat. A terminal's token is in `tokens`, under the terminal's name."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from kiosq.queue.engine import Event
from kiosq.queue.fleet import TerminalRecord
from kiosq.queue.store.database import Database
from kiosq.queue.store.errors import EnrollmentRefused, NotFound
from kiosq.queue.store.events import Events
from kiosq.queue.store.tokens import Tokens
from kiosq.queue.store.views import TERMINAL_COLUMNS, dt, row_terminal, ts


class Terminals:
    def __init__(self, db: Database, events: Events, tokens: Tokens) -> None:
        self.db, self.events, self.tokens = db, events, tokens

    def add_enroll_code(self, now: datetime, terminal: str, code_hash: str, expires_at: datetime,
                        created_by: str) -> None:
        """Record a one-time enrollment code (its hash); older unused codes of the terminal
        stop working."""
        taken = self.tokens.other_role_holding(terminal)
        if taken:
            raise ValueError(f"an active {taken} token is named {terminal!r}; a terminal needs a name of its own")
        self._replace_codes(terminal, now)
        self.db.execute("INSERT INTO enroll_codes (hash, terminal, created_at, expires_at, created_by) "
                        "VALUES (?, ?, ?, ?, ?)", (code_hash, terminal, ts(now), ts(expires_at), created_by))

    def enroll(self, now: datetime, code_hash: str) -> tuple[str, str]:
        """Trade a code for a new terminal token; returns (terminal, token secret). The
        terminal's earlier tokens are revoked in the same transaction."""
        terminal = self._usable_code(now, code_hash)
        self.db.execute("UPDATE enroll_codes SET used_at = ? WHERE hash = ?", (ts(now), code_hash))
        self.tokens.revoke(terminal, now)
        secret = f"kq_t_{secrets.token_urlsafe(32)}"
        self.tokens.insert(secret, terminal, "terminal", (), now)
        self.db.execute("INSERT INTO terminals (name, enrolled_at) VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                        "SET enrolled_at = excluded.enrolled_at, revoked_at = NULL", (terminal, ts(now)))
        self.events.append(Event("terminal.enrolled", None, None), now, {"terminal": terminal})
        return terminal, secret

    def _usable_code(self, now: datetime, code_hash: str) -> str:
        """The terminal a code is for, or EnrollmentRefused saying why it cannot be used."""
        row = self.db.one("SELECT terminal, expires_at, used_at, replaced_at FROM enroll_codes WHERE hash = ?",
                          (code_hash,))
        if row is None:
            raise EnrollmentRefused("unknown")
        terminal, expires_at, used_at, replaced_at = row
        if used_at is not None:
            raise EnrollmentRefused("used", terminal)
        if replaced_at is not None:
            raise EnrollmentRefused("replaced", terminal)
        if datetime.fromisoformat(expires_at) <= now:
            raise EnrollmentRefused("expired", terminal)
        if self.tokens.other_role_holding(terminal):
            raise EnrollmentRefused("name_taken", terminal)
        return str(terminal)

    def revoke(self, now: datetime, terminal: str) -> None:
        """Refuse the terminal's token from now on (and any unused enrollment code for it)."""
        known = self.db.one("SELECT 1 FROM terminals WHERE name = ?", (terminal,))
        if known is None and not self.tokens.has_terminal_token(terminal):
            raise NotFound(f"no terminal {terminal!r}; GET /api/terminals lists them")
        self.tokens.revoke(terminal, now, role="terminal")
        self._replace_codes(terminal, now)
        self.db.execute("INSERT INTO terminals (name, revoked_at) VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                        "SET revoked_at = excluded.revoked_at", (terminal, ts(now)))
        self.events.append(Event("terminal.revoked", None, None), now, {"terminal": terminal})

    def _replace_codes(self, terminal: str, now: datetime) -> None:
        self.db.execute("UPDATE enroll_codes SET replaced_at = ? WHERE terminal = ? AND used_at IS NULL AND "
                        "replaced_at IS NULL", (ts(now), terminal))

    def record_heartbeat(self, now: datetime, terminal: str, heartbeat: dict[str, Any], state: dict[str, Any],
                         offline_before: datetime) -> None:
        """Keep a terminal's last heartbeat. An event `terminal.changed` (with `state`) tells
        /admin when the state differs from the last one told, or the terminal was offline
        (last seen before `offline_before`) or never seen."""
        row = self.db.one("SELECT last_seen, state FROM terminals WHERE name = ?", (terminal,))
        told = json.dumps(state, sort_keys=True)
        self.db.execute(
            "INSERT INTO terminals (name, last_seen, heartbeat, state) VALUES (?, ?, ?, ?) ON CONFLICT (name) "
            "DO UPDATE SET last_seen = excluded.last_seen, heartbeat = excluded.heartbeat, state = excluded.state",
            (terminal, ts(now), json.dumps(heartbeat, ensure_ascii=False), told))
        came_back = row is None or row[0] is None or datetime.fromisoformat(row[0]) < offline_before
        if row is None or came_back or row[1] != told:
            self.events.append(Event("terminal.changed", None, None), now,
                               {"terminal_state": {**state, "online": True}})

    def listing(self) -> list[TerminalRecord]:
        """Every terminal: those with a row (enrolled, revoked or seen) and those that only
        hold a terminal token made with `kiosq server token`."""
        records = {r[0]: row_terminal(r) for r in self.db.rows(f"SELECT {TERMINAL_COLUMNS} FROM terminals")}
        for name, created in self.tokens.terminals_first_made():
            records.setdefault(name, TerminalRecord(name, dt(created), False, None, None))
        return sorted(records.values(), key=lambda r: r.name)
