"""Importing and exporting the catalog: all-or-nothing, and a lossless round trip."""

import json

import pytest
from click.testing import CliRunner

from kiosq.content.catalog import export_catalog, item, load_files, read_items, write_catalog
from kiosq.content.model import CatalogError, parse_catalog
from kiosq.provisioning.cli import main


def test_round_trip_is_lossless(tmp_path, catalog_data):
    db = tmp_path / "a.sqlite"
    write_catalog(db, parse_catalog(catalog_data))
    exported = export_catalog(db)
    assert parse_catalog(exported) == parse_catalog(catalog_data)
    again = tmp_path / "b.sqlite"
    write_catalog(again, parse_catalog(exported))
    assert export_catalog(again) == exported


def test_a_folder_is_read_in_name_order(tmp_path, catalog_data):
    folder = tmp_path / "cat"
    folder.mkdir()
    (folder / "02.json").write_text(json.dumps({"format": 1, "items": catalog_data["items"][4:]}), "utf-8")
    (folder / "01.json").write_text(json.dumps({"format": 1, "items": catalog_data["items"][:4]}), "utf-8")
    assert [i.code for i in load_files(folder)] == [i["code"] for i in catalog_data["items"]]


def test_problems_in_several_files_are_all_reported(tmp_path, catalog_data):
    folder = tmp_path / "cat"
    folder.mkdir()
    bad = catalog_data["items"][0] | {"legal_days": -1}
    (folder / "01.json").write_text(json.dumps({"format": 1, "items": [bad]}), "utf-8")
    (folder / "02.json").write_text("{not json", "utf-8")
    with pytest.raises(CatalogError) as exc:
        load_files(folder)
    assert len(exc.value.problems) == 2
    assert "01.json: GA-SFZ-001: legal_days: Input should be greater than or equal to 0" in exc.value.problems[0]
    assert "02.json: not valid UTF-8 JSON" in exc.value.problems[1]


def test_cli_import_is_all_or_nothing(tmp_path, catalog_data):
    good, bad, db = tmp_path / "good.json", tmp_path / "bad.json", tmp_path / "c.sqlite"
    good.write_text(json.dumps(catalog_data, ensure_ascii=False), "utf-8")
    result = CliRunner().invoke(main, ["content", "import", str(good), "--db", str(db)])
    assert result.exit_code == 0 and "imported 8 items" in result.output
    catalog_data["items"][7]["materials"][0]["kind"] = "scan"
    catalog_data["items"][1]["phone"] = "call us"
    bad.write_text(json.dumps(catalog_data, ensure_ascii=False), "utf-8")
    result = CliRunner().invoke(main, ["content", "import", str(bad), "--db", str(db)])
    assert result.exit_code == 1
    assert "GA-SFZ-002: phone" in result.output and "SC-DJ-001: materials[0].kind" in result.output
    assert "(2 problems)" in result.output
    assert len(read_items(db)) == 8  # the earlier catalog is untouched


def test_cli_export_and_search(tmp_path, catalog_db):
    out = tmp_path / "out.json"
    assert CliRunner().invoke(main, ["content", "export", "--db", str(catalog_db), "--out", str(out)]).exit_code == 0
    assert json.loads(out.read_text("utf-8"))["format"] == 1
    result = CliRunner().invoke(main, ["content", "search", "sfz", "--db", str(catalog_db), "--json"])
    hits = json.loads(result.output)
    assert [h["code"] for h in hits[:3]] == ["GA-SFZ-001", "GA-SFZ-002", "GA-SFZ-003"]
    assert set(hits[0]) == {"code", "name", "department", "score"}


def test_missing_or_foreign_database_is_a_clear_error(tmp_path):
    with pytest.raises(CatalogError, match="no catalog here"):
        read_items(tmp_path / "nope.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 50)
    with pytest.raises(CatalogError, match="not a kiosq catalog|cannot open"):
        item(junk, "X-1")
