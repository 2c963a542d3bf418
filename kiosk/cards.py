"""The ID card reader as the kiosk uses it: a worker thread polling the reader
(kiosq.devices.idcard.CardPoller) and handing each event to the app.

The card that is on the reader right now is kept in memory only while it lies there
(`present()`), so a citizen who placed it before reaching the screen that asks for it is
not asked twice; it is forgotten when the card is lifted. Nothing here logs what a card says.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kiosq.devices.idcard import CardPoller, CardRead, CardReader, CardRemoved

log = logging.getLogger(__name__)


class CardWatcher:
    """Polls the reader at `uri` on a daemon thread; `on_event(event)` is called from that
    thread for every kiosq.devices.idcard CardEvent (decorate it with @mainthread)."""

    def __init__(self, uri: str, on_event: Callable[[object], None], interval: float = 0.3) -> None:
        self.uri = uri
        self.on_event = on_event
        self._poller = CardPoller(CardReader(uri), interval=interval)
        self._present: dict[str, str] | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="card-reader", daemon=True)

    def start(self) -> CardWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._poller.stop()
        self._thread.join(timeout=5)
        with self._lock:
            self._present = None

    def forget(self) -> None:
        """Forget the card lying on the reader (its session ended): it is read again only
        once it is lifted and placed again (the poller reports one CardRead per placement)."""
        with self._lock:
            self._present = None

    def present(self) -> dict[str, str] | None:
        """What the card on the reader says (Identity.as_dict()), or None."""
        with self._lock:
            return dict(self._present) if self._present else None

    def _run(self) -> None:
        try:
            for event in self._poller.poll():
                with self._lock:
                    if isinstance(event, CardRead):
                        self._present = event.identity.as_dict()
                    elif isinstance(event, CardRemoved):
                        self._present = None
                self.on_event(event)
        except Exception:
            log.exception("the ID card reader's watcher stopped")
