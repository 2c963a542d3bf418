"""A real `kiosq server` on 127.0.0.1 for the provisioning tests (the pattern of
tests/queue/conftest.py, kept small): started once per module, with a terminal token."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

KIOSQ = [sys.executable, "-m", "kiosq.provisioning.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HallServer:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir, self.port = data_dir, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / "server.log"
        self.proc: subprocess.Popen | None = None

    def token(self, role: str, name: str) -> str:
        done = subprocess.run([*KIOSQ, "server", "token", "--role", role, "--name", name, "--data-dir",
                               str(self.data_dir), "--json"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["token"]

    def start(self) -> HallServer:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([*KIOSQ, "server", "--port", str(self.port), "--data-dir",
                                          str(self.data_dir)], stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"kiosq server exited:\n{self.log.read_text()}"
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/api/health")
                if conn.getresponse().status == 200 and f"running on {self.url}" in self.log.read_text():
                    return self
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.05)  # polling interval of a bounded wait
        self.stop()
        pytest.fail(f"kiosq server did not answer within 30 s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="module")
def hall_server(tmp_path_factory):
    """A running hall server; `.terminal_token` is a terminal token it knows."""
    server = HallServer(tmp_path_factory.mktemp("hall") / "data")
    server.terminal_token = server.token("terminal", "T03")
    server.start()
    yield server
    server.stop()
