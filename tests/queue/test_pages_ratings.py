"""The window's rating device (/rate/window/{n}, 评价器) in Debian's Chromium against a real
`kiosq server`: enrolled with a one-time code like a terminal, it shows the five levels as
soon as window 1 finishes a ticket, asks why for a 差评, thanks, and goes back to waiting;
the 差评 is a case with its call-back and fix deadlines; the same in English (the device's
endpoint for each caller: tests/queue/test_ratings_http.py). On /admin the hall manager
follows a 差评's case to its fix: the call-back and the fix recorded, the figures moved."""

from __future__ import annotations

import itertools

import pytest
import requests

from tests.queue.test_pages import artifacts, settle
from tests.queue.test_pages_fleet import LIVE_MS, browser  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.slow,
              pytest.mark.sqlite_only("the pages over the API; the API is tested on both databases")]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency: pip install -e '.[dev]'")
expect = sync_api.expect
KEYS = itertools.count()


def post(srv, path, token=None, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if path == "/api/tickets":
        headers["Idempotency-Key"] = f"page-{next(KEYS)}"
    return requests.post(srv.url + path, json=body, headers=headers, timeout=10)


def finish_one(srv, window=1) -> str:
    """A ticket issued and finished at `window`; its number."""
    assert post(srv, "/api/tickets", srv.tokens["terminal"], {"service": "A"}).status_code == 201
    for step in ("call-next", "start", "finish"):
        r = post(srv, f"/api/windows/{window}/{step}", srv.tokens["staff"])
        assert r.status_code == 200, r.text
    return r.json()["ticket"]["number"]


def test_the_window_device_asks_for_a_rating_when_its_window_finishes(hall_server, browser):  # noqa: F811
    srv = hall_server()
    code = post(srv, "/api/terminals/enroll-codes", srv.tokens["admin"], {"terminal": "rate-w1"}).json()["code"]
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = ctx.new_page()
        page.set_default_timeout(LIVE_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{srv.url}/rate/window/1?thanks=1", wait_until="load")
        expect(page.locator("#rate-enroll")).to_be_visible()
        page.fill("#rate-code", code)
        page.click("#rate-enroll-button")
        expect(page.locator("#rate-idle")).to_be_visible()
        expect(page.locator("body")).to_have_attribute("data-connected", "true")

        finish_one(srv, window=2)  # another window's: this device stays waiting
        number = finish_one(srv)
        expect(page.locator("#rate-ask")).to_be_visible()
        expect(page.locator("#rate-number")).to_have_text(number)
        expect(page.locator(".rate-level")).to_have_count(5)
        settle(page)
        page.screenshot(path=str(artifacts() / "rate-device-zh.png"))
        page.click('.rate-level[data-level="1"]')
        expect(page.locator("#rate-why")).to_be_visible()
        page.click("#rate-send")  # no reason yet: it says so and sends nothing
        expect(page.locator("#rate-message")).to_contain_text("请至少选择一项原因")
        page.click('.rate-reason[data-reason="服务态度不好"]')
        expect(page.locator('.rate-reason[data-reason="服务态度不好"]')).to_have_attribute("aria-pressed", "true")
        page.click("#rate-send")
        expect(page.locator("#rate-thanks")).to_be_visible()
        expect(page.locator("#rate-follow")).to_contain_text("前回访")
        expect(page.locator("#rate-idle")).to_be_visible()  # ?thanks=1: back to waiting after a second
        assert page.evaluate("window.KiosqRate.number") is None  # nothing of the citizen stays

        cases = requests.get(srv.url + "/api/ratings/cases", timeout=10,
                             headers={"Authorization": f"Bearer {srv.tokens['admin']}"}).json()["cases"]
        assert [(c["label"], c["channel"], c["window"], c["clerk"], c["reasons"], c["state"]) for c in cases] == [
            (number, "window", 1, "S", ["服务态度不好"], "open")]
        assert cases[0]["callback"]["due"] <= cases[0]["fix"]["due"]

        page.click("#rate-lang")  # English, and a good rating goes straight to thanks
        expect(page.locator("#rate-idle")).to_contain_text("Please rate our service")
        finish_one(srv)
        expect(page.locator('.rate-level[data-level="5"]')).to_have_text("very satisfied")
        page.click('.rate-level[data-level="5"]')
        expect(page.locator("#rate-thanks")).to_be_visible()
        expect(page.locator("#rate-thanks")).to_contain_text("Thank you")
        assert page.evaluate("window.KiosqRate.sent") == 2
        assert errors == []
    finally:
        ctx.close()



def test_admin_follows_a_bad_rating_to_its_fix(hall_server, browser):  # noqa: F811
    from tests.queue.test_pages import add_user, sign_in

    srv = hall_server()
    number = finish_one(srv)
    rated = post(srv, "/api/windows/1/rating", srv.tokens["terminal"],
                 {"number": number, "level": 1, "reasons": ["等候时间过长"], "comment": "等了一个小时"})
    assert rated.status_code == 201
    case_id = rated.json()["id"]
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = ctx.new_page()
        page.set_default_timeout(LIVE_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{srv.url}/admin", wait_until="load")
        sign_in(page, add_user(srv, "manager", "admin", name="王经理"))
        row = page.locator(f'#ratings-table tr[data-case="{case_id}"]')
        expect(row).to_have_attribute("data-state", "open")
        expect(page.locator("#ratings-alerts")).to_have_attribute("data-open", "1")
        settle(page)
        page.locator("#ratings-card").screenshot(path=str(artifacts() / "admin-ratings-zh.png"))
        expect(page.locator("#ratings-month")).to_have_attribute("data-ratings", "1")
        expect(row.locator('td[data-col="why"]')).to_contain_text("等候时间过长；等了一个小时")
        expect(row.locator('td[data-col="callback"]')).not_to_have_attribute("data-due", "done")
        row.locator(".case-note").fill("已电话回访，群众表示理解")
        row.locator('button[data-step="callback"]').click()
        expect(row.locator('td[data-col="callback"]')).to_have_attribute("data-due", "done")
        expect(row.locator('td[data-col="callback"]')).to_contain_text("已电话回访")
        row.locator('button[data-step="fix"]').click()  # no note: the server says what is missing
        expect(page.locator("#ratings-message")).to_contain_text("整改情况")
        row.locator(".case-note").fill("增开午间窗口")
        row.locator('button[data-step="fix"]').click()
        expect(row).to_have_attribute("data-state", "fixed")
        expect(page.locator("#ratings-month")).to_have_attribute("data-fix-rate", "1")
        expect(page.locator("#ratings-alerts")).to_have_attribute("data-open", "0")
        assert errors == []
    finally:
        ctx.close()


def open_page(browser, url):  # noqa: F811
    ctx = browser.new_context(viewport={"width": 400, "height": 860})
    page = ctx.new_page()
    page.set_default_timeout(LIVE_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url, wait_until="load")
    return ctx, page, errors


def test_the_follow_page_offers_the_rating_once_the_ticket_is_finished(hall_server, browser):  # noqa: F811
    srv = hall_server()
    ticket = post(srv, "/api/tickets", srv.tokens["terminal"], {"service": "A"}).json()
    ctx, page, errors = open_page(browser, f"{srv.url}/t/{ticket['id']}")
    try:
        expect(page.locator("#number")).to_have_text(ticket["number"])
        expect(page.locator("#rating")).to_be_hidden()  # nothing to rate while waiting
        for step in ("call-next", "start", "finish"):
            assert post(srv, f"/api/windows/1/{step}", srv.tokens["staff"]).status_code == 200
        expect(page.locator("#rating .rf-level")).to_have_count(5)
        page.click('#rating .rf-level[data-level="2"]')
        page.click('#rating .rf-reason[data-reason="办事效率低"]')
        page.click("#rating .rf-send")
        expect(page.locator("#rating .rf-thanks")).to_have_text("感谢您的评价！")
        expect(page.locator("#rating .rf-follow")).to_contain_text("前回访")
        page.reload(wait_until="load")  # rated once: the page says so, and offers no second rating
        expect(page.locator("#rating .rf-thanks")).to_have_text("您已评价：不满意")
        expect(page.locator("#rating .rf-level")).to_have_count(0)
        assert errors == []
    finally:
        ctx.close()
    cases = requests.get(srv.url + "/api/ratings/cases", timeout=10,
                         headers={"Authorization": f"Bearer {srv.tokens['admin']}"}).json()["cases"]
    assert [(c["label"], c["channel"], c["reasons"]) for c in cases] == [(ticket["number"], "online", ["办事效率低"])]


def test_the_application_page_offers_the_rating_once_it_is_completed(hall_server, browser):  # noqa: F811
    from tests.queue.test_applications_http import PEOPLE, application

    srv = hall_server()
    filed = requests.post(srv.url + "/api/applications", json=application(*PEOPLE[1]), timeout=10,
                          headers={"Authorization": f"Bearer {srv.tokens['terminal']}",
                                   "Idempotency-Key": "page-app"}).json()
    number = filed["tracking_no"]
    for step in ("accept", "complete"):
        assert post(srv, f"/api/applications/{number}/{step}", srv.tokens["staff"]).status_code == 200
    ctx, page, errors = open_page(browser, f"{srv.url}/a/{number}#code={filed['lookup_code']}")
    try:
        expect(page.locator("#state")).to_contain_text("已办结")
        page.click('#rating .rf-level[data-level="5"]')
        expect(page.locator("#rating .rf-thanks")).to_have_text("感谢您的评价！")
        assert errors == []
    finally:
        ctx.close()
    figures = requests.get(srv.url + "/api/ratings/stats", timeout=10,
                           headers={"Authorization": f"Bearer {srv.tokens['admin']}"}).json()
    assert figures["by"]["channel"] == {"application": figures["hall"]} and figures["hall"]["good"] == 1
