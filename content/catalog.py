"""The catalog database: item guides in one SQLite file, with what search needs.

One row per item: the guide itself as JSON (so an export gives back exactly what was
imported), the columns search matches on (name, English name, pinyin, initials,
keywords), and an FTS5 trigram index over the rest of the text. The same file is a
terminal's content bundle (see bundle.py).
"""

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import sqlite_utils
from pypinyin import Style, lazy_pinyin

from kiosq.base import sqlite
from kiosq.content.model import FORMAT, CatalogError, ItemGuide, check_catalog, parse_catalog

SAMPLE = Path(__file__).parent / "data"
SCHEMA_VERSION = 1


def load_files(path: Path) -> list[ItemGuide]:
    """Items from a JSON file or a folder of them (in name order); every problem at once."""
    path = Path(path)
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise CatalogError([f"{path}: no .json files here"])
    items, problems = [], []
    for file in files:
        try:
            data = json.loads(file.read_text("utf-8-sig"))  # Notepad's BOM is fine
        except OSError as exc:
            problems.append(f"{file}: cannot read it ({exc.strerror})")
            continue
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"{file}: not valid UTF-8 JSON ({exc})")
            continue
        try:
            items += parse_catalog(data, source=str(file))
        except CatalogError as exc:
            problems += exc.problems
    if problems:
        raise CatalogError(problems)
    check_catalog(items)
    return items


def pinyin(text: str) -> str:
    return "".join(lazy_pinyin(text)).lower()


def initials(text: str) -> str:
    return "".join(lazy_pinyin(text, style=Style.FIRST_LETTER)).lower()


def _row(item: ItemGuide, order: int) -> dict[str, Any]:
    rest = [item.department, item.category, item.conditions, *item.basis, *item.steps, item.location,
            *(m.name for m in item.materials), *(m.note for m in item.materials if m.note)]
    return {
        "code": item.code, "ord": order, "name": item.name, "name_en": item.name_en.lower(),
        "department": item.department, "category": item.category, "service": item.service,
        "fileable": int(item.form is not None),
        "pinyin": pinyin(item.name), "initials": initials(item.name),
        "keywords": "\n".join(item.keywords),
        "keywords_pinyin": "\n".join(pinyin(k) for k in item.keywords),
        "keywords_initials": "\n".join(initials(k) for k in item.keywords),
        "body": "\n".join(rest),
        "data": item.model_dump_json(),
    }


def write_catalog(db_path: Path, items: list[ItemGuide]) -> None:
    """Replace the catalog in `db_path` with `items`, in one transaction."""
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite_utils.Database(db_path)
    try:
        with sqlite.transaction(db.conn):
            for table in ("texts_fts", "texts", "items", "meta"):
                db.execute(f"DROP TABLE IF EXISTS {table}")
            rows = [_row(item, i) for i, item in enumerate(items)]
            db.table("items").insert_all(({k: v for k, v in r.items() if k != "body"} for r in rows), pk="code")
            db.execute("CREATE INDEX items_department ON items (department, ord)")
            # The rest of each guide's text, narrow and in catalog order (texts.rowid = ord + 1).
            # Trigram FTS finds 3+ characters; 1-2 are matched with instr() on this table
            # (SQLite 3.40's trigram cannot do them, and LIKE on the FTS table wrongly finds
            # nothing for CJK there).
            db.table("texts").insert_all(({"rowid": r["ord"] + 1, "body": r["body"]} for r in rows), pk="rowid")
            db.execute("CREATE VIRTUAL TABLE texts_fts USING fts5(body, content='texts', content_rowid='rowid', "
                       "tokenize='trigram')")
            db.execute("INSERT INTO texts_fts (rowid, body) SELECT rowid, body FROM texts")
            db.table("meta").insert_all([{"key": "schema", "value": str(SCHEMA_VERSION)},
                                   {"key": "format", "value": str(FORMAT)},
                                   {"key": "items", "value": str(len(items))}], pk="key")
    finally:
        db.close()


def read_items(db_path: Path) -> list[ItemGuide]:
    """Every item of a catalog database, in import order."""
    with closing(connect(db_path)) as conn:
        return [ItemGuide.model_validate_json(data) for (data,) in conn.execute("SELECT data FROM items ORDER BY ord")]


def export_catalog(db_path: Path) -> dict[str, Any]:
    """The catalog in the import format (docs/catalog-format.md)."""
    return {"format": FORMAT, "items": [json.loads(i.model_dump_json()) for i in read_items(db_path)]}


def item(db_path: Path, code: str) -> ItemGuide | None:
    with closing(connect(db_path)) as conn:
        row = conn.execute("SELECT data FROM items WHERE code = ?", (code,)).fetchone()
    return None if row is None else ItemGuide.model_validate_json(row[0])


def connect(db_path: Path) -> sqlite3.Connection:
    """A read-only connection to a catalog, or CatalogError saying what is wrong with the file."""
    path = Path(db_path)
    if not path.is_file():
        raise CatalogError([f"{path}: no catalog here; import one with `kiosq content import PATH --db {path}`"])
    try:
        # as_uri() escapes #, ? and %, which would otherwise end the path (and drop mode=ro).
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        raise CatalogError([f"{path}: cannot open it ({exc})"]) from None
    try:
        conn.execute("SELECT code, data FROM items LIMIT 1")
    except sqlite3.Error as exc:
        conn.close()
        raise CatalogError([f"{path}: not a kiosq catalog ({exc})"]) from None
    return conn
