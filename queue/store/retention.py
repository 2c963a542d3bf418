"""Retention's SQL (queue/retention.py has the rule): the personal data of closed
applications erased, old events, sessions and throttle rows deleted, in batches; and the
day's run, claimed in meta inside the write lock so that one process of a hall does it.

An erased application keeps its figures and its anonymous history (item, service, status,
times, each step's action and time). What goes: the sealed applicant record and the keyed
hashes of its ID number and body (these columns are NOT NULL: they become empty), and the
notes staff wrote on it (sealed, or clear from before notes were sealed: NULL), which may
name the citizen; its settled notifications,
whose payloads quote those notes, are deleted. An empty `applicant` is what marks it erased.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

from kiosq.queue.applications import FINISHED
from kiosq.queue.store.database import Database
from kiosq.queue.store.views import ts

KEY = "retention"  # meta: the last run (JSON)
_FINISHED = ", ".join(f"'{s}'" for s in FINISHED)
# Closed before the cutoff and not erased yet (length works on SQLite's BLOB and PostgreSQL's bytea).
_ERASABLE = f"status IN ({_FINISHED}) AND finished_at < ? AND length(applicant) > 0"


class Retention:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the day's run ---------------------------------------------------------------

    def last_run(self) -> dict[str, Any] | None:
        row = self.db.one("SELECT value FROM meta WHERE key = ?", (KEY,))
        return None if row is None else dict(json.loads(row[0]))

    def claim(self, now: datetime, day: date, force: bool, stale_after: timedelta) -> bool:
        """Take `day`'s run unless a process has done it, or runs it now (for less than
        `stale_after`: one that died is taken over); `force` takes it anyway."""
        last = self.last_run()
        if last is not None and last.get("day") == day.isoformat() and not force:
            started = datetime.fromisoformat(last["started_at"])
            if last.get("state") == "done" or now - started < stale_after:
                return False
        self._save({"day": day.isoformat(), "state": "running", "started_at": ts(now)})
        return True

    def finish(self, result: dict[str, Any]) -> None:
        self._save({**result, "state": "done"})

    def _save(self, value: dict[str, Any]) -> None:
        self.db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (KEY, json.dumps(value, sort_keys=True)))

    # -- the work, in batches ----------------------------------------------------------

    def erase_personal(self, closed_before: datetime, limit: int) -> int:
        """Erase the personal data of up to `limit` applications closed before `closed_before`."""
        numbers = [r[0] for r in self.db.rows(
            f"SELECT tracking_no FROM applications WHERE {_ERASABLE} ORDER BY seq LIMIT ?",
            (ts(closed_before), limit))]
        if not numbers:
            return 0
        some = f"tracking_no IN ({', '.join('?' * len(numbers))})"
        self.db.execute(f"UPDATE applications SET applicant = ?, id_hash = '', fingerprint = '', "
                        f"rejection_note = NULL, rejection_sealed = NULL WHERE {some}", (b"", *numbers))
        self.db.execute(f"UPDATE application_steps SET note = NULL, sealed_note = NULL WHERE {some}", numbers)
        self.db.execute(f"DELETE FROM notifications WHERE state <> 'queued' AND {some}", numbers)
        return len(numbers)

    def delete_events(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` events older than `before`; the newest event stays, so that
        ids go on from it whatever happens."""
        return self.db.count(
            "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ? AND id < (SELECT MAX(id) FROM events) "
            "ORDER BY id LIMIT ?)", (ts(before), limit))

    def erase_rating_texts(self, before: date) -> int:
        """The citizens' comments and the case notes of ratings of services before `before`
        (they may name a person); the level, reasons and every date stay for the figures."""
        n = self.db.count("UPDATE ratings SET comment = NULL WHERE day < ? AND comment IS NOT NULL",
                          (before.isoformat(),))
        self.db.execute("UPDATE rating_cases SET callback_note = NULL, fix_note = NULL, appeal_note = NULL, "
                        "decision_note = NULL WHERE rating_id IN (SELECT id FROM ratings WHERE day < ?)",
                        (before.isoformat(),))
        # A complaint's text, phone and code, its decline's reason and its answer, once it is
        # declined or closed (what it was about, its category, state and dates stay).
        self.db.execute("UPDATE complaints SET record = ?, decline_reason = NULL, answer = NULL "
                        "WHERE state IN ('declined', 'closed') AND day < ? AND length(record) > 0",
                        (b"", before.isoformat()))
        return n

    def delete_sessions(self, before: datetime) -> int:
        """Sign-in sessions that ended or expired before `before` (who signed in stays in the audit log)."""
        return self.db.count("DELETE FROM sessions WHERE ended_at < ? OR expires_at < ?", (ts(before), ts(before)))

    def pending(self, closed_before: datetime, events_before: datetime, sessions_before: datetime) -> dict[str, int]:
        """What a run would erase and delete now (a dry run)."""
        def n(sql: str, *args: Any) -> int:
            row = self.db.one(sql, args)
            return int(row[0]) if row else 0
        return {"applications_erased": n(f"SELECT COUNT(*) FROM applications WHERE {_ERASABLE}", ts(closed_before)),
                "events_deleted": n("SELECT COUNT(*) FROM events WHERE at < ? AND id < (SELECT MAX(id) FROM events)",
                                    ts(events_before)),
                "sessions_deleted": n("SELECT COUNT(*) FROM sessions WHERE ended_at < ? OR expires_at < ?",
                                      ts(sessions_before), ts(sessions_before))}

    def is_erased(self, tracking_no: str) -> bool:
        row = self.db.one("SELECT length(applicant) FROM applications WHERE tracking_no = ?", (tracking_no,))
        return row is not None and row[0] == 0
