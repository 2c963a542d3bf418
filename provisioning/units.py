"""What `kiosq provision install` writes: the kiosq system user, systemd units for the kiosk
(under the cage compositor) or the hall server, console blanking off, and journald limits.

The files are built as text here (pure) and written by `install_files`, which leaves a
file alone when it already says the same, so running install twice changes nothing.
Where each file goes, and why, is in docs/terminal-config.md ("Lockdown").
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HEADER = "# Written by `kiosq provision install`; run it again rather than editing this file.\n"
CAGE = "/usr/bin/cage"
VT = "tty1"


@dataclass(frozen=True)
class InstallFile:
    path: str  # relative to the root, e.g. "etc/systemd/system/kiosq-kiosk.service"
    text: str
    mode: int = 0o644


def kiosq_command() -> list[str]:
    """The installed `kiosq` entry point beside this Python, else `python -m` of the CLI."""
    exe = Path(sys.executable).parent / "kiosq"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "kiosq.provisioning.cli"]


def sysusers(user: str, role: str) -> list[InstallFile]:
    """The user (the same file for both roles, so a machine may have both) and, for a
    terminal, the groups that open its devices."""
    files = [InstallFile("etc/sysusers.d/kiosq.conf", HEADER + f'u {user} - "kiosq" /var/lib/kiosq -\n')]
    if role == "terminal":
        why = {"dialout": "serial ports: receipt printer, ID card reader, scanner", "lp": "USB printers",
               "video": "the screen (DRM)", "render": "the GPU", "input": "the touchscreen"}
        files.append(InstallFile("etc/sysusers.d/kiosq-terminal.conf",
                                 HEADER + "".join(f"# {what}\nm {user} {group}\n" for group, what in why.items())))
    return files


def kiosk_unit(kiosq: list[str], user: str) -> InstallFile:
    command = shlex.join([*kiosq, "kiosk", "--config"]) + " %d/terminal.toml"
    text = f"""{HEADER}# The kiosk app full screen under the cage compositor (Kivy's SDL has no Wayland:
# it draws through cage's Xwayland), on {VT}, restarted whatever happens.
[Unit]
Description=kiosq kiosk (touchscreen app under cage)
After=systemd-user-sessions.service plymouth-quit-wait.service network-online.target
Wants=network-online.target
Conflicts=getty@{VT}.service
After=getty@{VT}.service
ConditionPathExists=/dev/tty0
# Restart=always for ever: a kiosk never gives up
StartLimitIntervalSec=0

[Service]
# READY=1 once the window runs, WATCHDOG=1 from Kivy's clock (kiosk/sdnotify.py): a frozen
# UI stops the pings and systemd restarts it. The app is cage's child, hence NotifyAccess=all.
Type=notify
NotifyAccess=all
WatchdogSec=30
TimeoutStartSec=90
Restart=always
RestartSec=2
User={user}
# A logind session on the VT gives cage the screen and the touchscreen.
PAMName=kiosq-kiosk
TTYPath=/dev/{VT}
TTYReset=yes
TTYVHangup=yes
TTYVTDisallocate=yes
StandardInput=tty-fail
StandardOutput=journal
StandardError=journal
UtmpIdentifier={VT}
UtmpMode=user
# /var/lib/kiosq, owned by {user}: the kiosk's data folder, content bundles, Kivy's home
StateDirectory=kiosq
# The config and the token stay root's (0600); systemd hands the kiosk private copies.
# The config names its token file relative to itself, so it finds the copy beside it.
LoadCredential=terminal.toml:/etc/kiosq/terminal.toml
LoadCredential=terminal.token:/etc/kiosq/terminal.token
Environment=SDL_VIDEODRIVER=x11 KIVY_HOME=/var/lib/kiosq/kivy KIVY_NO_ARGS=1
# Kivy logs to the journal only (no log files of its own to rotate)
Environment=KCFG_KIVY_LOG_ENABLE=0
# cage starts even while the touchscreen is unplugged
Environment=WLR_LIBINPUT_NO_DEVICES=1
ExecStart={CAGE} -s -- {command}
NoNewPrivileges=yes
ProtectHome=yes

