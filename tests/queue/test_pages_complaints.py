"""效能投诉 on a phone in Debian's Chromium against a real `kiosq server`: /complain files a
complaint and shows its number, code and deadlines; once a supervisor answered it over the
API, /c/{no}#code=… shows the answer with no typing; a wrong code typed says so."""

from __future__ import annotations

import pytest
import requests

from tests.queue.test_pages_fleet import LIVE_MS, browser  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.slow,
              pytest.mark.sqlite_only("the pages over the API; the API is tested on both databases")]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency: pip install -e '.[dev]'")
expect = sync_api.expect


def test_a_complaint_filed_on_a_phone_and_its_answer_read_there(hall_server, browser):  # noqa: F811
    srv = hall_server()
    ctx = browser.new_context(viewport={"width": 400, "height": 860})
    try:
        page = ctx.new_page()
        page.set_default_timeout(LIVE_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{srv.url}/complain", wait_until="load")
        expect(page.locator("#cp-category option")).to_have_count(5)
        page.select_option("#cp-category", "rudeness")
        page.fill("#cp-window", "3")
        page.fill("#cp-text", "短")
        page.click("#cp-send")
        expect(page.locator("#cp-error")).to_have_text("请至少写5个字")
        page.fill("#cp-text", "三号窗口工作人员态度生硬，不解释就让我回去")
        page.fill("#cp-phone", "13912345678")
        page.click("#cp-send")
        expect(page.locator("#cp-filed")).to_contain_text("投诉编号 TS")
        expect(page.locator("#cp-dates")).to_contain_text("前决定是否受理")
        filed = page.evaluate("window.KiosqComplaint.filed")
        assert filed["state"] == "received" and len(filed["lookup_code"]) == 8

        admin = {"Authorization": f"Bearer {srv.tokens['admin']}"}
        number = filed["complaint_no"]
        listed = requests.get(srv.url + "/api/complaints", headers=admin, timeout=10).json()["complaints"]
        assert [(c["complaint_no"], c["channel"], c["about"]["window"], c["phone"]) for c in listed] == [
            (number, "phone", 3, "139****5678")]
        for action, body in (("accept", {}), ("answer", {"text": "已约谈该窗口人员，向您致歉"})):
            r = requests.post(f"{srv.url}/api/complaints/{number}/{action}", json=body, headers=admin, timeout=10)
            assert r.status_code == 200, r.text

        page.goto(f"{srv.url}/c/{number}", wait_until="load")
        page.fill("#cp-code", "ABCD2345")
        page.click("#cp-ask button")
        expect(page.locator("#cp-error")).to_have_text("编号或查询密码不对，请核对凭条")
        page.goto("about:blank")  # else only the fragment changes: no new load
        page.goto(f"{srv.url}/c/{number}#code={filed['lookup_code']}", wait_until="load")
        expect(page.locator("#cp-state")).to_have_attribute("data-state", "answered")
        expect(page.locator("#cp-reply")).to_have_text("答复：已约谈该窗口人员，向您致歉")
        assert "#" not in page.url  # the code is taken out of the address
        assert errors == []
    finally:
        ctx.close()


def test_admin_handles_a_complaint_to_its_answer(hall_server, browser):  # noqa: F811
    from tests.queue.test_pages import add_user, sign_in

    srv = hall_server()
    filed = requests.post(srv.url + "/api/complaints", timeout=10,
                          headers={"Authorization": f"Bearer {srv.tokens['terminal']}"},
                          json={"about": {"window": 2}, "category": "evasion",
                                "text": "让我找别的窗口，来回推诿"}).json()
    number = filed["complaint_no"]
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = ctx.new_page()
        page.set_default_timeout(LIVE_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{srv.url}/admin", wait_until="load")
        sign_in(page, add_user(srv, "manager", "admin", name="王经理"))
        row = page.locator(f'#complaints-table tr[data-complaint="{number}"]')
        expect(row).to_have_attribute("data-state", "received")
        expect(row.locator('td[data-col="what"]')).to_contain_text("来回推诿")
        row.locator('button[data-action="accept"]').click()
        expect(row).to_have_attribute("data-state", "accepted")
        row.locator('button[data-action="answer"]').click()  # no answer typed: the server says so
        expect(page.locator("#complaints-message")).to_contain_text("give the answer")
        row.locator(".complaint-text").fill("已核实，对窗口人员批评教育")
        row.locator('button[data-action="answer"]').click()
        expect(row).to_have_attribute("data-state", "answered")
        row.locator(".complaint-satisfaction").select_option("4")
        row.locator('button[data-action="close"]').click()
        expect(row).to_have_attribute("data-state", "closed")
        assert errors == []
    finally:
        ctx.close()
    seen = requests.post(f"{srv.url}/api/complaints/{number}/lookup", json={"code": filed["lookup_code"]},
                         timeout=10).json()
    assert (seen["state"], seen["answer"], seen["satisfaction"]) == ("closed", "已核实，对窗口人员批评教育", 4)
