"""The live event streams: the `Notifier` that wakes streams when the store commits, and
the Server-Sent Events written from the store's event log for each audience: the hall's
displays (public), signed-in staff (what the role may see), one ticket's phone."""

import asyncio
import json
import logging
import math
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar

from kiosq.queue import applications as rules
from kiosq.queue import engine
from kiosq.queue.config import Hall, Window
from kiosq.queue.engine import Ticket
from kiosq.queue.errors import ApiError
from kiosq.queue.store import Store, StoredEvent, Token, Unavailable
from kiosq.queue.store.events import is_public

SSE_RETRY_MS = 2000
SSE_BATCH = 500
SSE_HEARTBEAT_SECONDS = 15.0
SSE_POLL_SECONDS = 2.0
CALLER_CHECK_SECONDS = 30.0  # how often a staff stream checks that its caller may still see it
MAX_EVENT_ID = 2**63 - 1  # SQLite's largest integer
WAKE_CHUNK = 25  # phones woken for a new place in line per turn of the wake-up task
READ_RETRY_SECONDS = 0.1  # the phones' wake-up task tries a failed read again after this, doubled up to the poll
log = logging.getLogger("kiosq.server")


SHARED_READ_SECONDS = 0.05  # how long streams at one cursor share a read of the log
T = TypeVar("T")


