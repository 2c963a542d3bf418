"""Applications on the staff console (/window/{n}) and the dashboard (/admin), in Debian's
Chromium driven by Playwright, against a real `kiosq server` subprocess.

A terminal files applications over HTTP (fictitious identities, area code 9999xx); the
tests click through the console and check the server's state after each click: accept →
review → complete, a rejection that waits for a supervisor (窗口无否决权), a return (补正)
without a note refused with the server's words, deadline badges, the full record only on a
click, and no full ID number in the page. The dashboard shows 办结率 and 提前办结率, the CSV
downloads, and the webhook's notifications are listed. Screenshots go to build/screenshots/
(as tests/queue/test_pages.py does). Fixtures and helpers come from test_pages.py and
conftest.py; this server has a hall file with a webhook pointing at a local receiver.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
import time
import uuid
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kiosq.content.model import id_number_valid
from kiosq.devices.sim.idcard import TEST_IDENTITIES
from tests.queue.conftest import ServerProcess
from tests.queue.test_pages import (  # noqa: F401 (browser and open_page are fixtures)
    Api,
    add_user,
    artifacts,
    browser,
    connected,
    eventually,
    no_script_errors,
    open_page,
    settle,
    sign_in,
)

# The pages only read and drive the API, whose answers are the same on both databases (the
# API's own suites run on both); Chromium a second time would double the slowest modules.
pytestmark = [pytest.mark.slow,
              pytest.mark.sqlite_only("the pages over the API; the API is tested on both databases")]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency: pip install -e '.[dev]'")
expect = sync_api.expect

REPO_QUEUE = Path(__file__).resolve().parents[2] / "queue"
WINDOW = 1  # serves service A only (the built-in hall)
PHONE = "13500001111"


# -- a server whose webhook goes to a local receiver ---------------------------------------


class Receiver(BaseHTTPRequestHandler):
    """The webhook's far end: keeps every body and answers 200."""

    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture(scope="module")
def webhook():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/kiosq"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def srv(tmp_path_factory, webhook):
    """The built-in hall plus a [notify] webhook, read from DATA_DIR/hall.toml; tokens (for
    the API): terminal, staff (windows 1-8), admin, and a supervisor for every window; and
    accounts of the same roles to sign in to the pages with (ACCOUNTS)."""
    tmp = tmp_path_factory.mktemp("kiosq-apps")
    data = tmp / "data"
    data.mkdir()
    hall = (REPO_QUEUE / "halls" / "default.toml").read_text("utf-8")
    (data / "hall.toml").write_text(hall + f'\n[notify]\nwebhook_url = "{webhook}"\nretry_seconds = 1\n', "utf-8")
    server = ServerProcess(data, tmp)
    try:
        server.make_tokens()
        server.tokens["supervisor"] = server.token("supervisor", "SUP")
        server.tokens["staff3"] = server.token("staff", "S3", "3")
        for login, (role, windows, name) in ACCOUNTS.items():
            add_user(server, login, role, windows, name)
        server.start()
        yield server
    finally:
        server.stop()


# -- filing at a "terminal" ---------------------------------------------------------------


def fileable_items(api: Api) -> list[dict]:
    return api.json("GET", "/api/items?fileable=true")["items"]


def window_services(api: Api, window: int) -> list[str]:
    return next(w for w in api.json("GET", "/api/windows") if w["number"] == window)["services"]


def hall_today(api: Api) -> date:
    """The hall's local date, as the server counts it (in the hall's time zone, which the
    machine running the tests need not share: `make test` makes sure it does not)."""
    return date.fromisoformat(api.json("GET", "/api/display")["now"][:10])


