"""The hall server's HTTP API: services, tickets, windows and the live event stream.

Handlers are `async def` and call the store directly: SQLite answers in microseconds, and
one connection on the event loop is the single writer the store wants. Every error is
`{"error": code, "detail": text}` with a 4xx status; a 500 is a bug.
"""


import asyncio
import json
import logging
import sqlite3
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from typing import Annotated, AsyncIterator, Literal

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kiosq.content.bundle import BundleError
from kiosq.content.model import CatalogError
from kiosq.queue import engine, stats
from kiosq.queue.application_api import install_applications
from kiosq.queue.fleet_api import install_fleet
from kiosq.queue.hours import Closed, HoursStatus, closed_detail
from kiosq.queue.hours import status as hours_status
from kiosq.queue.items import ItemCatalog
from kiosq.queue.notify import WebhookSender
from kiosq.queue.pages import install_pages
from kiosq.queue.personal import Personal
from kiosq.queue.rollout import Rollout
from kiosq.queue.store import IdempotencyConflict, NotFound, Store, Token, ticket_data
from kiosq.queue.voice import Voice, VoiceError

log = logging.getLogger("kiosq.server")

MAX_BODY_BYTES = 16 * 1024
SSE_RETRY_MS = 2000
SSE_BATCH = 500
SSE_HEARTBEAT_SECONDS = 15.0
SSE_POLL_SECONDS = 2.0
RECENT_CALLS = 8
MAX_EVENT_ID = 2**63 - 1  # SQLite's largest integer
CONTENT_FOLLOW_SECONDS = 2.0  # how often the server looks for a bundle published by `kiosq server publish`


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str, headers: dict | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


