"""`kiosq server` under systemd (its unit is Type=notify with WatchdogSec): READY=1 reaches a
real AF_UNIX datagram socket at $NOTIFY_SOCKET once the port answers, and WATCHDOG=1 keeps
coming from the server's event loop every WATCHDOG_USEC/2."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import time

import pytest

from tests.provisioning.conftest import KIOSQ, free_port


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(20)
        yield sock, path


def start_server(tmp_path, path, **env):
    port = free_port()
    proc = subprocess.Popen([*KIOSQ, "server", "--port", str(port), "--data-dir", str(tmp_path / "data")],
                            env={**os.environ, "NOTIFY_SOCKET": str(path), **env}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


def stop(proc) -> None:
    proc.terminate()
    proc.wait(10)


def health(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/api/health")
        return conn.getresponse().status
    finally:
        conn.close()


def test_ready_once_listening_then_watchdog_pings(tmp_path, notify_socket):
    sock, path = notify_socket
    proc, port = start_server(tmp_path, path, WATCHDOG_USEC="400000")  # WatchdogSec=0.4 s: a ping every 0.2 s
    try:
        first = sock.recv(4096).decode().split("\n")
        assert first == ["READY=1", f"STATUS=hall server on 127.0.0.1:{port}"]
        assert health(port) == 200  # READY came once the port answers
        started, pings = time.monotonic(), 0
        while pings < 5:
            assert sock.recv(4096).decode() == "WATCHDOG=1"
            pings += 1
        assert time.monotonic() - started < 10  # repeating, not a one-off
    finally:
        stop(proc)


def test_without_a_watchdog_only_ready_is_sent(tmp_path, notify_socket):
    sock, path = notify_socket
    proc, port = start_server(tmp_path, path)
    try:
        assert sock.recv(4096).decode().startswith("READY=1\n")
        sock.settimeout(1.0)
        with pytest.raises(TimeoutError):
            sock.recv(4096)
    finally:
        stop(proc)
