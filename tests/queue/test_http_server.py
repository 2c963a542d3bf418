"""The hall server over real HTTP: a `kiosq server` subprocess on 127.0.0.1.

Concurrent ticket issuing, durability across `kill -9`, idempotent retries over dropped
connections, bad input on the wire, and the event stream with Last-Event-ID replay across
reconnects and restarts. Fixtures are in tests/queue/conftest.py.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest

TIMEOUT = 10.0  # every socket operation is bounded by this


# -- a small keep-alive client ----------------------------------------------------------


@dataclass
class Resp:
    status: int
    headers: http.client.HTTPMessage
    raw: bytes

    @property
    def json(self):
        return json.loads(self.raw)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


class Api:
    """One keep-alive connection to the server (use one per thread)."""

    def __init__(self, srv, token: str | None = None, timeout: float = TIMEOUT) -> None:
        self.srv, self.token, self.timeout = srv, token, timeout
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=self.timeout)
            return self.conn, False
        return self.conn, True

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method: str, path: str, body=None, headers: dict | None = None,
                token: str | None | bool = True, retry_stale: bool = True) -> Resp:
        hdrs = dict(headers or {})
        tok = self.token if token is True else token
        if tok:
            hdrs["Authorization"] = f"Bearer {tok}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        conn, reused = self._connection()
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self.close()
            if reused and retry_stale:  # the server closed an idle keep-alive connection
                return self.request(method, path, body, headers, token, retry_stale=False)
            raise
        except BaseException:
            self.close()
            raise
        if resp.will_close:
            self.close()
        return Resp(resp.status, resp.headers, raw)

    def get(self, path: str, **kw) -> Resp:
        return self.request("GET", path, **kw)

    def post(self, path: str, body=None, **kw) -> Resp:
        return self.request("POST", path, body, **kw)

    def issue(self, service: str, key: str | None = None, **body) -> Resp:
        return self.post("/api/tickets", {"service": service, **body},
                         headers={"Idempotency-Key": key or str(uuid.uuid4())})


def services_of(srv) -> dict[str, str]:
    """service code -> number prefix, from GET /api/services."""
    api = Api(srv)
    try:
        r = api.get("/api/services")
    finally:
        api.close()
    assert r.status == 200, r.raw
    return {s["code"]: s["prefix"] for s in r.json}


def health(srv) -> dict:
    api = Api(srv)
    try:
        r = api.get("/api/health")
    finally:
        api.close()
    assert r.status == 200, r.raw
    return r.json


def counter(label: str, prefix: str) -> int:
    """'A012' -> 12, checking the prefix and the zero padding (at least 3 digits)."""
    m = re.fullmatch(re.escape(prefix) + r"(\d{3,})", label)
    assert m, f"ticket number {label!r} is not {prefix!r} + a zero-padded counter"
    return int(m.group(1))


def assert_no_duplicates_no_gaps(tickets: list[dict], prefixes: dict[str, str]) -> dict:
    """Per (business day, service): numbers are exactly 1..n; returns {(day, service): n}."""
    by_service: dict[tuple[str, str], list[int]] = defaultdict(list)
    for t in tickets:
        by_service[(t["day"], t["service"])].append(counter(t["number"], prefixes[t["service"]]))
    for key, numbers in by_service.items():
        dupes = sorted(n for n in set(numbers) if numbers.count(n) > 1)
        assert not dupes, f"{key}: numbers handed out twice: {dupes[:20]}"
        missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
        assert not missing, f"{key}: numbers missing (a gap): {missing[:20]}"
        assert sorted(numbers) == list(range(1, len(numbers) + 1))
    return {k: len(v) for k, v in by_service.items()}


def assert_error(r: Resp, status: int, code: str | None = None) -> dict:
    """A 4xx with {"error": code, "detail": text} as JSON."""
    assert r.status == status, f"expected {status}, got {r.status}: {r.raw[:300]!r}"
    assert 400 <= r.status < 500
    assert (r.header("Content-Type") or "").startswith("application/json"), r.header("Content-Type")
    body = r.json
    assert isinstance(body, dict) and set(body) >= {"error", "detail"}, body
    assert isinstance(body["error"], str) and body["error"], body
    assert isinstance(body["detail"], str) and body["detail"], body
    if code is not None:
        assert body["error"] == code, body
    return body


def run_threads(targets, timeout: float = 60.0) -> None:
    """Start threads, join them (bounded), re-raise the first exception any of them hit."""
    errors: list[BaseException] = []

    def wrap(fn):
        def run():
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
        return run

    threads = [threading.Thread(target=wrap(fn), daemon=True) for fn in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), f"client threads still running after {timeout} s"
    if errors:
        raise errors[0]


def business_day_and_waiting(api: Api) -> tuple[str, dict[str, int]]:
    """The server's business day and the waiting count per service, read together (again,
    should the day turn between the two reads)."""
    while True:
        day = api.get("/api/health").json["business_day"]
        waiting = {s["code"]: s["waiting"] for s in api.get("/api/services").json}
        if api.get("/api/health").json["business_day"] == day:
            return day, waiting


# -- 1. concurrency ---------------------------------------------------------------------


@pytest.mark.slow
def test_concurrent_issuing_numbers_every_ticket_once_without_gaps(hall_server):
    srv = hall_server()
    prefixes = services_of(srv)
    codes = sorted(prefixes)
    assert len(codes) >= 2
    threads, per_thread = 16, 200
    results: list[list[tuple[str, Resp]]] = [[] for _ in range(threads)]

    def client(tid: int):
        def run():
            api = Api(srv, srv.tokens["terminal"])
            try:
                for i in range(per_thread):
                    service = codes[(tid * per_thread + i) % len(codes)]
                    results[tid].append((service, api.issue(service)))
            finally:
                api.close()
        return run

    run_threads([client(t) for t in range(threads)], timeout=120)

    flat = [(svc, r) for rs in results for svc, r in rs]
    assert len(flat) == threads * per_thread
    bad = [(svc, r.status, r.raw[:200]) for svc, r in flat if r.status != 201]
    assert not bad, f"{len(bad)} of {len(flat)} requests were not 201, e.g. {bad[:5]}"
    tickets = [r.json for _, r in flat]
    assert all(t["service"] == svc for (svc, _), t in zip(flat, tickets))
    assert all(r.header("Idempotent-Replayed") is None for _, r in flat), "a fresh key was answered as a replay"
    assert len({t["id"] for t in tickets}) == len(tickets), "two requests got the same ticket id"
    counts = assert_no_duplicates_no_gaps(tickets, prefixes)
    assert sum(counts.values()) == threads * per_thread
    expected = defaultdict(int)
    for svc, _ in flat:
        expected[svc] += 1
    assert {svc: sum(n for (_d, s), n in counts.items() if s == svc) for svc in codes} == dict(expected)
    # Nobody is called yet, so everyone issued before a ticket is ahead of it: position == counter.
    for t in tickets:
        assert t["status"] == "waiting"
        assert t["position"] == counter(t["number"], prefixes[t["service"]]), t

    # Waiting now: the tickets of the server's business day (should the hall's rollover hour
    # have passed during the run, the earlier day's tickets were cancelled by it).
    api = Api(srv)
    try:
        day, waiting = business_day_and_waiting(api)
    finally:
        api.close()
    of_day = Counter(t["service"] for t in tickets if t["day"] == day)
    assert waiting == {code: of_day[code] for code in waiting}


# -- 2. durability across kill -9 -------------------------------------------------------


@pytest.mark.slow
def test_acknowledged_tickets_survive_sigkill_and_numbers_are_never_reused(hall_server):
    srv = hall_server()
    prefixes = services_of(srv)
    codes = sorted(prefixes)
    threads, max_per_thread, kill_after = 12, 400, 1009  # not a round number
    lock = threading.Lock()
    acked: dict[str, dict] = {}  # idempotency key -> ticket (201 seen)
    sent: dict[str, str] = {}  # idempotency key -> service, recorded before sending
    refused: list[tuple[int, bytes]] = []
    enough = threading.Event()
    killed: list[int | None] = []
    finished: list[int] = []

    def client(tid: int):
        def run():
            api = Api(srv, srv.tokens["terminal"])
            try:
                for i in range(max_per_thread):
                    service = codes[(tid + i) % len(codes)]
                    key = f"crash-{tid}-{i}-{uuid.uuid4()}"
                    with lock:
                        sent[key] = service
                    try:
                        r = api.post("/api/tickets", {"service": service}, headers={"Idempotency-Key": key},
                                     retry_stale=False)
                    except (OSError, http.client.HTTPException):
                        return  # the server is gone: this request is unacknowledged
                    if r.status != 201:
                        with lock:
                            refused.append((r.status, r.raw[:200]))
                        return
                    with lock:
                        acked[key] = r.json
                        if len(acked) >= kill_after:
                            enough.set()
            finally:
                api.close()
                with lock:
                    finished.append(tid)
                    if len(finished) == threads:
                        enough.set()  # wake the killer: there will be no more acknowledgements
        return run

    def killer():
        if enough.wait(60) and len(acked) >= kill_after:
            killed.append(srv.kill())

    run_threads([killer] + [client(t) for t in range(threads)], timeout=90)
    assert killed, f"the load never reached {kill_after} acknowledged tickets ({len(acked)})"
    assert killed[0] == -9, f"the server was not killed by SIGKILL (exit {killed[0]})"
    assert not refused, f"requests refused before the crash: {refused[:5]}"
    assert len(acked) >= kill_after
    assert len(acked) < threads * max_per_thread, "the load finished before the kill; nothing was in flight"
    in_flight = [k for k in sent if k not in acked]

    srv.start()

    # Every acknowledged ticket is still there, with the number it was given.
    items = list(acked.values())
    lost: list[tuple[str, int, bytes]] = []

    def verify(chunk):
        def run():
            api = Api(srv)
            try:
                for t in chunk:
                    r = api.get(f"/api/tickets/{t['id']}")
                    if r.status != 200 or r.json["number"] != t["number"] or r.json["service"] != t["service"]:
                        with lock:
                            lost.append((t["number"], r.status, r.raw[:200]))
            finally:
                api.close()
        return run

    run_threads([verify(items[i::4]) for i in range(4)], timeout=60)
    assert not lost, f"{len(lost)} acknowledged tickets lost or changed after kill -9, e.g. {lost[:5]}"

    # New tickets take numbers after every number handed out before the crash.
    api = Api(srv, srv.tokens["terminal"])
    try:
        highest: dict[tuple[str, str], int] = defaultdict(int)
        for t in items:
            key = (t["day"], t["service"])
            highest[key] = max(highest[key], counter(t["number"], prefixes[t["service"]]))
        fresh = []
        for svc in codes:
            for _ in range(2):
                r = api.issue(svc)
                assert r.status == 201, r.raw
                t = r.json
                fresh.append(t)
                n = counter(t["number"], prefixes[svc])
                assert n > highest[(t["day"], svc)], (
                    f"{t['number']} issued after the restart reuses a number up to "
                    f"{prefixes[svc]}{highest[(t['day'], svc)]:03d} handed out before the crash")
        # The terminal retries what it never heard back about (its outbox does exactly this):
        # a request the server committed before dying comes back as the same ticket.
        retried = []
        for key in in_flight:
            r = api.post("/api/tickets", {"service": sent[key]}, headers={"Idempotency-Key": key})
            assert r.status == 201, r.raw
            retried.append(r.json)
        again = {k: api.issue(acked[k]["service"], key=k) for k in list(acked)[:20]}
    finally:
        api.close()
    for k, r in again.items():
        assert r.status == 201 and r.header("Idempotent-Replayed") == "true", r.raw
        assert (r.json["id"], r.json["number"]) == (acked[k]["id"], acked[k]["number"])

    # Every number ever consumed belongs to exactly one key: 1..n per service, no duplicate.
    everything = items + fresh + retried
    ids = defaultdict(set)
    for t in everything:
        ids[(t["day"], t["number"])].add(t["id"])
    assert all(len(v) == 1 for v in ids.values()), "one number was given to two different tickets"
    assert len({t["id"] for t in everything}) == len(everything), "one ticket id came back for two keys"
    assert_no_duplicates_no_gaps(everything, prefixes)

    # The event log shares the tickets' transactions: after the crash there is exactly one
    # ticket.issued per ticket, and a replay from the start streams it all (many batches).
    last = health(srv)["last_event_id"]
    stream = EventStream(srv, 0)
    try:
        events: list[Sse] = []
        while not events or events[-1].id < last:
            events.append(stream.next())
    finally:
        stream.close()
    assert_increasing(events, 0)
    assert {e.event for e in events} == {"ticket.issued"}
    logged = sorted((e.data["ticket"]["day"], e.data["ticket"]["number"]) for e in events)
    assert logged == sorted((t["day"], t["number"]) for t in everything), (
        "the event log and the tickets disagree after kill -9")


# -- 3. idempotent retries over dropped connections -------------------------------------


def raw_request(srv, key: str, body: bytes, send_bytes: int | None = None, token: str | None = None,
                until=None) -> None:
    """Send a POST /api/tickets over a bare socket and close it without reading a byte of
    the answer; `send_bytes` cuts the request short (a connection lost mid-body); `until`
    keeps the connection open until it returns true (polled, at most 10 s)."""
    head = (f"POST /api/tickets HTTP/1.1\r\nHost: {srv.host}:{srv.port}\r\n"
            f"Authorization: Bearer {token or srv.tokens['terminal']}\r\nIdempotency-Key: {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    data = head + body
    if send_bytes is not None:
        data = data[:send_bytes]
    with socket.create_connection((srv.host, srv.port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        deadline = time.monotonic() + TIMEOUT
        while until is not None and not until():
            assert time.monotonic() < deadline, "the server never handled the request"
            time.sleep(0.02)  # polling interval of a bounded wait
    # closed: the client never learns whether the ticket was issued


@pytest.mark.slow
def test_retry_after_dropped_connection_returns_the_same_ticket(shared_server):
    srv = shared_server
    prefixes = services_of(srv)
    svc = "F" if "F" in prefixes else sorted(prefixes)[-1]
    p = prefixes[svc]
    api = Api(srv, srv.tokens["terminal"])
    try:
        base = api.issue(svc)
        assert base.status == 201, base.raw
        n0 = counter(base.json["number"], p)

        # Dropped after the whole request was sent: the server may or may not have issued it.
        key = str(uuid.uuid4())
        body = json.dumps({"service": svc}).encode()
        raw_request(srv, key, body)
        first = api.issue(svc, key=key)
        assert first.status == 201, first.raw
        assert counter(first.json["number"], p) == n0 + 1, "the dropped request and its retry took two numbers"
        second = api.issue(svc, key=key)
        assert second.status == 201, second.raw
        assert second.header("Idempotent-Replayed") == "true"
        assert second.json["id"] == first.json["id"] and second.json["number"] == first.json["number"]
        # The dropped request again, now surely after the ticket exists: still nothing new.
        raw_request(srv, key, body)

        # Dropped after the server committed (its answer is never read): the retry is a replay.
        before = health(srv)["last_event_id"]
        late_key = str(uuid.uuid4())
        raw_request(srv, late_key, body, until=lambda: health(srv)["last_event_id"] > before)
        late = api.issue(svc, key=late_key)
        assert late.status == 201, late.raw
        assert late.header("Idempotent-Replayed") == "true", "the committed ticket was not found by its key"
        assert counter(late.json["number"], p) == n0 + 2

        # Dropped in the middle of the body: nothing may be issued.
        cut_key = str(uuid.uuid4())
        raw_request(srv, cut_key, body, send_bytes=len(body) // 2 + 150)

        # Same key, different request: refused, and nothing issued.
        other = sorted(set(prefixes) - {svc})[0]
        conflict = api.issue(other, key=key)
        assert_error(conflict, 409, "idempotency_conflict")
        assert_error(api.issue(svc, key=key, priority="elderly"), 409, "idempotency_conflict")

        nxt = api.issue(svc)
        assert nxt.status == 201, nxt.raw
        assert counter(nxt.json["number"], p) == n0 + 3, (
            f"after {first.json['number']} the next ticket is {nxt.json['number']}: "
            "a dropped, cut or conflicting request consumed a number")
        got = api.get(f"/api/tickets/{first.json['id']}")
        assert got.status == 200 and got.json["number"] == first.json["number"]
    finally:
        api.close()


@pytest.mark.slow
def test_concurrent_retries_with_one_key_issue_one_ticket(shared_server):
    srv = shared_server
    prefixes = services_of(srv)
    svc = "E" if "E" in prefixes else sorted(prefixes)[0]
    key = str(uuid.uuid4())
    answers: list[Resp] = []
    lock = threading.Lock()
    go = threading.Barrier(8, timeout=TIMEOUT)

    def retry():
        api = Api(srv, srv.tokens["terminal"])
        try:
            api.get("/api/health")  # connect first, so the POSTs race
            go.wait()
            r = api.issue(svc, key=key)
            with lock:
                answers.append(r)
        finally:
            api.close()

    run_threads([retry] * 8, timeout=30)
    assert [r.status for r in answers] == [201] * 8, [r.raw[:200] for r in answers]
    assert len({r.json["id"] for r in answers}) == 1, "one key issued several tickets"
    assert sum(r.header("Idempotent-Replayed") is None for r in answers) == 1
    api = Api(srv, srv.tokens["terminal"])
    try:
        nxt = api.issue(svc)
    finally:
        api.close()
    assert counter(nxt.json["number"], prefixes[svc]) == counter(answers[0].json["number"], prefixes[svc]) + 1


# -- 4. bad input over the wire ---------------------------------------------------------

JSON = {"Content-Type": "application/json"}


def _key() -> dict:
    return {**JSON, "Idempotency-Key": str(uuid.uuid4())}


# (id, method, path, body, headers, token role or a literal token or None, status, error code)
BAD_REQUESTS = [
    ("malformed-json", "POST", "/api/tickets", b'{"service": "A"', _key, "terminal", 400, "malformed_json"),
    ("not-utf8", "POST", "/api/tickets", b'{"service": "\xff\xfe"}', _key, "terminal", 400, None),
    ("deeply-nested", "POST", "/api/tickets", b"[" * 5000 + b"]" * 5000, _key, "terminal", None, None),
    ("service-is-a-number", "POST", "/api/tickets", b'{"service": 5}', _key, "terminal", 422, "invalid_request"),
    ("service-is-null", "POST", "/api/tickets", b'{"service": null}', _key, "terminal", 422, "invalid_request"),
    ("body-is-a-list", "POST", "/api/tickets", b'["A"]', _key, "terminal", 422, "invalid_request"),
    ("body-is-a-string", "POST", "/api/tickets", b'"A"', _key, "terminal", 422, "invalid_request"),
    ("empty-body", "POST", "/api/tickets", b"", _key, "terminal", 422, "invalid_request"),
    ("missing-service", "POST", "/api/tickets", b'{"priority": "normal"}', _key, "terminal", 422,
     "invalid_request"),
    ("unknown-priority", "POST", "/api/tickets", b'{"service": "A", "priority": "vip"}', _key, "terminal", 422,
     "invalid_request"),
    ("unknown-service", "POST", "/api/tickets", b'{"service": "ZZ"}', _key, "terminal", 404, "not_found"),
    ("unknown-field", "POST", "/api/tickets", b'{"service": "A", "colour": "red"}', _key, "terminal", 422,
     "invalid_request"),
    ("long-idempotency-key", "POST", "/api/tickets", b'{"service": "A"}',
     lambda: {**JSON, "Idempotency-Key": "k" * 201}, "terminal", 400, "bad_idempotency_key"),
    ("missing-idempotency-key", "POST", "/api/tickets", b'{"service": "A"}', lambda: dict(JSON), "terminal", 400,
     "idempotency_key_required"),
    ("terminal-issues-green", "POST", "/api/tickets", b'{"service": "A", "priority": "green"}', _key, "terminal",
     403, "forbidden"),
    ("missing-token", "POST", "/api/tickets", b'{"service": "A"}', _key, None, 401, "unauthorized"),
    ("forged-token", "POST", "/api/tickets", b'{"service": "A"}', _key,
     "kq_t_" + "x" * 43, 401, "unauthorized"),
    ("empty-bearer", "POST", "/api/tickets", b'{"service": "A"}',
     lambda: {**_key(), "Authorization": "Bearer "}, None, 401, "unauthorized"),
    ("basic-auth", "POST", "/api/tickets", b'{"service": "A"}',
     lambda: {**_key(), "Authorization": "Basic dXNlcjpwYXNz"}, None, 401, "unauthorized"),
    ("terminal-at-window", "POST", "/api/windows/1/call-next", None, dict, "terminal", 403, "forbidden"),
    ("staff-at-other-window", "POST", "/api/windows/3/call-next", None, dict, "staff-1-2", 403, "forbidden"),
    ("staff-without-token", "POST", "/api/windows/1/call-next", None, dict, None, 401, "unauthorized"),
    ("no-such-window", "POST", "/api/windows/99/call-next", None, dict, "admin", 404, "not_found"),
    ("window-not-a-number", "POST", "/api/windows/one/call-next", None, dict, "admin", 422, "invalid_request"),
    ("window-zero", "POST", "/api/windows/0/call-next", None, dict, "admin", 422, "invalid_request"),
    ("transfer-unknown-field", "POST", "/api/windows/1/transfer", b'{"service": "B", "x": 1}', lambda: dict(JSON),
     "admin", 422, "invalid_request"),
    ("no-such-ticket", "GET", "/api/tickets/no-such-ticket", None, dict, None, 404, "not_found"),
    ("no-such-endpoint", "GET", "/api/nothing-here", None, dict, None, 404, "not_found"),
    ("method-not-allowed", "DELETE", "/api/tickets", None, dict, "admin", 405, "method_not_allowed"),
]


@pytest.fixture(scope="module")
def staff_1_2(shared_server):
    return shared_server.token("staff", "S12", "1,2")


@pytest.mark.slow
@pytest.mark.parametrize("name,method,path,body,headers,who,status,code", BAD_REQUESTS,
                         ids=[case[0] for case in BAD_REQUESTS])
def test_bad_request_is_a_json_4xx(shared_server, staff_1_2, name, method, path, body, headers, who, status,
                                   code):
    srv = shared_server
    before = health(srv)["last_event_id"]
    token = {"staff-1-2": staff_1_2, None: None}.get(who, srv.tokens.get(who, who))
    api = Api(srv)
    try:
        r = api.request(method, path, body=body, headers=headers(), token=token)
    finally:
        api.close()
    if status is None:  # any 4xx will do, but never a 500 or a success
        assert 400 <= r.status < 500, f"{r.status}: {r.raw[:300]!r}"
        assert_error(r, r.status, code)
    else:
        err = assert_error(r, status, code)
        assert "Traceback" not in err["detail"]
    if r.status == 401:
        assert (r.header("WWW-Authenticate") or "").lower().startswith("bearer"), dict(r.headers)
    assert health(srv)["last_event_id"] == before, "a refused request changed the hall"


def _padded_body(size: int) -> bytes:
    """A valid ticket request of exactly `size` bytes (JSON whitespace as padding)."""
    head, tail = b'{"service": "A"', b"}"
    return head + b" " * (size - len(head) - len(tail)) + tail


@pytest.mark.slow
def test_body_size_limit_with_content_length(shared_server):
    srv = shared_server
    api = Api(srv, srv.tokens["terminal"])
    try:
        at_limit = api.request("POST", "/api/tickets", _padded_body(16 * 1024), headers=_key())
        assert at_limit.status == 201, f"a 16 KiB body must be accepted: {at_limit.status} {at_limit.raw[:200]!r}"
        before = health(srv)["last_event_id"]
        over = api.request("POST", "/api/tickets", _padded_body(16 * 1024 + 1), headers=_key())
        assert_error(over, 413, "too_large")
        api.close()
        big = api.request("POST", "/api/tickets", _padded_body(64 * 1024), headers=_key())
        assert_error(big, 413, "too_large")
        assert health(srv)["last_event_id"] == before
    finally:
        api.close()


def _chunks(data: bytes, size: int = 4096):
    for i in range(0, len(data), size):
        yield data[i:i + size]


@pytest.mark.slow
def test_body_size_limit_with_chunked_transfer_encoding(shared_server):
    srv = shared_server
    api = Api(srv, srv.tokens["terminal"])
    try:
        # A small chunked body is fine (so the 413 below is about size, not about chunking).
        small = api.request("POST", "/api/tickets", _chunks(b'{"service": "A"}', 5), headers=_key())
        assert small.status == 201, small.raw
        before = health(srv)["last_event_id"]
        api.close()
        over = api.request("POST", "/api/tickets", _chunks(_padded_body(20 * 1024)), headers=_key())
        assert_error(over, 413, "too_large")
        assert health(srv)["last_event_id"] == before
    finally:
        api.close()


@pytest.mark.slow
def test_connection_keeps_working_after_errors(shared_server):
    """Errors on a keep-alive connection leave it usable (no half-read body poisons it)."""
    srv = shared_server
    api = Api(srv, srv.tokens["terminal"])
    try:
        for _ in range(3):
            assert_error(api.request("POST", "/api/tickets", b'{"service": ', headers=_key()), 400)
            assert_error(api.request("POST", "/api/tickets", b'{"service": "A", "x": 1}', headers=_key()), 422)
            assert_error(api.request("POST", "/api/tickets", b'{"service": "A"}', headers=dict(JSON)), 400)
            assert_error(api.request("POST", "/api/windows/1/call-next", token=srv.tokens["terminal"]), 403)
            ok = api.issue("A")
            assert ok.status == 201, ok.raw
        # After a 413 the next request works too, on the same connection or (if the server
        # said `Connection: close`) a new one: the unread rest of the big body is not taken
        # for a request.
        for body in (_padded_body(20 * 1024), _chunks(_padded_body(20 * 1024))):
            assert_error(api.request("POST", "/api/tickets", body, headers=_key()), 413, "too_large")
            ok = api.issue("A")
            assert ok.status == 201, ok.raw
    finally:
        api.close()


@pytest.mark.slow
@pytest.mark.parametrize("header,query", [
    ("abc", None), ("-5", None), (None, "-5"),
    # Beyond a 64-bit integer: SQLite cannot compare with it.
    ("99999999999999999999999", None), (None, "99999999999999999999999"),
], ids=["last-event-id-not-a-number", "last-event-id-negative", "since-negative",
        "last-event-id-too-big", "since-too-big"])
def test_bad_event_cursor_is_a_400(shared_server, header, query):
    """A bad Last-Event-ID is refused with a JSON 400 before the stream starts (not a 200
    stream that then breaks off)."""
    srv = shared_server
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
    try:
        conn.request("GET", "/api/events" + (f"?since={query}" if query else ""),
                     headers={"Last-Event-ID": header} if header is not None else {})
        resp = conn.getresponse()
        status, headers = resp.status, resp.headers
        try:
            raw = resp.read() if status != 200 else resp.read(200)
        except (http.client.IncompleteRead, OSError) as exc:
            raw = f"(a 200 stream that broke off: {exc!r})".encode()
    finally:
        conn.close()
    assert_error(Resp(status, headers, raw), 400, "bad_event_id")


# -- 5. the event stream ----------------------------------------------------------------


@dataclass
class Sse:
    id: int
    event: str
    data: dict


@dataclass
class EventStream:
    """A GET /api/events connection read line by line, every read bounded."""

    srv: object
    last_event_id: int | None = None
    timeout: float = 5.0
    comments: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.conn = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=self.timeout)
        headers = {"Accept": "text/event-stream"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        self.conn.request("GET", "/api/events", headers=headers)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.read(500)
        assert self.resp.headers["Content-Type"].startswith("text/event-stream")
        # The first block is a comment: once it is here the stream's cursor is set, so
        # changes made from now on will be in it.
        self.opening = self._block(self.timeout)
        assert self.opening.get("comment"), f"the stream did not open with a comment: {self.opening}"

    def _block(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        block: dict = {}
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no complete event within {timeout} s (partial: {block})")
            self.conn.sock.settimeout(remaining)
            line = self.resp.readline()
            if not line:
                raise EOFError(f"the event stream ended (partial: {block})")
            text = line.decode("utf-8").rstrip("\r\n")
            if text == "":
                if block:
                    return block
                continue
            name, _, value = text.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "":
                block["comment"] = block.get("comment", "") + value
                self.comments.append(value)
            elif name == "data":
                block["data"] = block["data"] + "\n" + value if "data" in block else value
            else:
                block[name] = value

    def next(self, timeout: float | None = None) -> Sse:
        """The next event with data (pings and comments skipped)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            block = self._block(max(0.01, deadline - time.monotonic()))
            if "data" in block:
                assert "id" in block and "event" in block, f"an event without id or type: {block}"
                return Sse(int(block["id"]), block["event"], json.loads(block["data"]))

    def take(self, n: int, timeout: float | None = None) -> list[Sse]:
        return [self.next(timeout) for _ in range(n)]

    def close(self) -> None:
        self.conn.close()


