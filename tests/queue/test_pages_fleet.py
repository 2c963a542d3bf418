"""/admin's fleet section in Debian's Chromium against a real `kiosq server`: an enrollment
code made with the button enrolls a terminal, the terminal shows online with its paper
alert, turns offline when its heartbeats stop (a hall file with a 2 s online window), the
revoke button refuses its token at once, and the content controls roll back and publish."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosq.content import bundle
from kiosq.content.catalog import SAMPLE, load_files
from tests.queue.test_pages import add_user, sign_in

# The pages only read and drive the API, whose answers are the same on both databases (the
# API's own suites run on both); Chromium a second time would double the slowest modules.
pytestmark = [pytest.mark.slow,
              pytest.mark.sqlite_only("the pages over the API; the API is tested on both databases")]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency: pip install -e '.[dev]'")
expect = sync_api.expect

CHROMIUM = os.environ.get("KIOSQ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[2]
DEFAULT_HALL = (REPO / "queue" / "halls" / "default.toml").read_text("utf-8")
LIVE_MS = 5000
KIOSQ = [str(Path(sys.executable).parent / "kiosq")]
if not Path(KIOSQ[0]).is_file():
    KIOSQ = [sys.executable, "-m", "kiosq.provisioning.cli"]


def call(srv, method, path, body=None, token=None):
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None if body is None else json.dumps(body).encode()
        if data:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    pw = sync_api.sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@pytest.fixture
def srv(hall_server, tmp_path):
    data = tmp_path / "fleet"
    data.mkdir(mode=0o700)
    (data / "hall.toml").write_text(DEFAULT_HALL + "\n[fleet]\nheartbeat_seconds = 0.5\nonline_seconds = 2\n", "utf-8")
    return hall_server(data)


@pytest.fixture
def page(browser, srv):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        p = ctx.new_page()
        p.set_default_timeout(LIVE_MS)
        p.errors = []
        p.on("pageerror", lambda exc: p.errors.append(str(exc)))
        p.on("console", lambda msg: p.errors.append(msg.text) if "Content Security Policy" in msg.text else None)
        p.goto(f"{srv.url}/admin", wait_until="load")
        sign_in(p, add_user(srv, "manager", "admin", name="王经理"))
        expect(p.locator("#dashboard")).to_be_visible()
        yield p
        assert p.errors == [], f"uncaught errors on /admin: {p.errors}"
    finally:
        ctx.close()


def heartbeat(srv, token, **body):
    return call(srv, "POST", "/api/terminals/heartbeat",
                {"software_version": "0.3.0", "uptime_seconds": 30, **body}, token)


def artifacts() -> Path:
    folder = Path(os.environ.get("KIOSQ_ARTIFACTS") or REPO / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_enroll_button_online_then_offline_and_revoke(srv, page):
    # the terminal that conftest made with `kiosq server token` has never sent a heartbeat
    expect(page.locator('#fleet-table tr[data-terminal="T"] td[data-col="state"]')).to_have_text("离线")
    expect(page.locator('#fleet-alerts li[data-terminal="T"][data-kind="offline"]')).to_be_visible()

    page.fill("#enroll-terminal", "T03")
    page.select_option("#enroll-ttl", "30")
    page.click("#enroll-make")
    code = page.locator("#enroll-code")
    expect(code).to_have_text(re.compile(r"^[2-9A-Z]{4}-[2-9A-Z]{4}$"))
    expect(page.locator("#enroll-info")).to_contain_text("T03")
    status, enrolled = call(srv, "POST", "/api/terminals/enroll", {"code": code.text_content()})
    assert status == 201, enrolled
    token = enrolled["token"]

    assert heartbeat(srv, token, devices={"printer": "out", "card_reader": "ok"})[0] == 200
    row = page.locator('#fleet-table tr[data-terminal="T03"]')
    expect(row).to_have_attribute("data-online", "true")
    expect(row.locator('td[data-col="paper"]')).to_have_text("缺纸")
    expect(page.locator('#fleet-alerts li[data-terminal="T03"][data-kind="paper_out"]')).to_be_visible()
    page.screenshot(path=str(artifacts() / "admin-fleet-zh.png"), full_page=True)

    # no more heartbeats: offline after the 2 s window, with nothing but the page's own refresh
    expect(row).to_have_attribute("data-online", "false", timeout=6000)
    expect(page.locator('#fleet-alerts li[data-terminal="T03"][data-kind="offline"]')).to_be_visible()

    assert heartbeat(srv, token, devices={"printer": "ok"})[0] == 200
    expect(row).to_have_attribute("data-online", "true")
    button = row.locator("button[data-revoke]")
    button.click()
    expect(button).to_have_text("确认吊销？")
    assert heartbeat(srv, token)[0] == 200  # armed only: nothing revoked yet
    button.click()
    expect(row).to_have_attribute("data-revoked", "true")
    expect(row.locator('td[data-col="state"]')).to_have_text("已吊销")
    expect(page.locator("#fleet-message")).to_contain_text("T03")
    status, refused = heartbeat(srv, token)
    assert status == 401 and refused["error"] == "unauthorized"
    expect(page.locator('#fleet-alerts li[data-terminal="T03"]')).to_have_count(0)


def test_content_controls_roll_back_and_publish(srv, page, tmp_path):
    items = load_files(SAMPLE)
    first = bundle.build(items, tmp_path / "b1")
    second = bundle.build([*items, items[0].model_copy(update={"code": "TEST-PAGE-001", "name": "页面新事项"})],
                          tmp_path / "b2")
    v1, v2 = bundle.read_manifest(first).version, bundle.read_manifest(second).version
    expect(page.locator("#content-published")).to_contain_text("未发布")
    expect(page.locator("#content-rollback")).to_be_disabled()
    for manifest in (first, second):
        done = subprocess.run([*KIOSQ, "server", "publish", str(manifest), "--data-dir", str(srv.data_dir)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    # the content.published events of the other process reach the page
    expect(page.locator("#content-published")).to_contain_text(v2, timeout=8000)
    page.click("#content-rollback")
    expect(page.locator("#content-published")).to_contain_text(v1)
    assert call(srv, "GET", "/api/content/manifest", token=srv.tokens["terminal"])[1]["version"] == v1
    page.click(f'button[data-publish="{v2}"]')
    expect(page.locator("#content-published")).to_contain_text(v2)
    expect(page.locator("#content-message")).to_contain_text(v2)
    deadline = time.monotonic() + 5
    while call(srv, "GET", "/api/items/TEST-PAGE-001")[0] != 200:
        assert time.monotonic() < deadline, "the server's catalog did not follow the publication"
        time.sleep(0.1)  # polling interval of a bounded wait


def test_pin_lockouts_show_in_the_row_and_as_alerts(srv, page):
    """A terminal's wrong-PIN lockouts (pin_lockouts, pin_locked_until and a pin_lockout
    alert in GET /api/terminals): the page shows them, and shows a dash while the server
    sends none. The server's answer is passed through with the three added, so that the page
    is checked whatever the state of the server's side."""
    row = page.locator('#fleet-table tr[data-terminal="T"]')
    expect(row).to_be_visible()
    sent = row.locator('td[data-col="pin"]').text_content()
    status, fleet = call(srv, "GET", "/api/terminals", token=srv.tokens["admin"])
    assert status == 200
    if "pin_lockouts" not in next(t for t in fleet["terminals"] if t["terminal"] == "T"):
        assert sent == "—"
    until = "2026-12-07T15:40:00+08:00"

    def with_lockout(route):
        response = route.fetch()
        data = response.json()
        for t in data["terminals"]:
            if t["terminal"] == "T":
                t.update(pin_lockouts=3, pin_locked_until=until)
        data["alerts"].append({"terminal": "T", "kind": "pin_lockout", "detail": "5 wrong PINs"})
        route.fulfill(response=response, json=data)

    page.route("**/api/terminals", with_lockout)
    cell = row.locator('td[data-col="pin"]')
    expect(cell).to_have_text("3 次 · 锁定至 2026-12-07 15:40:00")
    expect(cell).to_have_class("over")
    alert = page.locator('#fleet-alerts li[data-terminal="T"][data-kind="pin_lockout"]')
    expect(alert).to_have_text("T · PIN 输错锁定 · 5 wrong PINs")
    page.click("#lang-toggle")
    expect(alert).to_have_text("T · PIN locked out · 5 wrong PINs")
    expect(cell).to_have_text("3× · locked until 2026-12-07 15:40:00")
