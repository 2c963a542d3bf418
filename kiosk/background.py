"""The one way a flow runs blocking work (HTTP, a printer, drawing a PNG) off the UI
thread: `in_background` runs it on a daemon thread and hands its result to a callback on
the UI thread through Kivy's clock. Long-lived loops are kiosk/worker.py's, not this."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from kivy.clock import Clock

log = logging.getLogger(__name__)

T = TypeVar("T")


def in_background(work: Callable[[], T], done: Callable[[T], None], name: str) -> threading.Thread:
    """Run `work()` on a daemon thread named `name`, then `done(result)` on the UI thread.
    A `work` that raises is logged and `done` is not called: flows pass work that never
    raises and says what went wrong in its result instead."""

    def run() -> None:
        try:
            result = work()
        except Exception:
            log.exception("%s failed", name)
            return
        Clock.schedule_once(lambda _dt: done(result))

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    return worker