def expect_issued(resp: Resp) -> list[tuple[str, str | None]]:
    assert resp.status == 201, resp.raw
    return [("ticket.issued", resp.json["number"])]


def expect_action(resp: Resp) -> list[tuple[str, str | None]]:
    """The events a window action's answer says it recorded, each with the ticket's number."""
    assert resp.status == 200, resp.raw
    body = resp.json
    number = body["ticket"]["number"] if body["ticket"] else None
    events = body["events"]
    assert events, body
    # call-next may first close the window's previous ticket; that event is about another number.
    return [(e, number if e in ("ticket.called",) or len(events) == 1 else None) for e in events]


def assert_matches(received: list[Sse], expected: list[tuple[str, str | None]]) -> None:
    got = [(e.event, e.data["ticket"]["number"] if e.data.get("ticket") else None) for e in received]
    want = [(t, n) for t, n in expected]
    assert [g[0] for g in got] == [w[0] for w in want], f"event types: got {got}, expected {want}"
    for g, w in zip(got, want):
        if w[1] is not None:
            assert g == w, f"got {got}, expected {want}"


def assert_increasing(events: list[Sse], after: int) -> None:
    ids = [e.id for e in events]
    assert all(a < b for a, b in zip([after] + ids, ids)), f"event ids not strictly increasing after {after}: {ids}"


