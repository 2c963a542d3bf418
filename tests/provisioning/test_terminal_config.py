"""The terminal config file: `kiosq provision init` writes it, `load_terminal_config` and
`kiosq kiosk --config` read it, and every mistake in it is named with its key."""

import fcntl
import os
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kiosq.content.bundle import build, install
from kiosq.content.catalog import SAMPLE, load_files
from kiosq.content.model import CatalogError
from kiosq.kiosk.maintenance import check_pin
from kiosq.kiosk.settings import KioskConfig, catalog_path
from kiosq.kiosk.terminal_config import TerminalConfigError, load_terminal_config, read_terminal_config
from kiosq.provisioning.cli import main
from kiosq.provisioning.kiosk_cli import kiosk_config

KIOSQ = [sys.executable, "-m", "kiosq.provisioning.cli"]


def init(*args, pin="24681357"):
    return CliRunner().invoke(main, ["provision", "init", *args, "--pin-stdin"], input=f"{pin}\n")


def test_init_then_load_gives_the_kiosk_config_that_was_asked_for(tmp_path):
    out = tmp_path / "etc" / "terminal.toml"
    result = init("--out", str(out), "--terminal-id", "T03", "--server", "http://10.0.0.2:8000/",
                  "--printer", "serial:/dev/ttyUSB0?baudrate=115200", "--paper", "80",
                  "--card-reader", "serial:/dev/ttyUSB1", "--scanner", "serial:/dev/ttyACM0",
                  "--a4-printer", "cups:HALL_A4", "--content-dir", "/var/lib/kiosq/content",
                  "--data-dir", "/var/lib/kiosq", "--lang", "en", "--elder", "--no-speech", "--idle", "90")
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    text = out.read_text("utf-8")
    assert "24681357" not in text  # only the hash
    config = load_terminal_config(out)
    assert check_pin("24681357", config.maintenance_pin_hash) and not check_pin("135790", config.maintenance_pin_hash)
    assert config == KioskConfig(
        terminal_id="T03", server_url="http://10.0.0.2:8000", terminal_token=None,
        server_ca_file=out.parent / "hall-ca.pem",  # beside the config: `kiosq enroll --ca-fingerprint` writes it
        content_signing_key=out.parent / "hall-signing.pub",  # beside it too: `kiosq enroll` writes the hall's key
        printer_uri="serial:/dev/ttyUSB0?baudrate=115200", paper_mm=80, card_reader_uri="serial:/dev/ttyUSB1",
        scanner_uri="serial:/dev/ttyACM0", a4_printer_uri="cups:HALL_A4",
        content_dir=Path("/var/lib/kiosq/content"), data_dir=Path("/var/lib/kiosq"), lang="en", elder=True,
        speech=False, idle_timeout=90.0, maintenance_pin_hash=config.maintenance_pin_hash)
    # the token lives beside the config (relative path), written later by `kiosq enroll`
    assert read_terminal_config(out).token_file == out.parent / "terminal.token"
    (out.parent / "terminal.token").write_text("kq_t_secret\n")
    assert load_terminal_config(out).terminal_token == "kq_t_secret"


def test_init_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "terminal.toml"
    assert init("--out", str(out), "--terminal-id", "T01").exit_code == 0
    first = out.read_text()
    again = init("--out", str(out), "--terminal-id", "T02")
    assert again.exit_code == 1 and "pass --force" in again.output and out.read_text() == first
    assert init("--out", str(out), "--terminal-id", "T02", "--force").exit_code == 0
    assert load_terminal_config(out).terminal_id == "T02"


def test_init_into_a_root_writes_etc_kiosq(tmp_path):
    assert init("--root", str(tmp_path), "--terminal-id", "T05").exit_code == 0
    assert load_terminal_config(tmp_path / "etc/kiosq/terminal.toml").terminal_id == "T05"


@pytest.mark.parametrize("args, message", [
    (["--terminal-id", "T1", "--printer", "/dev/ttyUSB0"], "is not a device URI"),
    (["--terminal-id", "T1", "--card-reader", "tcp:10.0.0.5:9100"], "on a serial port"),
    (["--terminal-id", "T1", "--server", "10.0.0.2:8000"], "starts with http://"),
    (["--printer", "serial:/dev/ttyUSB0"], "give --terminal-id"),
])
def test_init_names_the_bad_option(tmp_path, args, message):
    result = init("--out", str(tmp_path / "t.toml"), *args)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "t.toml").exists()


