"""Finding item guides the way citizens type on glass: Chinese substrings, full pinyin
(with or without spaces), pinyin initials ("sfz"), English names, everyday keywords.

Ranking: exact name > name prefix > name contains > pinyin / initials > keywords > the rest
of the text; within a rank, shorter names first, then catalog order (the rest of the text:
catalog order). The short fields (names, pinyin, initials, keywords) are held in memory,
each as one string of all items, and searched with regular expressions at C speed; the long
text is searched with SQLite's FTS5 trigram index for 3+ characters, and in memory the same
way as the short fields for 1-2 (trigrams cannot match those). bench/search.py measures it on 10,000 items.
"""

import re
import sqlite3
import unicodedata
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kiosq.content.catalog import connect

EXACT, PREFIX, CONTAINS = 100, 90, 80
PINYIN_WHOLE, PINYIN_PREFIX, PINYIN_CONTAINS = 75, 72, 70
KEYWORD, KEYWORD_PINYIN = 60, 55
TEXT = 40
_LATIN = re.compile(r"^[a-z0-9' ]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SEP = "\x00"
_LENGTH = 10**6  # catalog positions stay below this
_RANK = 10**12


@dataclass(frozen=True, slots=True)
class Hit:
    code: str
    name: str
    department: str
    score: int


def normalise(query: str) -> tuple[str, str, str]:
    """(as typed, trimmed; English form; pinyin form: lower-case latin, no spaces or ')."""
    # Full-width letters from a Chinese input method count as the plain ones; control
    # characters (the column separator among them) are dropped.
    q = " ".join(_CONTROL.sub("", unicodedata.normalize("NFKC", query)).split())
    low = q.lower()
    if not _LATIN.match(low):
        return q, "", ""
    return q, low, low.replace(" ", "").replace("'", "")


class _Column:
    """One short field of every item, joined into one string: finding a query in it finds
    the items, in C (str.find / re) rather than item by item in Python."""

    def __init__(self, values: list[str]) -> None:
        self.values = values
        self.starts = []
        offset = 0
        for v in values:
            self.starts.append(offset)
            offset += len(v) + 1
        self.text = _SEP + _SEP.join(values)  # each value is preceded by a separator
        self.exact: dict[str, list[int]] = {}
        for i, v in enumerate(values):
            self.exact.setdefault(v, []).append(i)

    def containing(self, q: str) -> list[int]:
        # The pattern eats the rest of the value, so each item is found once.
        starts = self.starts
        return [bisect_right(starts, m.start() - 1) - 1
                for m in re.finditer(re.escape(q) + "[^\x00]*", self.text)]

    def iter_containing(self, q: str) -> Iterator[int]:
        """Like containing(), lazily: a caller that needs only the first few stops early."""
        starts = self.starts
        for m in re.finditer(re.escape(q) + "[^\x00]*", self.text):
            yield bisect_right(starts, m.start() - 1) - 1

    def starting(self, q: str) -> list[int]:
        starts = self.starts
        return [bisect_right(starts, m.start()) - 1 for m in re.finditer(re.escape(_SEP + q), self.text)]

    def tiers(
        self, q: str, whole: int, prefix: int, contains: int, anywhere: bool = True
    ) -> list[tuple[list[int], int]]:
        """The items holding q, by how well: (items, score) from the weakest match up.
        Without `anywhere`, only values that start with q."""
        found = [(self.starting(q), prefix), (self.exact.get(q, []), whole)]
        return [(self.containing(q), contains)] + found if anywhere else found


class Searcher:
    """Search one catalog database; keep one per catalog (it loads the short fields once
    and holds a read-only connection for the long text)."""

    def __init__(self, db_path: Path) -> None:
        self.conn: sqlite3.Connection = connect(db_path)
        rows = self.conn.execute(
            "SELECT code, name, name_en, department, pinyin, initials, keywords, keywords_pinyin, keywords_initials "
            "FROM items ORDER BY ord").fetchall()
        self.codes = [r[0] for r in rows]
        self.departments_of = [r[3] for r in rows]
        self.name, self.name_en = _Column([r[1] for r in rows]), _Column([r[2] for r in rows])
        self.pinyin, self.initials = _Column([r[4] for r in rows]), _Column([r[5] for r in rows])
        # Keywords are "\n"-separated within an item: a match never spans two keywords.
        self.keywords = _Column([r[6] for r in rows])
        self.keywords_latin = _Column([r[7] + "\n" + r[8] for r in rows])
        self.name_lengths = [len(r[1]) for r in rows]
        # The long text for 1-2 character queries (the trigram index cannot take them):
        # one string in memory, searched in C, about 2 bytes a character.
        self.text = _Column([body for (body,) in self.conn.execute("SELECT body FROM texts ORDER BY rowid")])

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Searcher":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def departments(self) -> list[str]:
        return list(dict.fromkeys(self.departments_of))

    def search(self, query: str, department: str | None = None, limit: int = 20) -> list[Hit]:
        q, en, py = normalise(query)
        if not q:
            return []
        scores: dict[int, int] = {}

        def give(items: list[int], score: int) -> None:
            for i in items:
                if scores.get(i, 0) < score:
                    scores[i] = score

        matches = self.name.tiers(q, EXACT, PREFIX, CONTAINS) + self.keywords.tiers(q, KEYWORD, KEYWORD, KEYWORD)[:1]
        # One typed letter (the on-screen keyboard searches as you type) matches inside
        # nearly every pinyin: only names that start with it mean anything.
        anywhere = len(py) > 1
        if en:
            matches += self.name_en.tiers(en, EXACT, PREFIX, CONTAINS, anywhere)
        if py:
            matches += self.pinyin.tiers(py, PINYIN_WHOLE, PINYIN_PREFIX, PINYIN_CONTAINS, anywhere)
            matches += self.initials.tiers(py, PINYIN_WHOLE, PINYIN_PREFIX, PINYIN_CONTAINS, anywhere)
            if anywhere:
                matches.append((self.keywords_latin.containing(py), KEYWORD_PINYIN))
        for items, score in matches:
            give(items, score)
        if department is not None:
            scores = {i: s for i, s in scores.items() if self.departments_of[i] == department}
        # One integer per candidate sorts in C: rank, then name length, then catalog order.
        lengths = self.name_lengths
        keys = sorted((100 - s) * _RANK + lengths[i] * _LENGTH + i for i, s in scores.items())[:limit]
        hits = [self._hit(k % _LENGTH, 100 - k // _RANK) for k in keys]
        if len(hits) < limit:  # the rest of the text ranks last: only look there if there is room
            for i in self._in_text(q, department, limit - len(hits), set(scores)):
                hits.append(self._hit(i, TEXT))
        return hits

    def _hit(self, i: int, score: int) -> Hit:
        return Hit(self.codes[i], self.name.values[i], self.departments_of[i], score)

    def _in_text(self, q: str, department: str | None, room: int, seen: set[int]) -> list[int]:
        """Items whose text holds q, in catalog order, past those already found."""
        rows: Iterator[int]
        if len(q) >= 3:
            phrase = '"' + q.replace('"', '""') + '"'
            rows = (rowid - 1 for (rowid,) in self.conn.execute(
                "SELECT rowid FROM texts_fts WHERE texts_fts MATCH ? ORDER BY rowid", (phrase,)))
        else:
            rows = self.text.iter_containing(q)
        found = []
        for i in rows:
            if i in seen or (department is not None and self.departments_of[i] != department):
                continue
            found.append(i)
            if len(found) == room:
                break
        return found