class Notifier:
    """Wakes the event streams when the store has committed new events, and lets streams
    that are at the same place in the log share one read of it."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event = asyncio.Event()
        self.closing = False  # the server is shutting down: streams end, clients reconnect
        # (what, cursor) -> (wake count, loop time, the read): every display woken by a
        # commit is at the same cursor, and 200 of them would otherwise read the same rows
        # 200 times (on PostgreSQL a round trip each, while the next request waits).
        self._reads: dict[tuple[str, int], tuple[int, float, Any]] = {}
        self._wakes = 0
        self.services = ServiceWakes(self)  # the phones' streams wait on their service

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

    def shared(self, key: tuple[str, int], now: float, read: Callable[[], T]) -> T:
        """read(), shared by the streams asking for the same `key` until the next wake or
        for SHARED_READ_SECONDS (a commit of another process that sends no wake is seen at
        a later poll, as before)."""
        hit = self._reads.get(key)
        if hit is not None and hit[0] == self._wakes and now - hit[1] < SHARED_READ_SECONDS:
            value: T = hit[2]
            return value
        value = read()
        if len(self._reads) > 256:  # streams far behind each other: keep it small
            self._reads.clear()
        self._reads[key] = (self._wakes, now, value)
        return value

    def events_after(self, store: Store, cursor: int, now: float) -> list[StoredEvent]:
        """Every event after `cursor` (with its ticket's id), shared."""
        return self.shared(("all", cursor), now, lambda: store.events_with_tickets_after(cursor, SSE_BATCH))

    def public_events_after(self, store: Store, cursor: int, now: float) -> list[StoredEvent]:
        """The public events after `cursor` (today's only), shared."""
        return self.shared(("public", cursor), now, lambda: store.public_events_after(cursor, SSE_BATCH))

    @property
    def wakes(self) -> int:
        return self._wakes

    async def wait(self, timeout: float, seen: int | None = None) -> None:
        """Until the next commit (or `timeout`); at once if there was one since `seen`
        (`wakes` before the stream read the log: a commit while it was sending)."""
        if seen is not None and seen != self._wakes:
            return
        # asyncio.timeout, not wait_for: wait_for makes a task per call, and a commit wakes
        # every stream (2,000 tasks per call with the phones of issue 17).
        with suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._event.wait()


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


def public_cursor(store: Store, raw: str | int | None) -> int:
    """Where GET /api/events starts: as `start_cursor`, but never before today's business
    day (an older id, 0 included, starts at the day's first event)."""
    return max(start_cursor(store, raw), store.event_day_floor())


def visible_to(token: Token, windows: Mapping[int, Window]) -> Callable[[StoredEvent], bool]:
    """What a staff, supervisor or admin sees on GET /api/staff/events: the public events;
    the applications of the services it handles (as its application list); terminals,
    content and anything else: admins only."""
    services = rules.services_of(token, windows)  # None: all of them
    admin = token.role == "admin"

    def keep(ev: StoredEvent) -> bool:
        if is_public(ev.type):
            return True
        if ev.type.startswith("application."):
            return services is None or json.loads(ev.data)["application"]["service"] in services
        return admin
    return keep


Read = Callable[[int, float], list[StoredEvent]]  # (cursor, loop time) -> the events after the cursor
Keep = Callable[[StoredEvent], bool]


@dataclass(frozen=True)
class CallerCheck:
    """How a staff stream checks its caller again every `seconds` (it runs for hours):
    `keep()` is what the caller may see now, or None when it may see nothing any more (the
    token revoked or expired, the session ended, the account disabled): the stream ends."""

    keep: Callable[[], Keep | None]
    seconds: float = CALLER_CHECK_SECONDS


def _sse(ev: StoredEvent) -> str:
    return f"id: {ev.id}\nevent: {ev.type}\ndata: {ev.data}\n\n"  # data is one line of JSON


async def stream(notifier: Notifier, cursor: int, heartbeat_seconds: float, read: Read,
                 keep: Keep | None = None, check: CallerCheck | None = None) -> AsyncIterator[bytes]:
    """The events after `cursor` that `read` gives and `keep` lets through, as SSE, then
    each new one as it is committed; with `check`, until the caller may no longer see them."""
    yield f": kiosq events after {cursor}\nretry: {SSE_RETRY_MS}\n\n".encode()
    loop = asyncio.get_running_loop()
    last_sent = loop.time()
    check_at = loop.time() + check.seconds if check else math.inf
    while not notifier.closing:
        if check is not None and loop.time() >= check_at:
            keep = check.keep()
            if keep is None:
                yield b": signed out: this stream ends\n\n"
                return
            check_at = loop.time() + check.seconds
        seen = notifier.wakes
        batch = read(cursor, loop.time())
        sent = batch if keep is None else [ev for ev in batch if keep(ev)]
        if sent:
            yield "".join(map(_sse, sent)).encode()
            last_sent = loop.time()
        elif loop.time() - last_sent >= heartbeat_seconds:
            # A comment on a quiet stream, so that proxies and displays know it is alive.
            yield b": ping\n\n"
            last_sent = loop.time()
        if batch:
            cursor = batch[-1].id
        if len(batch) < SSE_BATCH:
            # Woken by a commit in this process; the timeout also picks up other writers.
            await notifier.wait(max(0.0, min(SSE_POLL_SECONDS, heartbeat_seconds, check_at - loop.time())), seen)


# -- one ticket, for the phone that follows it (/t/{id}) ----------------------------------


def touched_services(batch: list[StoredEvent], hall: Hall) -> set[str]:
    """The services whose waiting line (or estimate) these events may have changed: a
    ticket's service (for a transfer the new one: the old line lost the ticket when it was
    called), the services of a paused or resumed window."""
    touched: set[str] = set()
    for ev in batch:
        if ev.type.startswith("ticket."):
            ticket = json.loads(ev.data)["ticket"]
            touched.add(ticket["service"])
        elif ev.type.startswith("window."):
            window = hall.windows.get(json.loads(ev.data)["window"])
            touched.update(window.services if window else hall.services)
    return touched


class ServiceWakes:
    """Wakes a phone's stream only when a commit touched its ticket's service: one task
    reads each commit's events (the read the other streams share) and wakes those
    services' streams, so 1,800 phones are not all woken by every call. The phones whose
    own ticket a commit names are woken at once; the others of the service (their place in
    line moved) WAKE_CHUNK at a time, the task reading the log between chunks, so that the
    next call's phone never waits behind the hundreds of position updates of the call
    before (in the benchmark it did, for 170-210 ms in 2-3 % of calls: BENCHMARKS.md)."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        # service -> ticket id -> the future its phone's stream waits on
        self._waiting: dict[str, dict[str, asyncio.Future[None]]] = {}
        self._later: deque[asyncio.Future[None]] = deque()  # woken, WAKE_CHUNK at a time
        self._counts: dict[str, int] = {}  # service -> how often it was touched
        self._task: asyncio.Task[None] | None = None
        self._cursor: int | None = None  # the last event read; a restarted task goes on from it

    def count(self, service: str) -> int:
        return self._counts.get(service, 0)

    def start(self, store: Store) -> None:
        """From a stream, on the loop: the reader task, unless it runs (the first reads from
        now on; one started again after it ended reads on from where it stopped)."""
        if self._task is None or self._task.done():
            if self._cursor is None:
                self._cursor = store.last_event_id()
            self._task = asyncio.get_running_loop().create_task(self._run(store), name="kiosq-service-wakes")
            self._task.add_done_callback(_say_why_it_ended)

    async def wait(self, service: str, ticket: str, timeout: float, seen: int) -> None:
        """Until `service` is touched (or `timeout`); at once if it was since `seen`.
        `ticket`: the id of the ticket the stream follows (one stream per ticket is woken
        first; a second stream of the same ticket waits as the others of its service)."""
        if self._counts.get(service, 0) != seen or self.notifier.closing:
            return
        waiting = self._waiting.setdefault(service, {})
        key = ticket if ticket not in waiting else f"{ticket}#{id(asyncio.current_task())}"
        future = waiting[key] = asyncio.get_running_loop().create_future()
        try:
            with suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await future
        finally:
            if waiting.get(key) is future:
                del waiting[key]

    def _touch(self, services: set[str], tickets: Collection[str] = ()) -> None:
        """Wake the streams of `tickets` in `services` now, the rest of those services' later."""
        for service in services:
            self._counts[service] = self._counts.get(service, 0) + 1
            waiting = self._waiting.pop(service, {})
            for future in [waiting.pop(t) for t in tickets if t in waiting]:
                _wake(future)
            self._later.extend(waiting.values())

    def _wake_some(self, n: int) -> None:
        for _ in range(min(n, len(self._later))):
            _wake(self._later.popleft())

    async def _run(self, store: Store) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        try:
            while not self.notifier.closing:
                seen = self.notifier.wakes
                try:
                    batch = self.notifier.events_after(store, self._cursor or 0, loop.time())
                except (Unavailable, sqlite3.Error) as exc:  # the database busy or away (restarting)
                    failures += 1
                    await self.notifier.wait(self._retry_after(failures, exc))
                    continue
                if failures:
                    log.info("the phones' wake-up task reads the event log again, after %d failed read(s)", failures)
                    failures = 0
                if batch:
                    self._cursor = batch[-1].id
                    self._touch(touched_services(batch, store.hall), {ev.ticket for ev in batch if ev.ticket})
                while self._later and self.notifier.wakes == seen and not self.notifier.closing:
                    self._wake_some(WAKE_CHUNK)
                    await asyncio.sleep(0)  # those phones' turn on the loop, then this task's
                if self._later:
                    continue  # a commit came meanwhile: its own tickets' phones first
                if len(batch) < SSE_BATCH:
                    await self.notifier.wait(SSE_POLL_SECONDS, seen)
        finally:
            self._touch(set(self._waiting))  # shutting down: the streams end now
            self._wake_some(len(self._later))

    @staticmethod
    def _retry_after(failures: int, exc: Exception) -> float:
        """How long to wait after the `failures`-th failed read in a row; said once per outage.
        The streams keep their 2 s poll meanwhile."""
        delay = min(READ_RETRY_SECONDS * 2.0 ** min(failures - 1, 8), SSE_POLL_SECONDS)
        if failures == 1:  # the store's message names the database, never a ticket or a person
            log.warning("the phones' wake-up task could not read the event log (%s: %s); trying again every "
                        "%g s at most", type(exc).__name__, exc, SSE_POLL_SECONDS)
        return delay


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # not given up waiting (its timeout)
        future.set_result(None)


def _say_why_it_ended(task: asyncio.Task[None]) -> None:
    """A reader task that failed is logged (the next stream starts another), not left to a
    'Task exception was never retrieved' at garbage collection."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("the phones' wake-up task stopped; the next phone's stream starts it again",
                  exc_info=(type(exc), exc, exc.__traceback__))


FINAL = (engine.DONE, engine.CANCELLED)  # the ticket's stream ends with these


def place_in_line(store: Store, notifier: Notifier, ticket_id: str, known: dict[str, Any],
                  now: float) -> dict[str, Any] | None:
    """The ticket's status, window, people ahead, position and estimated wait, as GET
    /api/tickets/{id} says them, from one read of the line that every following phone
    shares; `known` is the ticket as its last event left it. None while the log has not
    yet told this stream why the ticket left the line."""
    line = notifier.shared(("line", 0), now, store.waiting_line)
    place = line.get(ticket_id)
    if place is None:
        if known["status"] == engine.WAITING:
            return None
        return {"status": known["status"], "window": known["window"], "ahead": 0, "position": None,
                "eta_minutes": None}
    service, ahead = place
    conf = store.hall.services.get(service)
    open_windows = notifier.shared(("open", 0), now, store.open_windows)
    eta = None if conf is None else engine.eta_minutes(ahead, conf, open_windows.get(service, 0))
    return {"status": engine.WAITING, "window": None, "ahead": ahead, "position": ahead + 1, "eta_minutes": eta}


async def ticket_stream(store: Store, notifier: Notifier, ticket: Ticket, cursor: int,
                        heartbeat_seconds: float) -> AsyncIterator[bytes]:
    """`ticket`'s events after `cursor` (of today at most), then each new one and a
    `ticket.position` event whenever its place in line changes; ends after the ticket is
    finished or cancelled."""
    yield f": kiosq ticket {ticket.label} events after {cursor}\nretry: {SSE_RETRY_MS}\n\n".encode()
    loop = asyncio.get_running_loop()
    wakes = notifier.services
    wakes.start(store)
    seen, live = wakes.count(ticket.service), store.last_event_id()  # read on from here; the replay stops here
    own = [ev for ev in store.ticket_events_after(ticket.id, cursor) if ev.id <= live]
    known: dict[str, Any] = {"status": ticket.status, "window": ticket.window, "service": ticket.service}
    placed, last_sent, full = None, loop.time(), False
    while True:
        chunks = [_sse(ev) for ev in own]
        if own:
            data = json.loads(own[-1].data)["ticket"]
            known = {"status": data["status"], "window": data["window"], "service": data["service"]}
        place = place_in_line(store, notifier, ticket.id, known, loop.time())
        if place is not None and place != placed:
            chunks.append(f"id: {live}\nevent: ticket.position\ndata: {json.dumps(place)}\n\n")
            placed = place
        if chunks:
            yield "".join(chunks).encode()
            last_sent = loop.time()
        elif loop.time() - last_sent >= heartbeat_seconds:
            yield b": ping\n\n"
            last_sent = loop.time()
        if known["status"] in FINAL or notifier.closing:
            return
        if not full:
            wakes.start(store)  # again, should the reader task have stopped
            await wakes.wait(known["service"], ticket.id, min(SSE_POLL_SECONDS, heartbeat_seconds), seen)
        seen = wakes.count(known["service"])
        batch = notifier.events_after(store, live, loop.time())
        own, full = [ev for ev in batch if ev.ticket == ticket.id], len(batch) == SSE_BATCH
        if batch:
            live = batch[-1].id
