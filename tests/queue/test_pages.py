"""The hall's web pages in a real browser: Debian's Chromium driven by Playwright (sync API).

Hall display, window display, staff console, follow page and the voice queue, each against
a real `kiosq server` subprocess (fixtures in tests/queue/conftest.py); the API drives the
queue (with bearer tokens, as scripts do) and the tests check what the pages show, live.
People sign in to the console and /admin with a login and password (accounts made with
`add_user`, in the hall's store, as `kiosq server user add` does). Screenshots of every page in Chinese
and English go to $KIOSQ_ARTIFACTS (default: build/screenshots/ under the repository).

One browser per module; a new context (cookies, storage) per page. Every wait is bounded.
Never `playwright install`: the browser is /usr/bin/chromium (see shared/PLATFORM.md).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import time
import uuid
import wave
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

# The pages only read and drive the API, whose answers are the same on both databases (the
# API's own suites run on both); Chromium a second time would double the slowest modules.
pytestmark = [pytest.mark.slow,
              pytest.mark.sqlite_only("the pages over the API; the API is tested on both databases")]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency: pip install -e '.[dev]'")
expect = sync_api.expect

CHROMIUM = os.environ.get("KIOSQ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
]
REPO = Path(__file__).resolve().parents[2]
HTTP_TIMEOUT = 10.0
LIVE_MS = 5000  # how long a page may take to show a change (the real bound is asserted where it matters)


# -- accounts, for signing in --------------------------------------------------------------

PASSWORD = "Lantern-river-42"  # every test account's (at least 10 characters, no login in it)


def add_user(srv, login: str, role: str, windows=(), name: str | None = None, password: str = PASSWORD) -> str:
    """A staff account in the server's store (the server may be running: it reads accounts
    per request), unless it exists already (module-wide servers); returns the login."""
    from kiosq.queue.server import open_store, resolve_hall

    store = open_store(srv.data_dir, resolve_hall(srv.data_dir, None), srv.database, note=False)
    try:
        if store.user(login) is None:
            store.create_user(login, name or login, role, tuple(windows), password)
    finally:
        store.close()
    return login


def set_disabled(srv, login: str, disabled: bool = True) -> None:
    """Disable (or enable) an account behind the pages' back, as `kiosq server user disable` does."""
    from kiosq.queue.server import open_store, resolve_hall

    store = open_store(srv.data_dir, resolve_hall(srv.data_dir, None), srv.database, note=False)
    try:
        store.set_user_disabled(login, disabled)
    finally:
        store.close()


def sign_in(page, login: str, password: str = PASSWORD) -> None:
    """Fill in the sign-in form of the console or /admin and submit it."""
    page.fill("#login", login)
    page.fill("#password", password)
    page.click("#sign-in")


# -- the API, for setting up -------------------------------------------------------------


