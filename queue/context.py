"""What every route reaches: the store, the catalog, the applicant keys, the rollout, the
event notifier and the voice, held once on `app.state` and handed to routes as `Ctx`."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated

from fastapi import Depends, Request

from kiosq.queue.config import Hall
from kiosq.queue.events import Notifier
from kiosq.queue.hours import HoursStatus
from kiosq.queue.hours import status as hours_status
from kiosq.queue.items import ItemCatalog
from kiosq.queue.notify import WebhookSender
from kiosq.queue.personal import Personal
from kiosq.queue.rollout import Rollout
from kiosq.queue.store import Store
from kiosq.queue.voice import Voice


@dataclass(frozen=True)
class Context:
    store: Store
    items: ItemCatalog
    personal: Personal
    rollout: Rollout
    notifier: Notifier
    voice: Voice | None
    sender: WebhookSender | None
    heartbeat_seconds: float  # how quiet an event stream may be before it sends a ping
    caller_check_seconds: float  # how often the staff stream checks its caller may still see it
    public_url: str  # the base of absolute URLs (follow_url): [hall] public_url, else the server's own address

    @property
    def hall(self) -> Hall:
        return self.store.hall

    @property
    def notify(self) -> bool:
        """Whether application changes are queued for the webhook."""
        return self.hall.notify.webhook_url is not None

    def local(self, value: datetime | None) -> str | None:
        """A moment as the hall's local time, to the second."""
        return None if value is None else value.astimezone(self.hall.tz).isoformat(timespec="seconds")

    def local_today(self) -> date:
        """The hall's local date (applications count days by it, not by the business day)."""
        return self.store.clock().astimezone(self.hall.tz).date()

    def hours_now(self) -> HoursStatus:
        return hours_status(self.hall.hours, self.store.clock(), self.hall.tz)


def context_of(request: Request) -> Context:
    context: Context = request.app.state.context
    return context


# `async def` so that FastAPI runs it on the event loop, beside the store's one connection.
async def context(request: Request) -> Context:
    return context_of(request)


Ctx = Annotated[Context, Depends(context)]
