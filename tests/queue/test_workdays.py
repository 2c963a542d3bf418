"""Working-day arithmetic: weekends, holidays, make-up working days (调休), and the hall file."""

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosq.queue.config import HallConfigError, load_hall, parse_hall
from kiosq.queue.workdays import WorkCalendar

PLAIN = WorkCalendar()
CHINA = WorkCalendar.china()


def test_weekends_are_skipped_and_the_first_day_does_not_count():
    friday = date(2026, 11, 20)
    assert PLAIN.add(friday, 0) == friday  # 即办件: due the same day
    assert PLAIN.add(friday, 1) == date(2026, 11, 23)  # Monday
    assert PLAIN.add(date(2026, 11, 21), 1) == date(2026, 11, 23)  # filed on a Saturday: Monday too
    assert PLAIN.add(date(2026, 11, 23), 5) == date(2026, 11, 30)  # Monday + 5 = next Monday


def test_national_day_week_and_its_make_up_saturday():
    # Filed Tuesday 2026-09-29: 30 Sep is a working day, 1-7 Oct are off, Thu 8 and Fri 9 work,
    # Saturday 10 Oct is a make-up working day (调休), then Monday 12.
    filed = date(2026, 9, 29)
    assert [CHINA.add(filed, n) for n in range(1, 6)] == [
        date(2026, 9, 30), date(2026, 10, 8), date(2026, 10, 9), date(2026, 10, 10), date(2026, 10, 12)]
    # Without the national calendar the same limits land in the holiday.
    assert PLAIN.add(filed, 2) == date(2026, 10, 1)


def test_sunday_make_up_day_before_national_day():
    # Sunday 2026-09-20 is worked; Friday 25 Sep (中秋) is off.
    assert CHINA.is_workday(date(2026, 9, 20)) and not PLAIN.is_workday(date(2026, 9, 20))
    assert CHINA.add(date(2026, 9, 18), 1) == date(2026, 9, 20)
    assert CHINA.add(date(2026, 9, 24), 1) == date(2026, 9, 28)


def test_spring_festival_is_nine_days_off():
    assert CHINA.add(date(2026, 2, 13), 1) == date(2026, 2, 14)  # Saturday worked
    assert CHINA.add(date(2026, 2, 14), 1) == date(2026, 2, 24)  # 15-23 off


def test_hall_holidays_and_workdays():
    cal = WorkCalendar.of(holidays=["2027-01-01"], workdays=["2027-01-02"])  # a Friday off, Saturday worked
    assert cal.add(date(2026, 12, 31), 1) == date(2027, 1, 2)
    assert cal.between(date(2026, 12, 31), date(2027, 1, 4)) == 2  # Sat 2 and Mon 4


def test_negative_limit_is_refused():
    with pytest.raises(ValueError):
        PLAIN.add(date(2026, 1, 1), -1)


days = st.dates(min_value=date(2025, 6, 1), max_value=date(2027, 6, 1))


@settings(max_examples=300, deadline=None)
@given(start=days, n=st.integers(min_value=0, max_value=60))
def test_add_lands_on_the_nth_working_day(start, n):
    end = CHINA.add(start, n)
    assert CHINA.between(start, end) == n
    if n:
        assert CHINA.is_workday(end)
        # and no earlier day would do
        assert CHINA.between(start, end - timedelta(days=1)) == n - 1


@settings(max_examples=200, deadline=None)
@given(start=days, a=st.integers(min_value=0, max_value=40), b=st.integers(min_value=0, max_value=40))
def test_adding_in_two_steps_is_adding_once(start, a, b):
    # Holds whenever the middle day is a working day (or a = 0): the start day never counts.
    middle = CHINA.add(start, a)
    if a == 0 or CHINA.is_workday(middle):
        assert CHINA.add(middle, b) == CHINA.add(start, a + b)


def test_the_built_in_hall_has_the_national_calendar():
    hall = load_hall()
    assert hall.calendar.is_workday(date(2026, 10, 10)) and not hall.calendar.is_workday(date(2026, 10, 8 - 1))


HALL = """
[hall]
name = "x"
[[services]]
code = "A"
name = "a"
name_en = "a"
[[windows]]
number = 1
name = "1"
services = ["A"]
"""


def test_calendar_keys_in_the_hall_file():
    hall = parse_hall(HALL + '[calendar]\nnational = false\nholidays = ["2027-01-01", 2027-02-05]\n'
                      'workdays = ["2027-01-02"]\n')
    assert not hall.calendar.is_workday(date(2027, 2, 5)) and hall.calendar.is_workday(date(2027, 1, 2))
    assert hall.calendar.is_workday(date(2026, 10, 8 - 1)) is True  # national = false: 7 Oct is a Wednesday


@pytest.mark.parametrize("extra, message", [
    ('[calendar]\nworkdays = ["2027-01-04"]\n', "calendar.workdays: 2027-01-04 is a weekday already"),
    ('[calendar]\nholidays = ["2027-01-02"]\nworkdays = ["2027-01-02"]\n', "calendar.holidays[1]: 2027-01-02 is also"),
    ('[calendar]\nholidays = ["2027-13-01"]\n', "calendar.holidays[1]: Input should be a valid date"),
    ('[notify]\nwebhook_url = "ftp://x"\n', "notify.webhook_url"),
])
def test_bad_calendar_and_notify_keys_are_named(extra, message):
    with pytest.raises(HallConfigError) as err:
        parse_hall(HALL + extra)
    assert message in str(err.value)
