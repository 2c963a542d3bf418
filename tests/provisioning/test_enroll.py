"""`kiosq enroll CODE --server URL --config FILE` against a real `kiosq server` on 127.0.0.1,
with codes from `kiosq server enroll-code`: the token file is 0600 from its first byte,
codes work once, an expired code is refused, a wrong server is refused before the code is
spent, and an unreachable server is one plain line."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from kiosq.provisioning.cli import main
from tests.provisioning.conftest import KIOSQ, free_port


def code_for(server, terminal: str) -> str:
    done = subprocess.run([*KIOSQ, "server", "enroll-code", "--terminal", terminal, "--ttl", "10m", "--data-dir",
                           str(server.data_dir), "--json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["code"]


def config_for(tmp_path: Path, server_url: str | None, terminal: str = "T07") -> Path:
    out = tmp_path / "etc" / "terminal.toml"
    args = ["provision", "init", "--out", str(out), "--force", "--terminal-id", terminal, "--no-pin",
            "--data-dir", str(tmp_path / "data")]
    if server_url:
        args += ["--server", server_url]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out


def enroll(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*KIOSQ, "enroll", *args], capture_output=True, text=True, timeout=60)


def test_enroll_writes_a_private_token_that_the_server_knows(hall_server, tmp_path):
    config = config_for(tmp_path, hall_server.url)
    code = code_for(hall_server, "T07")
    done = enroll(code.lower(), "--server", hall_server.url + "/", "--config", str(config))
    assert done.returncode == 0, done.stderr
    token_file = config.parent / "terminal.token"
    assert "enrolled as 'T07'" in done.stdout and str(token_file) in done.stdout
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    me = requests.get(hall_server.url + "/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=5).json()
    assert me["name"] == "T07" and me["role"] == "terminal"
    assert not [p for p in token_file.parent.iterdir() if p.name.startswith(".")]  # no temporary file left

    # the same code again: used, and the token file is left alone
    again = enroll(code, "--server", hall_server.url, "--config", str(config))
    assert again.returncode == 1 and "used already" in again.stderr and "Traceback" not in again.stderr
    assert token_file.read_text().strip() == token

    # enrolling again with a new code replaces the token, and the old one stops working
    done = enroll(code_for(hall_server, "T07"), "--server", hall_server.url, "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert token_file.read_text().strip() != token
    assert requests.get(hall_server.url + "/api/me", headers={"Authorization": f"Bearer {token}"},
                        timeout=5).status_code == 401


def test_an_expired_code_is_refused(hall_server, tmp_path):
    from kiosq.queue import fleet
    from kiosq.queue.server import resolve_hall
    from kiosq.queue.store import Store

    config = config_for(tmp_path, hall_server.url, "T08")
    code = fleet.new_enroll_code()
    store = Store.in_dir(hall_server.data_dir, resolve_hall(hall_server.data_dir, None))
    try:  # the server's own store, with a code that ran out a minute ago
        store.add_enroll_code("T08", fleet.hash_code(code), store.clock() - timedelta(minutes=1), "test")
    finally:
        store.close()
    done = enroll(code, "--server", hall_server.url, "--config", str(config))
    assert done.returncode == 1 and "expired" in done.stderr and "ask the hall admin for a new one" in done.stderr
    assert not (config.parent / "terminal.token").exists()


def test_an_unknown_code_and_a_malformed_code(hall_server, tmp_path):
    config = config_for(tmp_path, hall_server.url, "T09")
    done = enroll("ZZZZ-ZZZZ", "--server", hall_server.url, "--config", str(config))
    assert done.returncode == 1 and "no such enrollment code" in done.stderr
    done = enroll("x", "--server", hall_server.url, "--config", str(config))
    assert done.returncode == 1 and "not an enrollment code" in done.stderr


def test_a_different_server_is_refused_before_the_code_is_spent(hall_server, tmp_path):
    config = config_for(tmp_path, "http://10.9.9.9:8000", "T10")
    code = code_for(hall_server, "T10")
    done = enroll(code, "--server", hall_server.url, "--config", str(config))
    assert done.returncode == 1 and 'says [server] url = "http://10.9.9.9:8000"' in done.stderr
    assert "the code was not used" in done.stderr
    no_server = config_for(tmp_path / "b", None, "T10")
    done = enroll(code, "--server", hall_server.url, "--config", str(no_server))
    assert done.returncode == 1 and "has no [server] url" in done.stderr
    # the code still works once the config is right
    config = config_for(tmp_path / "c", hall_server.url, "T10")
    assert enroll(code, "--server", hall_server.url, "--config", str(config)).returncode == 0


def test_an_unreachable_server_and_bad_usage(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    config = config_for(tmp_path, url)
    done = enroll("K7QF-2M9X", "--server", url, "--config", str(config))
    assert done.returncode == 1 and f"cannot reach the hall server at {url}" in done.stderr
    assert "Traceback" not in done.stderr
    assert enroll("K7QF-2M9X", "--config", str(config)).returncode == 2  # no --server
    assert enroll("K7QF-2M9X", "--server", "10.0.0.2:8000", "--config", str(config)).returncode == 2
    missing = enroll("K7QF-2M9X", "--server", url, "--config", str(tmp_path / "none.toml"))
    assert missing.returncode == 1 and "kiosq provision init" in missing.stderr


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_write_secret_is_0600_whatever_the_umask(tmp_path, umask):
    from kiosq.provisioning.terminal_cli import write_secret

    old = os.umask(umask)
    try:
        write_secret(tmp_path / "t" / "terminal.token", "abc")
        write_secret(tmp_path / "t" / "terminal.token", "def")  # replaces
    finally:
        os.umask(old)
    path = tmp_path / "t" / "terminal.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "def\n"


def test_doctor_warns_when_the_server_publishes_other_content(hall_server, tmp_path):
    from kiosq.content.bundle import build, install
    from kiosq.content.catalog import SAMPLE, load_files

    items = load_files(SAMPLE)
    ours = build(items, tmp_path / "ours")
    config = tmp_path / "terminal.toml"
    result = CliRunner().invoke(main, ["provision", "init", "--out", str(config), "--terminal-id", "T11", "--no-pin",
                                       "--server", hall_server.url, "--content-dir", str(tmp_path / "content"),
                                       "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    install(ours, tmp_path / "content")
    assert enroll(code_for(hall_server, "T11"), "--server", hall_server.url, "--config", str(config)).returncode == 0

    def content_line() -> dict:
        done = subprocess.run([*KIOSQ, "doctor", "--config", str(config), "--json"], capture_output=True, text=True,
                              timeout=60)
        return next(c for c in json.loads(done.stdout) if c["name"] == "content")

    for manifest in (ours, build(items[:-1], tmp_path / "theirs")):
        done = subprocess.run([*KIOSQ, "server", "publish", str(manifest), "--data-dir", str(hall_server.data_dir)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        line = content_line()
        if manifest == ours:
            assert line["status"] == "OK" and "the server publishes the same" in line["detail"]
    theirs = json.loads(manifest.read_text())["version"]
    assert line["status"] == "WARN" and f"the server publishes {theirs}" in line["detail"]
