"""The kiosk's background loops (the status bar's checks, heartbeats, content updates) share
one shape: a daemon thread that does one step now, then again every `interval` seconds
(None: only when woken), at once after `wake()`, until `stop()`. Results go back through
`call()`, which never lets a failing callback end the thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Self

log = logging.getLogger(__name__)


class Worker:
    name = "worker"

    def __init__(self, interval: float | None) -> None:
        self.interval = interval
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def wake(self) -> None:
        """Do the next step now."""
        self._wake.set()

    def stop(self) -> None:
        """End after the step in flight."""
        self._stopped.set()
        self._wake.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def step(self) -> None:
        raise NotImplementedError

    def finished(self) -> None:
        """Called on the thread once it stops (close what the steps used)."""

    def call(self, callback: Callable[..., None], *args: Any) -> None:
        """Hand a result to the app; nothing once stopping, and a failing callback is logged."""
        if self.stopped:
            return
        try:
            callback(*args)
        except Exception:
            log.exception("%s: a callback failed", self.name)

    def _run(self) -> None:
        while not self.stopped:
            self._wake.clear()
            try:
                self.step()
            except Exception:  # a bug in one step must not end the loop for good
                log.exception("%s: a step failed", self.name)
            if self.stopped:
                break
            self._wake.wait(self.interval)
        self.finished()
