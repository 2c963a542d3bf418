"""The event streams by audience, over real HTTP to an in-process uvicorn on the store's
injected clock: the public /api/events (today's tickets, windows and notice, no names),
/api/staff/events (what the caller's role may see), /api/tickets/{id}/events (one
ticket and its place in line), and issue 17's Done-when: no GET route that needs no
credentials, streams included, shows an applicant's tracking number, item or name."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import requests
import uvicorn

from kiosq.content import bundle
from kiosq.content.catalog import SAMPLE, load_files
from kiosq.queue.api import create_app
from kiosq.queue.pages import PAGES
from kiosq.queue.rollout import Rollout
from kiosq.queue.store import Store, StoredEvent, Unavailable

TIMEOUT = 5.0
CHECK = 0.5  # how often the live server's staff streams check their caller
ID1, NAME1, PHONE1 = "999901199001010010", "测试一", "13812345678"  # made up (area 9999)
ID2, NAME2, PHONE2 = "999902198506150029", "测试二", "13987654321"
PUBLIC = re.compile(r"^(ticket\.|window\.|hall\.notice$)")


@dataclass
class Live:
    port: int
    tokens: dict[str, str]
    app: object

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post(self, path: str, role: str | None, body: dict | None = None, key: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        if key:
            headers["Idempotency-Key"] = key
        return requests.post(self.url + path, json=body, headers=headers, timeout=TIMEOUT)

    def put(self, path: str, role: str, body: dict) -> requests.Response:
        return requests.put(self.url + path, json=body, headers={"Authorization": f"Bearer {self.tokens[role]}"},
                            timeout=TIMEOUT)

    def issue(self, service: str = "A") -> dict:
        r = self.post("/api/tickets", "terminal", {"service": service}, key=f"k-{time.monotonic_ns()}")
        assert r.status_code == 201, r.text
        return r.json()

    def act(self, window: int, action: str, role: str = "admin") -> dict:
        r = self.post(f"/api/windows/{window}/{action}", role)
        assert r.status_code == 200, r.text
        return r.json()


@contextmanager
def serving(store: Store) -> Iterator[Live]:
    """The API (heartbeat 0.2 s: a quiet stream says so fast; the staff stream checks its
    caller every 0.5 s) served by uvicorn in a thread on 127.0.0.1, with its tokens made
    before it starts."""
    tokens = {"terminal": store.create_token("terminal", "T01"),
              "staff": store.create_token("staff", "张敏", (3,)),  # window 3: service B only
              "staff_c": store.create_token("staff", "王芳", (4,)),  # services C, D
              "duty": store.create_token("supervisor", "值班长"),  # no windows: the whole hall
              "admin": store.create_token("admin", "boss")}
    app = create_app(store, heartbeat_seconds=0.2, caller_check_seconds=CHECK)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", loop="asyncio"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield Live(port, tokens, app)
    finally:
        app.state.notifier.close()
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive()


@pytest.fixture
def live(store):
    with serving(store) as server:
        yield server


@dataclass
class Sse:
    id: int | None
    event: str
    data: dict


@dataclass
class Stream:
    """One SSE connection, read block by block with every read bounded."""

    port: int
    path: str
    headers: dict = field(default_factory=dict)
    status: int = 0
    ended: bool = False

    def __post_init__(self) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        self.conn.request("GET", self.path, headers={"Accept": "text/event-stream", **self.headers})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        if self.status == 200:
            assert self.block().get("comment"), "a stream opens with a comment"

    def block(self) -> dict:
        """The next block: {'comment': ...} or {'id', 'event', 'data'}; {} at the end."""
        out: dict = {}
        while True:
            line = self.resp.readline()
            if not line:
                self.ended = True
                return out
            text = line.decode("utf-8").rstrip("\r\n")
            if not text:
                if out:
                    return out
                continue
            name, _, value = text.partition(":")
            out[name or "comment"] = value.strip()

    def until_quiet(self) -> list[Sse]:
        """The events up to the first heartbeat (the replay is over and nothing happens) or the end."""
        events: list[Sse] = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            b = self.block()
            if not b or b.get("comment") == "ping":
                return events
            if "event" in b:
                events.append(Sse(int(b["id"]) if "id" in b else None, b["event"], json.loads(b["data"])))
        raise AssertionError(f"the stream never went quiet: {events}")

    def next_event(self) -> Sse:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            b = self.block()
            if not b:
                raise EOFError("the stream ended")
            if "event" in b:
                return Sse(int(b["id"]) if "id" in b else None, b["event"], json.loads(b["data"]))
        raise AssertionError("no event")

    def body(self) -> dict:
        return json.loads(self.resp.read())

    def close(self) -> None:
        self.conn.close()


def application(item: str = "GA-SFZ-002", id_number: str = ID1, name: str = NAME1, phone: str = PHONE1) -> dict:
    values = {
        "GA-SFZ-002": {"applicant_name": name, "id_number": id_number, "phone": phone, "reason": "expired",
                       "delivery": "window", "promise": True},
        "RS-SY-001": {"applicant_name": name, "id_number": id_number, "phone": phone, "last_employer": "示例公司",
                      "separation_date": "2026-10-31", "separation_reason": "contract_ended", "job_seeking": True,
                      "promise": True},
    }[item]
    return {"item": item, "applicant": {"id_number": id_number, "name": name, "phone": phone, "source": "card"},
            "values": values}


def file(live: Live, key: str, **kwargs) -> dict:
    r = live.post("/api/applications", "terminal", application(**kwargs), key=key)
    assert r.status_code == 201, r.text
    return r.json()


def enroll_a_terminal(live: Live, terminal: str) -> None:
    code = live.post("/api/terminals/enroll-codes", "admin", {"terminal": terminal})
    assert code.status_code == 201, code.text
    assert requests.post(live.url + "/api/terminals/enroll", json={"code": code.json()["code"]},
                         timeout=TIMEOUT).status_code == 201


def replay(live: Live, path: str, headers: dict | None = None) -> list[Sse]:
    stream = Stream(live.port, path, headers or {})
    try:
        assert stream.status == 200, stream.resp.read(300)
        return stream.until_quiet()
    finally:
        stream.close()


def all_keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in all_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in all_keys(v)}
    return set()


# -- the public stream ---------------------------------------------------------------------


def test_the_public_replay_is_todays_tickets_windows_and_notice_without_names(live, store, clock):
    # Yesterday: a ticket left waiting (the rollover ends it), a call, a notice, an application.
    live.issue("A")
    live.issue("A")
    live.act(1, "call-next")
    assert live.put("/api/hall/notice", "admin", {"notice": "昨天的通知"}).status_code == 200
    file(live, "y-1")
    before_today = store.last_event_id()
    clock.advance(days=1)
    # Today: every kind of event, public or not.
    today = live.issue("A")
    live.act(1, "call-next")
    live.act(3, "pause")
    assert live.put("/api/hall/notice", "admin", {"notice": "今天的通知"}).status_code == 200
    number = file(live, "t-1")["tracking_no"]
    assert live.post(f"/api/applications/{number}/accept", "admin").status_code == 200
    enroll_a_terminal(live, "T05")
    store_types = {e.type for e in store.events_after(before_today)}
    assert {"application.submitted", "application.changed", "terminal.enrolled"} <= store_types

    for path, headers in (("/api/events?since=0", {}), ("/api/events", {"Last-Event-ID": "0"}),
                          (f"/api/events?since={before_today - 2}", {})):
        got = replay(live, path, headers)
        types = [e.event for e in got]
        assert types == ["ticket.issued", "ticket.called", "window.paused", "hall.notice"], (path, types)
        assert all(e.id > before_today for e in got)
        assert got[0].data["ticket"]["number"] == today["number"] and got[0].data["ticket"]["day"] == today["day"]
        assert got[3].data["notice"] == "今天的通知"
        assert "by" not in all_keys([e.data for e in got]) and "application" not in all_keys([e.data for e in got])
        assert all(e.data["ticket"]["day"] == today["day"] for e in got if e.data["ticket"])
        text = json.dumps([e.data for e in got], ensure_ascii=False)
        assert number not in text and "boss" not in text and "business day ended" not in text
    # A cursor inside today replays what follows it, and nothing twice.
    first_today = replay(live, "/api/events?since=0")[0].id
    assert [e.event for e in replay(live, f"/api/events?since={first_today}")] == [
        "ticket.called", "window.paused", "hall.notice"]


def test_a_public_stream_gets_live_changes_but_no_application_or_fleet_events(live):
    stream = Stream(live.port, "/api/events")
    try:
        file(live, "live-1")
        enroll_a_terminal(live, "T06")
        ticket = live.issue("B")
        first = stream.next_event()
        assert (first.event, first.data["ticket"]["number"]) == ("ticket.issued", ticket["number"])
    finally:
        stream.close()


def test_public_ticket_events_carry_their_services_waiting_count(live):
    """Issue 17: the displays' stream carries the services' waiting counts: each ticket
    event the count of its ticket's service as the change left it (every priority class)."""
    stream = Stream(live.port, "/api/events")
    try:
        live.issue("A")
        assert live.post("/api/tickets", "terminal", {"service": "A", "priority": "elderly"},
                         key="w-elderly").status_code == 201
        cancelled = live.issue("B")
        live.act(1, "call-next")  # an A
        live.act(3, "pause")
        assert live.post(f"/api/tickets/{cancelled['id']}/cancel", "terminal").status_code == 200
        live.act(2, "call-next")  # the other A
        assert live.post("/api/windows/2/transfer", "admin", {"service": "B"}).status_code == 200
        got = [stream.next_event() for _ in range(8)]
    finally:
        stream.close()
    assert [(e.event, e.data.get("waiting")) for e in got] == [
        ("ticket.issued", {"A": 1}), ("ticket.issued", {"A": 2}), ("ticket.issued", {"B": 1}),
        ("ticket.called", {"A": 1}), ("window.paused", None), ("ticket.cancelled", {"B": 0}),
        ("ticket.called", {"A": 0}), ("ticket.transferred", {"B": 1})]
    services = {s["code"]: s["waiting"] for s in requests.get(live.url + "/api/services", timeout=TIMEOUT).json()}
    assert services["A"] == 0 and services["B"] == 1  # as the last event of each said