[Install]
WantedBy=graphical.target
"""
    return InstallFile("etc/systemd/system/kiosq-kiosk.service", text)


def kiosk_pam() -> InstallFile:
    # The session that PAMName= opens: pam_systemd registers it with logind (seat, VT).
    return InstallFile("etc/pam.d/kiosq-kiosk", HEADER + "auth     required pam_unix.so nullok\n"
                       "account  required pam_unix.so\nsession  required pam_unix.so\n"
                       "session  required pam_systemd.so\n")


def server_unit(kiosq: list[str], user: str, port: int) -> InstallFile:
    command = shlex.join([*kiosq, "server", "--host", "0.0.0.0", "--port", str(port), "--data-dir", "/var/lib/kiosq"])
    text = f"""{HEADER}# The hall server: tickets, windows, displays, terminals. Its database, keys and
# hall.toml live in /var/lib/kiosq (StateDirectory, mode 0700). Before its first start run
# `kiosq server tls init --data-dir /var/lib/kiosq --host NAME --ip ADDR`: without the hall's
# certificate it refuses to serve the network in plain HTTP. The database is SQLite there,
# unless hall.toml's [database] url, or KIOSQ_DATABASE_URL in /etc/kiosq/server.env, names a
# PostgreSQL database; its password in the file PGPASSFILE names (server.env, e.g.
# PGPASSFILE=/etc/kiosq/pgpass, owner kiosq, mode 0600). docs/deploy-postgresql.md.
[Unit]
Description=kiosq hall server
After=network-online.target postgresql.service
Wants=network-online.target
StartLimitIntervalSec=0

[Service]
# READY=1 once uvicorn listens, WATCHDOG=1 from its event loop (kiosk/sdnotify.py)
Type=notify
NotifyAccess=main
WatchdogSec=30
Restart=always
RestartSec=2
User={user}
StateDirectory=kiosq
StateDirectoryMode=0700
# kiosq server answers 503 past 2,000 open connections (--max-connections): room above it
# for the database, the log and the files it serves.
LimitNOFILE=4096
EnvironmentFile=-/etc/kiosq/server.env
ExecStart={command}
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
"""
    return InstallFile("etc/systemd/system/kiosq-server.service", text)


def no_console_blank() -> InstallFile:
    # cage keeps the screen on while it runs (and the kiosk disables the screensaver), but
    # between restarts the text console shows, and the kernel blanks it after 10 minutes:
    # consoleblank=0 at boot, written by systemd-tmpfiles.
    return InstallFile("etc/tmpfiles.d/kiosq-console.conf",
                       HEADER + "w /sys/module/kernel/parameters/consoleblank - - - - 0\n")


def journald_limits() -> InstallFile:
    # kiosq logs only to the journal; these bound it on a small terminal disk.
    return InstallFile("etc/systemd/journald.conf.d/kiosq.conf", HEADER + "[Journal]\nStorage=persistent\n"
                       "SystemMaxUse=200M\nSystemKeepFree=1G\nMaxRetentionSec=3month\n")


def files_for(role: str, user: str, kiosq: list[str], port: int = 8000) -> list[InstallFile]:
    if role == "terminal":
        return [*sysusers(user, role), kiosk_unit(kiosq, user), kiosk_pam(), no_console_blank(), journald_limits()]
    return [*sysusers(user, role), server_unit(kiosq, user, port), journald_limits()]


def install_files(root: Path, files: list[InstallFile]) -> list[tuple[Path, bool]]:
    """Write each file under root unless it already has that text and mode; (path, written)."""
    done = []
    for f in files:
        path = root / f.path
        same = path.is_file() and path.read_text("utf-8") == f.text and (path.stat().st_mode & 0o777) == f.mode
        if not same:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(f.text, "utf-8")
            tmp.chmod(f.mode)
            os.replace(tmp, path)
        done.append((path, not same))
    return done


def apply_on_this_machine() -> list[str]:
    """After writing into the real /: create the user and reload systemd. Returns what ran."""
    ran = []
    for command in (["systemd-sysusers"], ["systemd-tmpfiles", "--create"], ["systemctl", "daemon-reload"]):
        if shutil.which(command[0]) and (command[0] != "systemctl" or Path("/run/systemd/system").is_dir()):
            subprocess.run(command, check=True, timeout=60)
            ran.append(" ".join(command))
    return ran
