"""The status bar (clock, printer, server) and the maintenance screen behind five corner
taps and a PIN: real touches on the (offscreen) window, the receipt printer simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosq.kiosk.maintenance import (
    LOCKOUTS,
    MAX_TRIES,
    PinGuard,
    check_pin,
    hash_pin,
)
from tests.kiosk.conftest import pump, pump_until, screenshot, tap

PIN = "24681357"


@pytest.fixture(scope="module")
def kiosk_app(tmp_path_factory, printer_sim):
    """The whole app with a maintenance PIN and a short status interval; a server URL on
    a closed port, so the 取号 tile exists and the server shows as unreachable."""
    from kiosq.kiosk.settings import KioskConfig
    from tests.kiosk.conftest import running_app
    from tests.kiosk.test_kiosk_ticket import free_port

    config = KioskConfig(printer_uri=printer_sim.uri, data_dir=tmp_path_factory.mktemp("kiosk"),
                         server_url=f"http://127.0.0.1:{free_port()}", status_interval=0.2,
                         maintenance_pin_hash=hash_pin(PIN), terminal_id="K-TEST-7")
    with running_app(config) as app:
        yield app


@pytest.fixture
def fresh(app, clock):
    """The app at home with the PIN guard reset: no state file (tests/kiosk/test_maintenance_pin.py
    has those), on the fake wall clock `clock`."""
    app.maintenance.pin_guard = PinGuard(app.kiosk_config.maintenance_pin_hash, None, clock=clock)
    app.maintenance.corner_taps.times = []
    assert pump_until(lambda: app.fleet.printer_state == "ok", timeout=5)
    return app


def home(app):
    return app.manager.get_screen("home")


def corner_taps(app, n=5):
    for _ in range(n):
        tap(home(app).ids.corner)


def type_pin(app, pin):
    page = app.manager.get_screen("maintenance_pin")
    for key in pin:
        tap(page.keys[key])
    tap(page.ids.ok_button)


def open_maintenance(app):
    corner_taps(app)
    assert app.manager.current == "maintenance_pin"
    type_pin(app, PIN)
    assert app.manager.current == "maintenance"
    return app.manager.get_screen("maintenance")


def test_pin_hash_round_trips_and_is_not_the_pin():
    stored = hash_pin(PIN)
    assert PIN not in stored and stored != hash_pin(PIN)  # salted
    assert check_pin(PIN, stored) and not check_pin("24681358", stored)
    assert not check_pin(PIN, None) and not check_pin(PIN, "garbage")


def test_status_bar_shows_clock_server_and_paper_out(fresh, printer_sim):
    bar = fresh.status_bar.ids
    assert len(bar.clock.text) == 5 and bar.clock.text[2] == ":"
    assert pump_until(lambda: fresh.fleet.server_state == "down", timeout=10)
    assert "无法连接" in bar.server.text
    tile = home(fresh).ids.ticket_tile
    assert "打印机" in bar.printer.text and "正常" in bar.printer.text and "屏幕上" not in tile.text
    printer_sim.set_paper("out")
    try:
        assert pump_until(lambda: "缺纸" in bar.printer.text, timeout=5)
        # the 取号 tile says so before the citizen starts, and the ticket screen too
        assert "号码会显示在屏幕上" in tile.text
        screenshot("home-paper-out")
        fresh.show("ticket")
        pump(3)
        assert "缺纸" in fresh.manager.get_screen("ticket").ids.no_slip.text
    finally:
        printer_sim.set_paper("ok")
    assert pump_until(lambda: fresh.fleet.printer_state == "ok", timeout=5)
    assert "屏幕上" not in tile.text


def test_printer_not_answering_shows(fresh, printer_sim):
    printer_sim.set_answering(False)
    try:
        assert pump_until(lambda: fresh.fleet.printer_state == "offline", timeout=10)
        assert "无响应" in fresh.status_bar.ids.printer.text
    finally:
        printer_sim.set_answering(True)
    assert pump_until(lambda: fresh.fleet.printer_state == "ok", timeout=10)


def test_four_taps_or_slow_taps_do_not_ask_for_the_pin(fresh):
    corner_taps(fresh, 4)
    assert fresh.manager.current == "home"
    fresh.maintenance.corner_taps.times = [t - 5 for t in fresh.maintenance.corner_taps.times]  # those were long ago
    tap(home(fresh).ids.corner)
    assert fresh.manager.current == "home"


def test_five_corner_taps_and_the_right_pin_open_maintenance(fresh):
    page = open_maintenance(fresh)
    assert pump_until(lambda: "正常" in page.ids.printer.text, timeout=5)
    assert fresh.kiosk_config.server_url in page.ids.server.text
    assert str(fresh.guides.path) in page.ids.content.text and str(len(fresh.guides.items)) in page.ids.content.text
    assert "K-TEST-7" in page.ids.terminal.text
    screenshot("maintenance")


def test_a_wrong_pin_does_not_open_and_five_lock_out(fresh, clock):
    corner_taps(fresh)
    pin_page = fresh.manager.get_screen("maintenance_pin")
    type_pin(fresh, "111111")
    assert fresh.manager.current == "maintenance_pin" and "不正确" in pin_page.ids.message.text
    for _ in range(MAX_TRIES - 1):
        type_pin(fresh, "111111")
    assert "秒后再试" in pin_page.ids.message.text
    type_pin(fresh, PIN)  # locked: even the right PIN is refused
    assert fresh.manager.current == "maintenance_pin" and "秒后再试" in pin_page.ids.message.text
    clock.advance(seconds=LOCKOUTS[0].total_seconds())  # a minute later
    type_pin(fresh, PIN)
    assert fresh.manager.current == "maintenance"


def test_no_pin_configured_says_maintenance_cannot_be_opened(fresh):
    from dataclasses import replace

    real = fresh.kiosk_config
    fresh.kiosk_config = replace(real, maintenance_pin_hash=None)
    fresh.maintenance.pin_guard = PinGuard(None)
    try:
        corner_taps(fresh)
        assert fresh.manager.current == "maintenance_pin"
        assert "未设置维护 PIN" in fresh.manager.get_screen("maintenance_pin").ids.message.text
        fresh.maintenance.submit_pin()
        assert fresh.manager.current == "maintenance_pin"
    finally:
        fresh.kiosk_config = real


def test_test_print_reaches_the_printer_and_previews_the_last_slip(fresh, printer_sim):
    page = open_maintenance(fresh)
    before = len(printer_sim.jobs)
    tap(page.ids.test_print_button)
    job = printer_sim.wait_for_jobs(before + 1)[-1]
    assert job.printed and any("K-TEST-7" in line for line in job.lines)
    assert pump_until(lambda: not fresh.maintenance.test_printing and fresh.maintenance.last_slip_png, timeout=10)
    assert "已打印" in page.ids.test_print_status.text or "请取走" in page.ids.test_print_status.text
    assert Path(fresh.maintenance.last_slip_png).is_file() and Path(fresh.maintenance.last_slip_png).stat().st_size > 0
    assert pump_until(lambda: page.ids.last_slip.texture is not None, timeout=5)
    assert page.ids.last_slip.source == fresh.maintenance.last_slip_png
    screenshot("maintenance-test-print")
