"""The item-guide model: the import format's rules, every problem named by code and field."""

import pytest

from kiosq.content.model import CatalogError, check_catalog, check_values, id_number_valid, parse_catalog


def problems_of(data):
    with pytest.raises(CatalogError) as exc:
        parse_catalog(data, source="cat.json")
    return exc.value.problems


def test_a_good_catalog_parses(catalog_data):
    items = parse_catalog(catalog_data)
    assert [i.code for i in items][:2] == ["GA-SFZ-001", "GA-SFZ-002"]
    first = items[0]
    assert first.fileable and not first.free and first.fees[0].yuan == 20
    assert items[3].free and items[3].form is None


@pytest.mark.parametrize("path, value, expected", [
    (("materials", 1, "kind"), "photocopy", "GA-SFZ-001: materials[1].kind: Input should be 'original', 'copy' or"),
    (("promised_days",), 90, "GA-SFZ-001: (item): Value error, promised_days (90) is longer than legal_days (60)"),
    (("fees", 0, "amount"), "20", "GA-SFZ-001: fees[0].amount: String should match pattern"),
    (("code",), "ga-1", "cat.json: ga-1: code: String should match pattern"),
    (("type",), "便民服务", "GA-SFZ-001: type: Input should be '行政许可'"),
    (("online_level",), "跑两次", "GA-SFZ-001: online_level: Input should be '零上门'"),
    (("basis",), [], "GA-SFZ-001: basis: List should have at least 1 item"),
    (("form", "fields", 3, "choices"), [{"value": "only", "label": "唯一", "label_en": "Only"}],
     "GA-SFZ-001: form.fields[3]: Value error, a choice field needs at least two choices"),
    (("form", "fields", 0, "prefill"), "photo", "GA-SFZ-001: form.fields[0].prefill: Input should be 'name'"),
    (("form", "fields", 0, "min"), 3, "GA-SFZ-001: form.fields[0]: Value error, min does not apply to a text field"),
    (("form", "fields", 6, "pattern"), "[0-9", "GA-SFZ-001: form.fields[6].pattern: Value error, not a valid regular"),
])
def test_each_problem_names_the_item_and_field(catalog_data, path, value, expected):
    target = catalog_data["items"][0]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    found = problems_of(catalog_data)
    assert any(p.startswith(f"cat.json: {expected}".replace("cat.json: cat.json", "cat.json"))
               or expected.replace("Value error, ", "") in p for p in found), found


def test_every_problem_is_reported_not_just_the_first(catalog_data):
    del catalog_data["items"][0]["name"]
    catalog_data["items"][2]["steps"] = []
    catalog_data["items"][5]["extra"] = 1
    found = problems_of(catalog_data)
    assert "cat.json: GA-SFZ-001: name: required, missing" in found
    assert "cat.json: GA-SFZ-003: steps: List should have at least 1 item after validation, not 0" in found
    assert "cat.json: GJJ-001: extra: unknown key (see docs/catalog-format.md)" in found


def test_wrong_format_version_and_shape():
    assert problems_of({"format": 2, "items": []})[0].startswith("cat.json: format: must be 1")
    assert "items: must be a list" in problems_of({"format": 1, "items": {}})[-1]
    with pytest.raises(CatalogError, match="JSON object"):
        parse_catalog([], "cat.json")


def test_codes_are_unique_across_files(catalog_data):
    items = parse_catalog(catalog_data) + parse_catalog(catalog_data)[:1]
    with pytest.raises(CatalogError, match="GA-SFZ-001: code: used by 2 items"):
        check_catalog(items)


@pytest.mark.parametrize("number, ok", [
    ("11010519491231002X", True), ("110105194912310021", False), ("11010519491231002", False),
    ("440308199901011234", True), ("44030819990101123X", False),
])
def test_id_number_check_digit(number, ok):
    assert id_number_valid(number) is ok


def test_form_values_are_checked_field_by_field(catalog_data):
    item = parse_catalog(catalog_data)[0]
    good = {"applicant_name": "王小明", "id_number": "11010519491231002X", "phone": "13800138000",
            "reason": "expired", "rent": 2500, "start": "2026-01-01", "postcode": "310000", "promise": True}
    assert check_values(item, good) == {}
    bad = {**good, "id_number": "110105194912310021", "phone": "12345", "reason": "bored", "rent": 0,
           "start": "1999-12-31", "postcode": "31000", "promise": False, "colour": "red"}
    assert check_values(item, bad) == {
        "id_number": "not a valid resident ID number (check its last character)",
        "phone": "must be a mobile (11 digits) or a landline with its area code", "reason": "not one of the choices",
        "rent": "must be at least 1", "start": "must be on or after 2000-01-01",
        "postcode": "does not have the expected form", "promise": "must be ticked",
        "colour": "not a field of this form"}
    assert check_values(item, {})["applicant_name"] == "required"
    assert check_values(parse_catalog(catalog_data)[1], good) == {"": "GA-SFZ-002 cannot be filed at a terminal"}


def test_values_that_only_look_right_are_refused(catalog_data):
    item = parse_catalog(catalog_data)[0]
    assert check_values(item, {"id_number": "11010519491231002X\n"})["id_number"].startswith("not a valid")
    assert check_values(item, {"phone": "13800138000\n"})["phone"].startswith("must be a mobile")
    assert check_values(item, {"rent": float("nan")})["rent"] == "must be a number"
    assert check_values(item, {"rent": 10 ** 400})["rent"] == "is too large"  # not an OverflowError (a 500)
    assert not id_number_valid("11010519991340002X".replace("002X", "0028"))  # born on the 40th of the 13th month
