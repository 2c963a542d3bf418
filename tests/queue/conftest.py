"""Fixtures for tests over real HTTP: `kiosq server` as a subprocess on 127.0.0.1.

`hall_server(data_dir=None)` starts a server on a free port (a fresh data folder under
tmp_path unless one is given), creates a terminal, a staff (windows 1-8) and an admin
token with `kiosq server token`, and returns a `ServerProcess`. The process can be
SIGKILLed (`kill()`), stopped (`stop()`) and started again on the same data folder
(`start()`), for crash and restart tests. Every process is reaped at teardown.

Both fixtures run each test twice: on SQLite in the data folder and on a PostgreSQL
database of the test's own (`database` in tests/conftest.py), given to the server and to
`kiosq server token` as `--database URL` (the password through PGPASSFILE). A second
process of the same hall: `hall_server(first.data_dir, tokens=False)`.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from kiosq.queue.config import HallConfigError, load_hall

KIOSQ = [str(Path(sys.executable).parent / "kiosq")]
if not Path(KIOSQ[0]).is_file():
    KIOSQ = [sys.executable, "-m", "kiosq.provisioning.cli"]

DEFAULT_HALL = Path(__file__).resolve().parents[2] / "queue" / "halls" / "default.toml"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_token(data_dir: Path, role: str, name: str, windows: str | None = None, database: str | None = None) -> str:
    cmd = [*KIOSQ, "server", "token", "--role", role, "--name", name, "--data-dir", str(data_dir), "--json"]
    if database:
        cmd += ["--database", database]
    if windows:
        cmd += ["--windows", windows]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr}"
    out = json.loads(done.stdout)
    assert out["role"] == role and out["name"] == name
    return out["token"]


class ServerProcess:
    """One `kiosq server` data folder and port; the process on it can come and go."""

    def __init__(self, data_dir: Path, log_dir: Path, port: int | None = None, database: str | None = None) -> None:
        self.data_dir = data_dir
        self.database = database  # a PostgreSQL URL, or None: SQLite in data_dir
        self.log_dir = log_dir
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.log_path: Path | None = None
        self._log = None
        self.tokens: dict[str, str] = {}

    @property
    def tls_ca(self) -> Path | None:
        """The hall CA, when the data folder has a server certificate (the server serves HTTPS)."""
        return self.data_dir / "tls" / "ca.pem" if (self.data_dir / "tls" / "server.pem").is_file() else None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_ca else 'http'}://{self.host}:{self.port}"

    def connection(self, timeout: float = 1.0) -> http.client.HTTPConnection:
        """A connection to the server, over TLS verified against the hall CA when it serves HTTPS."""
        if self.tls_ca is None:
            return http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        context = ssl.create_default_context(cafile=str(self.tls_ca))
        return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=context)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def make_tokens(self) -> None:
        self.tokens["terminal"] = self.token("terminal", "T")
        self.tokens["staff"] = self.token("staff", "S", "1,2,3,4,5,6,7,8")
        self.tokens["admin"] = self.token("admin", "ADM")

    def token(self, role: str, name: str, windows: str | None = None) -> str:
        return make_token(self.data_dir, role, name, windows, self.database)

    def steady_hall(self) -> list[str]:
        """The hall this server runs (DATA_DIR/hall.toml, else the built-in one) with its
        rollover hour moved 12 hours away from the hall's time now. A server over real HTTP
        runs on the wall clock: at 03:59 a test's tickets would be closed by the 04:00
        rollover half-way through it. Tests of the rollover itself inject a clock instead
        (tests/queue/test_store.py, test_api.py). Unless the hall file has a [terminals] table
        of its own, the terminals' tickets and lookups per minute are lifted (0): load tests
        issue thousands of tickets with one terminal token (tests/queue/test_retention_http.py
        tests the limits). Returns the `--hall` arguments; none for a hall file the server
        should refuse (its own words are what such a test checks)."""
        own = self.data_dir / "hall.toml"
        text = own.read_text("utf-8") if own.is_file() else DEFAULT_HALL.read_text("utf-8")
        try:
            hall = load_hall(own if own.is_file() else None)
        except HallConfigError:
            return []
        hour = (datetime.now(hall.tz).hour + 12) % 24
        text, found = re.subn(r"(?m)^rollover_hour\s*=.*$", f"rollover_hour = {hour}", text)
        if not found:
            text = re.sub(r"(?m)^\[hall\]$", f"[hall]\nrollover_hour = {hour}", text, count=1)
        if not re.search(r"(?m)^\[terminals\]", text):
            text += "\n[terminals]\ntickets_per_minute = 0\nlookups_per_minute = 0\n"
        path = self.log_dir / f"hall-{self.port}-{self.starts}.toml"
        path.write_text(text, "utf-8")
        return ["--hall", str(path)]

    def start(self, timeout: float = START_TIMEOUT) -> ServerProcess:
        """Start the server and wait until /api/health answers. On the first start only, a
        port that another process took since free_port() is replaced by a new one; restarts
        keep the port, as clients expect."""
        for attempt in range(3):
            if self._start(timeout, may_move=self.starts == 0 and attempt < 2):
                return self
            self.port = free_port()
        raise AssertionError("unreachable")

    def _start(self, timeout: float, may_move: bool) -> bool:
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        self._close_log()
        self.starts += 1
        self.log_path = self.log_dir / f"server-{self.port}-{self.starts}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (the server writes to it until _close_log)
        self.proc = subprocess.Popen(
            [*KIOSQ, "server", "--host", self.host, "--port", str(self.port), "--data-dir", str(self.data_dir),
             *self.steady_hall(), *(["--database", self.database] if self.database else [])],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if may_move and "already in use" in self.log():
                    self.starts = 0
                    return False
                pytest.fail(f"kiosq server exited with {self.proc.returncode} while starting:\n{self.log()}")
            try:
                conn = self.connection(timeout=1)
                try:
                    conn.request("GET", "/api/health")
                    resp = conn.getresponse()
                    body = resp.read()
                finally:
                    conn.close()
                # Our own process must say it listens: the health answer alone could come
                # from another server that holds the port.
                if (resp.status == 200 and json.loads(body).get("ok") is True
                        and f"running on {self.url}" in self.log(full=True)):
                    return True
                last_error = AssertionError(f"/api/health answered {resp.status}: {body[:200]!r}")
            except (OSError, http.client.HTTPException) as exc:
                last_error = exc
            time.sleep(0.05)  # polling interval of a bounded wait
        self.kill()
        pytest.fail(f"kiosq server did not answer /api/health within {timeout} s ({last_error!r}):\n{self.log()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code (None if not running)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        self._close_log()
        return self.proc.returncode

    def kill(self) -> int | None:
        """SIGKILL (a crash) and reap."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT)
        self._close_log()
        return self.proc.returncode

    def log(self, full: bool = False) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text("utf-8", errors="replace")
        return text if full else text[-6000:]

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


@pytest.fixture
def hall_server(tmp_path, database):
    """Factory: `hall_server()` -> a running ServerProcess with tokens in .tokens, on the
    test's database (PostgreSQL's is one for all the test's servers). A second process of
    the same hall: `hall_server(first.data_dir, tokens=False)`, sharing the folder's keys."""
    servers: list[ServerProcess] = []

    def start(data_dir: Path | None = None, port: int | None = None, database: str | None = None,
              tokens: bool = True) -> ServerProcess:
        data_dir = data_dir or tmp_path / f"data{len(servers)}"
        srv = ServerProcess(Path(data_dir), tmp_path, port, database or database_url)
        servers.append(srv)
        if tokens:
            srv.make_tokens()
        return srv.start()

    database_url = database.url

    yield start
    for srv in servers:
        srv.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory, module_database):
    """One server for a module's tests that only read or add a few tickets."""
    tmp = tmp_path_factory.mktemp("kiosq-shared")
    srv = ServerProcess(tmp / "data", tmp, database=module_database.url)
    try:
        srv.make_tokens()
        srv.start()
        yield srv
    finally:
        srv.stop()
