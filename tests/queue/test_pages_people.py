"""People, not tokens (#16), in Debian's Chromium driven by Playwright against a real
`kiosq server`: the staff console and /admin sign in with a login and password; the
session is an HttpOnly, SameSite=Strict cookie that no script sees and no storage holds; a
clerk acts at their own windows only; signing out, a wrong password, too many of them, and
an account disabled while signed in each show the server's words. On /admin an admin
creates an account, changes its windows, resets its password and disables it (marked in
its row), revokes a token (marked revoked), and reads the sign-ins in the audit log, on
screen and as CSV; a staff account cannot use /admin.

Accounts are made in the server's store (tests/queue/test_pages.py add_user), tokens with
`kiosq server token` (conftest.py); each test uses logins of its own on one server.
"""

from __future__ import annotations

import csv
import http.client
import io
import json

import pytest

from tests.queue.conftest import ServerProcess
from tests.queue.test_pages import (  # noqa: F401 (browser and open_page are fixtures)
    PASSWORD,
    Api,
    add_user,
    artifacts,
    browser,
    connected,
    no_script_errors,
    open_page,
    set_disabled,
    settle,
    sign_in,
)

# The pages only read and drive the API, whose answers are the same on both databases (the
# API's own suites run on both); Chromium a second time would double the slowest modules.
pytestmark = [pytest.mark.slow,
              pytest.mark.sqlite_only("the pages over the API; the API is tested on both databases")]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency: pip install -e '.[dev]'")
expect = sync_api.expect

COOKIE = "kiosq_session"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kiosq-people")
    server = ServerProcess(tmp / "data", tmp)
    try:
        server.make_tokens()
        server.start()
        yield server
    finally:
        server.stop()


