"""Every sealed column of the store, and what the applicant keys need of them: which key
ids are in use, the records still under another key (for `rotate-key`), and labelling
records sealed before key ids with their key's id.

A sealed value starts with its key id (kiosq.base.keyring), so no column of its own says
which key sealed it: `substr(column, 1, 9)` is the version byte and the id, in both SQLite
and PostgreSQL. A new sealed column is one line in SEALED.

Staff notes (补正, 驳回) are personal data too: `Notes` seals each as the record
{"note": text} under the same keys, in columns of their own beside the clear ones
databases from before kept (`move_clear` seals those, once, at the server's start).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kiosq.base import keyring
from kiosq.queue.store.database import Database
from kiosq.queue.store.errors import KeyRetired, StoreError

LABELLED = "sealed_key_ids"  # meta: every sealed value carries its key id (set once, at the first start)
RETIRED = "retired_key_ids"  # meta: the keys `rotate-key --finish` dropped (JSON list); nothing is sealed under them


class SealingKeys(Protocol):
    """What the store asks of a key file (queue/personal.py's Personal)."""

    @property
    def key_ids(self) -> tuple[str, ...]: ...

    def check_value(self) -> str: ...

    def matches_check(self, value: str) -> bool: ...

    def label_unlabelled(self, blob: bytes) -> bytes | None: ...


class RecordKeys(Protocol):
    """What sealing a note asks of the key file (Personal has it)."""

    def seal(self, record: dict[str, Any]) -> bytes: ...

    def open(self, blob: bytes) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SealedColumn:
    table: str
    key: str  # the row's own id
    column: str

    @property
    def present(self) -> str:
        """SQL: the row holds a sealed value (not NULL, not erased)."""
        return f"{self.column} IS NOT NULL AND length({self.column}) > 0"


SEALED = (SealedColumn("applications", "seq", "applicant"),
          SealedColumn("applications", "seq", "rejection_sealed"),
          SealedColumn("application_steps", "id", "sealed_note"),
          SealedColumn("notifications", "id", "sealed_note"),
          SealedColumn("ratings", "id", "comment"),
          *(SealedColumn("complaints", "seq", c) for c in ("record", "decline_reason", "answer")),
          *(SealedColumn("rating_cases", "rating_id", c) for c in ("callback_note", "fix_note", "appeal_note",
                                                                    "decision_note")))
# The clear column a database from before sealed notes kept each note in, by sealed column.
CLEAR_NOTES = {("applications", "rejection_sealed"): "rejection_note",
               ("application_steps", "sealed_note"): "note"}
_HEAD = f"substr({{c}}, 1, {keyring.HEADER_BYTES})"


class Sealed:
    def __init__(self, db: Database, columns: tuple[SealedColumn, ...] = SEALED) -> None:
        self.db, self.columns = db, columns

    def any(self) -> bool:
        return any(self.db.one(f"SELECT 1 FROM {c.table} WHERE {c.present} LIMIT 1")
                   for c in self.columns)

    def key_ids(self) -> set[str]:
        """The key ids sealed values are under ("?" for one that carries none)."""
        found: set[str] = set()
        for c in self.columns:
            for (head,) in self.db.rows(f"SELECT DISTINCT {_HEAD.format(c=c.column)} FROM {c.table} "
                                        f"WHERE {c.present}"):
                found.add(keyring.id_of(bytes(head)) or "?")
        return found

    def not_under(self, key_id: str) -> int:
        """How many sealed values are under another key than `key_id`."""
        head = keyring.header(key_id)
        return sum(self._count(c, head) for c in self.columns)

    def _count(self, c: SealedColumn, head: bytes) -> int:
        row = self.db.one(f"SELECT COUNT(*) FROM {c.table} WHERE {c.present} "
                          f"AND {_HEAD.format(c=c.column)} <> ?", (head,))
        return int(row[0]) if row else 0

    def reseal(self, key_id: str, reseal: Callable[[bytes], bytes | None], limit: int) -> int:
        """Seal again, under `key_id`, up to `limit` values that are under another key (in
        the caller's transaction); how many."""
        head, done = keyring.header(key_id), 0
        for c in self.columns:
            rows = self.db.rows(f"SELECT {c.key}, {c.column} FROM {c.table} WHERE {c.present} "
                                f"AND {_HEAD.format(c=c.column)} <> ? ORDER BY {c.key} LIMIT ?", (head, limit - done))
            for row_id, blob in rows:
                new = reseal(bytes(blob))
                if new is not None:
                    self.db.execute(f"UPDATE {c.table} SET {c.column} = ? WHERE {c.key} = ?", (new, row_id))
                    done += 1
            if done >= limit:
                break
        return done

    def newest_unlabelled(self) -> bytes | None:
        """The newest value sealed before key ids (of the first column that has one)."""
        for c in self.columns:
            row = self.db.one(f"SELECT {c.column} FROM {c.table} WHERE {c.present} "
                              f"ORDER BY {c.key} DESC LIMIT 1")
            if row is not None:
                return bytes(row[0])
        return None

    def label(self, label: Callable[[bytes], bytes | None]) -> int:
        """Put its key's id in front of every value sealed before key ids (in the caller's
        transaction, once: meta LABELLED says it is done); how many could not be labelled.
        `label` returns the value as it is when it carries its key id already."""
        unopened = 0
        for c in self.columns:
            for row_id, blob in self.db.rows(f"SELECT {c.key}, {c.column} FROM {c.table} "
                                             f"WHERE {c.present}"):
                new = label(bytes(blob))
                if new is None:
                    unopened += 1
                elif new != bytes(blob):
                    self.db.execute(f"UPDATE {c.table} SET {c.column} = ? WHERE {c.key} = ?", (new, row_id))
        return unopened


def retired(db: Database) -> set[str]:
    """The key ids `rotate-key --finish` dropped."""
    row = db.one("SELECT value FROM meta WHERE key = ?", (RETIRED,))
    return set() if row is None else set(json.loads(row[0]))


def retire(db: Database, key_ids: tuple[str, ...]) -> None:
    db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
               (RETIRED, json.dumps(sorted(retired(db) | set(key_ids)))))


