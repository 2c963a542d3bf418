"""Hardened HTTP: the headers every answer carries, a 431 for oversized request headers,
and the cap on open connections (event streams counted), over real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time

import pytest
from fastapi.testclient import TestClient

from kiosq.queue.api import create_app
from tests.queue.conftest import KIOSQ, free_port


def test_every_answer_carries_the_security_headers(store):
    with TestClient(create_app(store)) as client:
        for path in ("/api/health", "/display/hall", "/api/no-such-thing", "/static/kiosq.css"):
            r = client.get(path)
            assert r.headers["x-content-type-options"] == "nosniff", path
            assert r.headers["referrer-policy"] == "no-referrer", path
            assert r.headers["x-frame-options"] == "DENY", path
            csp = r.headers["content-security-policy"]
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self';" in csp


def test_request_headers_over_16_kib_are_a_431(store):
    with TestClient(create_app(store)) as client:
        assert client.get("/api/health", headers={"X-Pad": "x" * 15_000}).status_code == 200
        r = client.get("/api/health", headers={"X-Pad": "x" * 17_000})
        assert r.status_code == 431 and r.json()["error"] == "headers_too_large"
        assert "send smaller headers" in r.json()["detail"] and r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.slow
def test_past_the_connection_cap_a_request_is_a_503_and_streams_count(tmp_path):
    port = free_port()
    proc = subprocess.Popen([*KIOSQ, "server", "--port", str(port), "--data-dir", str(tmp_path / "d"),
                             "--max-connections", "4"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def status(path: str = "/api/health") -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        finally:
            conn.close()

    streams: list[http.client.HTTPConnection] = []
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if status() == 200:
                    break
            except OSError:
                time.sleep(0.1)
        for _ in range(4):  # four displays hold their event streams open
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/events")
            assert conn.getresponse().status == 200
            streams.append(conn)
        assert status() == 503  # the fifth connection is refused at once, not left to pile up
        for conn in streams:
            conn.close()
        streams.clear()
        deadline = time.monotonic() + 10
        while status() != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status() == 200  # room again once they went
    finally:
        for conn in streams:
            conn.close()
        proc.terminate()
        proc.wait(15)


@pytest.mark.slow
def test_a_connection_that_sends_no_whole_request_head_is_closed(tmp_path):
    port = free_port()
    admin = json.loads(subprocess.run([*KIOSQ, "server", "token", "--role", "admin", "--name", "a", "--data-dir",
                                       str(tmp_path / "d"), "--json"], capture_output=True, text=True,
                                      timeout=60).stdout)["token"]
    proc = subprocess.Popen([*KIOSQ, "server", "--port", str(port), "--data-dir", str(tmp_path / "d"),
                             "--head-timeout", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)

        def closed_after(first: bytes) -> float:
            """Seconds until the server closes a connection that sent `first` and then nothing."""
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            try:
                started = time.monotonic()
                if first:
                    sock.sendall(first)
                assert sock.recv(1024) == b""  # closed, nothing answered
                return time.monotonic() - started
            finally:
                sock.close()

        assert 0.8 < closed_after(b"") < 5  # sends nothing at all
        assert 0.8 < closed_after(b"GET /api/health HTTP/1.1\r\nHost: x\r\n") < 5  # half a head, then nothing
        # A whole head is answered, and an event stream stays open past the deadline.
        stream = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        stream.request("GET", "/api/events")
        resp = stream.getresponse()
        assert resp.status == 200
        assert resp.readline().startswith(b":")  # its opening comment
        time.sleep(1.5)  # past the head deadline
        notice = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        notice.request("PUT", "/api/hall/notice", body=json.dumps({"notice": "x"}),
                       headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/json"})
        assert notice.getresponse().status == 200
        notice.close()
        lines = [resp.readline() for _ in range(6)]
        assert b"event: hall.notice\n" in lines  # the stream was still open and got the event
        stream.close()
    finally:
        proc.terminate()
        proc.wait(15)
