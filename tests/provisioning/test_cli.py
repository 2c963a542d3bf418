"""The `kiosq` CLI: help everywhere, exit codes 0/1/2, one clear line on failure."""

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kiosq.provisioning.cli import main
from kiosq.queue.config import load_hall
from kiosq.queue.store import Store


def all_commands(group: click.Group, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, prefix + (name,))


@pytest.mark.parametrize("path", [p for p, _ in all_commands(main)], ids=" ".join)
def test_every_command_has_help_with_an_example(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "-h, --help" in result.output


def test_the_installed_entry_point_runs():
    exe = shutil.which("kiosq", path=str(Path(sys.executable).parent))
    assert exe is not None
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "server" in out and "demo" in out


def test_token_is_printed_once_and_works(tmp_path):
    result = CliRunner().invoke(main, ["server", "token", "--role", "staff", "--name", "张敏", "--windows", "1,2",
                                       "--data-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["windows"] == [1, 2] and printed["role"] == "staff"
    store = Store.in_dir(tmp_path, load_hall())
    token = store.token(printed["token"])
    assert token is not None and token.name == "张敏"
    store.close()


@pytest.mark.parametrize("args, code, message", [
    (["server", "token", "--role", "king", "--name", "x"], 2, "Invalid value for '--role'"),
    (["server", "token", "--role", "staff", "--name", "x", "--windows", "a,b"], 2, "window numbers separated"),
    (["server", "token", "--role", "terminal", "--name", "x", "--windows", "1"], 2, "staff tokens only"),
    (["server", "token", "--role", "staff", "--name", "x"], 2, "a staff token needs --windows"),
    (["server", "token", "--role", "admin", "--name", " "], 1, "a token needs a name"),
    (["server", "token", "--role", "staff", "--name", "x", "--windows", "42"], 1, "no window 42 in this hall"),
    (["server", "--port", "0"], 2, "Invalid value for '--port'"),
])
def test_bad_usage_exits_2_and_failure_exits_1(tmp_path, args, code, message):
    result = CliRunner().invoke(main, [*args, "--data-dir", str(tmp_path)])
    assert result.exit_code == code
    assert message in result.output


def test_server_refuses_a_bad_hall_file_before_starting(tmp_path):
    bad = tmp_path / "hall.toml"
    bad.write_text('[hall]\nname = "x"\n[[services]]\ncode = "A"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["server", "--data-dir", str(tmp_path), "--port", "8999"])
    assert result.exit_code == 1
    assert f"{bad}: services[1].name: required key is missing" in result.output


def test_server_says_when_its_port_is_taken(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["server", "--data-dir", str(tmp_path), "--port", str(port)])
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.output


def test_server_options_before_a_subcommand_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["server", "--data-dir", str(tmp_path), "token", "--role", "admin",
                                       "--name", "x"])
    assert result.exit_code == 2
    assert "--data-dir belongs after the subcommand" in result.output
    assert not (tmp_path / "kiosq.db").exists() and not (tmp_path / "data").exists()


def test_a_corrupt_database_is_one_clear_line(tmp_path):
    (tmp_path / "kiosq.db").write_bytes(b"this is not sqlite" * 100)
    result = CliRunner().invoke(main, ["server", "token", "--role", "admin", "--name", "x",
                                       "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "is not a usable kiosq database" in result.output and "Traceback" not in result.output


def test_data_folder_and_database_are_private(tmp_path):
    data = tmp_path / "fresh"
    result = CliRunner().invoke(main, ["server", "token", "--role", "admin", "--name", "x", "--data-dir", str(data)])
    assert result.exit_code == 0
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "kiosq.db").stat().st_mode & 0o777 == 0o600


def test_kiosk_with_a_server_needs_a_token(monkeypatch):
    monkeypatch.delenv("KIOSQ_TERMINAL_TOKEN", raising=False)
    result = CliRunner().invoke(main, ["kiosk", "--server", "http://127.0.0.1:8000"])
    assert result.exit_code == 2 and "needs a terminal token in $KIOSQ_TERMINAL_TOKEN" in result.output


def test_a_kiosk_whose_content_folder_holds_no_bundle_says_so_in_one_line(tmp_path):
    config = tmp_path / "terminal.toml"
    made = subprocess.run([sys.executable, "-m", "kiosq.provisioning.cli", "provision", "init", "--out", str(config),
                           "--terminal-id", "T05", "--content-dir", str(tmp_path / "content"),
                           "--data-dir", str(tmp_path / "data"), "--no-pin"],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    done = subprocess.run([sys.executable, "-m", "kiosq.provisioning.cli", "kiosk", "--config", str(config),
                           "--tour", str(tmp_path / "tour")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"{tmp_path / 'content'}: no content bundle installed; use `kiosq content install`" in done.stderr
    assert not (tmp_path / "tour").exists()  # stopped before Kivy started