def _error(status: int, code: str, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TicketRequest(_Body):
    service: Annotated[str, Field(min_length=1, max_length=16, description="service code, e.g. A")]
    priority: Literal["normal", "elderly", "appointment", "green"] = "normal"


class TransferRequest(_Body):
    service: Annotated[str, Field(min_length=1, max_length=16, description="the service to move the ticket to")]


class ReinstateRequest(_Body):
    ticket: Annotated[str, Field(min_length=2, max_length=12, description="ticket number, e.g. A012")]


class NoticeRequest(_Body):
    notice: Annotated[str, Field(max_length=200, description="one line under the calls; empty clears it")]


class ErrorOut(BaseModel):
    error: str = Field(description="a stable code, e.g. not_allowed")
    detail: str = Field(description="what went wrong and what to do, in one sentence")


# Every route documents the one error shape; this also replaces FastAPI's own 422 schema.
ERROR_RESPONSES: dict[int | str, dict] = {
    status: {"model": ErrorOut, "description": text} for status, text in (
        (400, "malformed request"), (401, "missing, unknown or revoked token"), (403, "wrong role or window"),
        (404, "no such ticket, window, service or route"), (409, "refused by the queue rules"),
        (413, "body too large"), (422, "wrong fields or types"))}


_TICKET_REQUEST_DOC = {
    "parameters": [
        {"name": "Idempotency-Key", "in": "header", "required": True,
         "schema": {"type": "string", "minLength": 1, "maxLength": 200},
         "description": "a new random key (e.g. a UUID) per ticket; a retry with the same key gets the same ticket"},
    ],
    "security": [{"HTTPBearer": []}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": TicketRequest.model_json_schema()}}},
}


class TicketOut(BaseModel):
    id: str
    number: str
    service: str
    status: str
    priority: str
    ahead: int
    position: int | None
    eta_minutes: int | None
    issued_at: str
    follow_url: str


class Notifier:
    """Wakes the event streams when the store has committed new events."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event = asyncio.Event()
        self.closing = False  # the server is shutting down: streams end, clients reconnect

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
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass


def create_app(store: Store, heartbeat_seconds: float = SSE_HEARTBEAT_SECONDS, voice: Voice | None = None,
               items: ItemCatalog | None = None, personal: Personal | None = None) -> FastAPI:
    """The hall server's app. `voice` synthesises announcements; without it (or without
    espeak-ng) displays still work, silently, and /admin says why. `items` (the catalog)
    and `personal` (the applicant keys) default to those of the store's data folder."""
    notifier = Notifier()
    store.listeners.append(notifier.notify)
    data_dir = store.path.parent
    items = items or ItemCatalog(data_dir)
    personal = personal or Personal.in_dir(data_dir)
    sender = WebhookSender(store, personal, store.hall.notify) if store.hall.notify.webhook_url else None
    rollout = Rollout(data_dir, items)

    async def follow_content() -> None:
        # `kiosq server publish` runs in another process: the catalog follows within seconds.
        while True:
            await asyncio.sleep(CONTENT_FOLLOW_SECONDS)
            try:
                rollout.follow()
            except (BundleError, CatalogError, OSError, sqlite3.Error):  # the old catalog stays in use
                log.exception("could not load the published content bundle")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        notifier.bind(asyncio.get_running_loop())
        tasks = [asyncio.create_task(follow_content(), name="kiosq-content")]
        if sender:
            tasks.append(asyncio.create_task(sender.run(), name="kiosq-notify"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass

    # No /docs: Swagger UI loads from a CDN, and a hall network often has no internet.
    app = FastAPI(title="kiosq hall server", version="0.1.0", docs_url=None, redoc_url=None,
                  lifespan=lifespan, responses=ERROR_RESPONSES,
                  description="Queue tickets, service windows and the live event stream of one hall.")
    app.state.store = store
    app.state.notifier = notifier
    app.state.items = items
    app.state.sender = sender
    app.state.rollout = rollout
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    _install_error_handlers(app)
    hall = store.hall

    # -- auth ----------------------------------------------------------------------

    def authenticate(authorization: str | None) -> Token:
        scheme, _, secret = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(401, "unauthorized", "missing bearer token: send 'Authorization: Bearer <token>' "
                           "(create one with `kiosq server token`)", {"WWW-Authenticate": "Bearer"})
        token = store.token(secret.strip())
        if token is None:
            raise ApiError(401, "unauthorized", "unknown or revoked token: ask the hall admin for a valid one",
                           {"WWW-Authenticate": "Bearer"})
        return token

    # Dependencies are `async def` so that FastAPI runs them on the event loop: a plain `def`
    # goes through the thread pool, costs 40 % of the throughput, and would touch the store's
    # connection from another thread.
    bearer = HTTPBearer(auto_error=False, description="a terminal, staff or admin token from `kiosq server token`")

    async def caller(request: Request, _doc: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Token:
        return authenticate(request.headers.get("authorization"))

    Caller = Annotated[Token, Depends(caller)]

    async def window_staff(window: Annotated[int, Path(ge=1, le=999)], token: Caller) -> int:
        if window not in hall.windows:
            raise ApiError(404, "not_found", f"no window {window} in this hall; windows are: "
                           f"{', '.join(map(str, hall.windows))}")
        if token.may_act_at(window):
            return window
        if token.role in ("staff", "supervisor"):
            raise ApiError(403, "forbidden", f"staff token {token.name!r} may act at windows "
                           f"{', '.join(map(str, token.windows))}, not at window {window}")
        raise ApiError(403, "forbidden", f"window actions need a staff, supervisor or admin token; "
                       f"{token.name!r} is a {token.role} token")

    StaffWindow = Annotated[int, Depends(window_staff)]

    # -- views ---------------------------------------------------------------------

    def ticket_view(ticket: engine.Ticket, request: Request) -> dict:
        ahead = store.ahead(ticket)
        data = ticket_data(ticket, hall)
        data.update(id=ticket.id, ahead=ahead,
                    position=ahead + 1 if ticket.status == engine.WAITING else None,
                    eta_minutes=store.eta(ticket, ahead) if ticket.status == engine.WAITING else None,
                    follow_url=f"{str(request.base_url).rstrip('/')}/t/{ticket.id}")
        return data

    def window_view(state: engine.WindowState) -> dict:
        win = hall.windows[state.number]
        return {"number": win.number, "name": win.name, "name_en": win.name_en, "services": list(win.services),
                "policy": win.policy, "state": state.state,
                "current": None if state.current is None else ticket_data(state.current, hall)}

    def action_result(window: int, outcome: engine.Outcome) -> JSONResponse:
        return JSONResponse({"window": window_view(store.window(window)),
                             "ticket": None if outcome.ticket is None else ticket_data(outcome.ticket, hall),
                             "events": [e.type for e in outcome.events]})

    # -- routes --------------------------------------------------------------------

    def hours_now() -> HoursStatus:
        return hours_status(hall.hours, store.clock(), hall.tz)

    def refuse_when_closed(now: datetime) -> None:
        status = hours_status(hall.hours, now, hall.tz)
        if not status.open:
            opens_at = None if status.opens_at is None else status.opens_at.astimezone(hall.tz)
            raise Closed(closed_detail(status.opens_at, now, hall.tz), opens_at)

    @app.get("/api/health", tags=["hall"])
    async def health() -> dict:
        return {"ok": True, "hall": hall.info.name, "business_day": store.today().isoformat(),
                "schema_version": store.schema_version(), "last_event_id": store.last_event_id(),
                **hours_now().as_dict(hall.tz)}

    def services_view() -> list[dict]:
        waiting, open_windows = store.waiting_counts(), store.open_windows()
        hours = hours_now().as_dict(hall.tz)  # the hall's: the same on every service
        return [{"code": s.code, "name": s.name, "name_en": s.name_en, "prefix": s.prefix, "waiting": waiting[s.code],
                 "open_windows": open_windows[s.code], "avg_service_minutes": s.avg_service_minutes,
                 "eta_minutes": engine.eta_minutes(waiting[s.code], s, open_windows[s.code]), **hours}
                for s in hall.services.values()]

    def voice_status() -> dict:
        if voice is None:
            return {"available": False, "reason": "voice is not configured on this server"}
        return {"available": voice.available, "reason": voice.reason}

    @app.get("/api/services", tags=["hall"])
    async def services() -> JSONResponse:
        return JSONResponse(services_view())

    @app.get("/api/me", tags=["hall"])
    async def me(token: Caller) -> dict:
        """Who a token belongs to: the consoles check a token with this before using it."""
        return {"name": token.name, "role": token.role, "windows": list(token.windows)}

    @app.get("/api/display", tags=["displays"])
    async def display() -> JSONResponse:
        """Everything a display shows, in one snapshot, with the event id to stream from."""
        return JSONResponse({
            "hall": {"name": hall.info.name, "name_en": hall.info.name_en, "notice": store.notice(),
                     "sla_wait_minutes": hall.info.sla_wait_minutes},
            "now": store.clock().astimezone(hall.tz).isoformat(timespec="milliseconds"),
            "business_day": store.today().isoformat(), "windows": [window_view(w) for w in store.windows()],
            "services": services_view(), "last_event_id": store.last_event_id(), "voice": voice_status(),
            "calls": [{"id": e.id, "type": e.type, **json.loads(e.data)} for e in store.recent_calls(RECENT_CALLS)]})

    @app.put("/api/hall/notice", tags=["displays"])
    async def set_notice(body: NoticeRequest, token: Caller) -> dict:
        if token.role != "admin":
            raise ApiError(403, "forbidden", "only an admin token can change the hall notice")
        store.set_notice(body.notice)
        return {"notice": body.notice}

    def admin_only(token: Token) -> None:
        if token.role != "admin":
            raise ApiError(403, "forbidden", f"the hall's figures need an admin token; {token.name!r} is a "
                           f"{token.role} token")

    def day_figures(day: date | None) -> tuple[date, list[engine.Ticket], datetime, datetime]:
        """The tickets of a business day (today by default) and the moment to measure at."""
        now = store.clock()
        today = store.today()
        day = day or today
        if day > today:
            raise ApiError(404, "not_found", f"{day} has not begun; figures exist up to today ({today})")
        start, end = stats.day_bounds(day, hall)
        # A past day is measured at its last instant, so its figures no longer move.
        as_of = now if day == today else end - timedelta(microseconds=1)
        store.roll_over_if_due()
        return day, store.tickets_of_day(day), start, as_of

    Day = Annotated[date | None, Query(description="business day, YYYY-MM-DD; default today")]

    @app.get("/api/stats", tags=["stats"])
    async def get_stats(token: Caller, day: Day = None) -> JSONResponse:
        """Today's (or a past day's) figures: waits, service times, throughput, no-shows, SLA."""
        admin_only(token)
        _day, tickets, _start, as_of = day_figures(day)
        return JSONResponse(stats.day_stats(tickets, hall, as_of))

    @app.get("/api/stats/export.csv", tags=["stats"], response_class=Response,
             responses={200: {"content": {"text/csv": {}}, "description": "one row per hall, service and window"}})
    async def export_csv(token: Caller, day: Day = None, lang: Literal["zh", "en"] = "zh") -> Response:
        admin_only(token)
        the_day, tickets, _start, as_of = day_figures(day)
        return Response(stats.stats_csv(stats.day_stats(tickets, hall, as_of), lang), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="kiosq-{the_day}.csv"'})

    @app.get("/api/stats/chart.svg", tags=["stats"], response_class=Response,
             responses={200: {"content": {"image/svg+xml": {}}, "description": "waiting count over the day"}})
    async def chart(token: Caller, day: Day = None, lang: Literal["zh", "en"] = "zh") -> Response:
        admin_only(token)
        _day, tickets, start, as_of = day_figures(day)
        series = stats.waiting_series(tickets, start, as_of)
        return Response(stats.chart_svg(series, lang=lang), media_type="image/svg+xml")

    @app.get("/api/announcements", tags=["displays"], response_class=FileResponse, responses={
        200: {"description": "chime and spoken call, WAV", "content": {"audio/wav": {}}},
        503: {"model": ErrorOut, "description": "no voice on this server (the reason says why)"}})
    async def announcement(number: Annotated[str, Query(pattern=r"^[A-Z]{1,3}[0-9]{1,5}$")],
                           window: Annotated[int, Query(ge=1, le=999)]) -> FileResponse:
        """The announcement of one call, 「请 A001 号到 3 号窗口办理」, made once and cached."""
        if window not in hall.windows:
            raise ApiError(404, "not_found", f"no window {window} in this hall")
        status = voice_status()
        if not status["available"]:
            raise ApiError(503, "voice_unavailable", status["reason"])
        try:
            path = await run_in_threadpool(voice.announcement, number, window)  # espeak-ng takes ~50 ms
        except VoiceError as exc:
            log.error("announcement failed: %s", exc)
            raise ApiError(503, "voice_unavailable", f"speech synthesis failed: {exc}")
        return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": "public, max-age=86400"})

    # The busiest endpoint reads its request itself instead of through FastAPI's
    # dependency and body machinery, which costs more than the ticket's SQL (BENCHMARKS.md).
    # openapi_extra documents what it takes.
    @app.post("/api/tickets", status_code=201, tags=["tickets"],
              responses={201: {"model": TicketOut, "description": "the ticket (the same one for a repeated key)"}},
              openapi_extra=_TICKET_REQUEST_DOC)
    async def issue_ticket(request: Request) -> JSONResponse:
        token = authenticate(request.headers.get("authorization"))  # every role may issue
        key = request.headers.get("idempotency-key")
        if not key:
            raise ApiError(400, "idempotency_key_required", "send an Idempotency-Key header (a new UUID per ticket) "
                           "so that a retried request returns the same ticket instead of a second one")
        if len(key) > 200:
            raise ApiError(400, "bad_idempotency_key", "the Idempotency-Key header is longer than 200 characters")
        raw = await request.body()
        if not raw.strip():
            raise ApiError(422, "invalid_request", 'body: required; send a JSON object such as {"service": "A"}')
        try:
            body = TicketRequest.model_validate_json(raw)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from None
        if body.priority == "green" and token.role == "terminal":
            raise ApiError(403, "forbidden", "green-channel tickets are issued by staff or an admin, not at a terminal")
        ticket, replayed = store.issue_ticket(body.service, body.priority, caller=token.key, issued_by=token.name,
                                              idempotency_key=key, guard=refuse_when_closed)
        return JSONResponse(ticket_view(ticket, request), status_code=201,
                            headers={"Idempotent-Replayed": "true"} if replayed else None)

    # Not checked against a pattern here: a mistyped or truncated link is "no such ticket"
    # (404, from the store), which says more to a citizen than a 422 quoting a regex.
    TicketId = Annotated[str, Path(max_length=64, description="the id from the ticket's answer or QR code: "
                                   "<seq>-<16 random characters>")]

    @app.get("/api/tickets/{ticket_id}", tags=["tickets"], responses={200: {"model": TicketOut}})
    async def get_ticket(ticket_id: TicketId, request: Request) -> JSONResponse:
        return JSONResponse(ticket_view(store.ticket(ticket_id), request))

    @app.post("/api/tickets/{ticket_id}/cancel", tags=["tickets"], responses={200: {"model": TicketOut}})
    async def cancel_ticket(ticket_id: TicketId, request: Request, token: Caller) -> JSONResponse:
        """A waiting ticket: anyone holding its id. A called one: staff of its window, or admin."""
        def may_cancel(ticket: engine.Ticket) -> None:
            if ticket.window is None or token.role == "admin":
                return  # not at a window: the queue rules decide
            if token.role in ("staff", "supervisor") and token.may_act_at(ticket.window):
                return
            raise ApiError(403, "forbidden", f"ticket {ticket.label} is {ticket.status.replace('_', '-')} at window "
                           f"{ticket.window}; only staff of that window or an admin can cancel it now")

        return JSONResponse(ticket_view(store.cancel(ticket_id, guard=may_cancel).ticket, request))

    @app.get("/api/windows", tags=["windows"])
    async def windows() -> JSONResponse:
        return JSONResponse([window_view(s) for s in store.windows()])

    @app.post("/api/windows/{window}/call-next", tags=["windows"])
    async def call_next(window: StaffWindow) -> JSONResponse:
        return action_result(window, store.call_next(window))

    def simple_action(action: str, path: str) -> None:
        async def handler(window: StaffWindow) -> JSONResponse:
            return action_result(window, store.act(window, action))
        app.post(f"/api/windows/{{window}}/{path}", tags=["windows"], name=action)(handler)

    for action, path in (("recall", "recall"), ("start", "start"), ("finish", "finish"), ("no_show", "no-show")):
        simple_action(action, path)

    @app.post("/api/windows/{window}/transfer", tags=["windows"])
    async def transfer(window: StaffWindow, body: TransferRequest) -> JSONResponse:
        return action_result(window, store.act(window, "transfer", body.service))

    @app.post("/api/windows/{window}/reinstate", tags=["windows"])
    async def reinstate(window: StaffWindow, body: ReinstateRequest) -> JSONResponse:
        return action_result(window, store.reinstate(window, body.ticket))

    @app.post("/api/windows/{window}/pause", tags=["windows"])
    async def pause(window: StaffWindow) -> JSONResponse:
        return action_result(window, store.set_window_state(window, paused=True))

    @app.post("/api/windows/{window}/resume", tags=["windows"])
    async def resume(window: StaffWindow) -> JSONResponse:
        return action_result(window, store.set_window_state(window, paused=False))

    async def event_cursor(last_event_id: Annotated[str | None, Header()] = None,
                     since: Annotated[int | None, Query(description="replay events after this id")] = None) -> int:
        """Where a stream starts; checked before the stream opens, so a bad id is a 400."""
        raw = last_event_id if last_event_id is not None else since
        if raw is None:
            return store.last_event_id()
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, "bad_event_id", f"Last-Event-ID must be an event id (a whole number), not {raw!r}")
        if not 0 <= value <= MAX_EVENT_ID:
            raise ApiError(400, "bad_event_id", f"Last-Event-ID must be an event id from 0 to {MAX_EVENT_ID}")
        # An id ahead of the log (the database was restored from a backup) means: from now on.
        return min(value, store.last_event_id())

    @app.get("/api/events", tags=["events"], response_class=StreamingResponse, responses={200: {
        "description": "Server-Sent Events: `id:` the event id, `event:` its type, `data:` JSON",
        "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
    async def events(cursor: Annotated[int, Depends(event_cursor)]) -> StreamingResponse:
        """Every change as it happens. Without `Last-Event-ID` (or `?since=ID`) the stream
        starts now; with it, everything after that id is replayed from the event log first."""
        # Written out by hand rather than with FastAPI's EventSourceResponse, whose own
        # keep-alive task logs a traceback when a client disconnects (FastAPI #15725);
        # displays reconnect all the time.
        return StreamingResponse(_stream(cursor), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def _stream(cursor: int) -> AsyncIterator[bytes]:
        yield f": kiosq events after {cursor}\nretry: {SSE_RETRY_MS}\n\n".encode()
        loop = asyncio.get_running_loop()
        last_sent = loop.time()
        while not notifier.closing:
            batch = store.events_after(cursor, SSE_BATCH)
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

    install_applications(app, store, items, personal, authenticate)
    install_fleet(app, store, rollout, personal, authenticate, hours_now)
    install_pages(app)
    return app


class BodyLimit:
    """Refuse request bodies over `max_bytes` with a JSON 413, whether or not the client
    sent Content-Length. Bodies here are small, so reading one ahead costs nothing."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                return await self._too_large(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope, receive, send) -> None:
        response = _error(413, "too_large", f"request body larger than {self.max_bytes} bytes; send a smaller body")
        await response(scope, receive, send)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_req: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(engine.Refusal)
    async def refusal(_req: Request, exc: engine.Refusal) -> JSONResponse:
        return _error(409, exc.code, str(exc))

    @app.exception_handler(NotFound)
    async def not_found(_req: Request, exc: NotFound) -> JSONResponse:
        return _error(404, "not_found", str(exc))

    @app.exception_handler(Closed)
    async def closed(_req: Request, exc: Closed) -> JSONResponse:
        opens_at = None if exc.opens_at is None else exc.opens_at.isoformat(timespec="seconds")
        return JSONResponse({"error": "closed", "detail": str(exc), "opens_at": opens_at}, status_code=409)

    @app.exception_handler(IdempotencyConflict)
    async def idem_conflict(_req: Request, exc: IdempotencyConflict) -> JSONResponse:
        return _error(409, "idempotency_conflict", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0]
        if err["type"] == "json_invalid":
            return _error(400, "malformed_json", f"the request body is not valid JSON ({err.get('ctx', {}).get('error', 'parse error')}); send a JSON object")
        where = ".".join(str(p) for p in err["loc"] if p != "body") or "body"
        msg = "required" if err["type"] == "missing" else err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field; see /openapi.json for the fields this endpoint takes"
        return _error(422, "invalid_request", f"{where}: {msg}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        detail = str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such endpoint; /openapi.json lists them"
        return _error(exc.status_code, codes.get(exc.status_code, "http_error"), detail,
                      getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def bug(req: Request, exc: Exception) -> JSONResponse:
        # The route's template, not the path: paths carry ticket ids, the holders' secrets.
        route = req.scope.get("route")
        log.exception("internal error on %s %s", req.method, getattr(route, "path", "(no route)"))
        return _error(500, "internal", "the server hit a bug; it is logged. Try again, and tell the hall IT staff")
