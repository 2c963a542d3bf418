"""Issue #16's "Done when", in Chromium against a real `kiosq server`: the hall's IT admin
makes two clerks and a supervisor with `kiosq server user add`, each signs in at the console
and sees only what they may do (the clerk at their own window; no approving a rejection; the
supervisor approves), the admin disables one clerk on /admin, whose open console is back
at the sign-in form at its next action, and finds the other clerk's actions in the audit log.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.queue.conftest import KIOSQ, ServerProcess
from tests.queue.test_pages import (  # noqa: F401 (browser and open_page are fixtures)
    PASSWORD,
    Api,
    browser,
    connected,
    no_script_errors,
    open_page,
    sign_in,
)
from tests.queue.test_pages_applications import TEST_IDENTITIES, WINDOW, app_row, file_application, pick_item

pytestmark = [pytest.mark.slow,
              pytest.mark.sqlite_only("the pages over the API; the API is tested on both databases")]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency: pip install -e '.[dev]'")
expect = sync_api.expect
OTHER_WINDOW = 2  # the first clerk's; WINDOW (1) is the second clerk's, where the applications are


@pytest.fixture
def srv(tmp_path):
    server = ServerProcess(tmp_path / "data", tmp_path)
    try:
        server.make_tokens()  # the terminal's token, to file an application
        server.start()
        yield server
    finally:
        server.stop()


def user_add(srv, login: str, name: str, role: str, windows: str | None = None) -> None:
    cmd = [*KIOSQ, "server", "user", "add", login, "--name", name, "--role", role,
           *(["--windows", windows] if windows else []), "--password-stdin", "--data-dir", str(srv.data_dir)]
    done = subprocess.run(cmd, input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def console(open_page, srv, login: str, window: int):
    page = open_page(f"{srv.url}/window/{window}", width=1280, height=900)
    sign_in(page, login)
    expect(page.locator("#work")).to_be_visible()
    connected(page)
    return page


def test_three_people_sign_in_as_themselves_one_is_shut_out_the_others_actions_are_audited(srv, open_page):
    user_add(srv, "zhaoli", "赵丽", "staff", str(OTHER_WINDOW))
    user_add(srv, "qianjun", "钱军", "staff", str(WINDOW))
    user_add(srv, "liuzr", "刘主任", "supervisor")
    user_add(srv, "it", "信息科", "admin")
    api = Api(srv)
    no = file_application(api, pick_item(api, promised_zero=False), TEST_IDENTITIES[0])["tracking_no"]
    ticket = api.issue("B")  # window 2 serves A and B; the application is of A, so no A ticket here

    # 赵丽 at her window calls the next ticket; at the other clerk's window she is turned away.
    zhao = console(open_page, srv, "zhaoli", OTHER_WINDOW)
    expect(zhao.locator("#who")).to_have_text("已登录：赵丽（zhaoli）· 工作人员")
    zhao.click('[data-action="call-next"]')
    expect(zhao.locator("#current-number")).to_have_text(ticket["number"])
    elsewhere = zhao.context.new_page()
    elsewhere.goto(f"{srv.url}/window/{WINDOW}")
    expect(elsewhere.locator("#signin-message")).to_contain_text(
        "赵丽（zhaoli）可在 2 号窗口办理，不能在本窗口（1 号）")
    expect(elsewhere.locator("#work")).to_be_hidden()
    elsewhere.close()

    # 钱军 accepts the application and asks to reject it: he has no button to approve that.
    qian = console(open_page, srv, "qianjun", WINDOW)
    row = app_row(qian, no)
    row.locator('[data-app-action="accept"]').click()
    expect(qian.locator("#app-message")).to_contain_text(f"{no} · 已受理")
    row.locator('[data-app-action="reject"]').click()
    qian.fill("#app-note", "材料与事项不符")
    qian.click("#app-note-ok")
    expect(row.locator(".tag.pending")).to_have_text("待负责人审批")
    assert row.locator("[data-app-action]").evaluate_all("bs => bs.map((b) => b.dataset.appAction)") == ["personal"]

    # 刘主任, the duty supervisor, may act at every window and approves it.
    liu = console(open_page, srv, "liuzr", WINDOW)
    expect(liu.locator("#who")).to_have_text("已登录：刘主任（liuzr）· 负责人")
    app_row(liu, no).locator('[data-app-action="approve_rejection"]').click()
    expect(liu.locator("#app-message")).to_have_text(f"{no} · 不予受理")

    # The admin shuts 赵丽 out on /admin (two clicks); her open console finds out at its next action.
    admin = open_page(f"{srv.url}/admin", width=1400, height=1000)
    sign_in(admin, "it")
    expect(admin.locator("#dashboard")).to_be_visible()
    her = admin.locator('#users-table tr[data-login="zhaoli"]')
    expect(her.locator('td[data-col="sessions"]')).to_have_text("1")
    her.locator('[data-user-action="disable"]').click()
    her.locator('[data-user-action="disable"]').click()
    expect(her).to_have_attribute("data-disabled", "true")
    zhao.click('[data-action="finish"]')
    expect(zhao.locator("#signin-card")).to_be_visible()
    expect(zhao.locator("#work")).to_be_hidden()
    assert api.window(OTHER_WINDOW)["current"]["status"] == "called"  # the finish did not go through

    # 钱军's actions in the audit log, by his login, from the page's filter.
    admin.fill("#audit-actor", "qianjun")
    admin.click("#audit-show")
    rows = admin.locator("#audit-table tr[data-action]")
    expect(rows).to_have_count(3)
    assert rows.evaluate_all("rs => rs.map((r) => r.dataset.action)") == [
        "application.reject", "application.accept", "session.signed_in"]
    assert set(rows.evaluate_all("rs => rs.map((r) => r.dataset.actor)")) == {"qianjun"}
    admin.fill("#audit-actor", "")
    admin.fill("#audit-action", "user.disabled")
    admin.click("#audit-show")
    expect(admin.locator("#audit-table tr[data-action]")).to_have_count(1)
    expect(admin.locator('#audit-table tr[data-action] td[data-col="target"]')).to_have_text("zhaoli")
    expect(admin.locator('#audit-table tr[data-action] td[data-col="actor"]')).to_have_text("it")
    for page in (zhao, qian, liu, admin):
        no_script_errors(page)
