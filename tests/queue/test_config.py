"""Hall files: the default hall, and one clear message for every kind of mistake."""

import pytest

from kiosq.queue.config import HallConfigError, load_hall, parse_hall

GOOD = """
[hall]
name = "测试大厅"
[[services]]
code = "A"
name = "户籍"
name_en = "Household"
[[services]]
code = "B"
name = "出入境"
name_en = "Exit-entry"
[[windows]]
number = 1
name = "1号"
services = ["A", "B"]
"""


def test_default_hall_looks_like_a_district_hall():
    hall = load_hall()
    assert len(hall.services) == 6 and len(hall.windows) == 8
    assert hall.info.sla_wait_minutes == 10 and hall.info.rollover_hour == 4
    assert {w.policy for w in hall.windows.values()} == {"oldest", "service_order"}
    assert hall.services["A"].label(1) == "A001"


def test_defaults_fill_what_a_file_leaves_out():
    hall = parse_hall(GOOD)
    a = hall.services["A"]
    assert (a.prefix, a.first_number, a.last_number, hall.windows[1].policy) == ("A", 1, 999, "oldest")
    assert hall.info.sla_wait_minutes == 10


def test_file_from_disk_and_missing_file(tmp_path):
    path = tmp_path / "hall.toml"
    path.write_text(GOOD, encoding="utf-8")
    assert load_hall(path).source == str(path)
    with pytest.raises(HallConfigError, match=r"nope\.toml: cannot read the hall file"):
        load_hall(tmp_path / "nope.toml")


@pytest.mark.parametrize("change, message", [
    (lambda s: s.replace('name = "测试大厅"', 'name = "测试大厅"\nrollover_hour = 25'),
     r"hall\.toml: hall\.rollover_hour: Input should be less than or equal to 23"),
    (lambda s: s.replace('services = ["A", "B"]', 'services = ["A", "Z"]'),
     r"windows\[1\]\.services: unknown service 'Z'; known services: A, B"),
    (lambda s: s.replace('code = "B"', 'code = "A"'), r"services\[2\]\.code: service code 'A' is used twice"),
    (lambda s: s.replace('name_en = "Exit-entry"', 'name_en = "Exit-entry"\nprefix = "A"'),
     r"services\[2\]\.prefix: prefix 'A' is already used by service 'A'"),
    (lambda s: s.replace('name_en = "Household"', 'name_en = "Household"\nfirst_number = 50\nlast_number = 10'),
     r"services\[1\]\.last_number: 10 is below first_number 50"),
    (lambda s: s.replace('name = "1号"', 'name = "1号"\ncolour = "red"'), r"windows\[1\]\.colour: unknown key"),
    (lambda s: s.replace('name = "户籍"\n', ''), r"services\[1\]\.name: required key is missing"),
    (lambda s: s.replace('services = ["A", "B"]', 'services = ["A"]'), r"windows: no window serves service 'B'"),
    (lambda s: s.replace('[hall]', '[hall]\ntimezone = "Mars/Olympus"'), r"hall\.timezone: unknown time zone"),
    (lambda s: s.replace('[hall]', '[hall]\ntimezone = "America"'), r"hall\.timezone: unknown time zone"),
    (lambda s: s.replace('services = ["A", "B"]', 'services = ["A", "B"]\npolicy = "random"'),
     r"windows\[1\]\.policy: Input should be 'oldest' or 'service_order'"),
    (lambda s: s.replace('code = "A"', 'code = "hukou"'), r"services\[1\]\.prefix: required when the code"),
    (lambda s: s + "\n[[windows]]\nnumber = 1\nname = 'x'\nservices = ['A']\n",
     r"windows\[2\]\.number: window 1 is defined twice"),
    (lambda s: s.replace("[hall]", "[hall"), r"hall\.toml: not valid TOML"),
])
def test_each_mistake_names_file_key_and_problem(change, message):
    with pytest.raises(HallConfigError, match=message):
        parse_hall(change(GOOD), source="hall.toml")


def test_english_announcements_are_off_unless_asked_for():
    assert parse_hall(GOOD).info.announce_in_english is False
    assert parse_hall(GOOD.replace("[hall]", "[hall]\nannounce_in_english = true")).info.announce_in_english


def test_the_database_table_takes_a_url_without_a_password():
    assert parse_hall(GOOD).database.url is None  # SQLite in the data folder
    hall = parse_hall(GOOD + '\n[database]\nurl = "postgresql://kiosq@db:5432/kiosq"\npassword_file = "/etc/p"\n')
    assert (hall.database.url, hall.database.password_file) == ("postgresql://kiosq@db:5432/kiosq", "/etc/p")
    with pytest.raises(HallConfigError, match=r"database\.url: .*the URL holds a password; take it out"):
        parse_hall(GOOD + '\n[database]\nurl = "postgresql://kiosq:pw@db/kiosq"\n', source="hall.toml")
    with pytest.raises(HallConfigError, match=r"database\.url: .*is not a PostgreSQL URL"):
        parse_hall(GOOD + '\n[database]\nurl = "mysql://db/kiosq"\n', source="hall.toml")
    with pytest.raises(HallConfigError, match=r"database\.passwd: unknown key"):
        parse_hall(GOOD + '\n[database]\npasswd = "x"\n', source="hall.toml")
