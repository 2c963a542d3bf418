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