def refuse_retired(db: Database, blob: bytes) -> bytes:
    """`blob`, unless it is sealed under a retired key (KeyRetired): a process whose key file
    is an old copy must not seal what the hall's other processes cannot open."""
    key_id = keyring.id_of(blob)
    if key_id is not None and key_id in retired(db):
        raise KeyRetired(key_id)
    return blob


class NotesUnsealable(StoreError):
    """A note to write or read, and no applicant keys given to the store (a tool's store)."""


class Notes:
    """Staff notes sealed as {"note": text} under the applicant keys, once the store has
    them (Store.seal_notes_with): None stays None, an empty value is an erased note."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.keys: RecordKeys | None = None

    def _need(self) -> RecordKeys:
        if self.keys is None:
            raise NotesUnsealable("staff notes are sealed with the applicant keys, which this store was not "
                                  "given (Store.seal_notes_with)")
        return self.keys

    def seal(self, text: str | None) -> bytes | None:
        return None if text is None else refuse_retired(self.db, self._need().seal({"note": text}))

    def open(self, blob: bytes | memoryview | None) -> str | None:
        if blob is None or len(blob) == 0:
            return None
        return str(self._need().open(bytes(blob))["note"])

    def move_clear(self, db: Database, limit: int) -> int:
        """Seal up to `limit` notes still kept in clear (in the caller's transaction) and
        empty their clear column; how many (0: none is left)."""
        done = 0
        for (table, column), clear in CLEAR_NOTES.items():
            key = "seq" if table == "applications" else "id"
            for row_id, text in db.rows(f"SELECT {key}, {clear} FROM {table} WHERE {clear} IS NOT NULL "
                                        f"ORDER BY {key} LIMIT ?", (limit - done,)):
                db.execute(f"UPDATE {table} SET {column} = ?, {clear} = NULL WHERE {key} = ?",
                           (self.seal(str(text)), row_id))
                done += 1
            if done >= limit:
                return done
        # A webhook's payload quoted the note: it moves to the row's sealed column.
        for row_id, payload in db.rows("SELECT id, payload FROM notifications WHERE sealed_note IS NULL "
                                       "AND payload LIKE '%\"note\": \"%' ORDER BY id LIMIT ?", (limit - done,)):
            data = json.loads(payload)
            note, data["note"] = data.get("note"), None
            db.execute("UPDATE notifications SET payload = ?, sealed_note = ? WHERE id = ?",
                       (json.dumps(data, ensure_ascii=False), self.seal(note), row_id))
            done += 1
        return done
