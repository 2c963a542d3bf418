"""The hall server's app: `create_app` wires the routers (queue/routers/), the error
handlers, the body limit and the background tasks around one store.

Handlers are `async def` and call the store directly: SQLite answers in microseconds, and
one connection on the event loop is the single writer the store wants. Every error is
`{"error": code, "detail": text}` with a 4xx status; a 500 is a bug (queue/errors.py).
"""

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress

from fastapi import FastAPI

from kiosq.content.bundle import BundleError
from kiosq.content.model import CatalogError
from kiosq.queue.context import Context
from kiosq.queue.errors import ERROR_RESPONSES, install_error_handlers
from kiosq.queue.events import CALLER_CHECK_SECONDS, SSE_HEARTBEAT_SECONDS, Notifier
from kiosq.queue.items import ItemCatalog
from kiosq.queue.middleware import MAX_BODY_BYTES, BodyLimit, Headers
from kiosq.queue.notify import WebhookSender
from kiosq.queue.pages import install_pages
from kiosq.queue.personal import Personal
from kiosq.queue.retention import run_daily as retain_daily
from kiosq.queue.rollout import Rollout
from kiosq.queue.routers import (
    applications,
    complaints,
    content,
    displays,
    fleet,
    hall,
    items,
    people,
    ratings,
    retention,
    stats,
    streams,
    tickets,
    windows,
)
from kiosq.queue.store import Store, roll_over_daily
from kiosq.queue.voice import Voice

log = logging.getLogger("kiosq.server")

CONTENT_FOLLOW_SECONDS = 2.0  # how often the server looks for a bundle published by `kiosq server publish`
# A request is matched against the routers in this order: the busiest first (each router
# passed costs a few microseconds on every ticket). Where paths overlap, order decides:
# stats' /api/applications/stats comes before applications' /api/applications/{number}.
ROUTERS = (tickets, windows, hall, displays, streams, stats, items, applications, fleet, content, people, retention,
           ratings, complaints)


def create_app(store: Store, heartbeat_seconds: float = SSE_HEARTBEAT_SECONDS, voice: Voice | None = None,
               items: ItemCatalog | None = None, personal: Personal | None = None,
               own_url: str = "http://127.0.0.1:8000", caller_check_seconds: float = CALLER_CHECK_SECONDS) -> FastAPI:
    """The hall server's app. `voice` synthesises announcements; without it (or without
    espeak-ng) displays still work, silently, and /admin says why. `items` (the catalog)
    and `personal` (the applicant keys) default to those of the store's data folder.
    `own_url` is where the server listens, the base of absolute URLs when the hall file
    names no [hall] public_url. `caller_check_seconds`: how often the staff stream checks
    that its caller may still see it (tests make it short)."""
    public_url = str(store.hall.info.public_url or own_url).rstrip("/")
    ctx = _context(store, heartbeat_seconds, voice, items, personal, public_url, caller_check_seconds)
    # No /docs: Swagger UI loads from a CDN, and a hall network often has no internet.
    app = FastAPI(title="kiosq hall server", version="0.1.0", docs_url=None, redoc_url=None,
                  lifespan=_lifespan(ctx), responses=ERROR_RESPONSES,
                  description="Queue tickets, service windows and the live event stream of one hall.")
    app.state.context = ctx
    # Also by name, for the server's signal handler and the tests.
    app.state.store, app.state.notifier, app.state.items = store, ctx.notifier, ctx.items
    app.state.sender, app.state.rollout = ctx.sender, ctx.rollout
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(Headers)  # outermost: the 431 comes before anything reads the request
    install_error_handlers(app)
    for module in ROUTERS:
        app.include_router(module.router)
    install_pages(app)
    return app


def _context(store: Store, heartbeat_seconds: float, voice: Voice | None, items: ItemCatalog | None,
             personal: Personal | None, public_url: str, caller_check_seconds: float) -> Context:
    notifier = Notifier()
    store.listeners.append(notifier.notify)
    data_dir = store.data_dir
    items = items or ItemCatalog(data_dir)
    personal = personal or Personal.in_dir(data_dir)
    store.seal_notes_with(personal)  # staff notes are sealed like the applicant's record
    sender = WebhookSender(store, personal, store.hall.notify) if store.hall.notify.webhook_url else None
    return Context(store=store, items=items, personal=personal, rollout=Rollout(data_dir, items), notifier=notifier,
                   voice=voice, sender=sender, heartbeat_seconds=heartbeat_seconds,
                   caller_check_seconds=caller_check_seconds, public_url=public_url)


def _lifespan(ctx: Context) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ctx.notifier.bind(asyncio.get_running_loop())
        # SQLite: WAL checkpoints off the request path. PostgreSQL: other processes' events
        # wake this one's streams (LISTEN), as its own commits do.
        ctx.store.start_background()
        ctx.store.roll_over_if_due()  # a day that ended while the server was down; then at each rollover hour
        tasks = [asyncio.create_task(follow_content(ctx.rollout), name="kiosq-content"),
                 asyncio.create_task(roll_over_daily(ctx.store), name="kiosq-rollover"),
                 # personal data and events past the hall's [retention], once a business day
                 asyncio.create_task(retain_daily(ctx.store), name="kiosq-retention")]
        if ctx.sender:
            tasks.append(asyncio.create_task(ctx.sender.run(), name="kiosq-notify"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            # Before uvicorn ends the process (it re-raises SIGTERM after its shutdown).
            ctx.store.stop_background()
    return lifespan


async def follow_content(rollout: Rollout) -> None:
    """`kiosq server publish` runs in another process: the catalog follows within seconds."""
    while True:
        await asyncio.sleep(CONTENT_FOLLOW_SECONDS)
        try:
            rollout.follow()
        except (BundleError, CatalogError, OSError, sqlite3.Error):  # the old catalog stays in use
            log.exception("could not load the published content bundle")
