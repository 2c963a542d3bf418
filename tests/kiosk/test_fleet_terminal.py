"""The terminal's side of the fleet, end to end: a real `kiosq server` (with a hall file that
asks for heartbeats every 0.3 s), a terminal set up the way IT staff do it (`kiosq provision
init`, `kiosq enroll` with a code from `kiosq server enroll-code`, `kiosq content install`),
the whole Kivy app on the offscreen window with the printer simulator, and between kiosk and
server a small HTTP proxy that can cut bundle downloads short.

The heartbeats show the kiosk in GET /api/terminals with its paper; a bundle published with
`kiosq server publish` reaches the guide screen, after a download that was interrupted (the
old bundle stays in use) and resumed with a Range; outside opening hours the 取号 tile says
when tickets start again and comes back by itself; a revoked terminal says so."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.kiosk.conftest import pump, pump_until, running_app, screenshot, tap
from tests.queue.conftest import KIOSQ, ServerProcess

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HALL = (ROOT / "queue" / "halls" / "default.toml").read_text("utf-8")
FLEET = "\n[fleet]\nheartbeat_seconds = 0.3\nonline_seconds = 5\n"
NEW_ITEM = "TEST-FLEET-001"
NEW_NAME = "自助终端联调测试事项"
PIN = "86420975"  # the maintenance PIN given to `kiosq provision init`
def kiosq(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run([*KIOSQ, *args], capture_output=True, text=True, timeout=60, input=stdin)
    assert done.returncode == 0, f"kiosq {' '.join(args)}: {done.stderr}"
    return done.stdout


class HallServer(ServerProcess):
    """`kiosq server` on one data folder and port (tests/queue/conftest.py), restartable, with
    a short [fleet] heartbeat and an admin token to read the fleet view."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, data_dir.parent)
        self.hall(DEFAULT_HALL + FLEET)
        self.admin = self.token("admin", "it")

    def hall(self, text: str) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.data_dir / "hall.toml").write_text(text, "utf-8")

    def fleet(self) -> dict:
        resp = requests.get(self.url + "/api/terminals", headers={"Authorization": f"Bearer {self.admin}"}, timeout=5)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def terminal(self, name: str) -> dict:
        return next((t for t in self.fleet()["terminals"] if t["terminal"] == name), {})


