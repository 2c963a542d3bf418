"""What the 取号 tile says outside opening hours, from the server's {open, opens_at}: today,
tomorrow, a later day with its weekday, or no known time; in the hall's own time zone."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from kiosq.kiosk.hours_text import closed_text
from kiosq.kiosk.messages import messages

CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 20, 18, 5, tzinfo=CST)  # a Friday evening in the hall


@pytest.mark.parametrize("opens_at, zh, en", [
    ("2026-11-20T20:00:00+08:00", "现在不是取号时间，今天 20:00 起可以取号", "Tickets start again today at 20:00"),
    ("2026-11-21T08:30:00+08:00", "今天取号已结束，明天 08:30 起可以取号",
     "Tickets are over for today; they start again tomorrow at 08:30"),
    ("2026-11-23T08:30:00+08:00", "取号已暂停，11月23日（周一） 08:30 起可以取号",
     "Tickets start again on Mon 23 Nov at 08:30"),
    (None, "暂停取号，何时恢复请咨询大厅工作人员", "Tickets are paused; ask the hall staff when they start again"),
])
def test_closed_text(opens_at, zh, en):
    hours = {"open": False, "opens_at": opens_at, "closes_at": None}
    assert closed_text(hours, NOW, messages("zh")) == zh
    assert closed_text(hours, NOW, messages("en")) == en


def test_open_or_unknown_hours_say_nothing():
    assert closed_text({"open": True, "opens_at": None, "closes_at": "2026-11-20T20:00:00+08:00"}, NOW,
                       messages("zh")) == ""
    assert closed_text({}, NOW, messages("zh")) == ""


def test_days_are_counted_in_the_halls_time_zone():
    # 23:30 UTC is already the next morning in the hall: 08:30 that morning is "today"
    now = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    hours = {"open": False, "opens_at": "2026-11-21T08:30:00+08:00"}
    assert closed_text(hours, now, messages("zh")) == "现在不是取号时间，今天 08:30 起可以取号"
