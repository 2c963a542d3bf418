"""Shared fixtures: a hall, a clock the test moves, and a store on a real SQLite file."""

from datetime import UTC, datetime, timedelta

import pytest

from kiosq.queue.config import load_hall
from kiosq.queue.store import Store


class FakeClock:
    """An injected clock: time moves only when the test says so."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def hall():
    return load_hall()


@pytest.fixture
def clock():
    # 10:00 in Shanghai on a Monday: well inside the business day.
    return FakeClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))


@pytest.fixture
def store(tmp_path, hall, clock):
    s = Store.in_dir(tmp_path, hall, clock=clock)
    yield s
    s.close()


def pytest_report_header() -> list[str]:
    """Both clocks at the start, so a date mix-up in a failure can be read off the log."""
    import os

    hall = load_hall()
    hall_now = datetime.now(hall.tz)
    machine_now = datetime.now().astimezone()
    return [f"machine TZ={os.environ.get('TZ', '(unset)')}: {machine_now:%Y-%m-%d %H:%M %z}; "
            f"hall {hall.info.timezone}: {hall_now:%Y-%m-%d %H:%M %z}"]
