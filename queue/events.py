"""The live event stream: the `Notifier` that wakes streams when the store commits, and
the Server-Sent Events written from the store's event log."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress

from kiosq.queue.errors import ApiError
from kiosq.queue.store import Store, StoredEvent

SSE_RETRY_MS = 2000
SSE_BATCH = 500
SSE_HEARTBEAT_SECONDS = 15.0
SSE_POLL_SECONDS = 2.0
MAX_EVENT_ID = 2**63 - 1  # SQLite's largest integer


SHARED_READ_SECONDS = 0.05  # how long streams at one cursor share a read of the log


class Notifier:
    """Wakes the event streams when the store has committed new events, and lets streams
    that are at the same place in the log share one read of it."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event = asyncio.Event()
        self.closing = False  # the server is shutting down: streams end, clients reconnect
        # cursor -> (wake count, loop time, the events after it): every display woken by a
        # commit is at the same cursor, and 200 of them would otherwise read the same rows
        # 200 times (on PostgreSQL a round trip each, while the next request waits).
        self._reads: dict[int, tuple[int, float, list[StoredEvent]]] = {}
        self._wakes = 0

    def close(self) -> None:
        """Called from the signal handler: wake the loop through its self-pipe."""
        self.closing = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def notify(self, _last_id: int = 0) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self._loop is not None and running is not self._loop:
            self._loop.call_soon_threadsafe(self._wake)
        else:
            self._wake()

    def _wake(self) -> None:
        self._wakes += 1
        self._reads.clear()
        self._event.set()
        self._event = asyncio.Event()

    def events_after(self, store: Store, cursor: int, now: float) -> list[StoredEvent]:
        """store.events_after(cursor), shared by the streams at that cursor until the next
        wake or for SHARED_READ_SECONDS (a commit of another process that sends no wake is
        seen at a later poll, as before)."""
        hit = self._reads.get(cursor)
        if hit is not None and hit[0] == self._wakes and now - hit[1] < SHARED_READ_SECONDS:
            return hit[2]
        batch = store.events_after(cursor, SSE_BATCH)
        if len(self._reads) > 256:  # streams far behind each other: keep it small
            self._reads.clear()
        self._reads[cursor] = (self._wakes, now, batch)
        return batch

    async def wait(self, timeout: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


def start_cursor(store: Store, raw: str | int | None) -> int:
    """Where a stream starts: after the `Last-Event-ID` (or `?since=`) given, else now."""
    if raw is None:
        return store.last_event_id()
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_event_id",
                       f"Last-Event-ID must be an event id (a whole number), not {raw!r}") from None
    if not 0 <= value <= MAX_EVENT_ID:
        raise ApiError(400, "bad_event_id", f"Last-Event-ID must be an event id from 0 to {MAX_EVENT_ID}")
    # An id ahead of the log (the database was restored from a backup) means: from now on.
    return min(value, store.last_event_id())


async def stream(store: Store, notifier: Notifier, cursor: int, heartbeat_seconds: float) -> AsyncIterator[bytes]:
    """The events after `cursor` as SSE, then each new one as it is committed."""
    yield f": kiosq events after {cursor}\nretry: {SSE_RETRY_MS}\n\n".encode()
    loop = asyncio.get_running_loop()
    last_sent = loop.time()
    while not notifier.closing:
        batch = notifier.events_after(store, cursor, loop.time())
        if batch:
            # Event data is one line of JSON (json.dumps escapes newlines).
            yield "".join(f"id: {ev.id}\nevent: {ev.type}\ndata: {ev.data}\n\n" for ev in batch).encode()
            cursor, last_sent = batch[-1].id, loop.time()
        elif loop.time() - last_sent >= heartbeat_seconds:
            # A comment on a quiet stream, so that proxies and displays know it is alive.
            yield b": ping\n\n"
            last_sent = loop.time()
        if len(batch) < SSE_BATCH:
            # Woken by a commit in this process; the timeout also picks up other writers.
            await notifier.wait(timeout=min(SSE_POLL_SECONDS, heartbeat_seconds))
