"""Opening hours (queue/hours.py) and their hall-file keys: open at a moment, the next
opening across lunch breaks, weekends, holidays and make-up working days (调休)."""

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kiosq.queue.config import HallConfigError, parse_hall
from kiosq.queue.hours import closed_detail, parse_periods, status
from kiosq.queue.workdays import WorkCalendar

TZ = ZoneInfo("Asia/Shanghai")
# The shipped hall without its [calendar] table, which each test writes itself.
DEFAULT = (Path(__file__).parents[2] / "queue" / "halls" / "default.toml").read_text("utf-8").split("[calendar]")[0]
WEEKDAYS = 'mon = "08:30-12:00,13:30-17:30"\ntue = "08:30-12:00,13:30-17:30"\nwed = "08:30-12:00,13:30-17:30"\n' \
           'thu = "08:30-12:00,13:30-17:30"\nfri = "08:30-12:00,13:30-17:00"\nsat = "09:00-12:00"\nsun = ""\n'


def hall_with(extra: str):
    return parse_hall(DEFAULT + "\n" + extra)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def check(hall, when: str):
    s = status(hall.hours, at(when), TZ)
    return (s.open, s.opens_at and s.opens_at.astimezone(TZ).isoformat()[:16],
            s.closes_at and s.closes_at.astimezone(TZ).isoformat()[:16])


@pytest.fixture
def hall():
    # 2026-11-23 is a Monday; no national day near it.
    return hall_with("[hours]\n" + WEEKDAYS + "\n[calendar]\nholidays = [2026-11-25]\nworkdays = [2026-11-29]\n")


def test_without_hours_the_hall_is_always_open():
    plain = parse_hall(DEFAULT)
    assert plain.hours is None
    s = status(plain.hours, at("2026-11-22T03:00"), TZ)
    assert (s.open, s.opens_at, s.closes_at) == (True, None, None)


@pytest.mark.parametrize("when, expected", [
    ("2026-11-23T08:29:59", (False, "2026-11-23T08:30", None)),  # before opening
    ("2026-11-23T08:30", (True, None, "2026-11-23T12:00")),  # at opening
    ("2026-11-23T11:59:59", (True, None, "2026-11-23T12:00")),
    ("2026-11-23T12:00", (False, "2026-11-23T13:30", None)),  # lunch break
    ("2026-11-23T17:30", (False, "2026-11-24T08:30", None)),  # evening: tomorrow
    ("2026-11-24T23:00", (False, "2026-11-26T08:30", None)),  # the 25th is a holiday
    ("2026-11-27T17:10", (False, "2026-11-28T09:00", None)),  # Friday closes at 17:00; Saturday morning
    ("2026-11-28T12:30", (False, "2026-11-29T08:30", None)),  # Sunday 29th is worked (调休): Monday's hours
    ("2026-11-29T14:00", (True, None, "2026-11-29T17:30")),
    ("2026-11-29T18:00", (False, "2026-11-30T08:30", None)),
])
def test_open_and_next_opening(hall, when, expected):
    assert check(hall, when) == expected


def test_make_up_day_hours_and_holiday_hours_can_be_given(hall):
    custom = hall_with("[hours]\n" + WEEKDAYS + 'workday_hours = "09:00-15:00"\nholiday_hours = "10:00-12:00"\n'
                       "\n[calendar]\nholidays = [2026-11-25]\nworkdays = [2026-11-29]\n")
    assert check(custom, "2026-11-29T08:45") == (False, "2026-11-29T09:00", None)
    assert check(custom, "2026-11-29T16:00") == (False, "2026-11-30T08:30", None)
    assert check(custom, "2026-11-25T11:00") == (True, None, "2026-11-25T12:00")


def test_national_days_off_close_the_hall():
    hall = hall_with("[hours]\n" + WEEKDAYS)
    # 国庆节 1-7 October 2026; Saturday 10 October is worked.
    assert check(hall, "2026-09-30T18:00") == (False, "2026-10-08T08:30", None)
    assert check(hall, "2026-10-09T18:00") == (False, "2026-10-10T08:30", None)


def test_periods_joined_across_midnight_close_when_the_last_ends():
    hall = hall_with('[hours]\nmon = "20:00-24:00"\ntue = "00:00-02:00,08:00-09:00"\n')
    assert check(hall, "2026-11-23T23:00") == (True, None, "2026-11-24T02:00")
    assert check(hall, "2026-11-24T01:00") == (True, None, "2026-11-24T02:00")
    assert check(hall, "2026-11-24T03:00") == (False, "2026-11-24T08:00", None)


def test_open_every_hour_of_the_year_has_no_closing_time():
    every = "\n".join(f'{d} = "00:00-24:00"' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    hall = hall_with("[hours]\n" + every + '\nholiday_hours = "00:00-24:00"\nworkday_hours = "00:00-24:00"\n')
    assert check(hall, "2026-11-23T03:00") == (True, None, None)


def test_closed_for_good_has_no_next_opening():
    hall = hall_with("[hours]\n")
    assert check(hall, "2026-11-23T10:00") == (False, None, None)


def test_the_refusal_says_when_tickets_start_again():
    now = at("2026-11-23T18:00")
    assert closed_detail(at("2026-11-24T08:30"), now, TZ) == \
        "取号时间已结束，明天 08:30 起可以取号 / Tickets start again at 08:30 tomorrow"
    assert closed_detail(at("2026-11-23T13:30"), at("2026-11-23T12:10"), TZ) == \
        "现在不是取号时间，今天 13:30 起可以取号 / Tickets start again at 13:30 today"
    assert closed_detail(at("2026-11-26T08:30"), at("2026-11-24T23:00"), TZ).startswith("取号时间已结束，后天 08:30")
    assert closed_detail(at("2026-10-08T08:30"), at("2026-09-30T18:00"), TZ) == \
        "取号时间已结束，10月8日（周四） 08:30 起可以取号 / Tickets start again at 08:30 on Thu 8 Oct"
    assert closed_detail(None, now, TZ) == "暂停取号 / Tickets are not being issued"


@pytest.mark.parametrize("text, problem", [
    ('mon = "8:30-12:00"', "not a period"),
    ('mon = "12:00-08:30"', "ends before it starts"),
    ('mon = "08:00-12:00,11:00-13:00"', "overlap"),
    ('mon = "08:00-24:30"', "from 00:00 to 24:00"),
    ('monday = "08:00-12:00"', "unknown key"),
])
def test_hours_mistakes_name_the_key(text, problem):
    with pytest.raises(HallConfigError) as err:
        hall_with("[hours]\n" + text)
    assert problem in str(err.value) and "hours.mon" in str(err.value)


def test_parse_periods_sorts_and_allows_spaces():
    assert parse_periods(" 13:30-17:30 , 08:30-12:00 ") == ((510, 720), (810, 1050))
    assert parse_periods("") == ()


def test_make_up_day_uses_mondays_hours_by_default():
    hall = hall_with("[hours]\n" + WEEKDAYS + "\n[calendar]\nnational = false\nworkdays = [2026-11-29]\n")
    assert hall.hours.periods_on(datetime(2026, 11, 29).date()) == parse_periods("08:30-12:00,13:30-17:30")
    assert hall.hours.calendar == WorkCalendar.of([], ["2026-11-29"])
