"""Taking a ticket at the kiosk, as a citizen does: real touches on the (offscreen) window,
against a real `kiosq server` on 127.0.0.1 and the receipt printer simulator."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.kiosk.conftest import pump, pump_until, screenshot, tap, window_image
from tests.queue.conftest import ServerProcess, free_port  # noqa: F401 (free_port: for the other kiosk tests)


class Server(ServerProcess):
    """A `kiosq server` subprocess on one data folder and port (tests/queue/conftest.py); it can
    be stopped and started. `terminal_token` is this kiosk's (K1)."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, data_dir.parent)
        self.terminal_token = self.token("terminal", "K1")

    def waiting(self, service: str) -> int:
        return next(s["waiting"] for s in requests.get(self.url + "/api/services", timeout=3).json()
                    if s["code"] == service)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("kiosq-server"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def kiosk_app(tmp_path_factory, printer_sim, server):
    """The whole app, this time with a hall server (conftest's `app` fixture uses this one)."""
    from kiosq.kiosk.settings import KioskConfig
    from tests.kiosk.conftest import running_app

    config = KioskConfig(printer_uri=printer_sim.uri, data_dir=tmp_path_factory.mktemp("kiosk"),
                         server_url=server.url, terminal_token=server.terminal_token, ticket_done_seconds=30)
    with running_app(config) as app:
        yield app


def screen(app, name):
    return app.manager.get_screen(name)


def open_services(app):
    tap(screen(app, "home").ids.ticket_tile)
    assert app.manager.current == "ticket"
    assert pump_until(lambda: app.tickets.services_state != "loading")
    pump(3)
    return screen(app, "ticket")


def take_ticket(app, service="A") -> int:
    """取号 → the service → confirm; the number of taps."""
    page = open_services(app)
    assert app.tickets.services_state == "ready", app.tickets.services_error
    tap(next(b for b in page.service_buttons() if b.code == service))
    assert app.manager.current == "ticket_confirm"
    tap(screen(app, "ticket_confirm").ids.confirm_button)
    assert pump_until(lambda: app.manager.current == "ticket_done" and not app.tickets.busy, timeout=10)
    pump(3)
    return 3


def test_ticket_tile_lists_services_with_waiting_counts(app, server):
    page = open_services(app)
    buttons = page.service_buttons()
    assert [b.code for b in buttons] == [s["code"] for s in requests.get(server.url + "/api/services").json()]
    assert "户籍与身份证" in buttons[0].text and "等候" in buttons[0].text
    screenshot("ticket-services")


def test_three_taps_issue_a_ticket_and_print_its_slip(app, server, printer_sim):
    before_jobs, before_waiting = len(printer_sim.jobs), server.waiting("A")
    assert take_ticket(app, "A") == 3
    ticket = app.tickets.ticket
    done = screen(app, "ticket_done")
    assert done.ids.number.text == ticket["number"] and ticket["number"].startswith("A")
    assert done.ids.number.font_size >= 4 * done.ids.ahead.font_size  # very large
    assert "等候区" in done.ids.where.text and "取走排队凭条" in done.ids.slip.text
    # the server agrees
    assert server.waiting("A") == before_waiting + 1
    got = requests.get(f"{server.url}/api/tickets/{ticket['id']}", timeout=3).json()
    assert got["number"] == ticket["number"] and got["status"] == "waiting"
    # and the slip carries the number and the follow link as a QR code
    job = printer_sim.wait_for_jobs(before_jobs + 1)[-1]
    assert job.printed and any(ticket["number"] in line for line in job.lines)
    assert job.qr_payloads == [ticket["follow_url"]]
    screenshot("ticket-done")


def test_the_result_goes_home_by_itself(app):
    take_ticket(app, "B")
    page = screen(app, "ticket_done")
    page.left = 1
    assert pump_until(lambda: app.manager.current == "home", timeout=3)


def test_a_retry_reuses_the_key_and_never_issues_twice(app, server):
    waiting = server.waiting("C")
    # the app keeps its key after a failed confirm and sends it again on the next tap
    page = open_services(app)
    tap(next(b for b in page.service_buttons() if b.code == "C"))
    # the server away for the first confirm: no ticket, the key kept
    real, app.server.base_url = app.server.base_url, f"http://127.0.0.1:{free_port()}"
    try:
        tap(screen(app, "ticket_confirm").ids.confirm_button)
        assert pump_until(lambda: not app.tickets.busy, timeout=15)
        assert app.manager.current == "ticket_confirm" and "没有取到号" in screen(app, "ticket_confirm").ids.status.text
        key = app.tickets.key
        assert key
    finally:
        app.server.base_url = real
    # the citizen taps again: the same key, one ticket
    tap(screen(app, "ticket_confirm").ids.confirm_button)
    assert pump_until(lambda: app.manager.current == "ticket_done" and not app.tickets.busy, timeout=10)
    assert server.waiting("C") == waiting + 1
    assert app.tickets.key is None  # the next confirm is a new ticket
    assert requests.post(server.url + "/api/tickets", json={"service": "C"}, timeout=3,
                         headers={"Idempotency-Key": key, "Authorization": f"Bearer {server.terminal_token}"}
                         ).json()["id"] == app.tickets.ticket["id"]


def test_paper_out_still_issues_the_ticket_without_a_slip(app, server, printer_sim):
    printer_sim.set_paper("out")
    before_jobs, before_waiting = len(printer_sim.jobs), server.waiting("A")
    take_ticket(app, "A")
    done = screen(app, "ticket_done")
    assert done.ids.number.text == app.tickets.ticket["number"]
    assert "凭条未能打印" in done.ids.slip.text and "缺纸" in done.ids.slip.text
    assert done.ids.follow_url.text == app.tickets.ticket["follow_url"]
    assert server.waiting("A") == before_waiting + 1
    assert not [j for j in printer_sim.jobs[before_jobs:] if j.printed]
    # the QR code on screen is the follow link, as a phone camera reads it
    import zxingcpp

    codes = zxingcpp.read_barcodes(window_image())
    assert [c.text for c in codes if c.format == zxingcpp.BarcodeFormat.QRCode] == [app.tickets.ticket["follow_url"]]
    screenshot("ticket-done-no-slip")


def test_with_a_slip_there_is_no_qr_on_screen(app):
    import zxingcpp

    take_ticket(app, "A")
    assert app.tickets.print_key == "print_done"
    assert zxingcpp.read_barcodes(window_image()) == []


def test_a_guide_takes_a_ticket_for_its_own_service(app, server, printer_sim):
    tap(screen(app, "home").ids.guide_tile)
    for key in "sfz":
        tap(screen(app, "guide").ids.keyboard.keys[key])
    first = screen(app, "guide").result_buttons()[0]
    tap(first)
    item = app.guides.item(first.code)
    waiting = server.waiting(item.service)
    tap(screen(app, "detail").ids.ticket_button)
    assert pump_until(lambda: app.manager.current == "ticket_confirm", timeout=10)
    assert app.tickets.service["code"] == item.service
    tap(screen(app, "ticket_confirm").ids.confirm_button)
    assert pump_until(lambda: app.manager.current == "ticket_done" and not app.tickets.busy, timeout=10)
    assert app.tickets.ticket["service"] == item.service and server.waiting(item.service) == waiting + 1


@pytest.mark.parametrize("elder", [False, True], ids=["standard", "elder"])
def test_ticket_screens_contrast_and_elder_sizes(app, printer_sim, elder):
    from kiosq.kiosk.accessibility import contrast_problems, elder_size_problems

    printer_sim.set_paper("out")  # the no-slip variant: the most on screen
    app.fleet.check_status()  # measured with its notice shown, not before the status monitor's next look
    assert pump_until(app.fleet.printer_trouble, timeout=10)
    app.elder = elder
    page = open_services(app)
    assert screen(app, "ticket").ids.no_slip.text
    checked = []
    for step in ("ticket", "ticket_confirm", "ticket_done"):
        if step == "ticket_confirm":
            tap(next(b for b in page.service_buttons() if b.code == "A"))
        elif step == "ticket_done":
            tap(screen(app, "ticket_confirm").ids.confirm_button)
            assert pump_until(lambda: app.manager.current == "ticket_done" and not app.tickets.busy, timeout=10)
        pump(3)
        assert app.manager.current == step
        problems = contrast_problems(app.root, window_image())
        if elder:
            problems += elder_size_problems(app.manager.current_screen)
        assert not problems, f"{step}: " + "\n".join(map(str, problems))
        checked.append(step)
    assert checked == ["ticket", "ticket_confirm", "ticket_done"]


def test_english_ticket_screens(app):
    tap(screen(app, "home").ids.lang_toggle)
    assert "Take a ticket" in screen(app, "home").ids.ticket_tile.text
    take_ticket(app, "D")
    assert "Your number" in [w.text for w in screen(app, "ticket_done").walk() if hasattr(w, "text")]


def test_server_down_says_tickets_cannot_be_issued_and_guides_still_work(app, server):
    server.stop()
    try:
        page = open_services(app)
        assert app.tickets.services_state == "error"
        assert page.ids.status.text == "暂时不能取号"
        assert "无法连接" in page.ids.why.text and "办事指南仍可" in page.ids.why.text
        assert page.service_buttons() == []
        screenshot("ticket-server-down")
        app.go_home()
        pump(3)
        tap(screen(app, "home").ids.guide_tile)  # the guides still work
        assert app.manager.current == "guide"
    finally:
        server.start()
    app.go_home()
    pump(3)
    page = open_services(app)
    assert app.tickets.services_state == "ready" and page.service_buttons()


def test_a_server_the_pinned_hall_ca_does_not_certify_is_refused_on_screen(app, server, tmp_path):
    """An https server with a certificate the terminal's hall CA did not sign (here: no CA
    pinned at all) gets nothing, and the screen says so in plain words, not "network fault"."""
    from kiosq.kiosk.hall_client import HallClient

    real = app.server
    app.server = HallClient(server.url.replace("http://", "https://"), server.terminal_token,
                            ca_file=tmp_path / "not-pinned.pem")
    try:
        page = open_services(app)
        assert app.tickets.services_state == "error" and app.tickets.services_error_kind == "untrusted"
        assert page.ids.status.text == "暂时不能取号"
        assert "证书不符" in page.ids.why.text and "未发送任何信息" in page.ids.why.text
        screenshot("ticket-server-untrusted")
    finally:
        app.server.close()
        app.server = real
        app.go_home()
        pump(3)