def post_session(srv, login: str, password: str) -> tuple[int, dict, dict]:
    """POST /api/session as a script would: (status, headers, body)."""
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    try:
        conn.request("POST", "/api/session", body=json.dumps({"login": login, "password": password}),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(resp.read())
    finally:
        conn.close()


def page_fetch(page, method: str, path: str) -> int:
    """The status of a request the page itself makes (with its cookie, as its scripts do)."""
    return page.evaluate("async ([method, path]) => (await fetch(path, {method})).status", [method, path])


def session_cookie(page) -> dict | None:
    return next((c for c in page.context.cookies() if c["name"] == COOKIE), None)


def console(open_page, srv, window: int = 1):
    page = open_page(f"{srv.url}/window/{window}", width=1280, height=900)
    expect(page.locator("#signin-card")).to_be_visible()
    return page


# -- the console ---------------------------------------------------------------------------


def test_console_signs_in_with_a_strict_httponly_cookie_and_acts_at_its_windows_only(srv, open_page):
    api = Api(srv)
    api.drain(1, "A")
    add_user(srv, "zhouxin", "staff", (1, 2), "周欣")
    page = console(open_page, srv)
    sent: list[dict] = []
    page.on("request", lambda r: "/api/" in r.url and sent.append({"url": r.url, **r.headers}))
    expect(page.locator("#login")).to_have_attribute("autocomplete", "username")
    expect(page.locator("#password")).to_have_attribute("autocomplete", "current-password")
    expect(page.locator("label[for=login]")).to_have_text("登录名")

    sign_in(page, "zhouxin")
    expect(page.locator("#work")).to_be_visible()
    expect(page.locator("#who")).to_have_text("已登录：周欣（zhouxin）· 工作人员")
    expect(page.locator("#password")).to_have_value("")
    connected(page)
    cookie = session_cookie(page)
    assert cookie is not None, page.context.cookies()
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/"), cookie
    assert COOKIE not in page.evaluate("document.cookie")
    stored = page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
    assert cookie["value"] not in stored and PASSWORD not in stored and "kq_" not in stored

    # Call next at window 1: the page and the server agree; no request sent a bearer token.
    ticket = api.issue("A")
    page.click('[data-action="call-next"]')
    expect(page.locator("#current-number")).to_have_text(ticket["number"])
    assert api.window(1)["current"]["number"] == ticket["number"]
    assert sent and not [r["url"] for r in sent if "authorization" in r], sent
    page.click('[data-action="finish"]')
    expect(page.locator("#current-number")).to_have_text("—")

    # A reload resumes the session (no sign-in form).
    page.reload()
    expect(page.locator("#work")).to_be_visible()
    expect(page.locator("#signin-card")).to_be_hidden()
    expect(page.locator("#who")).to_contain_text("zhouxin")

    # Window 3 is not theirs: the console says so, and the server refuses anyway.
    other = page.context.new_page()
    other.goto(f"{srv.url}/window/3")
    expect(other.locator("#signin-message")).to_have_text(
        "周欣（zhouxin）可在 1、2 号窗口办理，不能在本窗口（3 号）：请在自己的窗口登录，或换一个账号")
    expect(other.locator("#work")).to_be_hidden()
    assert page_fetch(other, "POST", "/api/windows/3/call-next") == 403
    other.close()

    # Sign out: the form again, the cookie gone, the session ended on the server.
    secret = cookie["value"]
    page.click("#sign-out")
    expect(page.locator("#signin-card")).to_be_visible()
    expect(page.locator("#signin-message")).to_have_text("已退出")
    expect(page.locator("#work")).to_be_hidden()
    expect(page.locator("#who")).to_have_text("")
    assert session_cookie(page) is None
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    try:
        conn.request("GET", "/api/session", headers={"Cookie": f"{COOKIE}={secret}"})
        assert conn.getresponse().status == 401  # the old cookie no longer opens anything
    finally:
        conn.close()
    page.reload()
    expect(page.locator("#signin-card")).to_be_visible()
    expect(page.locator("#signin-message")).to_have_text("")
    no_script_errors(page)


def test_wrong_passwords_and_a_disabled_account_are_refused_in_the_servers_words(srv, open_page):
    add_user(srv, "sunli", "staff", (1,), "孙丽")
    add_user(srv, "qianyu", "staff", (1,), "钱雨")
    page = console(open_page, srv)
    message = page.locator("#signin-message")

    # A wrong password and an unknown login get one and the same answer.
    status, _h, wrong = post_session(srv, "nobody-here", "not-the-password")
    assert (status, wrong["error"]) == (401, "wrong_login")
    sign_in(page, "sunli", "not-the-password")
    expect(message).to_have_text(wrong["detail"])
    expect(page.locator("#work")).to_be_hidden()
    assert session_cookie(page) is None

    # Five wrong tries for a login from one address: 429, which says when to try again; the
    # right password is refused as well until then.
    for _ in range(4):
        assert post_session(srv, "sunli", "still-not-it")[0] == 401
    status, headers, refused = post_session(srv, "sunli", PASSWORD)
    assert (status, refused["error"]) == (429, "too_many_tries") and int(headers["retry-after"]) > 0
    sign_in(page, "sunli")
    expect(message).to_have_text(refused["detail"])
    expect(message).to_contain_text("minute")
    expect(page.locator("#work")).to_be_hidden()

    # A disabled account.
    set_disabled(srv, "qianyu")
    sign_in(page, "qianyu")
    expect(message).to_have_text(post_session(srv, "qianyu", PASSWORD)[2]["detail"])
    expect(message).to_contain_text("disabled")
    expect(page.locator("#work")).to_be_hidden()
    no_script_errors(page)


def test_an_account_disabled_while_signed_in_is_back_at_the_sign_in_form_on_its_next_action(srv, open_page):
    api = Api(srv)
    add_user(srv, "wuhao", "staff", (1,), "吴浩")
    page = console(open_page, srv)
    sign_in(page, "wuhao")
    expect(page.locator("#work")).to_be_visible()
    connected(page)
    before = api.window(1)["current"]

    set_disabled(srv, "wuhao")
    page.click('[data-action="call-next"]')
    expect(page.locator("#signin-card")).to_be_visible()
    expect(page.locator("#work")).to_be_hidden()
    expect(page.locator("#signin-message")).to_contain_text("sign in again")
    expect(page.locator("#who")).to_have_text("")
    expect(page.locator("#applications tr")).to_have_count(0)  # the applications panel let go too
    assert api.window(1)["current"] == before  # nothing was done
    # Enabled again, the clerk signs in anew (the old session stays ended).
    set_disabled(srv, "wuhao", False)
    assert page_fetch(page, "GET", "/api/session") == 401
    sign_in(page, "wuhao")
    expect(page.locator("#work")).to_be_visible()
    no_script_errors(page)


# -- /admin --------------------------------------------------------------------------------


def admin_page(open_page, srv, login: str):
    page = open_page(f"{srv.url}/admin", width=1400, height=1000)
    sign_in(page, login)
    expect(page.locator("#dashboard")).to_be_visible()
    return page


def users(srv) -> dict[str, dict]:
    return {u["login"]: u for u in Api(srv).json("GET", "/api/users", role="admin")["users"]}


def test_admin_creates_changes_resets_and_disables_an_account(srv, open_page):
    add_user(srv, "chenjing", "admin", name="陈静")
    page = admin_page(open_page, srv, "chenjing")
    expect(page.locator("#who")).to_have_text("已登录：陈静（chenjing）· 管理员")
    me = page.locator('#users-table tr[data-login="chenjing"]')
    expect(me.locator('td[data-col="login"]')).to_have_text("chenjing（本人）")
    expect(me.locator('[data-user-action="disable"]')).to_have_count(0)  # not one's own account
    message = page.locator("#users-message")

    # Create: a too-short password is refused in the server's words, then the account is made.
    page.fill("#user-login", "hanmei")
    page.fill("#user-name", "韩梅")
    page.select_option("#user-role", "staff")
    page.fill("#user-windows", "2,3")
    page.fill("#user-password", "short")
    page.click("#user-create")
    expect(message).to_contain_text("too short")
    expect(message).to_have_class("error")
    assert "hanmei" not in users(srv)
    page.fill("#user-password", "Quiet-harbour-17")
    page.click("#user-create")
    expect(message).to_have_text("已新建账号 hanmei（韩梅）")
    row = page.locator('#users-table tr[data-login="hanmei"]')
    expect(row.locator('td[data-col="name"]')).to_have_text("韩梅")
    expect(row.locator('td[data-col="role"]')).to_have_text("工作人员")
    expect(row.locator('td[data-col="windows"]')).to_have_text("2, 3")
    expect(row).to_have_attribute("data-disabled", "false")
    expect(page.locator("#user-password")).to_have_value("")
    assert (users(srv)["hanmei"]["windows"], users(srv)["hanmei"]["role"]) == ([2, 3], "staff")
    assert post_session(srv, "hanmei", "Quiet-harbour-17")[0] == 200

    # Windows: 4 only.
    row.locator('[data-user-action="edit"]').click()
    expect(page.locator("#user-new-windows")).to_be_focused()
    page.fill("#user-new-windows", "4")
    page.click("#user-edit-ok")
    expect(row.locator('td[data-col="windows"]')).to_have_text("4")
    expect(page.locator("#user-new-windows")).to_have_count(0)
    assert users(srv)["hanmei"]["windows"] == [4]

    # Reset the password in the row's form: the old one stops working, the new one works.
    row.locator('[data-user-action="password"]').click()
    page.fill("#user-new-password", "hanmei-2026-x")  # contains the login: refused
    page.click("#user-edit-ok")
    expect(message).to_contain_text("must not contain the login")
    page.fill("#user-new-password", "Silver-orchard-58")
    page.click("#user-edit-ok")
    expect(message).to_have_text("hanmei 的密码已重置：其已登录的会话全部失效")
    assert post_session(srv, "hanmei", "Quiet-harbour-17")[0] == 401
    assert post_session(srv, "hanmei", "Silver-orchard-58")[0] == 200

    # Disable: two clicks; the row is marked and the account cannot sign in.
    button = row.locator('[data-user-action="disable"]')
    button.click()
    expect(button).to_have_text("确认停用？")
    assert users(srv)["hanmei"]["disabled_at"] is None  # armed only
    button.click()
    expect(row).to_have_attribute("data-disabled", "true")
    expect(row).to_have_class("disabled")
    expect(row.locator('td[data-col="state"]')).to_contain_text("已停用")
    struck = row.locator('td[data-col="name"]').evaluate("(el) => getComputedStyle(el).textDecorationLine")
    assert struck == "line-through"
    expect(message).to_have_text("hanmei 已停用：其登录立即失效")
    assert users(srv)["hanmei"]["disabled_at"] is not None
    assert post_session(srv, "hanmei", "Silver-orchard-58")[0] == 403
    expect(row.locator('td[data-col="sessions"]')).to_have_text("0")

    # Enable again: one click.
    row.locator('[data-user-action="enable"]').click()
    expect(row).to_have_attribute("data-disabled", "false")
    expect(row.locator('td[data-col="state"]')).to_have_text("正常")
    no_script_errors(page)


def test_admin_revokes_a_token_and_reads_the_sign_ins_in_the_audit_log(srv, open_page, tmp_path):
    add_user(srv, "guofang", "admin", name="郭芳")
    add_user(srv, "zhengkai", "staff", (5,), "郑凯")
    script = srv.token("staff", "SCRIPT-7", "5")
    assert post_session(srv, "zhengkai", PASSWORD)[0] == 200
    assert post_session(srv, "zhengkai", "not-the-password")[0] == 401
    page = admin_page(open_page, srv, "guofang")

    # Credentials: the script's token is active; revoking takes two clicks and marks the row.
    row = page.locator('#tokens-table tr[data-name="SCRIPT-7"]')
    expect(row).to_have_attribute("data-state", "active")
    expect(row.locator('td[data-col="state"]')).to_have_text("有效")
    button = row.locator("button[data-revoke-token]")
    button.click()
    expect(button).to_have_text("确认吊销？")
    assert Api(srv).request("GET", "/api/me", headers={"Authorization": f"Bearer {script}"})[0] == 200
    button.click()
    expect(row).to_have_attribute("data-state", "revoked")
    expect(row).to_have_class("token-revoked")
    expect(row.locator('td[data-col="state"]')).to_contain_text("已吊销")
    expect(row.locator("button")).to_have_count(0)
    expect(page.locator("#tokens-message")).to_have_text("凭证 SCRIPT-7 已吊销：立即失效")
    assert Api(srv).request("GET", "/api/me", headers={"Authorization": f"Bearer {script}"})[0] == 401

    # The audit log: the sign-ins with their logins, the failed one, the revocation.
    audit = page.locator("#audit-table")
    expect(audit.locator('tr[data-action="token.revoked"]').first).to_contain_text("SCRIPT-7")
    expect(audit.locator('tr[data-action="token.revoked"]').first.locator('td[data-col="actor"]')).to_have_text(
        "guofang")
    page.fill("#audit-action", "session.signed_in")
    page.click("#audit-show")
    expect(audit.locator("tr[data-action]").first).to_have_attribute("data-action", "session.signed_in")
    expect(audit.locator('tr[data-action]:not([data-action="session.signed_in"])')).to_have_count(0)
    for login in ("guofang", "zhengkai"):
        expect(audit.locator(f'tr[data-actor="{login}"]').first).to_be_visible()
    expect(audit.locator('tr[data-actor="guofang"] [data-col="action"]').first).to_contain_text("登录")
    page.fill("#audit-action", "session.failed")
    page.fill("#audit-actor", "zhengkai")
    page.click("#audit-show")
    expect(audit.locator("tr[data-action]")).to_have_count(1)
    expect(audit.locator('tr[data-action="session.failed"] [data-col="detail"]')).to_contain_text("wrong_password")
    assert "not-the-password" not in page.content()

    # The CSV link carries the same filters.
    link = page.locator("#audit-csv")
    expect(link).to_have_attribute("href", "/api/audit?action=session.failed&actor=zhengkai&format=csv&limit=10000")
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / "audit.csv"
    download.value.save_as(saved)
    table = list(csv.DictReader(io.StringIO(saved.read_text("utf-8-sig"))))
    assert [(r["action"], r["actor"]) for r in table] == [("session.failed", "zhengkai")]

    settle(page)
    for card in ("users-card", "tokens-card", "audit-card"):
        page.locator(f"#{card}").screenshot(path=str(artifacts() / f"admin-{card.split('-')[0]}-zh.png"))
    page.click("#lang-toggle")
    expect(page.locator("#tokens-card h2")).to_have_text("Credentials")
    expect(row.locator('td[data-col="state"]')).to_contain_text("revoked")
    no_script_errors(page)


def test_a_staff_or_supervisor_account_cannot_use_admin(srv, open_page):
    add_user(srv, "maliang", "staff", (1,), "马良")
    add_user(srv, "hefan", "supervisor", (), "何帆")
    page = open_page(f"{srv.url}/admin", width=1400, height=1000)
    sign_in(page, "maliang")
    message = page.locator("#signin-message")
    expect(message).to_have_text("/admin 需要管理员账号：马良（maliang）是工作人员。请用管理员账号登录。")
    expect(page.locator("#dashboard")).to_be_hidden()
    assert page_fetch(page, "GET", "/api/users") == 403  # and the server refuses anyway
    assert page_fetch(page, "GET", "/api/audit") == 403

    # A reload says it again; signing in as a supervisor is no better.
    page.reload()
    expect(message).to_contain_text("maliang")
    expect(page.locator("#dashboard")).to_be_hidden()
    sign_in(page, "hefan")
    expect(message).to_contain_text("何帆（hefan）是负责人")
    expect(page.locator("#dashboard")).to_be_hidden()
    # Signing out from here works as well.
    page.click("#sign-out")
    expect(message).to_have_text("已退出")
    assert session_cookie(page) is None
    no_script_errors(page)


def test_changes_under_the_cookie_go_from_the_pages_own_origin_only(srv, open_page):
    """Chromium sends Origin with the page's own changes, so they pass; the same cookie
    with another site's Origin is refused (the server's second lock, after SameSite)."""
    add_user(srv, "lumin", "admin", name="陆敏")
    page = admin_page(open_page, srv, "lumin")
    page.fill("#notice-input", "")
    page.click("#notice-save")
    expect(page.locator("#message")).to_have_text("已保存")
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    try:
        conn.request("PUT", "/api/hall/notice", body=json.dumps({"notice": "x"}),
                     headers={"Content-Type": "application/json", "Cookie": f"{COOKIE}={session_cookie(page)['value']}",
                              "Origin": "http://evil.example"})
        resp = conn.getresponse()
        assert resp.status == 403 and json.loads(resp.read())["error"] == "cross_origin"
    finally:
        conn.close()
    no_script_errors(page)
