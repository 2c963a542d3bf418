"""Content bundles: a catalog database plus a manifest, built once and installed on many
terminals.

A bundle is two files side by side: `catalog-<version>.sqlite` and `catalog-<version>.json`
(the manifest: format, version, created, items, sha256 of the database, file name).
Installing into a terminal's content folder copies to a temporary name, checks the
sha256, renames into place and only then moves the `active.json` pointer (written to a
temporary file and renamed, so a crash leaves either the old or the new bundle in use).
The bundle in use before stays, so `rollback` can go back to it.

    content/
      bundles/<version>/catalog.sqlite, manifest.json
      active.json            {"version": ..., "previous": ...}
"""

import hashlib
import json
import os
import re
import shutil
import sqlite3
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosq.content.catalog import write_catalog
from kiosq.content.model import FORMAT, CatalogError, ItemGuide

KEEP = 3  # bundles kept in a content folder: the active one, the previous one, one spare
ACTIVE = "active.json"


class BundleError(Exception):
    """A bundle that is damaged, or a content folder that cannot take one."""


@dataclass(frozen=True)
class Manifest:
    format: int
    version: str
    created: str
    items: int
    sha256: str
    file: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build(items: list[ItemGuide], out_dir: Path, now: datetime | None = None) -> Path:
    """Write a bundle for `items` into `out_dir`; returns the manifest's path."""
    now = now or datetime.now(UTC)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".building-{os.getpid()}.sqlite"
    tmp.unlink(missing_ok=True)
    write_catalog(tmp, items)
    digest = sha256_of(tmp)
    version = f"{now:%Y%m%d.%H%M%S}-{digest[:8]}"
    db = out_dir / f"catalog-{version}.sqlite"
    os.replace(tmp, db)
    manifest = Manifest(FORMAT, version, now.isoformat(timespec="seconds"), len(items), digest, db.name)
    path = out_dir / f"catalog-{version}.json"
    _write_json(path, asdict(manifest))
    return path


# Versions and file names become paths: nothing that could climb out of a folder.
VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _version_ok(value: object) -> bool:
    return isinstance(value, str) and bool(VERSION.match(value)) and ".." not in value


def read_manifest(path: Path) -> Manifest:
    try:
        data = json.loads(Path(path).read_text("utf-8"))
        manifest = Manifest(**{k: data[k] for k in Manifest.__dataclass_fields__})
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the manifest ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{path}: not a bundle manifest ({exc})") from None
    problems = [name for name, ok in (
        ("format", manifest.format == FORMAT), ("version", _version_ok(manifest.version)),
        ("items", isinstance(manifest.items, int) and manifest.items >= 0),
        ("sha256", isinstance(manifest.sha256, str) and bool(SHA256.match(manifest.sha256))),
        ("file", isinstance(manifest.file, str) and _version_ok(manifest.file)
         and Path(manifest.file).name == manifest.file),
    ) if not ok]
    if problems:
        raise BundleError(f"{path}: not a usable bundle manifest (bad {', '.join(problems)}); build the bundle again "
                          "with `kiosq content build`")
    return manifest


def verify(manifest_path: Path) -> Manifest:
    """Check a bundle: its database has the manifest's sha256 and item count."""
    manifest = read_manifest(manifest_path)
    db = Path(manifest_path).parent / manifest.file
    if not db.is_file():
        raise BundleError(f"{manifest_path}: its database {db.name} is missing")
    digest = sha256_of(db)
    if digest != manifest.sha256:
        raise BundleError(f"{db}: sha256 is {digest[:12]}…, the manifest says {manifest.sha256[:12]}…: "
                          "the file is damaged or incomplete; download the bundle again")
    try:
        with closing(sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)) as conn:
            count = conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]
    except sqlite3.Error as exc:
        raise BundleError(f"{db}: not a catalog database ({exc})") from None
    if count != manifest.items:
        raise BundleError(f"{db}: holds {count} items, the manifest says {manifest.items}")
    return manifest


def install(manifest_path: Path, content_dir: Path) -> Manifest:
    """Install a bundle into a terminal's content folder and make it the active one."""
    manifest = verify(manifest_path)
    content_dir = Path(content_dir)
    bundles = content_dir / "bundles"
    target = bundles / manifest.version
    if not _intact(target, manifest.sha256):  # absent, or damaged by a crash: copy it (again)
        staging = bundles / f".{manifest.version}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        shutil.copyfile(Path(manifest_path).parent / manifest.file, staging / "catalog.sqlite")
        _fsync(staging / "catalog.sqlite")
        if sha256_of(staging / "catalog.sqlite") != manifest.sha256:
            shutil.rmtree(staging)
            raise BundleError(f"copying {manifest.file} into {content_dir} damaged it; check the disk")
        _write_json(staging / "manifest.json", {**asdict(manifest), "file": "catalog.sqlite"})
        _fsync(staging)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
        _fsync(bundles)  # the rename is on disk before active.json can name it
    state = active_state(content_dir)
    if state.get("version") != manifest.version:
        _write_json(content_dir / ACTIVE, {"version": manifest.version, "previous": state.get("version")})
    _prune(content_dir)
    return manifest


def _intact(folder: Path, sha256: str) -> bool:
    db = folder / "catalog.sqlite"
    return db.is_file() and sha256_of(db) == sha256


def rollback(content_dir: Path) -> str:
    """Make the previous bundle active again; returns its version."""
    content_dir = Path(content_dir)
    state = active_state(content_dir)
    previous: str | None = state.get("previous")
    if not previous:
        raise BundleError(f"{content_dir}: there is no previous bundle to go back to")
    folder = content_dir / "bundles" / previous
    try:
        intact = _intact(folder, read_manifest(folder / "manifest.json").sha256)
    except BundleError:
        intact = False
    if not intact:
        raise BundleError(f"{content_dir}: the previous bundle {previous} is gone or damaged; install a bundle instead")
    _write_json(content_dir / ACTIVE, {"version": previous, "previous": state.get("version")})
    return previous


def active_state(content_dir: Path) -> dict[str, Any]:
    path = Path(content_dir) / ACTIVE
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text("utf-8"))
    except ValueError as exc:
        raise BundleError(f"{path}: damaged ({exc}); install a bundle again") from None
    if not isinstance(state, dict) or not all(v is None or _version_ok(v) for v in
                                              (state.get("version"), state.get("previous"))):
        raise BundleError(f"{path}: not a content pointer written by kiosq; install a bundle again")
    return state


def active_catalog(content_dir: Path) -> Path:
    """The database of the bundle in use, for the kiosk's search and guides."""
    version: str | None = active_state(content_dir).get("version")
    if not version:
        raise CatalogError([f"{content_dir}: no content bundle installed; use `kiosq content install`"])
    return Path(content_dir) / "bundles" / version / "catalog.sqlite"


def _prune(content_dir: Path) -> None:
    state = active_state(content_dir)
    keep = {state.get("version"), state.get("previous")}
    bundles = sorted((p for p in (content_dir / "bundles").iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: p.name, reverse=True)
    spare = [p for p in bundles if p.name not in keep][:max(0, KEEP - len(keep - {None}))]
    for old in bundles:
        if old.name not in keep and old not in spare:
            shutil.rmtree(old, ignore_errors=True)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    _fsync(tmp)
    os.replace(tmp, path)
    _fsync(path.parent)


def _fsync(path: Path) -> None:
    """Flush a file, or a folder's entries (renames), to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
