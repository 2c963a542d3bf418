"""`kiosq doctor` on a terminal made of the real device simulators (on ptys), a real hall
server on 127.0.0.1 and a real content bundle."""

import json
import shutil
import socket
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from kiosq.content.bundle import build, install
from kiosq.content.catalog import SAMPLE, load_files
from kiosq.devices.sim.idcard import SimulatedCardReader
from kiosq.devices.sim.printer import PrinterSimulator
from kiosq.devices.sim.scanner import SimulatedScanner
from kiosq.provisioning.cli import main
from kiosq.provisioning.doctor import DISK_FAIL, DISK_WARN, FAIL, OK, WARN, classify_disk, classify_skew


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return build(load_files(SAMPLE), tmp_path_factory.mktemp("bundles"))


@pytest.fixture
def devices(tmp_path):
    with PrinterSimulator(preview=tmp_path / "slip.png") as printer, \
            SimulatedCardReader(tmp_path / "idcard") as reader, SimulatedScanner(tmp_path / "scanner") as scanner:
        yield printer, reader, scanner


@pytest.fixture
def terminal(tmp_path, devices, hall_server, bundle):
    """A terminal config for the simulated devices and the running server, a token file
    (0600) and an installed content bundle. Returns a function that writes it with changes."""
    printer, reader, scanner = devices
    install(bundle, tmp_path / "content")

    def write(server: str = hall_server.url, printer_uri: str = printer.uri, token: str = hall_server.terminal_token,
              **extra: str) -> Path:
        out = tmp_path / "terminal.toml"
        args = ["provision", "init", "--out", str(out), "--force", "--terminal-id", "T03", "--server", server,
                "--printer", printer_uri, "--card-reader", extra.get("card_reader", reader.uri),
                "--scanner", f"serial:{scanner.path}", "--a4-printer", f"file:{tmp_path / 'a4.pdf'}",
                "--content-dir", str(tmp_path / "content"), "--data-dir", str(tmp_path / "data"), "--pin-stdin"]
        result = CliRunner().invoke(main, args, input="24681357\n")
        assert result.exit_code == 0, result.output
        token_file = tmp_path / "terminal.token"
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        return out

    return write


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def doctor(config: Path, *args: str):
    result = CliRunner().invoke(main, ["doctor", "--config", str(config), *args])
    lines = {line.split()[1]: line for line in result.output.splitlines()}
    return result.exit_code, lines


def test_all_ok_with_the_simulators_and_the_server(terminal):
    code, lines = doctor(terminal())
    assert code == 0, "\n".join(lines.values())
    assert set(lines) == {"config", "token", "server", "clock", "content", "printer", "card_reader", "scanner",
                          "a4_printer", "disk", "font"}
    not_ok = [line for name, line in lines.items() if not line.startswith("OK ") and name != "disk"]
    assert not not_ok, not_ok
    assert "knows this terminal as 'T03'" in lines["server"]
    assert "items, sha256" in lines["content"] and "verified" in lines["content"]


def test_a_missing_printer_fails_with_advice(terminal, tmp_path):
    code, lines = doctor(terminal(printer_uri=f"serial:{tmp_path}/no-printer"))
    assert code == 1
    assert lines["printer"].startswith("FAIL  printer") and "cannot be opened" in lines["printer"]
    assert " — if the device is right, fix [devices] printer" in lines["printer"]


def test_paper_out_fails_and_near_end_warns(terminal, devices):
    config = terminal()
    devices[0].set_paper("out")
    code, lines = doctor(config)
    assert code == 1 and lines["printer"].startswith("FAIL")
    assert "out of paper — load a new 58 mm roll" in lines["printer"]
    devices[0].set_paper("near_end")
    code, lines = doctor(config)
    assert code == 0 and lines["printer"].startswith("WARN") and "near its end" in lines["printer"]
    devices[0].set_cover_open(True)
    code, lines = doctor(config)
    assert code == 1 and "cover open — close the cover" in lines["printer"]


def test_a_silent_printer_and_an_unplugged_card_reader_fail(terminal, devices, tmp_path):
    devices[0].set_answering(False)
    code, lines = doctor(terminal(card_reader=f"serial:{tmp_path}/no-reader"))
    assert code == 1
    assert lines["printer"].startswith("FAIL") and "did not answer a status query" in lines["printer"]
    assert lines["card_reader"].startswith("FAIL") and "cannot open the ID card reader" in lines["card_reader"]


