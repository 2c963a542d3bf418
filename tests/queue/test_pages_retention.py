"""/admin in Debian's Chromium against a real `kiosq server`: the retention card shows the
settings and the start-up run, and the fleet table shows a terminal refused over its
tickets per minute (a hall file with 2 a minute), with its alert."""

from __future__ import annotations

import http.client
import json

import pytest

from tests.queue.test_pages import add_user, sign_in
from tests.queue.test_pages_fleet import DEFAULT_HALL, LIVE_MS, browser, heartbeat  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.slow,
              pytest.mark.sqlite_only("the pages over the API; the API is tested on both databases")]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency: pip install -e '.[dev]'")
expect = sync_api.expect


def test_admin_shows_the_retention_run_and_a_throttled_terminal(hall_server, tmp_path, browser):  # noqa: F811
    data = tmp_path / "hall"
    data.mkdir(mode=0o700)
    (data / "hall.toml").write_text(DEFAULT_HALL + "\n[terminals]\ntickets_per_minute = 2\n"
                                    "[retention]\npersonal_days = 90\n", "utf-8")
    srv = hall_server(data)
    terminal = srv.tokens["terminal"]
    assert heartbeat(srv, terminal)[0] == 200
    assert [ticket(srv, terminal, f"k{n}") for n in range(3)] == [201, 201, 429]

    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = ctx.new_page()
        page.set_default_timeout(LIVE_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{srv.url}/admin", wait_until="load")
        sign_in(page, add_user(srv, "manager", "admin", name="王经理"))
        expect(page.locator("#retention-card")).to_be_visible()
        expect(page.locator("#retention-settings")).to_contain_text("办结 90 天后删除个人信息")
        expect(page.locator("#retention-last")).to_have_attribute("data-erased", "0")
        expect(page.locator("#retention-last")).to_contain_text("上次清理")
        expect(page.locator("#retention-next")).to_contain_text("下次清理")
        cell = page.locator('#fleet-table tr[data-terminal="T"] td[data-col="throttled"]')
        expect(cell).to_have_attribute("data-throttled", "1")
        expect(cell).to_contain_text("1 次")
        expect(page.locator('#fleet-alerts li[data-terminal="T"][data-kind="throttled"]')).to_be_visible()
        assert errors == []
    finally:
        ctx.close()


def ticket(srv, token, key) -> int:
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    try:
        conn.request("POST", "/api/tickets", body=json.dumps({"service": "A"}),
                     headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key,
                              "Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()
