"""sd_notify: the messages reach a real AF_UNIX datagram socket, as systemd's would."""

import os
import socket
import subprocess
import sys

import pytest

from kiosq.kiosk import sdnotify


@pytest.fixture
def systemd_socket(tmp_path, monkeypatch):
    """A socket bound where $NOTIFY_SOCKET points, as systemd makes for a Type=notify unit."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


def received(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_watchdog_and_status_arrive(systemd_socket):
    assert sdnotify.notify_ready("kiosk T03 running")
    assert received(systemd_socket) == ["READY=1", "STATUS=kiosk T03 running"]
    assert sdnotify.notify_watchdog()
    assert received(systemd_socket) == ["WATCHDOG=1"]
    assert sdnotify.notify_status("printer: paper out")
    assert received(systemd_socket) == ["STATUS=printer: paper out"]
    assert sdnotify.notify_stopping()
    assert received(systemd_socket) == ["STOPPING=1"]


def test_an_abstract_socket_address_starts_with_at(monkeypatch):
    name = f"kiosq-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.notify_ready()
        assert received(sock) == ["READY=1"]


def test_a_child_process_reaches_the_socket_too(systemd_socket):
    # Under cage the kiosk is the compositor's child: it inherits $NOTIFY_SOCKET.
    subprocess.run([sys.executable, "-c", "from kiosq.kiosk.sdnotify import notify_watchdog as w; "
                                          "raise SystemExit(0 if w() else 1)"], check=True, timeout=30)
    assert received(systemd_socket) == ["WATCHDOG=1"]


def test_outside_systemd_nothing_is_sent(monkeypatch, tmp_path):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify_ready() is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))  # systemd went away: logged, not raised
    assert sdnotify.notify_watchdog() is False


@pytest.mark.parametrize("env, interval", [
    ({"WATCHDOG_USEC": "30000000"}, 15.0),  # WatchdogSec=30: ping every 15 s
    ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": "1"}, 0.25),  # cage's pid: the child still pings
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({}, None),
])
def test_watchdog_interval_is_half_of_watchdog_sec(env, interval):
    assert sdnotify.watchdog_interval(env) == interval