def test_server_down_fails(terminal):
    code, lines = doctor(terminal(server=f"http://127.0.0.1:{unused_port()}"))
    assert code == 1
    assert lines["server"].startswith("FAIL")
    assert "cannot reach" in lines["server"] and "kiosq server" in lines["server"]
    assert "clock" not in lines  # nothing to compare with


def test_an_unknown_token_fails_and_a_readable_token_file_fails(terminal, tmp_path):
    code, lines = doctor(terminal(token="kq_t_not_a_real_token"))
    assert code == 1 and "refuses this terminal's token" in lines["server"] and "kiosq enroll" in lines["server"]
    config = terminal()
    (tmp_path / "terminal.token").chmod(0o644)
    code, lines = doctor(config)
    assert code == 1 and lines["token"].startswith("FAIL") and "chmod 600" in lines["token"]
    (tmp_path / "terminal.token").unlink()
    code, lines = doctor(config)
    assert code == 1 and "no token file" in lines["token"] and "kiosq enroll CODE" in lines["token"]


def test_a_missing_or_damaged_bundle_fails(terminal, tmp_path):
    config = terminal()
    db = next((tmp_path / "content" / "bundles").glob("*/catalog.sqlite"))
    with open(db, "r+b") as f:
        f.seek(200)
        f.write(b"damaged")
    code, lines = doctor(config)
    assert code == 1 and lines["content"].startswith("FAIL") and "sha256" in lines["content"]
    shutil.rmtree(tmp_path / "content")
    code, lines = doctor(config)
    assert code == 1
    assert "no content bundle installed" in lines["content"] and "kiosq content install" in lines["content"]


class SkewedServer(ThreadingHTTPServer):
    """A server whose clock is `skew` seconds off, answering like a kiosq server."""

    def __init__(self, skew: float) -> None:
        skew_ = skew

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"ok": True, "hall": "skewed"} if self.path == "/api/health"
                                  else {"role": "terminal", "name": "T03"}).encode()
                self.send_response_only(200)
                self.send_header("Date", formatdate(time.time() + skew_, usegmt=True))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.mark.parametrize("skew, status", [(120, FAIL), (-15, WARN), (0, OK)])
def test_clock_skew_against_the_servers_date(terminal, skew, status):
    server = SkewedServer(skew)
    try:
        code, lines = doctor(terminal(server=server.url))
    finally:
        server.shutdown()
        server.server_close()
    assert lines["clock"].startswith(status), lines["clock"]
    assert code == (1 if status == FAIL else 0)


def test_json_lists_every_check(terminal, devices):
    devices[0].set_paper("out")
    result = CliRunner().invoke(main, ["doctor", "--config", str(terminal()), "--json"])
    checks = json.loads(result.output)
    assert result.exit_code == 1
    printer = next(c for c in checks if c["name"] == "printer")
    assert printer["status"] == "FAIL" and printer["advice"].startswith("load a new")
    assert {c["status"] for c in checks} <= {"OK", "WARN", "FAIL"}


def test_a_bad_config_fails_naming_the_key(tmp_path):
    path = tmp_path / "terminal.toml"
    path.write_text('[terminal]\nid = "T1"\n[devices]\nprintr = "serial:/dev/ttyUSB0"\n')
    code, lines = doctor(path)
    assert code == 1 and "[devices] printr: unknown key; did you mean [devices] printer?" in lines["config"]
    code, lines = doctor(tmp_path / "absent.toml")
    assert code == 1 and "kiosq provision init" in lines["config"]


@pytest.mark.parametrize("free, status", [(DISK_WARN + 1, OK), (DISK_WARN - 1, WARN), (DISK_FAIL - 1, FAIL)])
def test_disk_thresholds(free, status):
    assert classify_disk(Path("/var/lib/kiosq"), free).status == status


@pytest.mark.parametrize("skew, status", [(4, OK), (-6, WARN), (61, FAIL), (-61, FAIL)])
def test_skew_thresholds(skew, status):
    assert classify_skew(skew).status == status
