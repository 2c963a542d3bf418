"""systemd's service notification protocol (sd_notify(3)) for the kiosk and the hall server:
READY=1 once up, WATCHDOG=1 at least every WatchdogSec/2, STATUS= a line for `systemctl
status`. Outside systemd ($NOTIFY_SOCKET unset) every call does nothing and says so (False).

Written here rather than taken from PyPI: `sdnotify` (0.3.2, 2017) is unmaintained and reads
no WATCHDOG_USEC; `systemd-python` needs libsystemd's headers to build. The protocol is one
datagram per message on an AF_UNIX socket.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def notify(*assignments: str, env: Mapping[str, str] | None = None) -> bool:
    """Send `KEY=value` lines to systemd in one datagram; False when not under systemd or the
    socket cannot be reached (logged: the service goes on, systemd will notice)."""
    address = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        address = "\0" + address[1:]  # Linux's abstract namespace
    elif not address.startswith("/"):
        return False  # unset, or a vsock address (for VMs): not a socket this kiosk talks to
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto("\n".join(assignments).encode("utf-8"), address)
    except OSError as exc:
        log.warning("sd_notify to %r failed: %s", address, exc)
        return False
    return True


def notify_ready(status: str | None = None) -> bool:
    """The service is up (Type=notify units wait for this before they count as started)."""
    return notify("READY=1", *([f"STATUS={status}"] if status else []))


def notify_watchdog() -> bool:
    """Still alive: send at least every watchdog_interval() seconds, from the loop that must not hang."""
    return notify("WATCHDOG=1")


def notify_status(status: str) -> bool:
    """A one-line status shown by `systemctl status`."""
    return notify(f"STATUS={status}")


def notify_stopping() -> bool:
    return notify("STOPPING=1")


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of the unit's WatchdogSec (systemd's advice);
    None when systemd set no watchdog.

    WATCHDOG_PID is not compared with our pid, unlike sd_watchdog_enabled(3): under cage the
    kiosk is the compositor's child, and its unit says NotifyAccess=all so that systemd takes
    the child's pings.
    """
    usec = (os.environ if env is None else env).get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    return int(usec) / 1e6 / 2