# -- the staff stream -------------------------------------------------------------------------


@pytest.mark.parametrize("headers, status, error", [
    ({}, 401, "unauthorized"), ({"Authorization": "Bearer not-a-token"}, 401, "unauthorized"),
    ("terminal", 403, "forbidden")])
def test_the_staff_stream_refuses_the_public_and_terminals(live, headers, status, error):
    if headers == "terminal":
        headers = {"Authorization": f"Bearer {live.tokens['terminal']}"}
    stream = Stream(live.port, "/api/staff/events", headers)
    try:
        assert stream.status == status and stream.body()["error"] == error
    finally:
        stream.close()


def staff_replay(live: Live, role: str, cursor: int) -> list[Sse]:
    return replay(live, f"/api/staff/events?since={cursor}", {"Authorization": f"Bearer {live.tokens[role]}"})


def test_each_role_sees_on_the_staff_stream_what_it_may(live, store, tmp_path):
    first = Rollout(store.path.parent).publish_manifest(bundle.build(load_files(SAMPLE), tmp_path / "b1"))
    items = load_files(SAMPLE)
    items.append(items[0].model_copy(update={"code": "TEST-NEW-001", "name": "测试新事项"}))
    Rollout(store.path.parent).publish_manifest(bundle.build(items, tmp_path / "b2"))
    start = store.last_event_id()
    id_card = file(live, "s-1")["tracking_no"]  # GA-SFZ-002: service A
    jobless = file(live, "s-2", item="RS-SY-001", id_number=ID2, name=NAME2, phone=PHONE2)["tracking_no"]  # C
    enroll_a_terminal(live, "T07")
    assert live.post("/api/content/rollback", "admin").json()["published"]["version"] == first.version
    live.issue("B")

    def seen(role: str) -> tuple[list[str], set[str]]:
        got = staff_replay(live, role, start)
        return [e.event for e in got], {e.data["application"]["tracking_no"] for e in got if "application" in e.data}

    assert seen("admin") == (["application.submitted", "application.submitted", "terminal.enrolled",
                              "content.rolled_back", "ticket.issued"], {id_card, jobless})
    assert seen("duty") == (["application.submitted", "application.submitted", "ticket.issued"], {id_card, jobless})
    assert seen("staff_c") == (["application.submitted", "ticket.issued"], {jobless})
    assert seen("staff") == (["ticket.issued"], set())  # window 3 serves B: neither application
    admin = staff_replay(live, "admin", start)
    assert next(e for e in admin if e.event == "content.rolled_back").data["content"]["by"] == "boss"