def test_init_needs_a_pin_or_no_pin_when_not_asked(tmp_path):
    result = CliRunner().invoke(main, ["provision", "init", "--out", str(tmp_path / "t.toml"), "--terminal-id", "T1"])
    assert result.exit_code == 2 and "--pin-stdin" in result.output
    result = CliRunner().invoke(main, ["provision", "init", "--out", str(tmp_path / "t.toml"), "--terminal-id", "T1",
                                       "--no-pin"])
    assert result.exit_code == 0 and load_terminal_config(tmp_path / "t.toml").maintenance_pin_hash is None


@pytest.mark.parametrize("pin, message", [
    ("12345", "the maintenance PIN is at least 6 digits (this one has 5); choose a longer one"),
    ("12", "the maintenance PIN is at least 6 digits (this one has 2)"),
    ("1234567890123", "the maintenance PIN is at most 12 digits (the keypad takes no more)"),
    ("12345a", "the maintenance PIN is digits only"),
    ("", "the maintenance PIN is empty; choose 6 to 12 digits"),
])
def test_init_refuses_a_pin_the_keypad_should_not_take(tmp_path, pin, message):
    result = init("--out", str(tmp_path / "t.toml"), "--terminal-id", "T1", pin=pin)
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert not (tmp_path / "t.toml").exists()
    assert init("--out", str(tmp_path / "t.toml"), "--terminal-id", "T1", pin="123456").exit_code == 0


def _on_a_terminal(args: list[str], answers: list[tuple[str, str]], tmp_path: Path) -> tuple[int, str]:
    """Run `kiosq` with a pseudo-terminal as its controlling terminal and answer each prompt."""
    master, slave = os.openpty()
    proc = subprocess.Popen([*KIOSQ, *args], stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path,
                            start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    seen = b""
    try:
        for prompt, answer in answers:
            deadline = time.monotonic() + 20
            while prompt.encode() not in seen:
                left = deadline - time.monotonic()
                assert left > 0, f"no prompt {prompt!r}; got {seen.decode(errors='replace')}"
                if select.select([master], [], [], left)[0]:
                    seen += os.read(master, 4096)
            seen = seen[seen.index(prompt.encode()) + len(prompt):]
            os.write(master, answer.encode() + b"\r")
        code = proc.wait(30)
        try:
            while select.select([master], [], [], 1)[0] and (chunk := os.read(master, 4096)):
                seen += chunk
        except OSError:
            pass  # EIO: the child closed the terminal
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, seen.decode(errors="replace")


def test_init_asks_on_a_terminal(tmp_path):
    code, output = _on_a_terminal(["provision", "init", "--out", "t.toml"], [
        ("Terminal id", "T07"), ("Hall server URL", "ftp://nope"), ("Hall server URL", "http://10.0.0.9:8000"),
        ("Receipt printer URI", "serial:/dev/ttyS0"), ("ID card reader URI", ""), ("Scanner URI", ""),
        ("A4 printer URI", ""),
        # five digits are refused and the PIN asked for again (a second prompt), then six are taken
        ("Maintenance PIN (6 to 12 digits): ", "13579"), ("Maintenance PIN (6 to 12 digits): ", "135790"),
        ("Repeat for confirmation", "135790")], tmp_path)
    assert code == 0, output
    config = load_terminal_config(tmp_path / "t.toml")
    assert (config.terminal_id, config.server_url, config.printer_uri, config.card_reader_uri) == \
        ("T07", "http://10.0.0.9:8000", "serial:/dev/ttyS0", None)
    assert check_pin("135790", config.maintenance_pin_hash)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "terminal.toml"
    path.write_text('[terminal]\nid = "T01"\n' + text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text, message", [
    ('[devices]\nprintr = "serial:/dev/ttyUSB0"\n', "[devices] printr: unknown key; did you mean [devices] printer?"),
    ('[screen]\nprinter = "serial:/dev/ttyUSB0"\n', "[screen] printer: unknown key; did you mean [devices] printer?"),
    ('[device]\nprinter = "serial:/dev/ttyUSB0"\n', "[device]: unknown section; did you mean [devices]?"),
    ('[devices]\npaper_width = "58"\n', '[devices] paper_width: is 58 or 80 (a number, no quotes), not "58"'),
    ('[screen]\nelder_mode = "yes"\n', '[screen] elder_mode: is true or false (no quotes), not "yes"'),
    ('[screen]\nidle_timeout = 0\n', "[screen] idle_timeout: is a positive number of seconds"),
    ('[screen]\nlanguage = "fr"\n', "[screen] language: is one of zh, en, not 'fr'"),
    ('[devices]\nprinter = "/dev/ttyUSB0"\n', "[devices] printer: '/dev/ttyUSB0' is not a device URI"),
    ('[devices]\nscanner = "tcp:10.0.0.5:9100"\n',
     "[devices] scanner: 'tcp:10.0.0.5:9100': this device is on a serial"),
    ('[server]\nurl = "10.0.0.2:8000"\n', "[server] url: starts with http:// or https://"),
    ('[maintenance]\npin_hash = "2468"\n', "[maintenance] pin_hash: is not a PIN hash made by kiosq"),
    ('[content]\nfolder = "c"\ncatalog = "c.sqlite"\n', "[content] folder and [content] catalog are both set"),
    ('[terminal]\n', "not valid TOML"),
])
def test_every_problem_names_the_file_and_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(TerminalConfigError) as caught:
        load_terminal_config(path)
    assert any(line.startswith(f"{path}: ") and message in line for line in caught.value.problems), caught.value


