"""What the benchmarks share: a `kiosq server` subprocess on 127.0.0.1 with its tokens,
the machine they ran on, percentiles and progress lines. Imported by the bench scripts
as `harness` (the script's folder is first on sys.path)."""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import math
import os
import platform
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"


class BenchError(Exception):
    """The benchmark cannot run; the message says what to do."""


def kiosq_command() -> list[str]:
    """The `kiosq` command beside this Python (.venv/bin/kiosq), else the module."""
    cli = Path(sys.executable).parent / "kiosq"
    return [str(cli)] if cli.is_file() else [sys.executable, "-m", "kiosq.provisioning.cli"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, object]:
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu_model(), "python": platform.python_version(),
            "platform": platform.platform(terse=True)}


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def p95(values: Sequence[float]) -> float:
    return percentile(sorted(values), 95)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def connect(port: int, timeout: float, ca: Path | None = None) -> http.client.HTTPConnection:
    """A connection to 127.0.0.1:port: HTTPS verified against the hall CA `ca`, else HTTP."""
    if ca is None:
        return http.client.HTTPConnection(HOST, port, timeout=timeout)
    return http.client.HTTPSConnection(HOST, port, timeout=timeout,
                                       context=ssl.create_default_context(cafile=str(ca)))


def request(port: int, method: str, path: str, timeout: float = 5.0, ca: Path | None = None) -> tuple[int, object]:
    """One HTTP request on a fresh connection: the status and the JSON body (None if empty)."""
    conn = connect(port, timeout, ca)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, json.loads(body) if body else None
    finally:
        conn.close()


def _unlimited_hall(data_dir: Path) -> Path:
    """The built-in hall with the terminals' tickets and lookups per minute lifted (0): a
    benchmark issues thousands of tickets a minute with one terminal token."""
    from kiosq.queue import config

    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "bench-hall.toml"
    text = (Path(config.__file__).parent / "halls" / config.DEFAULT_HALL).read_text("utf-8")
    path.write_text(text + "\n[terminals]\ntickets_per_minute = 0\nlookups_per_minute = 0\n", "utf-8")
    return path


class Server:
    """A `kiosq server` subprocess on 127.0.0.1 with its own data folder and port (and, without
    a hall file, the built-in hall with no per-terminal limits). `start()`
    waits until /api/health answers; `stop()` terminates it (kills it after 5 s); it can be
    started again on the same port and data. As a context manager it is always stopped."""

    def __init__(self, data_dir: Path, kiosq: Sequence[str] | None = None, hall: Path | None = None,
                 database: str | None = None, options: Sequence[str] = ()) -> None:
        self.data_dir, self.hall, self.database = data_dir, hall or _unlimited_hall(data_dir), database
        self.options = list(options)  # more `kiosq server` options, e.g. --max-connections
        self.kiosq = list(kiosq) if kiosq else kiosq_command()
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = data_dir / f"server-{self.port}.log"  # several processes may share the folder
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ca(self) -> Path | None:
        """The hall CA when the data folder has a server certificate (the server serves HTTPS)."""
        tls = self.data_dir / "tls"
        return tls / "ca.pem" if (tls / "server.pem").is_file() else None

    def tls_init(self) -> None:
        """`kiosq server tls init` for this data folder: the server serves HTTPS from its next start."""
        cmd = [*self.kiosq, "server", "tls", "init", "--data-dir", str(self.data_dir)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise BenchError(f"`{' '.join(cmd)}` failed: {done.stderr.strip()}")

    def command(self, *words: str) -> list[str]:
        """`kiosq server WORDS --data-dir D [--hall H] [--database URL]`."""
        cmd = [*self.kiosq, "server", *words, "--data-dir", str(self.data_dir)]
        cmd += ["--hall", str(self.hall)] if self.hall else []
        return cmd + (["--database", self.database] if self.database else [])

    def token(self, role: str = "terminal", name: str = "bench", windows: str | None = None) -> str:
        """A new token made with `kiosq server token` (works whether or not the server runs)."""
        extra = ["--windows", windows] if windows else []
        cmd = self.command("token", "--role", role, "--name", name, "--json", *extra)
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            raise BenchError(f"`{' '.join(cmd)}` did not finish within 60 s") from None
        if done.returncode != 0:
            raise BenchError(f"`{' '.join(cmd)}` failed: {done.stderr.strip()}")
        try:
            secret: str = json.loads(done.stdout)["token"]
        except (ValueError, KeyError):
            raise BenchError(f"`{' '.join(cmd)}` printed no token as JSON: {done.stdout.strip()!r}") from None
        return secret

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(self.command("--host", HOST, "--port", str(self.port), *self.options),
                                         stdout=log_file,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self._wait_healthy(self.proc, timeout)
        except BaseException:
            self.stop()
            raise

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, _type: type[BaseException] | None, _exc: BaseException | None,
                 _tb: TracebackType | None) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _wait_healthy(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"the server exited with code {proc.returncode}:\n{self.log_tail()}")
            try:
                status, _ = request(self.port, "GET", "/api/health", timeout=1.0, ca=self.ca)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise BenchError(f"the server did not answer /api/health within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def retries(self) -> int | None:
        """PostgreSQL: how many changes the stopped server ran again after a conflict (from
        its last log line about it); None on SQLite or if it did not say."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return None
        found = re.findall(r"(\d+) changes were run again after conflicting", text)
        return int(found[-1]) if found else None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


# -- PostgreSQL for the benchmarks -------------------------------------------------------


def empty_database(url: str) -> None:
    """Drop everything in a bench database (its name must say "bench": never a hall's)."""
    import psycopg

    name = url.rsplit("/", 1)[-1]
    if "bench" not in name:
        raise BenchError(f"--database {url}: the bench empties its database before each run, so its name must "
                         "contain 'bench' (createdb -O kiosq kiosq_bench); or pass --database auto")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
    except psycopg.Error as exc:
        raise BenchError(f"cannot empty {url}: {str(exc).strip().splitlines()[-1]}") from None


def throwaway_database(cleanup: contextlib.ExitStack) -> str:
    """A PostgreSQL cluster in a temporary folder for this invocation (tests/pg_cluster.py,
    PostgreSQL's default settings: durable commits), stopped and removed by `cleanup`."""
    path = Path(__file__).resolve().parents[1] / "tests" / "pg_cluster.py"
    spec = importlib.util.spec_from_file_location("pg_cluster", path)
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot load {path}: --database auto needs the repository's tests folder")
    module = importlib.util.module_from_spec(spec)
    sys.modules["pg_cluster"] = module
    spec.loader.exec_module(module)
    folder = Path(tempfile.mkdtemp(prefix="kiosq-bench-pg-"))
    os.chmod(folder, 0o755)
    cleanup.callback(shutil.rmtree, folder, True)
    try:
        cluster = module.Cluster.start(folder)
    except (module.NoPostgres, RuntimeError) as exc:
        raise BenchError(f"--database auto: {exc}") from None
    cleanup.callback(cluster.stop)
    os.environ["PGPASSFILE"] = str(cluster.passfile)  # for the servers and the in-process store
    url: str = cluster.new_database("kiosq_bench")
    log(f"PostgreSQL: a throwaway cluster in {folder}, {url}")
    return url