def form_values(item: dict, person, today: date) -> dict:
    """Valid values for an item's form, from its definition: the card's fields prefilled,
    the first of each choice, ticked boxes, dates and numbers within their limits."""
    values = {}
    for field in item["form"]["fields"]:
        kind, name = field["type"], field["name"]
        if field.get("prefill") == "name":
            values[name] = person.name
        elif field.get("prefill") == "id_number" or kind == "id_number":
            values[name] = person.id_number
        elif field.get("prefill") == "address":
            values[name] = person.address
        elif kind == "phone":
            values[name] = PHONE
        elif kind == "choice":
            values[name] = field["choices"][0]["value"]
        elif kind == "checkbox":
            values[name] = True
        elif kind == "date":
            values[name] = field.get("min") or today.isoformat()
        elif kind == "number":
            values[name] = field.get("min") or 1
        elif field.get("pattern"):
            assert field["pattern"] == "^[0-9]{16,19}$", f"no sample value for {name}: {field['pattern']}"
            values[name] = "6222020200112233445"
        else:
            values[name] = "虚构省示例市演示区测试路9号"
    return values


def pick_item(api: Api, promised_zero: bool) -> dict:
    """A fileable item served at WINDOW, with a promised limit of 0 days (即办件: a warning on
    its first day) or of more."""
    served = window_services(api, WINDOW)
    items = [i for i in fileable_items(api) if i["service"] in served and (i["promised_days"] == 0) == promised_zero]
    assert items, f"no fileable item for window {WINDOW} with promised_days {'0' if promised_zero else '> 0'}"
    return items[0]


def file_application(api: Api, item: dict, person=TEST_IDENTITIES[0]) -> dict:
    assert id_number_valid(person.id_number) and person.id_number.startswith("9999")  # fictitious
    body = {"item": item["code"], "values": form_values(item, person, hall_today(api)),
            "applicant": {"id_number": person.id_number, "name": person.name, "phone": PHONE,
                          "address": person.address, "source": "card"}}
    status, _h, raw = api.request("POST", "/api/applications", body, "terminal", {"Idempotency-Key": str(uuid.uuid4())})
    assert status == 201, raw
    return json.loads(raw)


def staff_view(api: Api, number: str) -> dict:
    return api.json("GET", f"/api/applications/{number}", role="admin")


