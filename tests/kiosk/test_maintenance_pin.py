"""The maintenance PIN's rules and its lockout, on the real state file in a temp folder and
an injected wall clock (tests/conftest.py's FakeClock): 6 to 12 digits, the growing lockout
(1 min, 5 min, 30 min, then 2 h), a right PIN starting the count again, the lockout surviving
a restart (a new guard, and the whole Kivy app started again on the same data folder), a
clock set back, and a damaged or missing state file."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from kiosq.kiosk.maintenance import (
    LOCKOUTS,
    MAX_TRIES,
    STATE_FILE,
    PinGuard,
    hash_pin,
    lockout_length,
    pin_problem,
)

PIN = "24681357"
STORED = hash_pin(PIN)
WRONG = "111111"


@pytest.fixture
def state_file(tmp_path):
    return tmp_path / "data" / STATE_FILE


def guard(state_file, clock):
    return PinGuard(STORED, state_file, clock=clock)


def lock_out(pins: PinGuard) -> list[str]:
    """Five wrong PINs in a row: what each attempt said."""
    return [pins.attempt(WRONG) for _ in range(MAX_TRIES)]


@pytest.mark.parametrize("pin, problem", [
    ("123456", None), ("000000000000", None),
    ("12345", "at least 6 digits (this one has 5)"), ("1234567890123", "at most 12 digits"),
    ("12 456", "digits only"), ("１２３４５６", "digits only"), ("", "is empty"),
])
def test_a_pin_is_6_to_12_ascii_digits(pin, problem):
    said = pin_problem(pin)
    assert (said is None) if problem is None else (said is not None and problem in said)
    if problem is not None:
        with pytest.raises(ValueError, match="maintenance PIN"):
            hash_pin(pin)


def test_the_lockout_grows_1_5_30_minutes_then_2_hours(state_file, clock):
    assert [lockout_length(n) for n in range(1, 7)] == [timedelta(minutes=1), timedelta(minutes=5),
                                                        timedelta(minutes=30)] + [timedelta(hours=2)] * 3
    pins = guard(state_file, clock)
    for n, length in enumerate([*LOCKOUTS, LOCKOUTS[-1], LOCKOUTS[-1]], start=1):
        assert lock_out(pins) == ["wrong"] * (MAX_TRIES - 1) + ["locked"]
        assert pins.locked_for() == length.total_seconds()
        assert pins.report() == {"lockouts": n, "locked_until": (clock.now + length).isoformat(),
                                 "last_lockout_at": clock.now.isoformat()}
        clock.advance(seconds=length.total_seconds() - 1)
        assert pins.attempt(PIN) == "locked"  # even the right PIN, a second before the end
        clock.advance(seconds=1)
        assert pins.locked_for() == 0 and pins.report()["locked_until"] is None
        assert pins.tries_left() == MAX_TRIES


def test_a_right_pin_starts_the_count_again_but_the_history_stays(state_file, clock):
    pins = guard(state_file, clock)
    assert [pins.attempt(WRONG) for _ in range(MAX_TRIES - 1)] == ["wrong"] * (MAX_TRIES - 1)
    assert pins.tries_left() == 1
    assert pins.attempt(PIN) == "ok" and pins.tries_left() == MAX_TRIES
    assert [pins.attempt(WRONG) for _ in range(MAX_TRIES - 1)] == ["wrong"] * (MAX_TRIES - 1)  # not locked

    assert pins.attempt(WRONG) == "locked"
    first_at = clock.now
    clock.advance(minutes=1)
    lock_out(pins)
    assert pins.locked_for() == 5 * 60  # the second in a row
    clock.advance(minutes=5)
    assert pins.attempt(PIN) == "ok"
    clock.advance(hours=1)
    lock_out(pins)
    assert pins.locked_for() == 60  # a right PIN came between: the schedule starts again
    assert pins.report() == {"lockouts": 3, "locked_until": (clock.now + timedelta(minutes=1)).isoformat(),
                             "last_lockout_at": clock.now.isoformat()}
    assert first_at < clock.now


def test_the_lockout_survives_a_restart(state_file, clock):
    pins = guard(state_file, clock)
    lock_out(pins)
    clock.advance(minutes=1)
    second_at = clock.now
    lock_out(pins)  # the second lockout: 5 minutes
    clock.advance(minutes=2)

    again = guard(state_file, clock)  # the kiosk restarted
    assert again.attempt(PIN) == "locked" and again.locked_for() == 3 * 60
    assert again.report()["lockouts"] == 2
    assert state_file.stat().st_mode & 0o777 == 0o600
    saved = json.loads(state_file.read_text("utf-8"))
    assert saved == {"failures": 0, "lockouts": 2, "lockouts_in_a_row": 2,
                     "locked_until": (second_at + timedelta(minutes=5)).isoformat(),
                     "last_lockout_at": second_at.isoformat(), "last_failure_at": second_at.isoformat()}
    assert not list(state_file.parent.glob(".*tmp"))  # written through a temporary file, renamed

    clock.advance(minutes=3)
    assert [again.attempt(WRONG) for _ in range(3)] == ["wrong"] * 3
    third = guard(state_file, clock)  # wrong PINs count across a restart too
    assert third.tries_left() == 2
    assert [third.attempt(WRONG) for _ in range(2)] == ["wrong", "locked"]
    assert third.locked_for() == 30 * 60


def test_a_clock_set_back_keeps_the_lockout(state_file, clock):
    pins = guard(state_file, clock)
    lock_out(pins)
    clock.advance(seconds=-30)  # a small correction: the lockout simply ends by the clock
    assert pins.locked_for() == 90
    clock.advance(days=-400)  # a dead RTC battery, a clock set back a year: still locked, not for a year
    restarted = guard(state_file, clock)
    assert restarted.attempt(PIN) == "locked" and restarted.locked_for() == 60
    clock.advance(minutes=1)
    assert restarted.attempt(PIN) == "ok"
    clock.advance(days=400)
    clock.advance(days=-400)  # once served, a later jump does not bring it back
    assert guard(state_file, clock).attempt(PIN) == "ok"


@pytest.mark.parametrize("damage", [b"{not json", b"\xff\xfe", b"[]", b'{"failures": "four"}',
                                    b'{"lockouts": -1}', b'{"locked_until": "tomorrow"}',
                                    b'{"locked_until": "2026-11-23T02:00:00"}'])
def test_a_damaged_state_file_starts_clean_with_a_warning(state_file, clock, caplog, damage):
    state_file.parent.mkdir(parents=True)
    state_file.write_bytes(damage)
    with caplog.at_level(logging.WARNING, "kiosq.kiosk.maintenance"):
        pins = guard(state_file, clock)
    assert "is damaged" in caplog.text and str(state_file) in caplog.text
    assert pins.report() == {"lockouts": 0, "locked_until": None, "last_lockout_at": None}
    assert pins.attempt(WRONG) == "wrong"
    assert json.loads(state_file.read_text("utf-8"))["failures"] == 1  # rewritten whole


def test_a_missing_state_file_starts_clean_with_a_warning(state_file, clock, caplog):
    with caplog.at_level(logging.WARNING, "kiosq.kiosk.maintenance"):
        pins = guard(state_file, clock)
    assert "no maintenance PIN state" in caplog.text
    assert pins.attempt(PIN) == "ok" and not state_file.exists()  # nothing to keep yet


def test_a_state_file_that_cannot_be_written_does_not_stop_the_keypad(tmp_path, clock, caplog):
    (tmp_path / "not-a-folder").write_text("")
    pins = guard(tmp_path / "not-a-folder" / STATE_FILE, clock)
    with caplog.at_level(logging.ERROR, "kiosq.kiosk.maintenance"):
        assert lock_out(pins)[-1] == "locked"
    assert "cannot write the maintenance PIN state" in caplog.text
    assert pins.attempt(PIN) == "locked"  # held in memory


def test_no_pin_configured_is_no_pin(state_file, clock):
    assert PinGuard(None, state_file, clock=clock).attempt(PIN) == "no_pin"


# --- the whole app: restarted on the same data folder, the keypad is still locked --------


def test_the_kiosk_restarted_on_the_same_data_folder_is_still_locked(tmp_path, printer_sim):
    from kiosq.kiosk.settings import KioskConfig
    from tests.kiosk.conftest import running_app, tap

    config = KioskConfig(printer_uri=printer_sim.uri, data_dir=tmp_path / "data", maintenance_pin_hash=STORED,
                         terminal_id="K-RESTART")

    def type_pin(app, pin):
        page = app.manager.get_screen("maintenance_pin")
        for key in pin:
            tap(page.keys[key])
        tap(page.ids.ok_button)
        return page.ids.message.text

    def corner(app):
        for _ in range(5):
            tap(app.manager.get_screen("home").ids.corner)
        assert app.manager.current == "maintenance_pin"
        return app.manager.get_screen("maintenance_pin").ids.message.text

    with running_app(config) as app:
        assert corner(app) == ""
        said = [type_pin(app, WRONG) for _ in range(MAX_TRIES)]
        assert "还可再试 1 次" in said[-2] and "秒后再试" in said[-1]
        assert app.fleet._heartbeat_body()["maintenance"]["lockouts"] == 1
    assert (tmp_path / "data" / STATE_FILE).is_file()

    with running_app(config) as app:  # the kiosk restarted (a reboot, a crash, someone pulling the plug)
        assert "秒后再试" in corner(app)  # said at once, before any PIN is typed
        assert "秒后再试" in type_pin(app, PIN) and app.manager.current == "maintenance_pin"
        body = app.fleet._heartbeat_body()["maintenance"]
        assert body["lockouts"] == 1 and body["locked_until"] is not None and body["last_lockout_at"] is not None
        app.go_home()
