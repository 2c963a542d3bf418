"""Two `kiosq server` processes of one hall on one PostgreSQL database, over real HTTP.

What a district with a load balancer in front of two processes relies on: tickets are
numbered once whichever process issues them, a process killed mid-load loses nothing it
acknowledged while the other goes on serving, and an event written by one process reaches
the displays connected to the other (and a display that reconnects to the other process
with Last-Event-ID misses nothing and sees nothing twice).
"""

from __future__ import annotations

import http.client
import threading
import uuid
from collections import defaultdict

import pytest

from tests.queue.test_http_server import (
    Api,
    EventStream,
    assert_increasing,
    assert_no_duplicates_no_gaps,
    counter,
    health,
    run_threads,
    services_of,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgresql_only]


@pytest.fixture
def two(hall_server):
    """Process a and process b: one data folder (its keys), one database."""
    a = hall_server()
    b = hall_server(a.data_dir, tokens=False)
    b.tokens = a.tokens
    assert a.database and a.database == b.database
    return a, b


def test_two_processes_number_once_and_one_killed_mid_load_loses_nothing(two):
    a, b = two
    prefixes = services_of(a)
    codes = sorted(prefixes)
    threads, per_thread, kill_after = 16, 120, 600  # half the clients on each process
    lock = threading.Lock()
    acked: dict[str, dict] = {}  # idempotency key -> ticket (201 seen)
    sent: dict[str, str] = {}  # idempotency key -> service, recorded before sending
    refused: list[tuple[str, int, bytes]] = []
    enough = threading.Event()
    killed: list[int | None] = []
    finished: list[int] = []

    def client(tid: int):
        srv = a if tid % 2 == 0 else b

        def run():
            api = Api(srv, srv.tokens["terminal"])
            try:
                for i in range(per_thread):
                    service = codes[(tid + i) % len(codes)]
                    key = f"two-{tid}-{i}-{uuid.uuid4()}"
                    with lock:
                        sent[key] = service
                    try:
                        r = api.post("/api/tickets", {"service": service}, headers={"Idempotency-Key": key},
                                     retry_stale=False)
                    except (OSError, http.client.HTTPException):
                        assert srv is a, "process b stopped answering while a was killed"
                        return  # process a is gone: this request is unacknowledged
                    if r.status != 201:
                        with lock:
                            refused.append(("a" if srv is a else "b", r.status, r.raw[:300]))
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
                        enough.set()
        return run

    def killer():
        if enough.wait(90) and len(acked) >= kill_after:
            killed.append(a.kill())

    run_threads([killer] + [client(t) for t in range(threads)], timeout=180)
    assert killed == [-9], f"process a was not SIGKILLed mid-load ({len(acked)} acknowledged, {killed})"
    assert not refused, f"requests refused: {refused[:5]}"
    b_keys = [k for k in sent if int(k.split("-")[1]) % 2 == 1]
    assert all(k in acked for k in b_keys), "process b did not answer every request while a was down"
    in_flight = [k for k in sent if k not in acked]

    a.start()  # the same process again, on the same database

    # Every acknowledged ticket is there, read through either process.
    items = list(acked.values())
    lost = []
    for i, srv in enumerate((a, b)):
        api = Api(srv)
        try:
            for t in items[i::2]:
                r = api.get(f"/api/tickets/{t['id']}")
                if r.status != 200 or (r.json["number"], r.json["service"]) != (t["number"], t["service"]):
                    lost.append((t["number"], r.status, r.raw[:200]))
        finally:
            api.close()
    assert not lost, f"{len(lost)} acknowledged tickets lost or changed, e.g. {lost[:5]}"

    # The requests a never answered, retried at b (a terminal's outbox retries them at
    # whichever process the balancer picks): one committed before the kill comes back as
    # the same ticket. New tickets continue the numbering on both processes.
    highest: dict[tuple[str, str], int] = defaultdict(int)
    for t in items:
        highest[(t["day"], t["service"])] = max(highest[(t["day"], t["service"])],
                                                counter(t["number"], prefixes[t["service"]]))
    retried, fresh = [], []
    api_b, api_a = Api(b, b.tokens["terminal"]), Api(a, a.tokens["terminal"])
    try:
        for key in in_flight:
            r = api_b.post("/api/tickets", {"service": sent[key]}, headers={"Idempotency-Key": key})
            assert r.status == 201, r.raw
            retried.append(r.json)
        for api in (api_a, api_b):
            for svc in codes:
                r = api.issue(svc)
                assert r.status == 201, r.raw
                fresh.append(r.json)
                assert counter(r.json["number"], prefixes[svc]) > highest[(r.json["day"], svc)], r.json
        replay = {k: api_a.issue(acked[k]["service"], key=k) for k in list(acked)[:10]}
    finally:
        api_a.close()
        api_b.close()
    for k, r in replay.items():
        assert r.status == 201 and r.header("Idempotent-Replayed") == "true", r.raw
        assert r.json["id"] == acked[k]["id"]

    everything = items + retried + fresh
    assert len({t["id"] for t in everything}) == len(everything), "one ticket id came back for two keys"
    assert_no_duplicates_no_gaps(everything, prefixes)


def test_a_call_on_one_process_reaches_a_display_on_the_other(two):
    a, b = two
    display = EventStream(b)  # the hall display, connected through the balancer to b
    term = Api(a, a.tokens["terminal"])
    staff = Api(a, a.tokens["staff"])
    try:
        issued = term.issue("A")
        assert issued.status == 201, issued.raw
        called = staff.post("/api/windows/1/call-next")
        assert called.status == 200, called.raw
        got = display.take(2)
        assert [(e.event, e.data["ticket"]["number"]) for e in got] == [
            ("ticket.issued", issued.json["number"]), ("ticket.called", issued.json["number"])]
        assert got[1].data["window"] == 1
        assert_increasing(got, display_start(display))

        # The display's process goes away; it reconnects (as EventSource does) to a with
        # the last id it saw, and events written meanwhile, on either process, come once.
        display.close()
        b.kill()
        more = [term.issue("B") for _ in range(3)]
        assert all(r.status == 201 for r in more)
        again = EventStream(a, got[-1].id)
        try:
            replayed = again.take(3)
            assert [e.data["ticket"]["number"] for e in replayed] == [r.json["number"] for r in more]
            assert_increasing(replayed, got[-1].id)
            b.start()
            late = Api(b, b.tokens["terminal"])
            try:
                last = late.issue("C")
            finally:
                late.close()
            assert again.next().data["ticket"]["number"] == last.json["number"]  # written on b, seen on a
        finally:
            again.close()
    finally:
        term.close()
        staff.close()
    assert health(a)["last_event_id"] == health(b)["last_event_id"]


def display_start(stream: EventStream) -> int:
    """The id a stream opened after (its opening comment says `kiosq events after N`)."""
    return int(stream.opening["comment"].split("after", 1)[1].split()[0])
