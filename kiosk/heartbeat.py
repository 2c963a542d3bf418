"""Heartbeats: a daemon thread that tells the hall server this terminal's state (software and
content versions, device states, the last error, uptime, the outbox) now and then every
`interval` seconds, and hands the server's answer (the published content, the opening
hours) to a callback. The hall's own `heartbeat_seconds`, once it has answered, sets the
pace: its fleet view counts a terminal offline after a silence measured against it.

Nothing personal goes into a heartbeat: `collect()` builds the body from device states,
versions and counts only, and the maintenance PIN's lockouts (`maintenance`: how many, until
when, the last one's start; kiosk/maintenance.py's PinGuard.report()). A lockout wakes the
heartbeat, so the fleet view shows it within seconds (docs/terminal-config.md lists the fields).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from kiosq.kiosk.hall_client import HallClient, HeartbeatReply, ServerError, ServerRefused
from kiosq.kiosk.worker import Worker

log = logging.getLogger(__name__)

# the kiosk's states -> the server's (queue/routers/fleet.py: PrinterState, ReaderState)
PRINTER = {"none": "none", "ok": "ok", "near_end": "near_end", "out": "out", "cover_open": "cover_open",
           "offline": "offline"}
MIN_INTERVAL = 0.2  # seconds: whatever a server says, never a tight loop
MAX_INTERVAL = 3600.0  # seconds: a hall asking for rarer beats than this gets this


def software_version() -> str:
    try:
        return version("kiosq")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def printer_for_server(state: str) -> str:
    """A kiosk.status printer state ("" before the first check) as the server names it."""
    return PRINTER.get(state, "unknown")


class Heartbeat(Worker):
    """POSTs `collect()` to /api/terminals/heartbeat now and every interval seconds (sooner
    after `wake()`). `answered(reply)` gets each answer; `refused(exc)` a 4xx (401: the
    token is revoked or unknown); `unreachable(exc)` no answer. Callbacks run on this
    thread: decorate them with @mainthread."""

    name = "heartbeat"

    def __init__(self, client: HallClient, collect: Callable[[], dict[str, Any]], interval: float,
                 answered: Callable[[HeartbeatReply], None], refused: Callable[[ServerRefused], None],
                 unreachable: Callable[[ServerError], None]) -> None:
        super().__init__(interval)
        self.client, self.collect = client, collect
        self.answered, self.refused, self.unreachable = answered, refused, unreachable

    def step(self) -> None:
        try:
            body = self.collect()
            reply = self.client.heartbeat(body)
        except ServerRefused as exc:
            log.warning("heartbeat refused (HTTP %s): %s", exc.status, exc)
            self.call(self.refused, exc)
            return
        except ServerError as exc:
            log.warning("heartbeat: %s", exc)
            self.call(self.unreachable, exc)
            return
        seconds = reply.get("heartbeat_seconds") if isinstance(reply, dict) else None
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds > 0:
            self.interval = max(MIN_INTERVAL, float(min(seconds, MAX_INTERVAL)))  # the server's word, bounded
        if isinstance(reply, dict):
            self.call(self.answered, reply)
