"""The status bar's facts, checked on a worker thread: the printer (ok, paper near end,
out of paper, cover open, not answering, none) and the hall server (reachable or not).
Each check blocks (serial port, HTTP) and never raises; `StatusMonitor` runs them every
`interval` seconds and hands the result to a callback (decorate it with @mainthread)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kiosq.devices.printer import Printer
from kiosq.kiosk.server import HallClient

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


class StatusMonitor:
    """A daemon thread that checks the printer and the server now and every `interval`
    seconds (sooner after `check_now()`), calling `done(printer_state, server_state)`."""

    def __init__(self, printer: Printer | None, client: HallClient | None, interval: float,
                 done: Callable[[str, str], None]) -> None:
        self.printer, self.client, self.interval, self.done = printer, client, interval, done
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-monitor", daemon=True)

    def start(self) -> StatusMonitor:
        self._thread.start()
        return self

    def check_now(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.clear()
            states = printer_state(self.printer), server_state(self.client)
            if self._stopped.is_set():
                return
            try:
                self.done(*states)
            except Exception:
                log.exception("status callback failed")
            self._wake.wait(self.interval)
