"""`kiosq provision install --root DIR`: the user, the units and the rest, written once,
checked by systemd's own tools where this machine has them."""

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from kiosq.kiosk.terminal_config import load_terminal_config
from kiosq.provisioning.cli import main
from kiosq.provisioning.units import CAGE

TERMINAL_FILES = ["etc/sysusers.d/kiosq.conf", "etc/sysusers.d/kiosq-terminal.conf",
                  "etc/systemd/system/kiosq-kiosk.service", "etc/pam.d/kiosq-kiosk",
                  "etc/tmpfiles.d/kiosq-console.conf", "etc/systemd/journald.conf.d/kiosq.conf"]


def install(root: Path, *args: str):
    result = CliRunner().invoke(main, ["provision", "install", "--root", str(root), *args])
    assert result.exit_code == 0, result.output
    return result.output


def unit(root: Path, name: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (root / "etc/systemd/system" / name).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_terminal_install_writes_everything_once(tmp_path):
    out = install(tmp_path)
    assert all((tmp_path / f).is_file() for f in TERMINAL_FILES)
    assert f"{len(TERMINAL_FILES)} of {len(TERMINAL_FILES)} files written" in out
    before = {f: (tmp_path / f).stat().st_mtime_ns for f in TERMINAL_FILES}
    again = install(tmp_path)
    assert f"nothing to change: all {len(TERMINAL_FILES)} files are already as wanted" in again
    assert {f: (tmp_path / f).stat().st_mtime_ns for f in TERMINAL_FILES} == before


def test_a_changed_file_is_put_back_and_only_it(tmp_path):
    install(tmp_path)
    service = tmp_path / "etc/systemd/system/kiosq-kiosk.service"
    wanted = service.read_text()
    service.write_text(wanted.replace("Restart=always", "Restart=no"))
    out = install(tmp_path)
    assert f"1 of {len(TERMINAL_FILES)} files written" in out and service.read_text() == wanted


def test_the_kiosk_unit(tmp_path):
    install(tmp_path, "--user", "kiosk")
    s = unit(tmp_path, "kiosq-kiosk.service")
    assert s["Type"] == ["notify"] and s["WatchdogSec"] == ["30"] and s["Restart"] == ["always"]
    assert s["NotifyAccess"] == ["all"]  # the app is cage's child
    assert s["User"] == ["kiosk"] and s["StateDirectory"] == ["kiosq"]
    command = s["ExecStart"][0].split()
    assert command[:3] == [CAGE, "-s", "--"] and command[-3:] == ["kiosk", "--config", "%d/terminal.toml"]
    assert Path(command[3]).is_file()  # the kiosq this install ran from
    assert "terminal.toml:/etc/kiosq/terminal.toml" in s["LoadCredential"]
    assert any("SDL_VIDEODRIVER=x11" in e for e in s["Environment"])


def test_the_server_unit_beside_the_terminal_files(tmp_path):
    install(tmp_path)
    out = install(tmp_path, "--role", "server", "--port", "8080")
    assert "unchanged" in out and "kiosq-server.service" in out  # the shared files stay as they are
    s = unit(tmp_path, "kiosq-server.service")
    assert s["Restart"] == ["always"] and s["WatchdogSec"] == ["30"] and s["StateDirectory"] == ["kiosq"]
    assert s["ExecStart"][0].endswith("server --host 0.0.0.0 --port 8080 --data-dir /var/lib/kiosq")
    # The database comes from the hall file or /etc/kiosq/server.env, never the command line.
    assert s["EnvironmentFile"] == ["-/etc/kiosq/server.env"] and "postgresql.service" in s["After"][0]
    assert "--database" not in s["ExecStart"][0]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
@pytest.mark.parametrize("role, name", [("terminal", "kiosq-kiosk.service"), ("server", "kiosq-server.service")])
def test_systemd_analyze_verify_accepts_the_units(tmp_path, role, name):
    install(tmp_path, "--role", role)
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "etc/systemd/system" / name)],
                          capture_output=True, text=True, timeout=60)
    problems = [line for line in done.stderr.splitlines() if line.strip()]
    if not Path(CAGE).exists():
        # verify checks that ExecStart's program exists; cage is installed on terminals only
        problems = [p for p in problems if f"Command {CAGE} is not executable" not in p]
    assert not problems, done.stderr


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers is not installed here")
def test_systemd_sysusers_creates_the_user_with_its_device_groups(tmp_path):
    install(tmp_path)
    done = subprocess.run(["systemd-sysusers", f"--root={tmp_path}"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Trailing garbage" not in done.stderr and "not a valid" not in done.stderr, \
        done.stderr
    assert any(line.startswith("kiosq:") for line in (tmp_path / "etc/passwd").read_text().splitlines())
    groups = {line.split(":")[0]: line.split(":")[3] for line in (tmp_path / "etc/group").read_text().splitlines()}
    assert all("kiosq" in groups[g].split(",") for g in ("dialout", "lp", "video", "input"))


def test_the_kiosk_finds_its_token_beside_the_config_copy_systemd_hands_it(tmp_path):
    # LoadCredential copies /etc/kiosq/terminal.toml and terminal.token into one private folder.
    root = tmp_path / "root"
    result = CliRunner().invoke(main, ["provision", "init", "--root", str(root), "--terminal-id", "T03", "--server",
                                       "http://10.0.0.2:8000", "--pin-stdin"], input="24681357\n")
    assert result.exit_code == 0, result.output
    (root / "etc/kiosq/terminal.token").write_text("kq_t_secret\n")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    for name in ("terminal.toml", "terminal.token"):
        shutil.copy(root / "etc/kiosq" / name, credentials / name)
    assert load_terminal_config(credentials / "terminal.toml").terminal_token == "kq_t_secret"


def test_install_says_what_to_do_when_it_cannot_write(tmp_path):
    blocker = tmp_path / "etc"
    blocker.write_text("a file where a folder should be")
    result = CliRunner().invoke(main, ["provision", "install", "--root", str(tmp_path)])
    assert result.exit_code == 1 and "run as root or pass --root" in result.output