class CuttingProxy:
    """An HTTP proxy in front of the server. While `cut_at` is a number, a bundle download
    sends its headers (the whole length) and the file's bytes only up to that offset, then
    drops the connection. `ranges` records the Range header of each bundle request."""

    def __init__(self, target_port: int) -> None:
        self.target_port, self.cut_at, self.ranges = target_port, None, []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def do_GET(self) -> None:
                proxy.forward(self)

            do_POST = do_GET

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() in ("authorization", "content-type", "range")}
        conn = http.client.HTTPConnection("127.0.0.1", self.target_port, timeout=10)
        try:
            conn.request(handler.command, handler.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError:
            handler.send_error(502)
            return
        finally:
            conn.close()
        bundle = handler.path.startswith("/api/content/bundles/")
        if bundle:
            self.ranges.append(handler.headers.get("Range"))
        handler.send_response(resp.status)
        for key, value in resp.getheaders():
            if key.lower() in ("content-type", "content-length", "content-range", "x-content-sha256", "retry-after"):
                handler.send_header(key, value)
        handler.end_headers()
        cut = self.cut_at
        if bundle and cut is not None and resp.status in (200, 206):
            start = int(resp.getheader("Content-Range", "bytes 0-").split()[1].split("-")[0])
            handler.wfile.write(data[:max(0, cut - start)])
            handler.wfile.flush()
            handler.connection.shutdown(socket.SHUT_RDWR)  # dropped mid-body
            handler.close_connection = True
            return
        handler.wfile.write(data)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def build_bundle(source: Path, out: Path) -> Path:
    return Path(kiosq("content", "build", "--from", str(source), "--out", str(out)).strip())


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """(old, new): the sample catalog, and the sample catalog plus one item."""
    tmp = tmp_path_factory.mktemp("bundles")
    old = build_bundle(ROOT / "content" / "data", tmp / "old")
    extra = tmp / "data-plus-one"
    shutil.copytree(ROOT / "content" / "data", extra)
    first = json.loads((extra / "01-gongan.json").read_text("utf-8"))["items"][0]
    item = {**first, "code": NEW_ITEM, "name": NEW_NAME, "name_en": "Terminal rollout test item", "keywords": []}
    (extra / "99-test.json").write_text(json.dumps({"format": 1, "items": [item]}, ensure_ascii=False), "utf-8")
    return old, build_bundle(extra, tmp / "new")


@pytest.fixture(scope="module")
def hall(tmp_path_factory, bundles):
    srv = HallServer(tmp_path_factory.mktemp("fleet-server") / "data")
    kiosq("server", "publish", str(bundles[0]), "--data-dir", str(srv.data_dir))
    srv.start()
    proxy = CuttingProxy(srv.port)
    srv.proxy = proxy
    yield srv
    proxy.close()
    srv.stop()


@pytest.fixture(scope="module")
def terminal(tmp_path_factory, hall, bundles):
    """A terminal config written by `kiosq provision init`, enrolled with `kiosq enroll`
    (through the proxy: that is the server's address for this kiosk), its content folder
    holding the old bundle."""
    tmp = tmp_path_factory.mktemp("terminal")
    config = tmp / "terminal.toml"
    kiosq("provision", "init", "--out", str(config), "--terminal-id", "T21", "--server", hall.proxy.url,
          "--pin-stdin", "--content-dir", str(tmp / "content"), "--data-dir", str(tmp / "data"), stdin=PIN + "\n")
    kiosq("content", "install", str(bundles[0]), "--content-dir", str(tmp / "content"))
    code = json.loads(kiosq("server", "enroll-code", "--terminal", "T21", "--data-dir", str(hall.data_dir),
                            "--json"))["code"]
    kiosq("enroll", code, "--server", hall.proxy.url, "--config", str(config))
    return config


@pytest.fixture(scope="module")
def kiosk_app(terminal, printer_sim):
    from kiosq.kiosk.terminal_config import read_terminal_config

    config = read_terminal_config(terminal).kiosk_config(printer_uri=printer_sim.uri, status_interval=0.3,
                                                         heartbeat_interval=0.3)
    with running_app(config) as app:
        yield app


def wait(check, timeout: float = 15.0, what: str = "the condition"):
    """Run Kivy's loop until check() is true (it may return the value wanted)."""
    found = []
    assert pump_until(lambda: bool(found.append(check()) or found[-1]), timeout), f"{what} not reached in {timeout} s"
    return found[-1]


def version_of(manifest: Path) -> str:
    return json.loads(manifest.read_text("utf-8"))["version"]


def test_heartbeats_show_the_kiosk_in_the_fleet_with_its_paper(app, hall, printer_sim, bundles):
    # (the first heartbeat may go before the first printer check: "unknown" until then)
    seen = wait(lambda: (t := hall.terminal("T21")).get("online") and t["devices"].get("printer") == "ok" and t,
                what="T21 online with its printer checked")
    assert seen["content_version"] == version_of(bundles[0]) and seen["outdated"] is False
    assert seen["content_sha256"] == json.loads(bundles[0].read_text())["sha256"]
    assert seen["software_version"] and seen["uptime_seconds"] >= 0
    assert seen["devices"] == {"printer": "ok", "card_reader": "none", "scanner": "none"}
    assert seen["outbox_waiting"] == 0 and seen["outbox_refused"] == 0

    printer_sim.set_paper("out")
    out = wait(lambda: hall.terminal("T21").get("paper") == "out" and hall.fleet(), what="paper out in the fleet")
    assert {"terminal": "T21", "kind": "paper_out", "detail": "the receipt printer is out of paper"} in out["alerts"]
    printer_sim.set_paper("ok")
    wait(lambda: hall.terminal("T21").get("paper") == "ok", what="paper back")


def test_a_publication_reaches_the_guide_screen_after_an_interrupted_download(app, hall, bundles, terminal):
    from kiosq.content.bundle import active_state

    content = terminal.parent / "content"
    old, new = version_of(bundles[0]), version_of(bundles[1])
    assert not app.guides.search(NEW_NAME) or NEW_ITEM not in [e.code for e in app.guides.search(NEW_NAME)]
    hall.proxy.cut_at = 20000
    hall.proxy.ranges.clear()
    kiosq("server", "publish", str(bundles[1]), "--data-dir", str(hall.data_dir))
    partial = content / ".downloads" / f"catalog-{new}.sqlite.partial"
    wait(lambda: partial.is_file() and partial.stat().st_size == 20000 and len(hall.proxy.ranges) >= 2,
         what="two interrupted downloads")
    assert hall.proxy.ranges[1] == "bytes=20000-"  # the second try resumed where the first stopped
    pump(20)
    assert active_state(content)["version"] == old and app.fleet.content_version == old  # the old bundle in use
    assert hall.terminal("T21")["outdated"] is True
    assert "download interrupted" in app.fleet.last_error

    # a citizen is browsing the guides when the rest arrives: the swap waits for the session's end
    tap(app.manager.get_screen("home").ids.guide_tile)
    assert app.manager.current == "guide"
    hall.proxy.cut_at = None
    wait(lambda: active_state(content).get("version") == new, what="the new bundle installed")
    pump(10)
    assert app.fleet.content_version == old and app.manager.current == "guide"
    app.session.wipe()  # the session ends (the idle wipe, or 返回首页)
    pump(3)
    assert app.fleet.content_version == new
    tap(app.manager.get_screen("home").ids.guide_tile)
    app.query = NEW_NAME
    pump(5)
    buttons = app.manager.get_screen("guide").result_buttons()
    assert buttons and buttons[0].code == NEW_ITEM
    screenshot("fleet-new-item")
    assert hall.proxy.ranges[0] is None and set(hall.proxy.ranges[1:]) == {"bytes=20000-"}  # resumed, never restarted
    beat = wait(lambda: hall.terminal("T21").get("content_version") == new and hall.terminal("T21"),
                what="the new version in the fleet")
    assert beat["outdated"] is False


def closed_hall(opens: datetime) -> str:
    period = f'"{opens:%H:%M}-{opens + timedelta(minutes=1):%H:%M}"'
    days = "\n".join(f"{d} = {period}" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    return DEFAULT_HALL + FLEET + f"\n[hours]\n{days}\nworkday_hours = {period}\nholiday_hours = {period}\n"


def test_outside_opening_hours_the_ticket_tile_says_when_tickets_start_again(app, hall):
    home = app.manager.get_screen("home")
    assert "领取排队号" in home.ids.ticket_tile.text
    # the hall's own time (its zone, which the machine running the tests need not share)
    now = datetime.fromisoformat(requests.get(hall.url + "/api/display", timeout=5).json()["now"])
    opens = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    if opens.hour == 23 and opens.minute == 59:
        opens -= timedelta(minutes=1)  # the period must end by 24:00
    hall.stop()
    hall.hall(closed_hall(opens))
    hall.start()
    when = "今天" if opens.date() == now.date() else "明天"
    wait(lambda: f"{when} {opens:%H:%M} 起可以取号" in home.ids.ticket_tile.text, what="the closed tile")
    assert "领取排队号" not in home.ids.ticket_tile.text
    screenshot("fleet-closed-tile")
    tap(home.ids.ticket_tile)
    ticket = app.manager.get_screen("ticket")
    wait(lambda: app.tickets.services_state != "loading" and ticket.ids.status.text == "现在不能取号",
         what="closed screen")
    assert f"{opens:%H:%M}" in ticket.ids.why.text and "办事指南" in ticket.ids.why.text
    assert ticket.service_buttons() == []
    app.toggle_language()
    pump(3)
    assert f"at {opens:%H:%M}" in ticket.ids.why.text and "Guides" in ticket.ids.why.text
    app.session.wipe()
    pump(3)
    tap(home.ids.guide_tile)  # guides still work
    assert app.manager.current == "guide"
    app.session.wipe()
    pump(3)

    # the hall opens again (here: the server restarted without [hours]): the tile comes back by itself
    hall.stop()
    hall.hall(DEFAULT_HALL + FLEET)
    hall.start()
    wait(lambda: "领取排队号" in home.ids.ticket_tile.text, what="the open tile")
    assert app.fleet.tickets_closed_text == ""


def test_the_tile_reopens_at_the_time_the_server_gave(app):
    from kiosq.kiosk.hours_text import closed_text

    soon = datetime.now().astimezone() + timedelta(seconds=1)
    app.fleet.heartbeat.stop()  # this test alone decides the hours
    try:
        app.fleet.set_hours({"open": False, "opens_at": soon.isoformat(), "closes_at": None})
        expected = closed_text(dict(app.fleet.hours), datetime.now().astimezone(), app.msg)
        assert app.fleet.tickets_closed_text == expected != ""
        wait(lambda: app.fleet.tickets_closed_text == "", timeout=5, what="the tile open at opens_at")
        assert app.fleet.hours["open"] is True
    finally:
        from kiosq.kiosk.heartbeat import Heartbeat

        old = app.fleet.heartbeat
        app.fleet.heartbeat = Heartbeat(old.client, old.collect, old.interval, old.answered, old.refused,
                                  old.unreachable).start()


def test_a_pin_lockout_reaches_the_fleet_view_with_the_next_heartbeat(app, hall):
    from kiosq.kiosk.maintenance import MAX_TRIES

    assert hall.terminal("T21")["pin_lockouts"] == 0
    for _ in range(5):
        tap(app.manager.get_screen("home").ids.corner)
    page = app.manager.get_screen("maintenance_pin")
    assert app.manager.current == "maintenance_pin"
    for _ in range(MAX_TRIES):
        for key in "000000":
            tap(page.keys[key])
        tap(page.ids.ok_button)
    assert "秒后再试" in page.ids.message.text
    seen = wait(lambda: (t := hall.terminal("T21"))["pin_lockouts"] == 1 and t, what="the lockout in the fleet view")
    assert seen["pin_locked_until"].endswith("+08:00") and seen["pin_last_lockout_at"].endswith("+08:00")
    alerts = [a for a in hall.fleet()["alerts"] if a["terminal"] == "T21" and a["kind"] == "pin_lockout"]
    assert len(alerts) == 1 and "locked until" in alerts[0]["detail"], alerts
    app.go_home()


def test_a_revoked_terminal_says_it_is_not_enrolled(app, hall):
    bar = app.status_bar
    wait(lambda: app.fleet.server_state == "ok", what="server ok")
    resp = requests.post(hall.url + "/api/terminals/T21/revoke", headers={"Authorization": f"Bearer {hall.admin}"},
                         timeout=5)
    assert resp.status_code == 200
    wait(lambda: app.fleet.server_state == "not_enrolled", what="the refusal seen")
    pump(20)  # the status monitor's checks (its /api/health still answers) do not hide it
    assert app.fleet.server_state == "not_enrolled"
    assert "本机未登记" in bar.ids.server.text
    screenshot("fleet-not-enrolled")
    assert hall.terminal("T21")["revoked"] is True