@pytest.mark.slow
def test_event_stream_live_then_replay_after_reconnect_and_restart(hall_server):
    srv = hall_server()
    term = Api(srv, srv.tokens["terminal"])
    staff = Api(srv, srv.tokens["staff"])
    streams: list[EventStream] = []

    def stream(last: int | None = None) -> EventStream:
        s = EventStream(srv, last)
        streams.append(s)
        return s

    try:
        start_id = health(srv)["last_event_id"]

        # Live: issue three A tickets and call one at window 1 (it serves A only).
        live = stream()
        expected = []
        issued = [term.issue("A") for _ in range(3)]
        for r in issued:
            expected += expect_issued(r)
        called = staff.post("/api/windows/1/call-next")
        expected += expect_action(called)
        assert called.json["ticket"]["number"] == issued[0].json["number"]
        got = live.take(len(expected))
        assert_matches(got, expected)
        assert_increasing(got, start_id)
        for e in got:
            assert set(e.data) >= {"ticket", "window"}, e.data
            assert e.data["ticket"]["service"] == "A"
        assert [e.data["window"] for e in got] == [None, None, None, 1]
        assert got[-1].data["ticket"]["status"] == "called" and got[-1].data["ticket"]["window"] == 1
        assert "id" not in got[0].data["ticket"], "events must not carry ticket ids (the holder's secret)"
        last_seen = got[-1].id
        live.close()

        # Disconnected: more tickets and window actions happen.
        missed = []
        missed += expect_issued(term.issue("A"))
        missed += expect_issued(term.issue("B"))
        missed += expect_action(staff.post("/api/windows/1/start"))
        missed += expect_action(staff.post("/api/windows/1/finish"))
        missed += expect_action(staff.post("/api/windows/1/call-next"))
        missed += expect_action(staff.post("/api/windows/1/recall"))
        missed += expect_action(staff.post("/api/windows/3/pause"))
        missed += expect_action(staff.post("/api/windows/3/resume"))
        missed += expect_action(staff.post("/api/windows/1/call-next"))  # closes the called one as a no-show
        assert [m[0] for m in missed[-2:]] == ["ticket.no_show", "ticket.called"]

        again = stream(last_seen)
        replayed = again.take(len(missed))
        assert_matches(replayed, missed)
        assert_increasing(replayed, last_seen)
        assert [e.data["window"] for e in replayed if e.event.startswith("window.")] == [3, 3]
        # Exactly the missed ones: the next event on this stream is a new ticket's.
        sentinel = term.issue("C")
        nxt = again.next()
        assert (nxt.event, nxt.data["ticket"]["number"]) == ("ticket.issued", sentinel.json["number"])
        assert nxt.id > replayed[-1].id
        last_seen = nxt.id

        # The full log from the start agrees with what the two streams delivered: no gap.
        everything = stream(start_id)
        full = everything.take(len(got) + len(replayed) + 1)
        assert [(e.id, e.event) for e in full] == [(e.id, e.event) for e in got + replayed + [nxt]]
        everything.close()

        # Restart: what happened while a client was away, before and after the restart,
        # is replayed from the event log.
        open_during_stop = again  # still connected when the server is told to stop
        before_restart = []
        before_restart += expect_issued(term.issue("D"))
        before_restart += expect_action(staff.post("/api/windows/4/call-next"))
        got_live = open_during_stop.take(len(before_restart))
        assert_matches(got_live, before_restart)
        term.close()
        staff.close()
        rc = srv.stop()
        # uvicorn re-raises SIGTERM after a graceful shutdown; -9 would mean it had to be killed.
        assert rc in (0, -signal.SIGTERM), (
            f"SIGTERM with an event stream open did not stop the server by itself (exit {rc}):\n{srv.log()}")
        with pytest.raises((EOFError, OSError, http.client.HTTPException)):
            open_during_stop.next(timeout=5)
        srv.start()
        after_restart = []
        after_restart += expect_action(staff.post("/api/windows/4/start"))
        after_restart += expect_issued(term.issue("D"))
        after_restart += expect_action(staff.post("/api/windows/4/finish"))

        resumed = stream(last_seen)
        replay = resumed.take(len(before_restart) + len(after_restart))
        assert_matches(replay, before_restart + after_restart)
        assert_increasing(replay, last_seen)
        assert [(e.id, e.event) for e in replay[:len(got_live)]] == [(e.id, e.event) for e in got_live]
        sentinel = term.issue("E")
        nxt = resumed.next()
        assert (nxt.event, nxt.data["ticket"]["number"]) == ("ticket.issued", sentinel.json["number"])
        assert nxt.id > replay[-1].id
        assert health(srv)["last_event_id"] == nxt.id
    finally:
        for s in streams:
            s.close()
        term.close()
        staff.close()


