"""The status bar's facts, checked on a worker thread: the printer (ok, paper near end,
out of paper, cover open, not answering, none) and the hall server (reachable or not).
Each check blocks (serial port, HTTP) and never raises; `StatusMonitor` runs them every
`interval` seconds and hands the result to a callback (decorate it with @mainthread)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from kiosq.devices.printer import Printer
from kiosq.kiosk.hall_client import HallClient
from kiosq.kiosk.worker import Worker

log = logging.getLogger(__name__)

PRINTER_STATES = ("none", "ok", "near_end", "out", "cover_open", "offline")
PRINTER_TROUBLE = ("none", "out", "cover_open", "offline")  # a ticket gets no slip


def printer_state(printer: Printer | None) -> str:
    """One of PRINTER_STATES. "offline": no answer, or the printer says it is offline."""
    if printer is None:
        return "none"
    try:
        status = printer.status()
    except Exception as exc:  # noqa: BLE001  a device fault must never take the kiosk down
        log.warning("printer status: %s", exc)
        return "offline"
    if status.paper == "out":
        return "out"
    if status.cover_open:
        return "cover_open"
    if status.online is not True:
        return "offline"
    return "near_end" if status.paper == "near_end" else "ok"


def server_state(client: HallClient | None) -> str:
    """"" (no server configured), "ok" or "down"."""
    if client is None:
        return ""
    try:
        client.hall()
    except Exception as exc:  # noqa: BLE001
        log.warning("hall server health: %s", exc)
        return "down"
    return "ok"


class StatusMonitor(Worker):
    """A daemon thread that checks the printer and the server now and every `interval`
    seconds (sooner after `wake()`), calling `done(printer_state, server_state)`."""

    name = "status-monitor"

    def __init__(self, printer: Printer | None, client: HallClient | None, interval: float,
                 done: Callable[[str, str], None]) -> None:
        super().__init__(interval)
        self.printer, self.client, self.done = printer, client, done

    def step(self) -> None:
        self.call(self.done, printer_state(self.printer), server_state(self.client))
