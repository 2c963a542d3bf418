"""The time zone `make test` gives the machine: one whose calendar date is not the hall's.

The hall counts its business day in its own zone (Asia/Shanghai for the built-in hall); a
test that takes "today" from the machine instead would pass whenever the two dates agree
and fail for some hours of the day. Run with the machine in a zone whose date differs from
the hall's, such a mix-up fails every run. `python tests/away_tz.py` prints the zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

# The two ends of the world's clock, UTC-12 and UTC+14: at any moment one of them is on
# another calendar date than any inhabited zone.
CANDIDATES = ("Etc/GMT+12", "Pacific/Kiritimati")
LOOK_AHEAD_MINUTES = 60  # a CI run lasts well under an hour


def minutes_on_another_date(zone: tzinfo, hall_tz: tzinfo, start: datetime) -> int:
    """Of the next LOOK_AHEAD_MINUTES after `start`, how many the two zones spend on different dates."""
    moments = (start + timedelta(minutes=m) for m in range(LOOK_AHEAD_MINUTES))
    return sum(at.astimezone(zone).date() != at.astimezone(hall_tz).date() for at in moments)


def choose(hall_tz: tzinfo, now: datetime) -> str:
    """Of the candidates on another date than the hall's at `now`, the one that stays there
    the longest (at any moment one of the two is: they are 26 hours apart)."""
    apart = [name for name in CANDIDATES if now.astimezone(ZoneInfo(name)).date() != now.astimezone(hall_tz).date()]
    return max(apart, key=lambda name: minutes_on_another_date(ZoneInfo(name), hall_tz, now))


def main() -> None:
    from kiosq.queue.config import load_hall

    print(choose(load_hall().tz, datetime.now(UTC)))


if __name__ == "__main__":
    main()