def backdate(srv, number: str, days: int) -> None:
    """As if filed `days` calendar days ago with a deadline well past: an overdue application.
    (The server has no clock to move; the store reads these columns on each request.)"""
    today = hall_today(Api(srv))
    with sqlite3.connect(srv.data_dir / "kiosq.db", timeout=10) as db:
        changed = db.execute("UPDATE applications SET clock_from = ?, promised_date = ?, legal_date = ? "
                             "WHERE tracking_no = ?", ((today - timedelta(days=days)).isoformat(),
                                                       (today - timedelta(days=days // 2)).isoformat(),
                                                       (today + timedelta(days=30)).isoformat(), number)).rowcount
    assert changed == 1


# -- the console ------------------------------------------------------------------------


# The accounts the pages sign in with, by the role of the token the API uses alike.
ACCOUNTS = {"staff": ("staff", tuple(range(1, 9)), "张敏"), "supervisor": ("supervisor", (), "刘主任"),
            "staff3": ("staff", (3,), "赵丽"), "manager": ("admin", (), "王经理")}


def console(open_page, srv, role: str = "staff", window: int = WINDOW, lang: str = "zh"):
    page = open_page(f"{srv.url}/window/{window}?lang={lang}", width=1280, height=900)
    sign_in(page, role)
    expect(page.locator("#work")).to_be_visible()
    connected(page)
    expect(page.locator("#applications tr").first).to_be_visible()
    return page


def app_row(page, number: str):
    return page.locator(f'#applications tr[data-no="{number}"]')


def click_action(page, number: str, action: str) -> None:
    app_row(page, number).locator(f'[data-app-action="{action}"]').click()


# Records when each application row first appears (ms since the epoch).
WATCH_ROWS = """() => {
  window.__rows = {};
  const seen = () => document.querySelectorAll("#applications tr[data-no]").forEach((tr) => {
    if (!(tr.dataset.no in window.__rows)) window.__rows[tr.dataset.no] = Date.now();
  });
  seen();
  new MutationObserver(seen).observe(document.getElementById("applications"), {childList: true, subtree: true});
}"""


def full_ids_in(page, *people) -> list[str]:
    """Full ID numbers (or the first 17 characters of one) anywhere in the page: its DOM,
    attributes included, and the text of form fields."""
    html = page.content() + page.evaluate("[...document.querySelectorAll('input')].map((i) => i.value).join(' ')")
    return [p.id_number for p in people if p.id_number in html or p.id_number[:17] in html]


def storage_of(page) -> str:
    return page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")


# -- tests ------------------------------------------------------------------------------


def test_an_application_filed_at_a_terminal_shows_live_and_is_processed_by_clicks(srv, open_page):
    api = Api(srv)
    item = pick_item(api, promised_zero=False)
    page = console(open_page, srv)
    page.evaluate(WATCH_ROWS)

    filed = file_application(api, item)
    filed_at = time.time() * 1000
    no = filed["tracking_no"]
    row = app_row(page, no)
    expect(row).to_be_visible()
    appeared = page.evaluate(f"window.__rows[{json.dumps(no)}]")
    assert appeared - filed_at <= 1000, f"the new application showed {appeared - filed_at:.0f} ms after filing"

    summary = next(a for a in api.json("GET", f"/api/applications?window={WINDOW}", role="staff")["applications"]
                   if a["tracking_no"] == no)
    expect(row.locator("td.no")).to_have_text(no)
    expect(row).to_contain_text(item["name"])
    expect(row).to_contain_text(summary["applicant"]["id_number"])  # masked, as the API gives it
    expect(row.locator(".promised")).to_contain_text(filed["promised_date"])
    expect(row.locator(".days-left")).to_have_text(f"剩 {summary['workdays_left']} 个工作日")
    expect(row.locator(".app-status")).to_have_text("待受理")
    expect(row.locator(".badge")).to_have_count(0)
    # Only what a submitted application allows; no supervisor buttons for staff.
    assert row.locator("[data-app-action]").evaluate_all("bs => bs.map((b) => b.dataset.appAction)") == [
        "accept", "return", "reject", "personal"]
    assert full_ids_in(page, TEST_IDENTITIES[0]) == []

    for action, status, label in (("accept", "accepted", "已受理"), ("review", "in_review", "审查中")):
        click_action(page, no, action)
        expect(row.locator(".app-status")).to_have_text(label)
        assert staff_view(api, no)["status"] == status
        expect(page.locator("#app-message")).to_have_class("ok")
    assert row.locator("[data-app-action]").evaluate_all("bs => bs.map((b) => b.dataset.appAction)") == [
        "complete", "return", "reject", "personal"]

    click_action(page, no, "complete")
    expect(page.locator("#app-message")).to_have_text(f"{no} · 已办结")
    expect(row).to_have_count(0)  # the default filter lists open applications only
    after = staff_view(api, no)
    assert after["status"] == "completed" and [s["action"] for s in after["history"]] == [
        "submit", "accept", "review", "complete"]
    page.select_option("#app-status", "completed")
    expect(row.locator(".app-status")).to_have_text("已办结")
    expect(row.locator("[data-app-action]")).to_have_count(1)  # the full record only

    # A window whose services do not include the item's does not list it.
    other = console(open_page, srv, role="staff3", window=3)
    other.select_option("#app-status", "all")
    expect(other.locator("#app-count")).to_have_text(
        f"共 {api.json('GET', '/api/applications?window=3', role='staff3')['count']} 件")
    expect(app_row(other, no)).to_have_count(0)
    no_script_errors(page)
    no_script_errors(other)


def test_a_rejection_waits_for_the_supervisor_who_approves_it(srv, open_page):
    api = Api(srv)
    no = file_application(api, pick_item(api, promised_zero=False), TEST_IDENTITIES[1])["tracking_no"]
    staff = console(open_page, srv)
    supervisor = console(open_page, srv, role="supervisor")
    expect(supervisor.locator("#who")).to_contain_text("负责人")
    row = app_row(staff, no)

    click_action(staff, no, "reject")
    staff.fill("#app-note", "不符合受理条件：非本辖区户籍")
    staff.click("#app-note-ok")
    expect(staff.locator("#app-message")).to_have_text(f"{no} · 已提交驳回，待负责人审批")
    expect(row.locator(".tag.pending")).to_have_text("待负责人审批")
    pending = staff_view(api, no)
    assert pending["status"] == "submitted" and pending["rejection_pending"]["note"] == "不符合受理条件：非本辖区户籍"
    # Staff: nothing to do but look; no approve or deny button, and the server refuses anyway.
    assert row.locator("[data-app-action]").evaluate_all("bs => bs.map((b) => b.dataset.appAction)") == ["personal"]
    status, _h, raw = api.request("POST", f"/api/applications/{no}/approve-rejection", {}, "staff")
    assert status == 403 and "窗口无否决权" in json.loads(raw)["detail"]

    # The supervisor's console got it live, with the buttons to decide.
    sup_row = app_row(supervisor, no)
    expect(sup_row.locator(".tag.pending")).to_have_text("待负责人审批")
    expect(sup_row.locator(".pending-note")).to_contain_text("非本辖区户籍")
    sup_row.locator('[data-app-action="approve_rejection"]').click()
    expect(supervisor.locator("#app-message")).to_have_text(f"{no} · 不予受理")
    assert staff_view(api, no)["status"] == "rejected"
    expect(row).to_have_count(0)  # gone from the staff's open list, live
    expect(sup_row).to_have_count(0)
    no_script_errors(staff)
    no_script_errors(supervisor)


def test_a_return_without_a_note_is_refused_with_the_servers_words(srv, open_page):
    api = Api(srv)
    no = file_application(api, pick_item(api, promised_zero=False))["tracking_no"]
    page = console(open_page, srv)
    row = app_row(page, no)
    click_action(page, no, "return")
    expect(page.locator("#app-note")).to_be_focused()
    expect(page.locator("#app-note-masked")).to_contain_text("身份证号、手机号、银行卡号会被自动遮挡")
    page.click("#app-note-ok")
    status, _h, raw = api.request("POST", f"/api/applications/{no}/return", {"note": ""}, "staff")
    assert status == 422
    expect(page.locator("#app-message")).to_have_text(json.loads(raw)["detail"])
    expect(page.locator("#app-message")).to_have_class("error")
    assert staff_view(api, no)["status"] == "submitted"

    page.fill("#app-note", "请补充近期免冠照片回执")
    page.click("#app-note-ok")
    expect(row.locator(".app-status")).to_have_text("补正中")
    after = staff_view(api, no)
    assert after["status"] == "returned" and after["history"][-1]["note"] == "请补充近期免冠照片回执"
    expect(page.locator("#app-note")).to_have_count(0)
    # Returned: the clock stops (no days left) and the material can be accepted again.
    expect(row.locator(".days-left")).to_have_count(0)
    assert row.locator("[data-app-action]").evaluate_all("bs => bs.map((b) => b.dataset.appAction)") == [
        "accept", "personal"]
    no_script_errors(page)


def test_the_full_record_is_shown_only_on_a_click_and_never_stored(srv, open_page):
    api = Api(srv)
    person = TEST_IDENTITIES[2]
    no = file_application(api, pick_item(api, promised_zero=False), person)["tracking_no"]
    page = console(open_page, srv)
    expect(app_row(page, no)).to_be_visible()
    assert full_ids_in(page, person) == []
    assert person.name not in page.content()

    click_action(page, no, "personal")
    panel = page.locator("#app-personal")
    expect(panel.locator('[data-field="id_number"]')).to_have_text(person.id_number)
    expect(panel.locator('[data-field="name"]')).to_have_text(person.name)
    assert person.id_number not in storage_of(page) and person.name not in storage_of(page)
    assert staff_view(api, no)["history"][-1]["action"] == "view_personal"  # the opening is on record

    page.click("#app-personal-hide")
    expect(panel).to_be_hidden()
    assert full_ids_in(page, person) == [] and person.name not in page.content()
    no_script_errors(page)


def test_deadline_badges_and_filters(srv, open_page):
    api = Api(srv)
    near = file_application(api, pick_item(api, promised_zero=True))["tracking_no"]  # 即办件: near on its day
    over = file_application(api, pick_item(api, promised_zero=False))["tracking_no"]
    backdate(srv, over, 40)
    listed = {a["tracking_no"]: a for a in api.json("GET", f"/api/applications?window={WINDOW}", role="staff")[
        "applications"]}
    assert (listed[near]["due"], listed[over]["due"]) == ("near", "over")

    page = console(open_page, srv)
    near_badge = app_row(page, near).locator(".badge")
    over_badge = app_row(page, over).locator(".badge")
    expect(near_badge).to_have_text("临近")
    expect(over_badge).to_have_text("已超期")
    expect(app_row(page, near).locator(".days-left")).to_have_text("今日到期")
    expect(app_row(page, over).locator(".days-left")).to_have_text(
        f"超期 {-listed[over]['workdays_left']} 个工作日")
    colours = {b: page.locator(f'#applications tr[data-no="{n}"] .badge').evaluate(
        "(el) => getComputedStyle(el).backgroundColor") for b, n in (("near", near), ("over", over))}
    assert colours == {"near": "rgb(255, 210, 63)", "over": "rgb(179, 38, 30)"}  # warning colour, red

    for due, shown, hidden in (("over", over, near), ("near", near, over)):
        page.select_option("#app-due", due)
        expect(app_row(page, shown)).to_be_visible()
        expect(app_row(page, hidden)).to_have_count(0)
        expected = api.json("GET", f"/api/applications?window={WINDOW}&status=submitted,accepted,in_review,returned"
                                   f"&due={due}", role="staff")["count"]
        expect(page.locator("#app-count")).to_have_text(f"共 {expected} 件")
        expect(page.locator("#applications tr[data-no]")).to_have_count(expected)
    no_script_errors(page)


def test_admin_shows_rates_the_csv_and_the_notifications(srv, open_page, tmp_path):
    api = Api(srv)
    item = pick_item(api, promised_zero=False)
    done = file_application(api, item)["tracking_no"]
    for action in ("accept", "complete"):
        api.json("POST", f"/api/applications/{done}/{action}", {}, "staff")
    eventually(lambda: any(n["tracking_no"] == done and n["state"] == "sent"
                           for n in api.json("GET", "/api/notifications", role="admin")["notifications"]),
               timeout=10, what="the webhook sending the completion")

    page = open_page(f"{srv.url}/admin", width=1400, height=1000)
    sign_in(page, "manager")
    expect(page.locator("#dashboard")).to_be_visible()
    today = hall_today(api)
    stats = api.json("GET", "/api/applications/stats", role="admin")
    if hall_today(api) != today:  # the hall's midnight passed between the two requests
        today = hall_today(api)
        stats = api.json("GET", "/api/applications/stats", role="admin")
    first = today.replace(day=1).isoformat()
    assert (stats["from"], stats["to"]) == (first, today.isoformat())  # this month by default
    expect(page.locator("#app-from")).to_have_value(first)

    def percent(v):
        return "—" if v is None else f"{v:g}%"  # as JavaScript prints a number

    hall = stats["hall"]
    expect(page.locator("#fig-submitted .value")).to_have_text(str(hall["submitted"]))
    expect(page.locator("#fig-completion .value")).to_have_text(percent(hall["completion_rate"]))
    expect(page.locator("#fig-early .value")).to_have_text(percent(hall["early_completion_rate"]))
    expect(page.locator("#fig-warnings .value")).to_have_text(str(hall["warnings"]))
    expect(page.locator("#fig-overdue .value")).to_have_text(str(hall["overdue"]))
    assert hall["completed"] >= 1 and hall["completion_rate"] > 0
    row = next(i for i in stats["items"] if i["item"] == item["code"])
    item_row = page.locator(f'#app-items tr[data-row="{item["code"]}"]')
    expect(item_row.locator('[data-col="completion_rate"]')).to_have_text(percent(row["completion_rate"]))
    expect(item_row.locator('[data-col="early_completion_rate"]')).to_have_text(percent(row["early_completion_rate"]))
    expect(item_row.locator('[data-col="completed"]')).to_have_text(str(row["completed"]))
    dept = next(d for d in stats["departments"] if d["department"] == item["department"])
    expect(page.locator(f'#app-departments tr[data-row="{item["department"]}"] [data-col="submitted"]')).to_have_text(
        str(dept["submitted"]))

    # The CSV link downloads the same figures.
    expect(page.locator("#app-export")).to_have_attribute("href", f"/api/applications/export.csv?from={first}&"
                                                                  f"to={stats['to']}&lang=zh")
    with page.expect_download() as download:
        page.click("#app-export")
    saved = tmp_path / "figures.csv"
    download.value.save_as(saved)
    table = list(csv.reader(io.StringIO(saved.read_text("utf-8-sig"))))
    assert "办结率(%)" in table[0] and "提前办结率(%)" in table[0]
    csv_row = next(r for r in table if r[1] == item["code"])
    assert csv_row[table[0].index("办结率(%)")] == str(row["completion_rate"])

    # What the webhook sent, newest first.
    sent = api.json("GET", "/api/notifications?limit=50", role="admin")["notifications"]
    expect(page.locator("#notifications tr[data-id]")).to_have_count(len(sent))
    expect(page.locator(f'#notifications tr[data-id="{sent[0]["id"]}"]')).to_contain_text(sent[0]["tracking_no"])
    expect(page.locator("#webhook-status")).to_have_text("")
    assert any(r["tracking_no"] == done and r["status"] == "completed" for r in Receiver.received)
    assert full_ids_in(page, *TEST_IDENTITIES) == []
    no_script_errors(page)


def test_screenshots_of_the_applications_console_and_dashboard(srv, open_page):
    """Console (a supervisor's, so the approve buttons show) with open, near, overdue and
    pending applications; the dashboard's applications section. zh and en."""
    api = Api(srv)
    normal, zero = pick_item(api, promised_zero=False), pick_item(api, promised_zero=True)
    filed = [file_application(api, normal, p)["tracking_no"] for p in TEST_IDENTITIES]
    file_application(api, zero, TEST_IDENTITIES[1])
    api.json("POST", f"/api/applications/{filed[0]}/accept", {}, "staff")
    api.json("POST", f"/api/applications/{filed[1]}/reject", {"note": "材料与事项不符"}, "staff")
    backdate(srv, filed[2], 40)
    out, saved = artifacts(), []
    for lang in ("zh", "en"):
        page = console(open_page, srv, role="supervisor", lang=lang)
        expect(app_row(page, filed[1]).locator('[data-app-action="approve_rejection"]')).to_be_visible()
        settle(page)
        saved.append(out / f"console-applications-{lang}.png")
        page.screenshot(path=saved[-1], full_page=True)
        assert full_ids_in(page, *TEST_IDENTITIES) == []
        no_script_errors(page)

        page = open_page(f"{srv.url}/admin?lang={lang}", width=1400, height=1000)
        sign_in(page, "manager")
        expect(page.locator("#app-items tr[data-row]").first).to_be_visible()
        settle(page)
        saved.append(out / f"admin-applications-{lang}.png")
        page.locator("#applications-card").screenshot(path=saved[-1])
        no_script_errors(page)
    for path in saved:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000, path


def printed_receipt_qr(srv, filed: dict, person) -> str:
    """What the kiosk's receipt printer is sent for this application (devices/receipts.py,
    as kiosk/apply_flow.py builds it), decoded back from the ESC/POS bytes: the QR's text."""
    from kiosq.devices.escpos_decode import decode, qr_payloads
    from kiosq.devices.receipts import ApplicationFiled, application_receipt

    receipt = ApplicationFiled(hall="测试大厅", tracking_no=filed["tracking_no"], item=filed["item_name"],
                               id_number=person.id_number, filed_at=datetime(2026, 11, 23, 10, 0),
                               promised_date=date.fromisoformat(filed["promised_date"]), server_url=srv.url,
                               lookup_code=filed["lookup_code"], applicant=person.name)
    (payload,) = qr_payloads(decode(application_receipt(receipt)))
    return payload


def test_the_receipts_qr_opens_the_progress_page_with_no_typing(srv, open_page):
    """Issue #17's Done-when: the printed receipt's QR (decoded from the printer's bytes)
    opens /a/{number}#code=... on a phone, which shows the state at once; the code is in
    the fragment, so no request the page makes carries it in its address."""
    api = Api(srv)
    person = TEST_IDENTITIES[1]
    filed = file_application(api, pick_item(api, promised_zero=False), person)
    api.json("POST", f"/api/applications/{filed['tracking_no']}/accept", {}, role="admin")
    url = printed_receipt_qr(srv, filed, person)
    assert url == f"{srv.url}/a/{filed['tracking_no']}#code={filed['lookup_code']}" and "?" not in url
    page = open_page(width=390, height=844)  # a phone that scanned it
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    page.goto(url, wait_until="load")
    page.wait_for_selector("#result:not(.hidden)")
    assert page.locator("#state").inner_text() == "已受理" and page.locator("#ask").is_hidden()
    assert page.locator("#number").inner_text() == filed["tracking_no"]
    assert filed["promised_date"] in page.locator("#dates").inner_text()
    assert [li.inner_text()[-3:] for li in page.locator("#history li").all()][-1] == "已受理"
    assert person.id_number not in page.content()
    assert not any(filed["lookup_code"] in u for u in asked)
    # the code is out of the address once read: the phone's history and a copied link lose it
    assert page.url == f"{srv.url}/a/{filed['tracking_no']}"
    assert filed["lookup_code"] not in page.evaluate("location.href")
    no_script_errors(page)
    settle(page)
    page.screenshot(path=str(artifacts() / "application-progress-zh.png"))


def test_the_progress_page_asks_for_the_code_without_one(srv, open_page):
    """/a/{number} without the fragment (the number typed in): a field for the code; a wrong
    one is refused in words, the right one in any case with dashes and spaces shows the state."""
    api = Api(srv)
    person = TEST_IDENTITIES[2]
    filed = file_application(api, pick_item(api, promised_zero=False), person)
    code = filed["lookup_code"]
    page = open_page(f"{srv.url}/a/{filed['tracking_no']}", width=390, height=844)
    assert page.locator("#number").inner_text() == filed["tracking_no"] and page.locator("#code").is_visible()
    assert page.locator("#last4").count() == 0
    page.fill("#code", "ABCD2345" if code != "ABCD2345" else "ABCD2346")
    page.click("#ask button")
    expect(page.locator("#error")).not_to_be_empty()  # (wait_for_function would be eval'd: the CSP forbids it)
    assert "查询密码不对" in page.locator("#error").inner_text() and page.locator("#result").is_hidden()
    page.fill("#code", f" {code[:4].lower()}-{code[4:]} ")
    page.click("#ask button")
    page.wait_for_selector("#result:not(.hidden)")
    assert page.locator("#state").inner_text() == "已提交" and page.locator("#code").input_value() == ""
    assert person.id_number not in page.content() and code not in page.content()