@pytest.mark.slow
def test_an_event_id_ahead_of_the_log_streams_from_now(shared_server):
    """A display that remembers an id from a database since restored from backup must
    not wait for the log to catch up: it gets the next change at once."""
    last = health(shared_server)["last_event_id"]
    stream = EventStream(shared_server, last + 1_000_000)
    terminal = Api(shared_server, shared_server.tokens["terminal"])
    try:
        r = terminal.issue("C")
        got = stream.next()
        assert (got.event, got.data["ticket"]["number"]) == ("ticket.issued", r.json["number"])
        assert got.id > last
    finally:
        terminal.close()
        stream.close()


@pytest.mark.slow
def test_displays_that_come_and_go_leave_no_tracebacks(hall_server):
    """Displays reconnect all day; a stream closed by its client is not a server error
    (FastAPI's own SSE keep-alive logged one now and then, FastAPI #15725)."""
    srv = hall_server()
    terminal = Api(srv, srv.tokens["terminal"])
    try:
        for _ in range(5):
            terminal.issue("A")
        for _ in range(300):
            with socket.create_connection((srv.host, srv.port), timeout=TIMEOUT) as sock:
                sock.sendall(f"GET /api/events HTTP/1.1\r\nHost: {srv.host}\r\nLast-Event-ID: 0\r\n\r\n".encode())
                assert sock.recv(64).startswith(b"HTTP/1.1 200")
        assert health(srv)["ok"]
    finally:
        terminal.close()
    srv.stop()
    log = srv.log(full=True)
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
