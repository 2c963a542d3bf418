"""The hall's opening hours as the kiosk says them: when the ticket counter is closed, when
tickets start again ("今天取号已结束，明天 08:30 起可以取号"). The hours come from the hall
server ({open, opens_at, closes_at}, local times with their offset, on /api/health,
/api/services and each heartbeat's answer). Pure: the caller passes `now`."""

from __future__ import annotations

from datetime import datetime


def parse_time(text: object) -> datetime | None:
    """An ISO 8601 time with offset from the server; None when absent or not one."""
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def is_closed(hours: dict) -> bool:
    """Whether the server said tickets are not issued now (unknown hours: open)."""
    return hours.get("open") is False


def closed_text(hours: dict, now: datetime, msg: dict[str, str]) -> str:
    """When tickets start again, in the kiosk's words; "" when the hall is open. Days are
    counted in the hall's own time zone (the offset the server gave)."""
    if not is_closed(hours):
        return ""
    opens = parse_time(hours.get("opens_at"))
    if opens is None:
        return msg["hours_closed_unknown"]
    days = (opens.date() - now.astimezone(opens.tzinfo).date()).days
    time = f"{opens:%H:%M}"
    if days <= 0:
        return msg["hours_closed_today"].format(time=time)
    if days == 1:
        return msg["hours_closed_tomorrow"].format(time=time)
    weekday = msg["hours_weekdays"].split(",")[opens.weekday()]
    month = msg["hours_months"].split(",")[opens.month - 1]
    date = msg["hours_date"].format(month=month, day=opens.day, weekday=weekday)
    return msg["hours_closed_on"].format(date=date, time=time)
