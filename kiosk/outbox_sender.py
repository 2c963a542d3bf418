"""The outbox's sender: a daemon thread that delivers the applications waiting in the
terminal's outbox (kiosk/outbox.py) to the hall server, in order and exactly once (each
with its Idempotency-Key and provisional number), and `submit()`, the one way a kiosk files.

The server's answer carries the application's lookup code (查询密码) once. The sender hands
it, in memory only, to the `submit()` waiting for that application, for its receipt; an
application delivered later (the server was away while the citizen stood there) gets a code
nobody keeps: its receipt sent the citizen to the kiosk's ID-card lookup instead.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kiosq.devices.uri import backoff_delays
from kiosq.kiosk.hall_client import HallClient, ServerError, ServerRefused, ServerUnreachable
from kiosq.kiosk.outbox import PENDING, Outbox, OutboxError, Pending, Refused

log = logging.getLogger("kiosq.kiosk.outbox")  # the outbox's: one logger for the store and its sender

PRUNE_EVERY = 3600.0  # seconds between the sender's prunings
# Answers that say "not now" rather than "not this application": sent again later.
RETRY_STATUSES = (408, 429)
# Answers about the terminal, not the application (a revoked token, a token that is not a
# terminal's): every application would get them, so they wait until IT fixes the token.
TERMINAL_STATUSES = (401, 403)


@dataclass(frozen=True)
class Submitted:
    """What the receipt shows: `filed` (the server's answer, with the tracking number) when
    it was delivered in time, else only the provisional number; `refused` when the server
    said no at once (the citizen is told, nothing is printed as filed); `lookup_code` when
    delivered in time (for the receipt only: the outbox does not keep it)."""

    provisional_no: str
    filed: dict[str, Any] | None
    refused: Refused | None = None
    lookup_code: str | None = None

    @property
    def delivered(self) -> bool:
        return self.filed is not None


IDLE, DELIVERED_ONE, REFUSED_ONE, FAILED, UNREACHABLE, BLOCKED = (
    "idle", "delivered", "refused", "failed", "unreachable", "blocked")


class Sender:
    """A daemon thread that delivers the outbox's pending applications in order, one
    request at a time, each with its own key and provisional number. While the server
    cannot be reached it backs off (first_delay, doubling, up to max_delay); `kick()` makes
    it try at once (a new application), `stop()` ends it. `on_delivered(provisional_no,
    filed)` and `on_refused(provisional_no, refused)` are called from this thread (hand
    them to the UI with @mainthread).

    `state` is for the status bar: "idle", "unreachable" (no answer), "blocked" (the
    server refused this terminal's token: IT must re-enroll it), "failed" (the server
    failed, HTTP 5xx). `last_error` says why, in plain words.
    """

    def __init__(self, outbox: Outbox, client: HallClient,
                 on_delivered: Callable[[str, dict[str, Any]], None] | None = None, interval: float = 5.0, *,
                 first_delay: float = 1.0, max_delay: float = 60.0,
                 on_refused: Callable[[str, Refused], None] | None = None) -> None:
        self.outbox, self.client, self.on_delivered, self.on_refused = outbox, client, on_delivered, on_refused
        self.interval, self.first_delay, self.max_delay = interval, first_delay, max_delay
        self.state, self.last_error = IDLE, ""
        self._retry_after: float = 0.0
        self._next_prune = time.monotonic() + PRUNE_EVERY  # the outbox pruned itself when opened
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._settled = threading.Condition()  # notified whenever an application's row changes
        # Lookup codes for the submit() calls waiting: provisional number -> code (None: not yet).
        self._codes: dict[str, str | None] = {}
        self._codes_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="kiosq-outbox-sender", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        """Try now (a new application is in the outbox, or the server is back)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """End the thread after the request in flight (at most the client's timeout)."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, provisional_no: str, timeout: float, attempts: int | None = None) -> bool:
        """Wait until the application is delivered or refused (True), or an attempt to send
        it failed (more than `attempts`, default: as many as now), or `timeout` seconds
        passed (False): the server is away, the receipt gets the provisional number."""
        deadline = time.monotonic() + timeout
        tried = self.outbox.attempts(provisional_no) if attempts is None else attempts
        with self._settled:
            while True:
                if self.outbox.state(provisional_no) != PENDING:
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or self.outbox.attempts(provisional_no) > tried:
                    return False
                self._settled.wait(left)

    @contextmanager
    def expecting_code(self) -> Iterator[Callable[[str], None]]:
        """Around adding an application to the outbox: `expect(provisional_no)` inside, so
        that its lookup code is kept (in memory) even if it is delivered at once."""
        def expect(number: str) -> None:
            self._codes.setdefault(number, None)

        with self._codes_lock:
            yield expect

    def take_code(self, provisional_no: str) -> str | None:
        """The lookup code of an expected application, if it was delivered; either way it
        is no longer expected, so a later delivery's code is not kept."""
        with self._codes_lock:
            return self._codes.pop(provisional_no, None)

    # -- the thread --------------------------------------------------------------------

    def _run(self) -> None:
        delays: Iterator[float] | None = None
        while not self._stopping.is_set():
            try:
                outcome = self._drain()
            except Exception:  # the disk or a bug: the outbox still holds everything; try again later
                log.exception("the outbox sender failed")
                outcome, self.last_error = FAILED, "the outbox sender failed (see the log)"
            self.state = outcome
            if time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + PRUNE_EVERY
                self._prune()
            if outcome == IDLE:
                delays, wait = None, self.interval
            else:
                delays = delays or backoff_delays(self.first_delay, self.max_delay)
                wait = max(next(delays), min(self._retry_after, self.max_delay))
                self._retry_after = 0.0
            self._wake.wait(wait)
            self._wake.clear()

    def _drain(self) -> str:
        """Send every pending application once, oldest first, taking in those added
        meanwhile; stop at the first sign that the server is away."""
        failed: set[str] = set()
        while not self._stopping.is_set():
            batch = [p for p in self.outbox.pending() if p.provisional_no not in failed]
            if not batch:
                break
            for pending in batch:
                if self._stopping.is_set():
                    break
                outcome = self._send(pending)
                if outcome in (UNREACHABLE, BLOCKED):
                    return outcome
                if outcome == FAILED:
                    failed.add(pending.provisional_no)  # a 5xx for this one: the others still go
        return FAILED if failed else IDLE

    def _send(self, pending: Pending) -> str:
        number = pending.provisional_no
        try:
            record = self.outbox.open(number)
        except OutboxError as exc:
            return self._refused(number, 0, "unreadable", str(exc))
        try:
            filed = self.client.file_application(pending.item, record["applicant"], record["values"], pending.key,
                                                 number)
        except ServerRefused as exc:
            if exc.status in RETRY_STATUSES or exc.status in TERMINAL_STATUSES:
                self._retry_after = float(exc.retry_after or 0)
                return self._failed(number, f"HTTP {exc.status} {exc.code}: {exc.detail}",
                                    BLOCKED if exc.status in TERMINAL_STATUSES else UNREACHABLE)
            return self._refused(number, exc.status, exc.code, exc.detail)
        except ServerUnreachable as exc:
            return self._failed(number, str(exc), UNREACHABLE)
        except ServerError as exc:
            return self._failed(number, str(exc), FAILED)
        code = filed.get("lookup_code")
        filed = {k: v for k, v in filed.items() if k != "lookup_code"}
        with self._codes_lock:  # before the row says delivered: submit() then finds the code
            if number in self._codes and isinstance(code, str):
                self._codes[number] = code
        self.outbox.mark_delivered(number, filed)
        self.last_error = ""
        self._changed()
        self._tell(self.on_delivered, number, filed)
        return DELIVERED_ONE

    def _refused(self, number: str, status: int, code: str, detail: str) -> str:
        self.outbox.mark_refused(number, status, code, detail)
        self._changed()
        refused = self.outbox.refusal(number)
        if refused is not None:
            self._tell(self.on_refused, number, refused)
        return REFUSED_ONE

    @staticmethod
    def _tell(callback: Callable[[str, Any], None] | None, number: str, what: Any) -> None:
        if callback is not None:
            try:
                callback(number, what)
            except Exception:  # the screen's callback must not stop the deliveries
                log.exception("the outbox callback failed for %s", number)

    def _failed(self, number: str, error: str, outcome: str) -> str:
        self.last_error = error
        self.outbox.note_attempt(number, error)
        log.info("application %s not sent yet: %s", number, error)
        self._changed()
        return outcome

    def _prune(self) -> None:
        try:
            self.outbox.prune()
        except sqlite3.Error:
            log.exception("pruning the outbox failed")

    def _changed(self) -> None:
        with self._settled:
            self._settled.notify_all()


def submit(outbox: Outbox, sender: Sender, item: str, applicant: dict[str, Any], values: dict[str, Any],
           wait: float = 3.0) -> Submitted:
    """File an application the one way there is: into the outbox (on the disk when this
    returns), kick the sender, and wait up to `wait` seconds for the server's answer.
    Blocks: call it from a worker thread (kiosk.background.in_background)."""
    with sender.expecting_code() as expect:
        pending = outbox.add(item, applicant, values)
        expect(pending.provisional_no)
    sender.kick()
    sender.wait(pending.provisional_no, wait, attempts=0)
    number = pending.provisional_no
    code = sender.take_code(number)
    filed = outbox.result(number)
    return Submitted(number, filed, outbox.refusal(number), code if filed is not None else None)
