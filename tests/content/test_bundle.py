"""Bundles: built with a sha256 manifest, verified, installed atomically, rolled back."""

import json
import shutil
from datetime import UTC, datetime

import pytest

from kiosq.content import bundle
from kiosq.content.bundle import BundleError
from kiosq.content.catalog import read_items
from kiosq.content.model import parse_catalog


def make(tmp_path, catalog_data, n_items, second):
    items = parse_catalog(catalog_data)[:n_items]
    return bundle.build(items, tmp_path / "out", now=datetime(2026, 11, 22, 10, 0, second, tzinfo=UTC))


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


def _tampered(tmp_path, catalog_data, **changes):
    manifest = make(tmp_path, catalog_data, 8, 0)
    data = json.loads(manifest.read_text())
    data.update(changes)
    evil = manifest.with_name("evil.json")
    evil.write_text(json.dumps(data))
    return evil


@pytest.mark.parametrize("changes", [{"version": "../../victim"}, {"version": "."}, {"version": ".."},
                                     {"file": "../b/catalog.sqlite"}, {"file": "/etc/passwd"}, {"items": "8"},
                                     {"sha256": "abc"}])
def test_a_manifest_cannot_point_outside_its_folders(tmp_path, catalog_data, changes):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "important.txt").write_text("keep me")
    evil = _tampered(tmp_path, catalog_data, **changes)
    with pytest.raises(BundleError, match="not a usable bundle manifest"):
        bundle.install(evil, tmp_path / "terminal" / "a" / "b")
    assert (victim / "important.txt").read_text() == "keep me"


def test_a_hand_edited_pointer_is_refused(tmp_path, catalog_data):
    content = tmp_path / "terminal"
    bundle.install(make(tmp_path, catalog_data, 8, 0), content)
    for text in ('[]', '"x"', '{"version": 5}', '{"version": "v", "previous": "../../x"}'):
        (content / "active.json").write_text(text)
        with pytest.raises(BundleError, match="install a bundle again"):
            bundle.rollback(content)


def test_a_damaged_installed_copy_is_copied_again(tmp_path, catalog_data):
    content = tmp_path / "terminal"
    m = bundle.install(make(tmp_path, catalog_data, 8, 0), content)
    (content / "bundles" / m.version / "catalog.sqlite").write_bytes(b"")  # a write lost in a power cut
    bundle.install(make(tmp_path, catalog_data, 8, 0), content)
    assert len(read_items(bundle.active_catalog(content))) == 8


def test_folders_with_uri_characters_in_their_names(tmp_path, catalog_data):
    odd = tmp_path / "h#x?y%41"
    manifest = bundle.build(parse_catalog(catalog_data), odd)
    assert bundle.verify(manifest).items == 8
    assert not (tmp_path / "h").exists()
