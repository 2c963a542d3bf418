"""`CardPoller`: polling a CardReader turned into one event per card placement and
removal, with the reader's trouble reported and recovered from; `Placement` is its pure
bookkeeping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kiosq.devices.idcard.identity import Identity
from kiosq.devices.idcard.protocol import CardDataError, FrameError, ReaderStatusError, ReaderTimeout, ReaderUnavailable
from kiosq.devices.idcard.reader import CardReader
from kiosq.devices.uri import backoff_delays

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CardRead:
    """A card was placed and read."""

    identity: Identity


@dataclass(frozen=True)
class CardRemoved:
    """The card placed (read or not) has gone."""


@dataclass(frozen=True)
class CardUnreadable:
    """A card is on the reader but cannot be read; ask the citizen to place it again."""

    reason: str


@dataclass(frozen=True)
class ReaderProblem:
    """A command failed in a way that is retried (garbled or short reply, timeout, status)."""

    reason: str


@dataclass(frozen=True)
class ReaderLost:
    """The reader went away or cannot be opened; it is reopened with backoff."""

    reason: str


@dataclass(frozen=True)
class ReaderBack:
    """The reader can be used again after ReaderLost."""


CardEvent = CardRead | CardRemoved | CardUnreadable | ReaderProblem | ReaderLost | ReaderBack


class Placement:
    """Pure bookkeeping of what is on the reader, fed what polling observes.

    A card counts as removed only after `removed_after` "no card" answers in a row, since
    some readers miss a card that stays put once right after reading it. A card that fails
    to read is retried up to `max_attempts` times, then reported once as unreadable.
    After the reader comes back from being lost, a card still on it is read again and
    reported only if it is a different card.
    """

    def __init__(self, removed_after: int = 2, max_attempts: int = 3) -> None:
        self.removed_after = removed_after
        self.max_attempts = max_attempts
        self.present = False                 # CardRead or CardUnreadable was reported
        self.identity: Identity | None = None
        self.recheck = False                 # the reader was lost while a card was present
        self._misses = 0
        self._attempts = 0

    def wants_read(self) -> bool:
        return not self.present or self.recheck

    def found(self, on_reader: bool) -> list[CardEvent]:
        if on_reader:
            self._misses = 0
            return []
        self._attempts = 0
        if not self.present:
            return []
        self._misses += 1
        if self._misses < self.removed_after:
            return []
        return self._removed()

    def read(self, identity: Identity) -> list[CardEvent]:
        same = self.present and self.recheck and identity == self.identity
        events: list[CardEvent] = [] if same or not self.present else self._removed()
        self.present, self.identity, self.recheck, self._attempts = True, identity, False, 0
        return events if same else events + [CardRead(identity)]

    def failed(self, reason: str, retry: bool = True) -> list[CardEvent]:
        events: list[CardEvent] = [ReaderProblem(reason)]
        if self.recheck:
            self.recheck = False  # cannot tell; keep the card we knew
            return events
        self._attempts += 1
        if not retry or self._attempts >= self.max_attempts:
            self.present, self.identity, self._attempts = True, None, 0
            events.append(CardUnreadable(reason))
        return events

    def lost(self) -> None:
        self._attempts = self._misses = 0
        self.recheck = self.present

    def _removed(self) -> list[CardEvent]:
        self.present, self.identity, self.recheck, self._misses = False, None, False, 0
        return [CardRemoved()]


class CardPoller:
    """Polls a CardReader and yields CardEvents: one CardRead per placement, one CardRemoved
    when the card goes, and reports of trouble, from which it recovers by itself.

    Run `poll()` in a worker thread; `stop()` (from any thread) ends it promptly, and a
    stopped poller stays stopped. The poller opens the reader and closes it when `poll()`
    ends. If `give_up_after` is set and the reader stays away that long, `poll()` raises
    ReaderUnavailable.
    """

    def __init__(self, reader: CardReader, *, interval: float = 0.3, removed_after: int = 2,
                 max_attempts: int = 3, backoff: tuple[float, float] = (0.2, 5.0),
                 give_up_after: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.reader = reader
        self.interval = interval
        self.backoff = backoff
        self.give_up_after = give_up_after
        self.placement = Placement(removed_after, max_attempts)
        self._clock = clock
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def poll(self) -> Iterator[CardEvent]:
        try:
            problem = self._open_first()
            if problem is not None:
                yield ReaderLost(problem)
                yield from self._reconnect()
            while not self._stop.is_set():
                try:
                    events = self._step()
                except ReaderUnavailable as e:
                    log.warning("%s", e)
                    self.placement.lost()
                    yield ReaderLost(str(e))
                    yield from self._reconnect()
                    continue
                yield from events
                self._stop.wait(self.interval)
        finally:
            self.reader.close()

    def _open_first(self) -> str | None:
        """Open the reader; the reason it cannot be opened, or None."""
        try:
            self.reader.open()
        except ReaderUnavailable as e:
            log.warning("%s", e)
            return str(e)
        return None

    def _step(self) -> list[CardEvent]:
        """One poll: find, and read if the placement wants it. ReaderUnavailable escapes."""
        try:
            on_reader = self.reader.find()
        except (FrameError, ReaderTimeout, ReaderStatusError) as e:
            events: list[CardEvent] = [ReaderProblem(str(e))]
        else:
            events = self.placement.found(on_reader)
            if on_reader and self.placement.wants_read():
                events += self._read()
        for event in events:
            self._log(event)
        return events

    def _read(self) -> list[CardEvent]:
        try:
            if not self.reader.select():
                return []  # gone between find and select: the next find will tell
            identity = self.reader.read()
        except CardDataError as e:
            return self.placement.failed(str(e), retry=False)
        except (FrameError, ReaderTimeout, ReaderStatusError) as e:
            return self.placement.failed(str(e))
        return self.placement.read(identity)

    def _reconnect(self) -> Iterator[CardEvent]:
        lost_at = self._clock()
        for delay in backoff_delays(*self.backoff):
            if self._stop.wait(delay):
                return
            try:
                self.reader.open()
            except ReaderUnavailable as e:
                if self.give_up_after is not None and self._clock() - lost_at >= self.give_up_after:
                    raise ReaderUnavailable(f"the ID card reader on {self.reader.device} has been away for "
                                            f"{self.give_up_after:g} s; check its cable and power ({e})") from None
                log.debug("ID card reader on %s still away; next try in %.1f s", self.reader.device, delay)
                continue
            log.warning("ID card reader on %s is back", self.reader.device)
            yield ReaderBack()
            return

    def _log(self, event: CardEvent) -> None:
        # Never the identity: only that something happened.
        if isinstance(event, CardRead):
            log.info("ID card reader on %s: card read", self.reader.device)
        elif isinstance(event, CardRemoved):
            log.info("ID card reader on %s: card removed", self.reader.device)
        elif isinstance(event, CardUnreadable):
            log.warning("ID card reader on %s: giving up on this card until it is placed again", self.reader.device)
        elif isinstance(event, ReaderProblem):
            log.warning("%s", event.reason)  # each reason names the device
