"""The item guides as the hall server knows them: forms to check applications against.

At start the server uses the content bundle installed in `DATA_DIR/content` (the same
folder layout as a terminal's, kiosq.content.bundle), else the sample catalog, written to
`DATA_DIR/catalog.db` so that the server and `kiosq content search --db` see one file.
`reload()` swaps the whole catalog at once (content rollout, issue #8): a request sees
either the old items or the new ones, never a mix.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from kiosq.content import bundle
from kiosq.content.catalog import SAMPLE, load_files, read_items, write_catalog
from kiosq.content.model import ItemGuide

CONTENT_DIR = "content"
SAMPLE_DB = "catalog.db"
log = logging.getLogger("kiosq.items")


@dataclass(frozen=True)
class Snapshot:
    items: Mapping[str, ItemGuide]  # by code, in catalog order
    source: str  # "bundle <version>" or "sample"


class ItemCatalog:
    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        self._snapshot = self._load()

    def reload(self) -> Snapshot:
        """Read the catalog again (after a bundle was installed or rolled back)."""
        snapshot = self._load()
        self._snapshot = snapshot  # one reference assignment: readers see old or new
        log.info("catalog reloaded: %d items from %s", len(snapshot.items), snapshot.source)
        return snapshot

    @property
    def source(self) -> str:
        return self._snapshot.source

    def get(self, code: str) -> ItemGuide | None:
        return self._snapshot.items.get(code)

    def all(self, fileable: bool | None = None) -> list[ItemGuide]:
        return [i for i in self._snapshot.items.values() if fileable is None or i.fileable == fileable]

    def _load(self) -> Snapshot:
        content = self.data_dir / CONTENT_DIR
        if bundle.active_state(content).get("version"):
            path = bundle.active_catalog(content)
            return self._snap(read_items(path), f"bundle {path.parent.name}")
        items = load_files(SAMPLE)
        db = self.data_dir / SAMPLE_DB
        tmp = db.with_name(f".{SAMPLE_DB}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        write_catalog(tmp, items)  # ~50 ms; rewritten each start, so it follows the installed kiosq
        os.replace(tmp, db)
        return self._snap(items, "sample")

    @staticmethod
    def _snap(items: list[ItemGuide], source: str) -> Snapshot:
        return Snapshot(MappingProxyType({i.code: i for i in items}), source)
