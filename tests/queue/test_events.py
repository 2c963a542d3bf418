"""The event stream's quiet-time behaviour, over real HTTP to an in-process uvicorn:
heartbeat comments, and changes made by another writer on the same database."""

import http.client
import socket
import threading
import time

import pytest
import uvicorn

from kiosq.queue.api import create_app


@pytest.fixture
def live(store):
    """The API with a 0.2 s heartbeat, served by uvicorn in a thread on 127.0.0.1."""
    app = create_app(store, heartbeat_seconds=0.2)
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
    yield port
    app.state.notifier.close()
    server.should_exit = True
    thread.join(10)
    assert not thread.is_alive()


def read_lines(port: int, until, timeout: float = 5.0, headers: dict | None = None) -> list[str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/api/events", headers=headers or {})
        resp = conn.getresponse()
        assert resp.status == 200
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines.append(resp.readline().decode().rstrip("\n"))
            if until(lines):
                return lines
        raise AssertionError(f"not seen within {timeout} s: {lines}")
    finally:
        conn.close()


def test_a_quiet_stream_gets_heartbeat_comments(live):
    started = time.monotonic()
    lines = read_lines(live, lambda ls: ls.count(": ping") >= 2)
    assert time.monotonic() - started < 3
    assert not any(line.startswith("data:") for line in lines)


def test_changes_by_another_writer_reach_the_stream(live, store, reopen):
    """A second process on the same database (here: a second store). On SQLite it does not
    notify this server's streams and polling delivers its events; on PostgreSQL its commit
    wakes them (LISTEN/NOTIFY)."""
    other = reopen(store)
    result = {}

    def write_later():
        time.sleep(0.3)
        result["ticket"] = other.issue_ticket("D")[0]

    writer = threading.Thread(target=write_later)
    writer.start()
    lines = read_lines(live, lambda ls: any(line.startswith("data:") for line in ls))
    writer.join()
    assert "event: ticket.issued" in lines
    assert f'"number":"{result["ticket"].label}"' in next(line for line in lines if line.startswith("data:"))


def test_a_commit_wakes_the_phones_of_its_own_tickets_before_the_rest_of_the_service():
    """ServiceWakes: the phone whose ticket a commit names (the one called) is woken at
    once; the service's other phones, whose place in line moved, WAKE_CHUNK at a time
    afterwards, so the next call's phone does not wait behind them (BENCHMARKS.md, #17)."""
    import asyncio

    from kiosq.queue.events import WAKE_CHUNK, Notifier

    async def scenario() -> tuple[list[str], list[str]]:
        wakes = Notifier().services
        woken: list[str] = []

        async def phone(ticket: str, service: str) -> None:
            await wakes.wait(service, ticket, 10.0, wakes.count(service))
            woken.append(ticket)

        others = [f"A-{i}" for i in range(WAKE_CHUNK + 5)]
        tasks = [asyncio.create_task(phone(t, "A")) for t in [*others, "A-called"]]
        tasks.append(asyncio.create_task(phone("B-1", "B")))
        await asyncio.sleep(0)  # every phone waits now; the called one began to wait last
        wakes._touch({"A"}, {"A-called"})
        await asyncio.sleep(0)
        first = list(woken)
        wakes._wake_some(WAKE_CHUNK)
        await asyncio.sleep(0)
        second = list(woken)
        wakes._wake_some(WAKE_CHUNK)
        await asyncio.sleep(0)
        assert sorted(woken) == sorted([*others, "A-called"])  # B was not touched
        tasks[-1].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return first, second

    first, second = asyncio.run(scenario())
    assert first == ["A-called"]
    assert second[0] == "A-called" and len(second) == 1 + WAKE_CHUNK
