"""The catalog as the guide screens browse it: departments in catalog order, the
categories of each, the items of each; search by the content package's Searcher."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kiosq.content.catalog import read_items
from kiosq.content.model import ItemGuide
from kiosq.content.search import Searcher


@dataclass(frozen=True)
class Entry:
    """One line of a list of items: what the screen needs to show and open it."""

    code: str
    name: str
    name_en: str
    department: str

    def title(self, lang: str) -> str:
        return self.name if lang == "zh" else self.name_en


class Guides:
    """The items of one catalog database, for browsing and searching. Open on the UI
    thread and used there only (searches are in memory, well under a frame)."""

    def __init__(self, db_path: Path) -> None:
        self.path = Path(db_path)
        self.items: dict[str, ItemGuide] = {item.code: item for item in read_items(db_path)}
        self.searcher = Searcher(db_path)
        self._tree: dict[str, dict[str, list[str]]] = {}
        for item in self.items.values():
            self._tree.setdefault(item.department, {}).setdefault(item.category, []).append(item.code)

    def close(self) -> None:
        self.searcher.close()

    def departments(self) -> list[str]:
        return list(self._tree)

    def categories(self, department: str) -> list[str]:
        return list(self._tree.get(department, {}))

    def browse(self, department: str, category: str | None = None) -> list[Entry]:
        groups = self._tree.get(department, {})
        codes = groups.get(category, []) if category else [c for codes in groups.values() for c in codes]
        return [self.entry(code) for code in codes]

    def search(self, query: str, limit: int = 20) -> list[Entry]:
        return [self.entry(hit.code) for hit in self.searcher.search(query, limit=limit)]

    def entry(self, code: str) -> Entry:
        item = self.items[code]
        return Entry(item.code, item.name, item.name_en, item.department)

    def item(self, code: str) -> ItemGuide:
        return self.items[code]