def test_a_missing_id_and_a_missing_file_say_what_to_do(tmp_path):
    path = tmp_path / "terminal.toml"
    path.write_text('[screen]\nlanguage = "en"\n')
    with pytest.raises(TerminalConfigError, match=r"\[terminal\] id: required key is missing"):
        load_terminal_config(path)
    with pytest.raises(TerminalConfigError, match="kiosq provision init --out"):
        load_terminal_config(tmp_path / "absent.toml")


def test_all_problems_are_reported_at_once(tmp_path):
    path = write(tmp_path, '[devices]\nprintr = "x"\npaper_width = 57\n')
    with pytest.raises(TerminalConfigError) as caught:
        load_terminal_config(path)
    assert len(caught.value.problems) == 2


def test_the_kiosk_command_takes_the_config_and_options_given_override_it(tmp_path, monkeypatch):
    monkeypatch.delenv("KIOSQ_TERMINAL_TOKEN", raising=False)
    out = tmp_path / "terminal.toml"
    assert init("--out", str(out), "--terminal-id", "T03", "--server", "http://10.0.0.2:8000",
                "--printer", "serial:/dev/ttyUSB0", "--data-dir", "kiosk-data").exit_code == 0
    (tmp_path / "terminal.token").write_text("kq_t_from_file")
    defaults = {"catalog_db": None, "printer_uri": None, "lang": "zh", "elder": False, "idle_timeout": 60.0,
                "server_url": None, "data_dir": Path("data")}
    config = kiosk_config(out, defaults, set(), "KIOSQ_TERMINAL_TOKEN")
    assert (config.printer_uri, config.lang, config.terminal_token, config.data_dir) == \
        ("serial:/dev/ttyUSB0", "zh", "kq_t_from_file", tmp_path / "kiosk-data")
    monkeypatch.setenv("OTHER_TOKEN", "kq_t_from_env")
    config = kiosk_config(out, {**defaults, "printer_uri": "tcp:10.0.0.5:9100", "lang": "en"},
                          {"printer", "lang", "token_env"}, "OTHER_TOKEN")
    assert (config.printer_uri, config.lang, config.terminal_token, config.terminal_id) == \
        ("tcp:10.0.0.5:9100", "en", "kq_t_from_env", "T03")


def test_the_kiosk_command_says_to_enroll_when_the_token_file_is_missing(tmp_path, monkeypatch):
    out = tmp_path / "terminal.toml"
    assert init("--out", str(out), "--terminal-id", "T03", "--server", "http://10.0.0.2:8000").exit_code == 0
    monkeypatch.setenv("KIOSQ_CONFIG", str(out))  # the same as --config
    result = CliRunner().invoke(main, ["kiosk"])
    assert result.exit_code == 1
    assert f"no terminal token in {tmp_path / 'terminal.token'}" in result.output and "kiosq enroll" in result.output


def test_the_kiosk_command_reports_a_bad_config_by_key(tmp_path):
    path = write(tmp_path, '[devices]\nprinter = "ttyUSB0"\n')
    result = CliRunner().invoke(main, ["kiosk", "--config", str(path)])
    assert result.exit_code == 1 and f"{path}: [devices] printer:" in result.output


def test_a_content_folder_shows_its_active_bundle(tmp_path):
    content = tmp_path / "content"
    with pytest.raises(CatalogError, match="no content bundle installed"):
        catalog_path(KioskConfig(content_dir=content))
    manifest = install(build(load_files(SAMPLE), tmp_path / "bundles"), content)
    assert catalog_path(KioskConfig(content_dir=content)) == content / "bundles" / manifest.version / "catalog.sqlite"
