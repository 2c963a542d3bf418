"""Working days (工作日): time limits of items are counted in them, not in calendar days.

Pure: no clock, no I/O. A `WorkCalendar` knows the hall's holidays (放假, weekdays off)
and its make-up working days (调休上班, a Saturday or Sunday worked instead), on top of
the plain rule that Monday to Friday are working days.

Counting follows the administrative rule that the day a period starts on is not counted
(期间开始的当日不计算在内): a limit of N working days from day D ends on the N-th working
day after D. Filed on a Friday with a limit of 1, due the Monday; filed on a Saturday (at a
24-hour terminal) with a limit of 1, also due the Monday. A limit of 0 (即办件, done on the
spot) ends on D itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

# 国务院办公厅关于2026年部分节假日安排的通知 (published 2025-11-04): the days off and the
# weekend days worked instead. Halls add other years (and local days) in the hall file.
CHINA_2026_HOLIDAYS = (
    "2026-01-01", "2026-01-02", "2026-01-03",                                  # 元旦
    *(f"2026-02-{d:02d}" for d in range(15, 24)),                            # 春节 15-23
    "2026-04-04", "2026-04-05", "2026-04-06",                                  # 清明节
    "2026-05-01", "2026-05-02", "2026-05-03", "2026-05-04", "2026-05-05",      # 劳动节
    "2026-06-19", "2026-06-20", "2026-06-21",                                  # 端午节
    "2026-09-25", "2026-09-26", "2026-09-27",                                  # 中秋节
    *(f"2026-10-{d:02d}" for d in range(1, 8)),                              # 国庆节 1-7
)
CHINA_2026_WORKDAYS = ("2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10")
NATIONAL_YEARS = (2026,)  # years whose national days off are built in

# A limit is at most 3650 working days (content.model.ItemGuide); this bounds every walk.
_MAX_DAYS = 3650 * 2 + 366


@dataclass(frozen=True)
class WorkCalendar:
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)  # weekend days that are worked

    @classmethod
    def of(cls, holidays: Iterable[date | str] = (), workdays: Iterable[date | str] = ()) -> WorkCalendar:
        def days(values: Iterable[date | str]) -> frozenset[date]:
            return frozenset(v if isinstance(v, date) else date.fromisoformat(v) for v in values)

        return cls(days(holidays), days(workdays))

    @classmethod
    def china(cls, holidays: Iterable[date | str] = (), workdays: Iterable[date | str] = ()) -> WorkCalendar:
        """The built-in national days (2026) plus the hall's own."""
        return cls.of([*CHINA_2026_HOLIDAYS, *holidays], [*CHINA_2026_WORKDAYS, *workdays])

    def is_workday(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add(self, start: date, days: int) -> date:
        """The `days`-th working day after `start` (`start` itself for 0)."""
        if days < 0:
            raise ValueError("a time limit cannot be negative")
        day, left = start, days
        while left:
            day += timedelta(days=1)
            if self.is_workday(day):
                left -= 1
        return day

    def between(self, start: date, end: date) -> int:
        """Working days after `start` up to and including `end` (0 if `end` <= `start`)."""
        if end <= start:
            return 0
        span = min((end - start).days, _MAX_DAYS)
        return sum(self.is_workday(start + timedelta(days=i)) for i in range(1, span + 1))
