"""Bundles: built with a sha256 manifest, verified, installed atomically, rolled back."""

import json
import shutil
from datetime import datetime, timezone

import pytest

from kiosq.content import bundle
from kiosq.content.bundle import BundleError
from kiosq.content.catalog import read_items
from kiosq.content.model import parse_catalog


def make(tmp_path, catalog_data, n_items, second):
    items = parse_catalog(catalog_data)[:n_items]
    return bundle.build(items, tmp_path / "out", now=datetime(2026, 11, 22, 10, 0, second, tzinfo=timezone.utc))


def test_build_and_verify(tmp_path, catalog_data):
    manifest = make(tmp_path, catalog_data, 8, 0)
    m = bundle.verify(manifest)
    assert m.items == 8 and m.version.startswith("20261122.100000-") and m.file.endswith(".sqlite")
    assert len(m.sha256) == 64


def test_a_damaged_bundle_is_refused(tmp_path, catalog_data):
    manifest = make(tmp_path, catalog_data, 8, 0)
    m = bundle.read_manifest(manifest)
    db = manifest.parent / m.file
    with open(db, "r+b") as f:
        f.seek(2000)
        f.write(b"\x00garbage\x00")
    with pytest.raises(BundleError, match="sha256 is .* the manifest says"):
        bundle.verify(manifest)
    with pytest.raises(BundleError):
        bundle.install(manifest, tmp_path / "terminal")
    assert not (tmp_path / "terminal" / "active.json").exists()


def test_install_swaps_and_rollback_returns(tmp_path, catalog_data):
    content = tmp_path / "terminal"
    first = bundle.install(make(tmp_path, catalog_data, 5, 0), content)
    assert len(read_items(bundle.active_catalog(content))) == 5
    second = bundle.install(make(tmp_path, catalog_data, 8, 1), content)
    assert json.loads((content / "active.json").read_text()) == {"version": second.version, "previous": first.version}
    assert len(read_items(bundle.active_catalog(content))) == 8
    assert bundle.rollback(content) == first.version
    assert len(read_items(bundle.active_catalog(content))) == 5
    assert bundle.rollback(content) == second.version  # and forward again


def test_an_interrupted_install_leaves_the_old_bundle_in_use(tmp_path, catalog_data, monkeypatch):
    content = tmp_path / "terminal"
    first = bundle.install(make(tmp_path, catalog_data, 5, 0), content)
    manifest = make(tmp_path, catalog_data, 8, 1)

    def power_cut(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", power_cut)
    with pytest.raises(OSError):
        bundle.install(manifest, content)
    assert bundle.active_state(content)["version"] == first.version
    assert len(read_items(bundle.active_catalog(content))) == 5


def test_old_bundles_are_pruned(tmp_path, catalog_data):
    content = tmp_path / "terminal"
    versions = [bundle.install(make(tmp_path, catalog_data, 8 - i, i), content).version for i in range(5)]
    kept = sorted(p.name for p in (content / "bundles").iterdir())
    assert versions[-1] in kept and versions[-2] in kept and len(kept) == bundle.KEEP


def test_rollback_without_a_previous_bundle(tmp_path, catalog_data):
    content = tmp_path / "terminal"
    bundle.install(make(tmp_path, catalog_data, 8, 0), content)
    with pytest.raises(BundleError, match="no previous bundle"):
        bundle.rollback(content)
