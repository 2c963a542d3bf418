"""Tell citizens when their application moves: a webhook, where an SMS gateway can sit.

Each change a citizen cares about (filed, accepted, in review, returned for material,
completed, rejected) is queued in the store's `notifications` table in the transaction of
the change, so nothing is lost to a crash or restart. `WebhookSender` runs on the server's
event loop: it POSTs each due notification as JSON to `[notify] webhook_url`, retries with
doubling delays, and after `max_attempts` marks it failed; `GET /api/notifications` shows
the record. The applicant's phone is added only at sending time, from the sealed record,
and goes only to the configured URL: it is never stored in clear nor logged. Delivery is at
least once; the `Idempotency-Key: kiosq-notification-<id>` header lets the receiver drop a
repeat. With several server processes on one database each due notification is claimed by
one sender (a lease on its row, `Store.claim_notifications`), so a change is not sent once
per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta

from kiosq.queue.config import NotifyInfo
from kiosq.queue.personal import KeyFileError, Personal
from kiosq.queue.store import Notification, Store

log = logging.getLogger("kiosq.notify")
POLL_SECONDS = 5.0  # also picks up notifications queued by another server process
CLAIM_BATCH = 20  # notifications taken for sending at once


class DeliveryError(Exception):
    """The receiver did not take the notification; the message says why (no personal data)."""


def retry_delay(info: NotifyInfo, attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: retry_seconds, doubling, capped."""
    return min(info.retry_seconds * 2 ** (attempts - 1), info.max_retry_seconds)


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": "kiosq-notify/1", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) only, checked in config)
            response.read(4096)
            return response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"cannot reach the webhook: {reason}") from None
    except http.client.HTTPException as exc:  # a broken status line, a cut body: the receiver's fault
        raise DeliveryError(f"the webhook answered with broken HTTP ({type(exc).__name__})") from None


def _where(url: str) -> str:
    """The webhook's scheme, host and port only: a gateway's URL often carries its API key."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/…"


class WebhookSender:
    def __init__(self, store: Store, personal: Personal, info: NotifyInfo) -> None:
        if info.webhook_url is None:
            raise ValueError("no [notify] webhook_url in the hall file")
        self.store, self.personal, self.info = store, personal, info
        self.url = str(info.webhook_url)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        store.listeners.append(self.wake)

    def lease_seconds(self) -> float:
        """How long a claimed batch is this sender's: time to try each of them once."""
        return CLAIM_BATCH * (self.info.timeout_seconds + 1) + 30

    def wake(self, _last_id: int = 0) -> None:
        """Called after each commit (a new notification may be queued)."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        wake = self._wake = asyncio.Event()
        log.info("application notifications go to the webhook at %s", _where(self.url))
        while True:
            wake.clear()
            try:
                for note in self.store.claim_notifications(self.lease_seconds(), CLAIM_BATCH):
                    await self.send(note)
            except Exception:  # one bad note or a store hiccup must not end the sender for good
                log.exception("the notification sender failed; it tries again in %.0f s", POLL_SECONDS)
                await asyncio.sleep(POLL_SECONDS)
                continue
            await self._sleep(wake)

    async def _sleep(self, wake: asyncio.Event) -> None:
        wait = POLL_SECONDS
        next_at = self.store.next_notification_at()
        if next_at is not None:
            wait = max(0.0, min(wait, (next_at - self.store.clock()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), wait)

    def body(self, note: Notification) -> bytes:
        payload = dict(note.payload)
        if self.info.send_phone:
            _hash, sealed = self.store.applicant_record(note.tracking_no)
            # Empty once the retention run erased it: the change goes out without a phone.
            payload["phone"] = self.personal.open(sealed)["applicant"].get("phone") if sealed else None
        return json.dumps(payload, ensure_ascii=False).encode()

    async def send(self, note: Notification) -> bool:
        attempt = note.attempts + 1
        try:
            body = self.body(note)
            status = await asyncio.to_thread(post_json, self.url, body,
                                             {"Idempotency-Key": f"kiosq-notification-{note.id}"},
                                             self.info.timeout_seconds)
        except (DeliveryError, KeyFileError) as exc:
            self._failed(note, attempt, str(exc))
            return False
        except Exception as exc:  # anything else about this note: counted as a failed attempt, not fatal
            log.exception("notification %d (%s %s): sending failed", note.id, note.tracking_no, note.status)
            self._failed(note, attempt, f"internal error ({type(exc).__name__})")
            return False
        self.store.notification_sent(note.id)
        log.info("notification %d (%s %s) delivered, HTTP %d, attempt %d", note.id, note.tracking_no, note.status,
                 status, attempt)
        return True

    def _failed(self, note: Notification, attempt: int, error: str) -> None:
        if attempt >= self.info.max_attempts:
            self.store.notification_failed(note.id, error, None)
            log.warning("notification %d (%s %s) failed %d times, given up: %s", note.id, note.tracking_no,
                        note.status, attempt, error)
            return
        delay = retry_delay(self.info, attempt)
        retry_at: datetime = self.store.clock() + timedelta(seconds=delay)
        self.store.notification_failed(note.id, error, retry_at)
        log.info("notification %d (%s %s) attempt %d failed (%s); retry in %.1f s", note.id, note.tracking_no,
                 note.status, attempt, error, delay)
