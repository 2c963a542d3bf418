"""Opening hours of the hall's ticket counter: is it open at a moment, and if not, when does
it open again? Pure: no clock, no I/O.

Hours are given per weekday as periods of local time ("08:30-12:00,13:30-17:30"; "" closed).
The hall's calendar decides which list a date uses: a make-up working day (调休上班, a
weekend day worked) uses `workday` hours, a day off (放假) uses `holiday` hours (closed by
default), every other date its weekday's. A hall with no hours at all is open around the
clock (`status(None, ...)`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from kiosq.queue.workdays import WorkCalendar

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Period = tuple[int, int]  # minutes after local midnight: start, end (end <= 1440)

_PERIOD = re.compile(r"^([0-2]\d):([0-5]\d)-([0-2]\d):([0-5]\d)$")
MERGE_DAYS = 8  # a hall open longer than this without a break: "closes_at" is not given
SEARCH_DAYS = 400  # how far ahead the next opening is looked for


class Closed(Exception):
    """Tickets are not issued now; `opens_at` is when they start again (None: not known)."""

    def __init__(self, detail: str, opens_at: datetime | None) -> None:
        super().__init__(detail)
        self.opens_at = opens_at


def parse_periods(text: str) -> tuple[Period, ...]:
    """'08:30-12:00,13:30-17:30' -> ((510, 720), (810, 1050)); '' -> () (closed all day)."""
    periods: list[Period] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        m = _PERIOD.match(part.replace(" ", ""))
        if not m:
            raise ValueError(f"{part!r} is not a period; write HH:MM-HH:MM, several separated by commas, "
                             "e.g. \"08:30-12:00,13:30-17:30\"")
        h1, m1, h2, m2 = map(int, m.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or end > 24 * 60:
            raise ValueError(f"{part!r}: times run from 00:00 to 24:00")
        if end <= start:
            raise ValueError(f"{part!r} ends before it starts; a period past midnight is two: "
                             "\"22:00-24:00\" today and \"00:00-02:00\" the next day")
        periods.append((start, end))
    periods.sort()
    for (s1, e1), (s2, _e2) in zip(periods, periods[1:]):
        if s2 < e1:
            raise ValueError(f"periods {_hm(s1)}-{_hm(e1)} and {_hm(s2)} overlap")
    return tuple(periods)


def _hm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class OpeningHours:
    week: tuple[tuple[Period, ...], ...]  # Monday to Sunday
    workday: tuple[Period, ...]  # make-up working days (调休)
    holiday: tuple[Period, ...]  # days off
    calendar: WorkCalendar

    def periods_on(self, day: date) -> tuple[Period, ...]:
        if day in self.calendar.workdays:
            return self.workday
        if day in self.calendar.holidays:
            return self.holiday
        return self.week[day.weekday()]


@dataclass(frozen=True)
class HoursStatus:
    open: bool
    opens_at: datetime | None  # when closed: the next opening (None: none within a year)
    closes_at: datetime | None  # when open: the end of this stretch (None: not within MERGE_DAYS)

    def as_dict(self, tz: tzinfo) -> dict:
        def local(value: datetime | None) -> str | None:
            return None if value is None else value.astimezone(tz).isoformat(timespec="seconds")
        return {"open": self.open, "opens_at": local(self.opens_at), "closes_at": local(self.closes_at)}


ALWAYS_OPEN = HoursStatus(True, None, None)


def _intervals(hours: OpeningHours, first: date, days: int, tz: tzinfo):
    """The opening periods from `first` on, in order, as aware datetimes."""
    for offset in range(days):
        day = first + timedelta(days=offset)
        midnight = datetime.combine(day, time(0), tzinfo=tz)
        for start, end in hours.periods_on(day):
            yield midnight + timedelta(minutes=start), midnight + timedelta(minutes=end)


def status(hours: OpeningHours | None, at: datetime, tz: tzinfo) -> HoursStatus:
    """Open at `at`? If so until when; if not, from when."""
    if hours is None:
        return ALWAYS_OPEN
    today = at.astimezone(tz).date()
    # From yesterday: a period up to 24:00 yesterday may join one from 00:00 today.
    stretch: tuple[datetime, datetime] | None = None
    for start, end in _intervals(hours, today - timedelta(days=1), SEARCH_DAYS, tz):
        if stretch is not None and start == stretch[1]:
            stretch = (stretch[0], end)  # no break between the two: one stretch
        else:
            if stretch is not None and stretch[0] <= at < stretch[1]:
                return HoursStatus(True, None, stretch[1])
            stretch = (start, end)
        if stretch[0] > at:
            return HoursStatus(False, stretch[0], None)
        if stretch[1] - at > timedelta(days=MERGE_DAYS):
            return HoursStatus(True, None, None)
    if stretch is not None and stretch[0] <= at < stretch[1]:
        return HoursStatus(True, None, stretch[1])
    return HoursStatus(False, None, None)


_WEEKDAY_ZH = "一二三四五六日"
_WEEKDAY_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def closed_detail(opens_at: datetime | None, now: datetime, tz: tzinfo) -> str:
    """What the kiosk and the refusal say, in Chinese and English:
    '取号时间已结束，明天 08:30 起可以取号 / Tickets start again at 08:30 tomorrow'."""
    if opens_at is None:
        return "暂停取号 / Tickets are not being issued"
    local = opens_at.astimezone(tz)
    days = (local.date() - now.astimezone(tz).date()).days
    hm = f"{local:%H:%M}"
    if days == 0:
        return f"现在不是取号时间，今天 {hm} 起可以取号 / Tickets start again at {hm} today"
    zh_when = {1: "明天", 2: "后天"}.get(days) or f"{local.month}月{local.day}日（周{_WEEKDAY_ZH[local.weekday()]}）"
    en_when = "tomorrow" if days == 1 else \
        f"on {_WEEKDAY_EN[local.weekday()]} {local.day} {_MONTH_EN[local.month - 1]}"
    return f"取号时间已结束，{zh_when} {hm} 起可以取号 / Tickets start again at {hm} {en_when}"


def refuse_when_closed(hours: OpeningHours | None, now: datetime, tz: tzinfo) -> None:
    """Tickets are issued only while the counter is open: raise Closed, saying when it opens."""
    state = status(hours, now, tz)
    if not state.open:
        opens_at = None if state.opens_at is None else state.opens_at.astimezone(tz)
        raise Closed(closed_detail(state.opens_at, now, tz), opens_at)