class Api:
    """A new connection per request: simple, and nothing is left open."""

    def __init__(self, srv) -> None:
        self.srv = srv

    def request(self, method: str, path: str, body=None, role: str | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=HTTP_TIMEOUT)
        try:
            hdrs = dict(headers or {})
            if role:
                hdrs["Authorization"] = f"Bearer {self.srv.tokens[role]}"
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                hdrs["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, raw
        finally:
            conn.close()

    def json(self, method: str, path: str, body=None, role: str | None = None, expect_status: int = 200):
        status, _headers, raw = self.request(method, path, body, role)
        assert status == expect_status, f"{method} {path}: {status} {raw[:300]!r}"
        return json.loads(raw)

    def issue(self, service: str) -> dict:
        status, _h, raw = self.request("POST", "/api/tickets", {"service": service}, "terminal",
                                       {"Idempotency-Key": str(uuid.uuid4())})
        assert status == 201, raw
        return json.loads(raw)

    def act(self, window: int, action: str, body=None, expect_status: int = 200) -> dict:
        return self.json("POST", f"/api/windows/{window}/{action}", body, "staff", expect_status)

    def call(self, window: int) -> tuple[str, float]:
        """call-next; returns the called number and the wall-clock time the answer arrived."""
        result = self.act(window, "call-next")
        return result["ticket"]["number"], time.time()

    def ticket(self, ticket_id: str) -> dict:
        return self.json("GET", f"/api/tickets/{ticket_id}")

    def window(self, number: int) -> dict:
        return next(w for w in self.json("GET", "/api/windows") if w["number"] == number)

    def waiting(self, service: str) -> int:
        return next(s["waiting"] for s in self.json("GET", "/api/services") if s["code"] == service)

    def drain(self, window: int, service: str) -> None:
        """Leave nothing waiting for `service` and nothing at `window` (tests share a server)."""
        for _ in range(200):
            if self.waiting(service) == 0:
                break
            self.act(window, "call-next")
        current = self.window(window)["current"]
        if current is not None:
            self.act(window, "finish")


# -- the browser -----------------------------------------------------------------------


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
def open_page(browser):
    """open_page(url, width=, height=) -> a page in a new context, with .errors collecting
    uncaught script errors. Contexts are closed at teardown."""
    contexts = []

    def open_(url: str | None = None, width: int = 1280, height: int = 800, **options):
        ctx = browser.new_context(viewport={"width": width, "height": height}, **options)
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(LIVE_MS)
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        # What the Content-Security-Policy blocked is a console error, not a page error.
        page.on("console", lambda msg: page.errors.append(msg.text) if "Content Security Policy" in msg.text else None)
        if url:
            page.goto(url, wait_until="load")
        return page

    yield open_
    for ctx in contexts:
        ctx.close()


def eventually(check, timeout: float = LIVE_MS / 1000, what: str = "the condition"):
    """Poll `check()` until it returns a truthy value (bounded); returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s (last: {value!r})")
        time.sleep(0.05)  # polling interval of a bounded wait


def no_script_errors(page) -> None:
    assert page.errors == [], f"uncaught errors on {page.url}: {page.errors}"


def connected(page, timeout: int = LIVE_MS) -> None:
    expect(page.locator("body")).to_have_attribute("data-connected", "true", timeout=timeout)


# Records every text #current-number shows, with the time (ms since the epoch) it appeared.
WATCH_CURRENT = """() => {
  const el = document.getElementById("current-number");
  window.__shown = [{text: el.textContent, at: Date.now()}];
  new MutationObserver(() => {
    const last = window.__shown[window.__shown.length - 1];
    if (last.text !== el.textContent) window.__shown.push({text: el.textContent, at: Date.now()});
  }).observe(el, {childList: true, characterData: true, subtree: true});
}"""


def shown(page) -> list[dict]:
    return page.evaluate("window.__shown")


def hall_page(open_page, srv, query: str = "", **size):
    page = open_page(f"{srv.url}/display/hall{query}", **size)
    connected(page)
    expect(page.locator("#windows .win")).to_have_count(8)
    page.evaluate(WATCH_CURRENT)
    return page


# -- 1. hall display ---------------------------------------------------------------------


def test_hall_display_shows_calls_counts_notice_and_language(shared_server, open_page):
    api = Api(shared_server)
    for w, s in ((1, "A"), (3, "B"), (5, "C"), (7, "E")):
        api.drain(w, s)
    page = hall_page(open_page, shared_server, "?hold=1")
    svc_a = page.locator('#services .svc[data-service="A"] .waiting')
    expect(svc_a).to_have_text(str(api.waiting("A")))

    ticket = api.issue("A")
    expect(svc_a).to_have_text(str(api.waiting("A")))  # the issue is seen live
    assert api.waiting("A") >= 1

    number, answered = api.call(1)
    assert number == ticket["number"]
    expect(page.locator("#current-number")).to_have_text(number)
    appeared = next(s["at"] for s in shown(page) if s["text"] == number) / 1000
    assert appeared - answered < 1.0, f"the call took {appeared - answered:.3f} s to appear on the hall display"
    expect(page.locator("#current-window")).to_contain_text("1")
    expect(page.locator('#windows .win[data-window="1"] .number')).to_have_text(number)
    expect(page.locator(f'#recent li[data-number="{number}"]')).to_have_count(1)
    expect(svc_a).to_have_text(str(api.waiting("A")))

    # Three calls together: each holds the big panel in turn, none is dropped.
    tickets = [api.issue(s) for s in ("B", "C", "E")]
    calls = [api.call(w)[0] for w in (3, 5, 7)]
    assert calls == [t["number"] for t in tickets]
    expect(page.locator("#current-number")).to_have_text(calls[-1], timeout=3 * 1000 + LIVE_MS)
    seen = [s for s in shown(page) if s["text"] in calls]
    assert [s["text"] for s in seen] == calls, f"the hall display showed {shown(page)} for calls {calls}"
    held = [(b["at"] - a["at"]) / 1000 for a, b in zip(seen, seen[1:])]
    assert all(h >= 0.9 for h in held), f"each call should hold the panel ~1 s (?hold=1), held {held}"
    for n in calls:
        expect(page.locator(f'#recent li[data-number="{n}"]')).to_have_count(1)
    assert page.locator("#recent li").first.get_attribute("data-number") == calls[-1]
    # A recall shows the number again and moves it to the top of the list.
    api.act(3, "recall")
    expect(page.locator("#current-number")).to_have_text(calls[0], timeout=LIVE_MS)
    expect(page.locator("#recent li").first).to_have_attribute("data-number", calls[0])
    expect(page.locator(f'#recent li[data-number="{calls[0]}"]')).to_have_count(1)
    for w, n in zip((3, 5, 7), calls):
        expect(page.locator(f'#windows .win[data-window="{w}"] .number')).to_have_text(n)
    for s in ("B", "C", "E"):
        expect(page.locator(f'#services .svc[data-service="{s}"] .waiting')).to_have_text(str(api.waiting(s)))

    # The notice, live.
    notice = "今日16:00后暂停办理出入境业务"
    api.json("PUT", "/api/hall/notice", {"notice": notice}, "admin")
    expect(page.locator("#notice")).to_have_text(notice)
    expect(page.locator("#notice")).to_be_visible()
    api.json("PUT", "/api/hall/notice", {"notice": ""}, "admin")
    expect(page.locator("#notice")).to_be_hidden()

    # Language: English and back.
    expect(page.locator("#recent-box h2")).to_have_text("最近呼叫")
    page.click("#lang-toggle")
    expect(page.locator("#recent-box h2")).to_have_text("Recent calls")
    expect(page.locator("#services-box h2")).to_have_text("Waiting")
    expect(page.locator("#lang-toggle")).to_have_text("中文")
    expect(page.locator("#current-window")).to_have_text("→ Window 3")
    expect(page.locator('#windows .win[data-window="1"] .name')).to_have_text("Window 1")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.click("#lang-toggle")
    expect(page.locator("#recent-box h2")).to_have_text("最近呼叫")
    expect(page.locator("#current-window")).to_contain_text("3 号窗口")
    expect(page.locator("#lang-toggle")).to_have_text("English")
    no_script_errors(page)
    for w in (1, 3, 5, 7):
        api.act(w, "finish")


# -- 2. recovery -------------------------------------------------------------------------


def test_hall_display_recovers_from_a_server_restart(hall_server, open_page):
    srv = hall_server()
    api = Api(srv)
    page = hall_page(open_page, srv, "?hold=0")
    streams: list[dict] = []
    page.on("request", lambda r: "/api/events" in r.url and streams.append(r.all_headers()))

    api.issue("A")
    first, _ = api.call(1)
    expect(page.locator("#current-number")).to_have_text(first)

    # Down and up again: the page says it lost the server, then shows new calls.
    srv.stop()
    expect(page.locator("body")).to_have_attribute("data-connected", "false")
    expect(page.locator("#status-line")).to_be_visible()
    srv.start()
    connected(page, timeout=10_000)
    expect(page.locator("#status-line")).to_be_hidden()
    api.issue("A")
    api.issue("B")
    a, b = api.call(1)[0], api.call(3)[0]
    expect(page.locator("#current-number")).to_have_text(b)
    expect(page.locator('#windows .win[data-window="1"] .number')).to_have_text(a)
    expect(page.locator('#windows .win[data-window="3"] .number')).to_have_text(b)
    for n in (a, b):
        expect(page.locator(f'#recent li[data-number="{n}"]')).to_have_count(1)

    # A call made while the page is cut off is learnt on reconnection (Last-Event-ID).
    # The stream is held off until the call is made, so the page cannot have seen it live.
    last_seen = api.json("GET", "/api/health")["last_event_id"]
    page.route("**/api/events*", lambda route: route.abort())
    srv.stop()
    expect(page.locator("body")).to_have_attribute("data-connected", "false")
    srv.start()
    api.issue("C")
    missed, _ = api.call(5)
    assert page.locator("body").get_attribute("data-connected") == "false"
    assert page.locator("#current-number").text_content() != missed
    before = len(streams)
    page.unroute("**/api/events*")
    expect(page.locator("#current-number")).to_have_text(missed, timeout=10_000)
    expect(page.locator('#windows .win[data-window="5"] .number')).to_have_text(missed)
    expect(page.locator(f'#recent li[data-number="{missed}"]')).to_have_count(1)
    connected(page)
    resumed = [h.get("last-event-id") for h in streams[before:]]
    assert str(last_seen) in resumed, f"reconnections sent Last-Event-ID {resumed}, expected {last_seen}"
    # Nothing is shown twice after the replay.
    numbers = [li.get_attribute("data-number") for li in page.locator("#recent li").all()]
    assert len(numbers) == len(set(numbers)), numbers
    no_script_errors(page)


# -- 3. window display -------------------------------------------------------------------


def test_window_display_shows_its_number_then_a_dash_then_paused(shared_server, open_page):
    api = Api(shared_server)
    api.drain(1, "A")
    page = open_page(f"{shared_server.url}/display/window/1")
    connected(page)
    number_box = page.locator("#number")
    expect(number_box).to_have_text("—")
    expect(page.locator("#window-name")).to_have_text("1号窗口")

    api.issue("A")
    number, _ = api.call(1)
    expect(number_box).to_have_text(number)
    api.act(1, "start")
    expect(number_box).to_have_text(number)
    api.act(1, "finish")
    expect(number_box).to_have_text("—")

    # Calls at other windows do not show here.
    api.issue("B")
    other, _ = api.call(3)
    api.act(3, "finish")
    api.act(1, "pause")
    expect(page.locator("#state")).to_have_text("暂停服务")
    assert number_box.text_content() == "—", f"window 1's display showed {other} called at window 3"
    api.act(1, "resume")
    expect(page.locator("#state")).to_have_text("")
    no_script_errors(page)


# -- 4. staff console --------------------------------------------------------------------


def test_staff_console_signs_in_and_drives_the_window(shared_server, open_page):
    api = Api(shared_server)
    api.drain(1, "A")
    page = open_page(f"{shared_server.url}/window/1")
    current = page.locator("#current-number")
    message = page.locator("#message")

    add_user(shared_server, "zhangmin", "staff", range(1, 9), "张敏")
    add_user(shared_server, "lisi", "staff", (2,), "李四")

    # A wrong password is refused with the server's words; a clerk of window 2 is refused here.
    sign_in(page, "zhangmin", "not-the-password")
    expect(page.locator("#signin-message")).to_contain_text("wrong login or password")
    expect(page.locator("#work")).to_be_hidden()
    sign_in(page, "lisi")
    expect(page.locator("#signin-message")).to_have_text(
        "李四（lisi）可在 2 号窗口办理，不能在本窗口（1 号）：请在自己的窗口登录，或换一个账号")
    expect(page.locator("#work")).to_be_hidden()

    sign_in(page, "zhangmin")
    expect(page.locator("#work")).to_be_visible()
    expect(page.locator("#signin-message")).to_have_text("")
    expect(page.locator("#who")).to_have_text("已登录：张敏（zhangmin）· 工作人员")
    connected(page)

    # Call next: the page and the server agree.
    t1 = api.issue("A")
    page.click('[data-action="call-next"]')
    expect(current).to_have_text(t1["number"])
    assert api.window(1)["current"]["number"] == t1["number"]
    assert api.ticket(t1["id"])["status"] == "called"

    # F2 recalls.
    page.locator("body").press("F2")
    eventually(lambda: api.ticket(t1["id"])["recalls"] == 1, what="a recall after F2")
    expect(message).to_contain_text(t1["number"])
    expect(message).to_have_class("ok")

    # Start, finish.
    page.click('[data-action="start"]')
    eventually(lambda: api.ticket(t1["id"])["status"] == "serving", what="start")
    page.click('[data-action="finish"]')
    expect(current).to_have_text("—")
    assert api.ticket(t1["id"])["status"] == "done"
    assert api.window(1)["current"] is None

    # Paused, call next is refused with the server's error text.
    page.click('[data-action="pause"]')
    expect(page.locator("#window-state")).to_have_text("已暂停")
    assert api.window(1)["state"] == "paused"
    page.click('[data-action="call-next"]')
    status, _h, raw = api.request("POST", "/api/windows/1/call-next", role="staff")
    assert status == 409
    expect(message).to_have_text(json.loads(raw)["detail"])
    expect(message).to_have_class("error")
    page.click('[data-action="resume"]')
    expect(page.locator("#window-state")).to_have_text("服务中")
    expect(message).to_have_class("ok")
    assert api.window(1)["state"] == "open"

    # Transfer the current ticket to service B.
    t2 = api.issue("A")
    page.click('[data-action="call-next"]')
    expect(current).to_have_text(t2["number"])
    page.select_option("#transfer-service", "B")
    page.click("#transfer")
    expect(current).to_have_text("—")
    moved = api.ticket(t2["id"])
    assert (moved["service"], moved["status"], moved["transfers"]) == ("B", "waiting", 1)
    api.json("POST", f"/api/tickets/{t2['id']}/cancel", role="terminal")

    # A no-show (F6), reinstated by number.
    t3 = api.issue("A")
    page.click('[data-action="call-next"]')
    expect(current).to_have_text(t3["number"])
    page.locator("body").press("F6")
    expect(current).to_have_text("—")
    assert api.ticket(t3["id"])["status"] == "no_show"
    page.fill("#reinstate-number", t3["number"])
    page.click("#reinstate")
    eventually(lambda: api.ticket(t3["id"])["status"] == "waiting", what="reinstate")
    expect(message).to_have_class("ok")
    expect(page.locator('#waiting .svc[data-service="A"] .waiting')).to_have_text(str(api.waiting("A")))
    api.json("POST", f"/api/tickets/{t3['id']}/cancel", role="terminal")
    no_script_errors(page)


# -- 5. follow page ----------------------------------------------------------------------


def test_follow_page_counts_down_and_shows_the_call(shared_server, open_page):
    api = Api(shared_server)
    api.drain(6, "D")
    ahead = [api.issue("D"), api.issue("D")]
    me = api.issue("D")
    assert me["ahead"] == 2
    page = open_page(f"{shared_server.url}/t/{me['id']}", width=390, height=844)
    connected(page)
    expect(page.locator("#number")).to_have_text(me["number"])
    expect(page.locator("#position")).to_have_text("2")
    expect(page.locator("#eta")).to_have_text(str(me["eta_minutes"]))
    expect(page.locator("#status")).to_have_text("等候中")
    expect(page.locator("#called")).to_be_hidden()

    first, _ = api.call(6)
    assert first == ahead[0]["number"]
    expect(page.locator("#position")).to_have_text("1")
    expect(page.locator("#eta")).to_have_text(str(api.ticket(me["id"])["eta_minutes"]))
    api.act(6, "start")
    api.act(6, "finish")
    second, _ = api.call(6)
    assert second == ahead[1]["number"]
    expect(page.locator("#position")).to_have_text("0")
    api.act(6, "finish")

    mine, _ = api.call(6)
    assert mine == me["number"]
    expect(page.locator("#called")).to_be_visible()
    expect(page.locator("#called")).to_have_text("请到 6 号窗口")
    expect(page.locator("#status")).to_have_text("现在轮到您了")
    expect(page.locator("#waiting-figures")).to_be_hidden()
    api.act(6, "finish")
    expect(page.locator("#status")).to_have_text("已办结，谢谢")
    expect(page.locator("#called")).to_be_hidden()
    no_script_errors(page)

    unknown = open_page(f"{shared_server.url}/t/999999-AAAAAAAAAAAAAAAA", width=390, height=844)
    expect(unknown.locator("#status")).to_have_text("找不到此号码，请检查链接或小票上的二维码")
    expect(unknown.locator("#waiting-figures")).to_be_hidden()
    unknown.click("#lang-toggle")
    expect(unknown.locator("[data-i18n='follow.number']")).to_have_text("Your number")
    no_script_errors(unknown)


# -- 6. voice ----------------------------------------------------------------------------

PLAY_FOUR = """() => {
  window.__plays = [];
  const play = (item) => new Promise((resolve) => {
    const start = performance.now();
    setTimeout(() => {
      window.__plays.push({number: item.number, window: item.window, start, end: performance.now()});
      resolve("ended");
    }, 200);
  });
  const queue = new window.KiosqAnnounce.AnnounceQueue(play);
  for (const [number, w] of [["A001", 1], ["B001", 3], ["C001", 5], ["A001", 1]]) queue.push({number, window: w});
}"""


def test_announcements_play_in_turn_and_the_hall_display_asks_for_them(shared_server, open_page):
    api = Api(shared_server)
    page = hall_page(open_page, shared_server)
    asked: list[str] = []
    page.on("request", lambda r: "/api/announcements" in r.url and asked.append(r.url))
    assert page.evaluate("typeof window.KiosqAnnounce?.AnnounceQueue") == "function"

    page.evaluate(PLAY_FOUR)
    with contextlib.suppress(sync_api.TimeoutError):  # the assertion below says what was played
        # Polled with evaluate: wait_for_function's predicate is eval'd in the page, which its CSP forbids.
        deadline = time.monotonic() + 5
        while page.evaluate("window.__plays.length") < 4 and time.monotonic() < deadline:
            page.wait_for_timeout(50)
    plays = page.evaluate("window.__plays")
    assert [p["number"] for p in plays] == ["A001", "B001", "C001", "A001"]
    for before, after in zip(plays, plays[1:]):
        assert after["start"] >= before["end"] - 1, f"announcements overlap: {plays}"

    # One announcement as a file.
    status, headers, wav = api.request("GET", "/api/announcements?number=A001&window=3")
    assert status == 200, wav[:300]
    assert headers["content-type"] == "audio/wav"
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    with wave.open(io.BytesIO(wav)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert 1.5 < seconds < 15, seconds
    assert 20_000 < len(wav) < 5_000_000

    # A call makes the display fetch its announcement (the kiosk flag allows autoplay).
    expect(page.locator("#sound-enable")).to_be_hidden()
    api.issue("E")
    try:
        with page.expect_request(lambda r: "/api/announcements" in r.url, timeout=LIVE_MS) as request:
            number, _ = api.call(7)
    except sync_api.TimeoutError as exc:
        raise AssertionError(f"the hall display did not ask for the announcement of the call (asked: {asked})") from exc
    expect(page.locator("#current-number")).to_have_text(number)
    query = parse_qs(urlsplit(request.value.url).query)
    assert query == {"number": [number], "window": ["7"]}, request.value.url
    response = request.value.response()
    assert response is not None and response.status in (200, 206)  # media elements ask for ranges
    assert response.header_value("content-type") == "audio/wav"
    api.act(7, "finish")
    no_script_errors(page)


# -- 7. screenshots and layout ---------------------------------------------------------


def artifacts() -> Path:
    folder = Path(os.environ.get("KIOSQ_ARTIFACTS") or REPO / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def settle(page) -> None:
    """Fonts loaded, and no animation half-way."""
    page.evaluate("document.fonts.ready.then(() => true)")
    page.evaluate("document.querySelectorAll('.flash').forEach((e) => e.classList.remove('flash'))")


@pytest.fixture(scope="module")
def busy_hall(shared_server):
    """The shared hall in the middle of a busy morning: queues at every service, a call at
    every window, some being served, one window paused, a notice. Returns what the pages
    should show: the last call, a waiting ticket and a called one."""
    api = Api(shared_server)
    for w in range(1, 9):
        if api.window(w)["state"] == "paused":
            api.act(w, "resume")
    issued = {s: [api.issue(s) for _ in range(n)] for s, n in
              {"A": 6, "B": 4, "C": 5, "D": 3, "E": 2, "F": 2}.items()}
    for w in (6, 3, 5, 7, 2, 4):  # window 6 calls D first (service_order)
        api.call(w)
    for w in (3, 5):
        api.act(w, "start")
    api.act(5, "finish")
    api.call(5)
    api.act(8, "pause")
    api.json("PUT", "/api/hall/notice", {"notice": "请保管好随身物品；16:30 后停止取号。"}, "admin")
    last = api.call(1)[0]
    called = api.window(6)["current"]
    called_id = next(t["id"] for t in issued["D"] if t["number"] == called["number"])
    waiting = next(t for t in reversed(issued["A"]) if api.ticket(t["id"])["status"] == "waiting")
    return {"last": last, "waiting": waiting, "called_id": called_id}


HALL_SIZES = {"hall-landscape": (1920, 1080), "hall-portrait": (1080, 1920)}


def test_screenshots_of_every_page_in_both_languages(shared_server, busy_hall, open_page):
    srv, last, out = shared_server, busy_hall["last"], artifacts()
    mobile = dict(width=390, height=844, device_scale_factor=2, is_mobile=True, has_touch=True)
    saved = []

    def shoot(page, name: str, full_page: bool = False) -> None:
        settle(page)
        saved.append(out / f"{name}.png")
        page.screenshot(path=saved[-1], full_page=full_page)
        no_script_errors(page)

    for lang in ("zh", "en"):
        for name, (w, h) in HALL_SIZES.items():
            page = open_page(f"{srv.url}/display/hall?lang={lang}", width=w, height=h)
            connected(page)
            expect(page.locator("#current-number")).to_have_text(last)
            expect(page.locator("#services .svc")).to_have_count(6)
            shoot(page, f"{name}-{lang}")

        page = open_page(f"{srv.url}/display/window/1?lang={lang}", width=1920, height=1080)
        expect(page.locator("#number")).to_have_text(last)
        shoot(page, f"window-display-{lang}")

        page = open_page(f"{srv.url}/window/1?lang={lang}", width=1280, height=800)
        sign_in(page, add_user(srv, "zhangmin", "staff", range(1, 9), "张敏"))
        expect(page.locator("#current-number")).to_have_text(last)
        expect(page.locator("#waiting .svc")).to_have_count(1)
        shoot(page, f"console-{lang}", full_page=True)

        page = open_page(f"{srv.url}/t/{busy_hall['waiting']['id']}?lang={lang}", **mobile)
        expect(page.locator("#number")).to_have_text(busy_hall["waiting"]["number"])
        expect(page.locator("#position")).not_to_have_text("—")
        shoot(page, f"follow-{lang}", full_page=True)

        page = open_page(f"{srv.url}/t/{busy_hall['called_id']}?lang={lang}", **mobile)
        expect(page.locator("#called")).to_be_visible()
        shoot(page, f"follow-called-{lang}", full_page=True)

        page = open_page(f"{srv.url}/admin?lang={lang}", width=1400, height=1000)
        sign_in(page, add_user(srv, "manager", "admin", name="王经理"))
        expect(page.locator("#services-table tr")).to_have_count(7)  # a header and six services
        expect(page.locator("#chart svg")).to_be_visible()
        shoot(page, f"admin-{lang}", full_page=True)

    for path in saved:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000, path


# What does not fit on a hall display: content larger than its box, boxes off the screen,
# and names broken into more than 3 lines (a column of single Hanzi).
LAYOUT_PROBLEMS = """() => {
  const problems = [];
  const check = (sel) => document.querySelectorAll(sel).forEach((el, i) => {
    const name = sel + "#" + i + " (" + el.textContent.replace(/\\s+/g, " ").trim().slice(0, 24) + ")";
    const r = el.getBoundingClientRect();
    if (el.scrollHeight > el.clientHeight + 2 || el.scrollWidth > el.clientWidth + 2)
      problems.push(`${name}: content ${el.scrollWidth}x${el.scrollHeight} px`
                    + ` in a box of ${el.clientWidth}x${el.clientHeight}`);
    if (r.bottom > innerHeight + 1 || r.right > innerWidth + 1 || r.top < -1 || r.left < -1)
      problems.push(`${name}: off the screen at ${Math.round(r.left)},${Math.round(r.top)}`
                    + `-${Math.round(r.right)},${Math.round(r.bottom)}`);
  });
  ["header", "#current", "#recent-box", "#windows-box", "#services-box", "#windows .win", "#services .svc",
   "#notice"].forEach(check);
  document.querySelectorAll("#services .svc .name, #windows .win .name").forEach((el) => {
    const size = parseFloat(getComputedStyle(el).fontSize);
    const lines = Math.round(el.getBoundingClientRect().height / (size * 1.2));
    if (lines > 3) problems.push(`"${el.textContent}" is broken into ${lines} lines`);
  });
  return problems;
}"""


def test_hall_display_fits_landscape_and_portrait_screens(shared_server, busy_hall, open_page):
    """A full day's display (8 recent calls, 8 windows, 6 services, a notice) fits on a
    1920x1080 and a 1080x1920 screen in both languages."""
    problems = {}
    for lang in ("zh", "en"):
        for name, (w, h) in HALL_SIZES.items():
            page = open_page(f"{shared_server.url}/display/hall?lang={lang}", width=w, height=h)
            connected(page)
            expect(page.locator("#current-number")).to_have_text(busy_hall["last"])
            expect(page.locator("#recent li")).to_have_count(8)
            settle(page)
            found = page.evaluate(LAYOUT_PROBLEMS)
            if found:
                problems[f"{name}-{lang}"] = found
    if problems:
        pytest.fail("the hall display does not fit:\n" + "\n".join(
            f"  {screen}: {p}" for screen, found in problems.items() for p in found), pytrace=False)


@pytest.mark.parametrize("screen_zone", ["Etc/GMT+12", "Pacific/Kiritimati"])
def test_the_hall_clock_shows_the_halls_time_whatever_zone_the_screen_is_in(shared_server, open_page, screen_zone):
    """A display PC left on another time zone (UTC-12 or UTC+14 here, hours from the hall's)
    still shows the hall's own time: the clock follows the offset of the server's `now`."""
    page = open_page(f"{shared_server.url}/display/hall", timezone_id=screen_zone)
    connected(page)
    hall_now = datetime.fromisoformat(Api(shared_server).json("GET", "/api/display")["now"])
    assert page.evaluate("-new Date().getTimezoneOffset()") * 60 != hall_now.utcoffset().total_seconds()
    text = page.locator("#clock").inner_text()
    shown = hall_now.replace(hour=int(text[:2]), minute=int(text[3:5]), second=int(text[6:8]))
    apart = abs((shown - hall_now).total_seconds())
    assert min(apart, 86400 - apart) < 5, f"the clock shows {text}; the hall's time is {hall_now:%H:%M:%S}"
