"""`make test` runs the suite with the machine's clock on another calendar date than the
hall's (tests/away_tz.py); here, which zone it picks at the hours where it matters."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.away_tz import CANDIDATES, LOOK_AHEAD_MINUTES, choose, minutes_on_another_date

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize("hall_tz, local, expected", [
    (SHANGHAI, "2026-12-03 00:05", "Etc/GMT+12"),     # the hour issue #12 was found at
    (SHANGHAI, "2026-12-02 10:00", "Etc/GMT+12"),
    (SHANGHAI, "2026-12-02 19:30", "Pacific/Kiritimati"),
    (SHANGHAI, "2026-12-02 21:00", "Pacific/Kiritimati"),
    (SHANGHAI, "2026-12-02 23:50", "Pacific/Kiritimati"),  # GMT+12 is on the hall's date until midnight
    (BERLIN, "2026-07-01 09:00", "Etc/GMT+12"),
    (BERLIN, "2026-07-01 14:00", "Pacific/Kiritimati"),
])
def test_the_chosen_zone_is_on_another_date_than_the_hall(hall_tz, local, expected):
    now = datetime.fromisoformat(local).replace(tzinfo=hall_tz)
    assert choose(hall_tz, now) == expected
    assert now.astimezone(ZoneInfo(expected)).date() != now.date()


@pytest.mark.parametrize("minute", range(0, 24 * 60, 7))
def test_at_any_minute_of_the_day_the_chosen_zone_stays_on_another_date_until_the_halls_midnight(minute):
    now = datetime(2026, 12, 2, tzinfo=SHANGHAI) + timedelta(minutes=minute)
    zone = ZoneInfo(choose(SHANGHAI, now))
    to_midnight = (datetime(2026, 12, 3, tzinfo=SHANGHAI) - now) // timedelta(minutes=1)
    assert minutes_on_another_date(zone, SHANGHAI, now) >= min(to_midnight, LOOK_AHEAD_MINUTES), now


def test_the_candidates_are_real_zones():
    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    offsets = sorted(now.astimezone(ZoneInfo(name)).utcoffset() for name in CANDIDATES)
    assert offsets == [timedelta(hours=-12), timedelta(hours=14)]
