"""Privacy on a shared screen: after `timeout` seconds without a touch the kiosk asks
"还在吗？" and counts `countdown` seconds down; a touch continues the session, the end
of the count wipes it. Driven by Kivy's Clock, so nothing sleeps."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from kivy.clock import Clock, ClockEvent

TICK = 0.1  # how often the countdown is redrawn (it shows whole seconds)


class IdleWatcher:
    """Calls show(seconds_left) when the prompt opens and on every whole second, hide()
    when a touch answers it, and expire() when the count ends. `in_session()` says
    whether there is anything to protect (on an untouched home screen there is not)."""

    def __init__(self, timeout: float, countdown: float, *, in_session: Callable[[], bool],
                 show: Callable[[int], None], hide: Callable[[], None], expire: Callable[[], None]) -> None:
        self.timeout, self.countdown = timeout, countdown
        self._in_session, self._show, self._hide, self._expire = in_session, show, hide, expire
        self._wait: ClockEvent | None = None
        self._tick: ClockEvent | None = None
        self._deadline = 0.0

    @property
    def prompting(self) -> bool:
        return self._tick is not None

    def touched(self) -> None:
        """A touch anywhere: the session goes on; the idle time starts again."""
        if self.prompting:
            self._hide()
        self.stop()
        self._wait = Clock.schedule_once(self._prompt, self.timeout)

    def stop(self) -> None:
        for event in (self._wait, self._tick):
            if event is not None:
                event.cancel()
        self._wait = self._tick = None

    def _prompt(self, _dt: float) -> None:
        self._wait = None
        if not self._in_session():
            return  # the next touch arms it again
        self._deadline = time.monotonic() + self.countdown
        self._tick = Clock.schedule_interval(self._count, TICK)
        self._show(math.ceil(self.countdown))

    def _count(self, _dt: float) -> bool:
        left = self._deadline - time.monotonic()
        if left > 0:
            self._show(math.ceil(left))
            return True
        self.stop()
        self._hide()
        self._expire()
        return False
