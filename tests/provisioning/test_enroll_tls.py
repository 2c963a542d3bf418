"""A terminal pins the hall: `kiosq enroll --ca-fingerprint` over real TLS on 127.0.0.1.

The CA is fetched, refused unless its fingerprint is the one typed (the code stays unused),
and kept beside the config; the terminal's client and doctor then trust that CA and no
other, so a server with another certificate (an impostor, or a hall that made a new CA)
is refused in plain words and nothing is sent to it."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from kiosq.kiosk.hall_client import HallClient, ServerUntrusted
from kiosq.kiosk.terminal_config import read_terminal_config
from tests.queue.conftest import KIOSQ, ServerProcess

pytestmark = pytest.mark.slow


def kiosq(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*KIOSQ, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def hall(tmp_path):
    data = tmp_path / "hall"
    made = kiosq("server", "tls", "init", "--data-dir", str(data))
    assert made.returncode == 0, made.stderr
    srv = ServerProcess(data, tmp_path)
    srv.make_tokens()
    srv.start()
    yield srv, made.stdout.strip()
    srv.stop()


def terminal_config(tmp_path, url: str):
    config = tmp_path / "t03" / "terminal.toml"
    done = kiosq("provision", "init", "--out", str(config), "--terminal-id", "T03", "--server", url,
                 "--data-dir", str(tmp_path / "t03" / "data"), "--no-pin")
    assert done.returncode == 0, done.stderr
    return config


def new_code(srv) -> dict:
    done = kiosq("server", "enroll-code", "--terminal", "T03", "--data-dir", str(srv.data_dir), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_enrolling_pins_the_hall_ca_and_a_wrong_fingerprint_is_refused(hall, tmp_path):
    srv, printed = hall
    config = terminal_config(tmp_path, srv.url)
    code = new_code(srv)
    assert code["ca_fingerprint"] == printed  # beside the code, for IT staff to type both

    missing = kiosq("enroll", code["code"], "--server", srv.url, "--config", str(config))
    assert missing.returncode == 2 and "needs --ca-fingerprint" in missing.stderr
    wrong = "SHA256:" + ("0" * 64)
    refused = kiosq("enroll", code["code"], "--server", srv.url, "--config", str(config), "--ca-fingerprint", wrong)
    assert refused.returncode == 1 and f"its CA is {printed}, not {wrong} as typed" in refused.stderr
    ca_file = config.parent / "hall-ca.pem"
    assert not ca_file.exists() and not (config.parent / "terminal.token").exists()

    # The same code still works (nothing was sent); typed in upper case with colons, as tools show it.
    typed = "SHA256:" + ":".join(printed[7:][i:i + 2] for i in range(0, 64, 2)).upper()
    done = kiosq("enroll", code["code"], "--server", srv.url, "--config", str(config), "--ca-fingerprint", typed)
    assert done.returncode == 0, done.stderr
    assert ca_file.read_bytes() == (srv.data_dir / "tls" / "ca.pem").read_bytes()
    cfg = read_terminal_config(config)
    assert cfg.ca_file == ca_file
    client = HallClient(srv.url, cfg.read_token(), ca_file=cfg.ca_file)
    try:
        assert client.hall()["ok"] is True
    finally:
        client.close()
    doctor = kiosq("doctor", "--config", str(config), "--json")
    server_line = next(c for c in json.loads(doctor.stdout) if c["name"] == "server")
    assert server_line["status"] == "OK", server_line


def test_an_enrolled_terminal_refuses_a_server_with_another_certificate(hall, tmp_path):
    srv, printed = hall
    config = terminal_config(tmp_path, srv.url)
    assert kiosq("enroll", new_code(srv)["code"], "--server", srv.url, "--config", str(config),
                 "--ca-fingerprint", printed).returncode == 0
    cfg = read_terminal_config(config)

    # Another CA on the same address: an impostor, or a hall that made a new CA.
    srv.stop()
    shutil.move(srv.data_dir / "tls", srv.data_dir / "tls.old")
    assert kiosq("server", "tls", "init", "--data-dir", str(srv.data_dir)).returncode == 0
    srv.start()
    client = HallClient(srv.url, cfg.read_token(), ca_file=cfg.ca_file)
    try:
        with pytest.raises(ServerUntrusted, match="its certificate is not signed by the hall CA this terminal pinned"):
            client.services()
    finally:
        client.close()
    doctor = kiosq("doctor", "--config", str(config), "--json")
    assert doctor.returncode == 1
    server_line = next(c for c in json.loads(doctor.stdout) if c["name"] == "server")
    assert server_line["status"] == "FAIL" and "not signed by the hall CA" in server_line["detail"]


def test_an_https_server_without_a_pinned_ca_gets_nothing(hall, tmp_path):
    srv, _printed = hall
    client = HallClient(srv.url, srv.tokens["terminal"], ca_file=tmp_path / "none.pem")
    try:
        with pytest.raises(ServerUntrusted, match="no hall CA is pinned"):
            client.take_ticket("A", "k-1")
    finally:
        client.close()