def signed_in(live: Live, store, login: str = "zhangmin", role: str = "staff", windows: tuple[int, ...] = (4,)
              ) -> tuple[requests.Session, str]:
    """A person with an account, signed in: their session and its Cookie header."""
    store.create_user(login, "张敏", role, windows, "correct horse battery")
    session = requests.Session()
    r = session.post(live.url + "/api/session", json={"login": login, "password": "correct horse battery"},
                     timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return session, "kiosq_session=" + session.cookies["kiosq_session"]


def test_the_staff_stream_takes_the_session_cookie(live, store):
    _, cookie = signed_in(live, store)
    start = store.last_event_id()
    number = file(live, "c-1", item="RS-SY-001")["tracking_no"]  # service C: window 4's
    file(live, "c-2")  # service A: not window 4's
    got = replay(live, f"/api/staff/events?since={start}", {"Cookie": cookie})
    assert [(e.event, e.data["application"]["tracking_no"]) for e in got] == [("application.submitted", number)]


def rest_of(stream: Stream, seconds: float) -> list[Sse]:
    """The events until the stream ends; an AssertionError if it has not within `seconds`."""
    events: list[Sse] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        b = stream.block()
        if not b:
            return events
        if "event" in b:
            events.append(Sse(int(b["id"]), b["event"], json.loads(b["data"])))
    raise AssertionError(f"the stream is still open after {seconds} s: {events}")


@pytest.mark.parametrize("end", ["token revoked", "signed out", "account disabled", "session expired"])
def test_a_staff_stream_ends_once_its_caller_may_no_longer_see_it(live, store, clock, end):
    admin = {"Authorization": f"Bearer {live.tokens['admin']}"}
    if end == "token revoked":
        headers = {"Authorization": "Bearer " + store.create_token("staff", "desk-7", (4,))}
    else:
        session, cookie = signed_in(live, store)
        headers = {"Cookie": cookie}
    stream = Stream(live.port, "/api/staff/events", headers)
    try:
        assert stream.status == 200
        before = live.issue("C")
        assert stream.next_event().data["ticket"]["number"] == before["number"]  # live
        time.sleep(CHECK)  # a check of the caller passes: the stream goes on
        assert live.issue("C")["number"] == stream.next_event().data["ticket"]["number"]
        if end == "token revoked":
            r = requests.post(live.url + "/api/tokens/desk-7/revoke", headers=admin, timeout=TIMEOUT)
        elif end == "signed out":
            r = session.delete(live.url + "/api/session", headers={"Origin": live.url}, timeout=TIMEOUT)
        elif end == "account disabled":
            r = requests.patch(live.url + "/api/users/zhangmin", json={"disabled": True}, headers=admin,
                               timeout=TIMEOUT)
        else:
            clock.advance(minutes=store.hall.sessions.idle_minutes + 1)
        assert end == "session expired" or r.status_code == 200, r.text
        time.sleep(2 * CHECK)
        after = live.issue("C")
        rest = rest_of(stream, 3.0)
        assert stream.ended, end
        assert after["number"] not in {e.data["ticket"]["number"] for e in rest if e.data.get("ticket")}, end
    finally:
        stream.close()
    again = Stream(live.port, "/api/staff/events", headers)  # and it does not open again
    try:
        assert again.status == 401, end
    finally:
        again.close()


def test_a_staff_stream_follows_a_change_of_its_persons_role(live, store):
    _, cookie = signed_in(live, store, "lihua", "supervisor", ())  # no windows: every service's applications
    stream = Stream(live.port, "/api/staff/events", {"Cookie": cookie})
    try:
        number = file(live, "r-1", item="RS-SY-001")["tracking_no"]  # service C
        assert stream.next_event().data["application"]["tracking_no"] == number
        r = requests.patch(live.url + "/api/users/lihua", json={"role": "staff", "windows": [3]},  # service B only
                           headers={"Authorization": f"Bearer {live.tokens['admin']}"}, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        time.sleep(2 * CHECK)
        file(live, "r-2", item="RS-SY-001", id_number=ID2, name=NAME2, phone=PHONE2)
        ticket = live.issue("B")
        seen = stream.next_event()  # the application is not the window's any more
        assert seen.event == "ticket.issued" and seen.data["ticket"]["number"] == ticket["number"], seen
        assert not stream.ended
    finally:
        stream.close()


# -- one ticket's stream ------------------------------------------------------------------------


def test_a_ticket_stream_has_its_changes_and_place_in_line_and_nothing_of_others(live):
    ahead = [live.issue("A") for _ in range(2)]
    mine = live.issue("A")
    stream = Stream(live.port, f"/api/tickets/{mine['id']}/events")
    try:
        assert stream.status == 200
        opening = stream.next_event()
        assert (opening.event, opening.data["ahead"], opening.data["position"]) == ("ticket.position", 2, 3)
        assert opening.data["eta_minutes"] == mine["eta_minutes"]
        live.issue("B")  # another service: nothing for this ticket
        live.issue("A")  # behind it: nothing either
        assert live.act(1, "call-next")["ticket"]["number"] == ahead[0]["number"]
        moved = stream.next_event()
        assert (moved.event, moved.data["ahead"], moved.data["status"]) == ("ticket.position", 1, "waiting")
        live.act(2, "call-next")
        assert stream.next_event().data["ahead"] == 0
        live.act(1, "finish")
        assert live.act(1, "call-next")["ticket"]["number"] == mine["number"]
        called = stream.next_event()
        assert (called.event, called.data["ticket"]["number"], called.data["window"]) == ("ticket.called",
                                                                                           mine["number"], 1)
        position = stream.next_event()
        assert (position.event, position.data["status"], position.data["window"]) == ("ticket.position", "called", 1)
        live.act(1, "start")
        live.act(2, "finish")  # someone else's
        live.act(1, "finish")
        rest = stream.until_quiet()
        assert stream.ended, "the stream ends after the ticket is finished"
        assert [e.event for e in rest if e.event != "ticket.position"] == ["ticket.started", "ticket.finished"]
        assert (rest[-1].event, rest[-1].data["status"]) == ("ticket.position", "done")
        assert {e.data["ticket"]["number"] for e in rest if "ticket" in e.data} == {mine["number"]}
        assert "id" not in all_keys([e.data for e in rest])  # the ticket's id is the holder's secret
    finally:
        stream.close()
    # Reconnecting with the last id seen replays its last change, and the stream ends again.
    again = replay(live, f"/api/tickets/{mine['id']}/events", {"Last-Event-ID": str(called.id)})
    assert [e.event for e in again] == ["ticket.started", "ticket.finished", "ticket.position"]


def test_a_ticket_stream_of_an_unknown_id_is_404(live):
    live.issue("A")
    stream = Stream(live.port, "/api/tickets/1-abcdefghijklmnop/events")
    try:
        assert stream.status == 404 and stream.body()["error"] == "not_found"
    finally:
        stream.close()


def test_a_ticket_stream_ends_with_a_cancellation(live):
    mine = live.issue("D")
    stream = Stream(live.port, f"/api/tickets/{mine['id']}/events")
    try:
        assert stream.next_event().data["position"] == 1
        assert live.post(f"/api/tickets/{mine['id']}/cancel", "terminal").status_code == 200
        assert [e.event for e in stream.until_quiet()] == ["ticket.cancelled", "ticket.position"]
        assert stream.ended
    finally:
        stream.close()


# -- issue 17's Done-when ---------------------------------------------------------------------------


def public_gets(live: Live, values: dict[str, str], query: dict[str, str]) -> dict[str, tuple[int, str]]:
    """Every GET route of the app, called without credentials (from /openapi.json, so a
    new route is in, and the pages), its path parameters filled in from `values` and its
    required query parameters from `query`: path -> (status, body). Streams are read from
    the start of their replay (`since=0`) until it is over."""
    spec = requests.get(live.url + "/openapi.json", timeout=TIMEOUT).json()
    paths = [p for p, ops in spec["paths"].items() if "get" in ops] + list(PAGES)
    out = {}
    for template in paths:
        op = spec["paths"].get(template, {}).get("get", {})
        missing = set(re.findall(r"{(\w+)}", template)) - set(values)
        assert not missing, f"give {template}'s {missing} a real value"
        path = re.sub(r"{(\w+)}", lambda m: values[m.group(1)], template)
        required = {p["name"]: query[p["name"]] for p in op.get("parameters", [])
                    if p["in"] == "query" and p.get("required")}
        if required:
            path += "?" + "&".join(f"{k}={v}" for k, v in required.items())
        streaming = "text/event-stream" in op.get("responses", {}).get("200", {}).get("content", {})
        if streaming:
            stream = Stream(live.port, path + ("&" if "?" in path else "?") + "since=0")
            try:
                if stream.status == 200:
                    out[template] = (200, json.dumps([e.data for e in stream.until_quiet()], ensure_ascii=False))
                else:
                    out[template] = (stream.status, stream.resp.read().decode())
            finally:
                stream.close()
        else:
            r = requests.get(live.url + path, timeout=TIMEOUT)
            out[template] = (r.status_code, r.content.decode("utf-8", "replace"))
    return out


def test_no_public_endpoint_shows_an_applicants_tracking_number_item_or_name(live, store):
    ticket = live.issue("A")
    values = {"ticket_id": ticket["id"], "code": "RS-SY-001", "version": "1", "window": "1", "number": "none"}
    query = {"number": ticket["number"], "window": "1"}  # /api/announcements
    before = public_gets(live, values, query)  # what the public sees with no application in the hall
    filed = file(live, "dw-1", item="RS-SY-001", name="欧阳虚构")
    number, item_name = filed["tracking_no"], filed["item_name"]
    assert live.post(f"/api/applications/{number}/accept", "admin").status_code == 200
    assert live.post(f"/api/applications/{number}/reject", "staff_c", {"note": "材料不全"}).status_code == 200
    live.act(8, "call-next")
    values = {**values, "number": number}  # the routes of an application get its real number
    after = public_gets(live, values, query)
    assert set(after) >= {"/api/events", "/api/tickets/{ticket_id}/events", "/api/applications/{number}",
                          "/api/display", "/a/{number}", "/t/{ticket_id}"}
    for route, (status, text) in after.items():
        assert "欧阳虚构" not in text, (route, status)
        # The item's name is public in the catalog (/api/items): a route may show it only
        # as it did before the application was filed.
        assert item_name not in text or item_name in before.get(route, (0, ""))[1], (route, status)
        if "{number}" not in route:  # a route asked about the number may echo it in its refusal
            assert number not in text, (route, status)
        else:
            assert "RS-SY-001" not in text and filed["department"] not in text, (route, status, text)
    events = json.loads(after["/api/events"][1])
    assert any(e.get("ticket") for e in events)  # the replay was read, and it has the hall's calls


def test_the_shared_waiting_line_counts_ahead_as_each_ticket_does(store):
    """The line every phone reads (one query) says what Store.ahead says of each ticket."""
    for service, priority in [("A", "normal"), ("A", "elderly"), ("B", "normal"), ("A", "green"),
                              ("A", "normal"), ("B", "appointment"), ("A", "elderly")]:
        store.issue_ticket(service, priority)
    store.call_next(1)
    line = store.waiting_line()
    waiting = [t for t in store.tickets_of_day() if t.status == "waiting"]
    assert len(line) == len(waiting) == 6
    assert {t.id: (t.service, store.ahead(t)) for t in waiting} == line


class AwayOnce(Store):
    """A store whose event log the phones' wake-up task cannot read once, when `away` is
    set: the read raises what the store raises while its database restarts."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.away, self.failed = False, threading.Event()

    def events_with_tickets_after(self, event_id: int, limit: int = 500) -> list[StoredEvent]:
        if self.away and asyncio.current_task().get_name() == "kiosq-service-wakes":
            self.away = False
            self.failed.set()
            raise Unavailable("the test's database is restarting")
        return super().events_with_tickets_after(event_id, limit)


def test_the_phones_are_woken_again_after_the_event_log_could_not_be_read(tmp_path, hall, clock, database, caplog):
    store = AwayOnce.in_dir(tmp_path, hall, clock=clock, database=database)
    try:
        with serving(store) as live:
            mine = live.issue("A")
            stream = Stream(live.port, f"/api/tickets/{mine['id']}/events")
            try:
                assert stream.next_event().data["position"] == 1
                store.away = True
                live.issue("A")  # the commit wakes the task, whose read fails
                assert store.failed.wait(TIMEOUT)
                wakes = live.app.state.notifier.services
                woken = wakes.count("A")
                assert live.act(1, "call-next")["ticket"]["number"] == mine["number"]
                called = stream.next_event()
                assert (called.event, called.data["ticket"]["number"]) == ("ticket.called", mine["number"])
                # Woken by the task that read the commit, not only found by the stream's poll.
                assert wakes.count("A") > woken
            finally:
                stream.close()
    finally:
        store.close()
    said = [r.getMessage() for r in caplog.records if r.name == "kiosq.server" and r.levelno >= logging.WARNING]
    assert any("could not read the event log" in m and "restarting" in m for m in said), said
    assert not any(mine["number"] in m or mine["id"] in m for m in said), said


def test_a_ticket_stream_hears_of_a_transfer_into_its_service_and_a_paused_window(live):
    """A transfer names only the new service, a pause only the window: both still reach
    the phones whose place or estimate they change."""
    other = live.issue("A")
    mine = live.issue("B")
    stream = Stream(live.port, f"/api/tickets/{mine['id']}/events")
    try:
        assert stream.next_event().data["ahead"] == 0
        assert live.act(2, "call-next")["ticket"]["number"] == other["number"]  # window 2: A before B
        r = live.post("/api/windows/2/transfer", "admin", {"service": "B"})
        assert r.status_code == 200, r.text
        moved = stream.next_event()  # the transferred ticket keeps its place: ahead of this one
        assert (moved.event, moved.data["ahead"]) == ("ticket.position", 1)
        eta = moved.data["eta_minutes"]
        live.act(3, "pause")  # window 3 serves B only: fewer windows, a longer wait
        paused = stream.next_event()
        assert paused.event == "ticket.position" and paused.data["ahead"] == 1 and paused.data["eta_minutes"] > eta
    finally:
        stream.close()
