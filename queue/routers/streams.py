"""The live event streams, one per audience: the hall's displays (public), signed-in
staff (what their role may see), and the phone that follows one ticket."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from kiosq.queue import events as sse
from kiosq.queue.applications import STAFF_ROLES
from kiosq.queue.auth import Caller, describe, token_of
from kiosq.queue.context import Context, Ctx
from kiosq.queue.errors import ApiError
from kiosq.queue.routers.tickets import TicketId
from kiosq.queue.store import Token

router = APIRouter(tags=["events"])
_SSE_DOC: dict[int | str, dict[str, Any]] = {200: {
    "description": "Server-Sent Events: `id:` the event id, `event:` its type, `data:` JSON",
    "content": {"text/event-stream": {"schema": {"type": "string"}}}}}
# Written out by hand rather than with FastAPI's EventSourceResponse, whose own keep-alive
# task logs a traceback when a client disconnects (FastAPI #15725); displays reconnect all
# the time.
_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def _raw_cursor(last_event_id: str | None, since: int | None) -> str | int | None:
    return last_event_id if last_event_id is not None else since


LastEventId = Annotated[str | None, Header()]
Since = Annotated[int | None, Query(description="replay events after this id (as the Last-Event-ID header)")]


async def event_cursor(ctx: Ctx, last_event_id: LastEventId = None, since: Since = None) -> int:
    """Where a stream starts; checked before the stream opens, so a bad id is a 400."""
    return sse.start_cursor(ctx.store, _raw_cursor(last_event_id, since))


async def public_cursor(ctx: Ctx, last_event_id: LastEventId = None, since: Since = None) -> int:
    """As `event_cursor`, never before today's business day."""
    return sse.public_cursor(ctx.store, _raw_cursor(last_event_id, since))


@router.get("/api/events", response_class=StreamingResponse, responses=_SSE_DOC)
async def events(cursor: Annotated[int, Depends(public_cursor)], ctx: Ctx) -> StreamingResponse:
    """Public (the hall's displays): ticket and window events and the hall notice, as they
    happen, each ticket event with its service's waiting count (`waiting`); no
    application, terminal or content events, no staff names. Without
    `Last-Event-ID` (or `?since=ID`) the stream starts now; with it, the events after that
    id are replayed first, from the start of today's business day at the earliest (an
    older id, 0 included, replays the whole day)."""
    store, notifier = ctx.store, ctx.notifier
    stream = sse.stream(notifier, cursor, ctx.heartbeat_seconds,
                        lambda at, now: notifier.public_events_after(store, at, now))
    return StreamingResponse(stream, media_type="text/event-stream", headers=_HEADERS)


def _staff(token: Token) -> Token:
    if token.role not in STAFF_ROLES:
        raise ApiError(403, "forbidden", f"the staff event stream needs a staff, supervisor or admin token or "
                       f"account; {describe(token)} is a {token.role}")
    return token


def _caller_check(request: Request, ctx: Context) -> sse.CallerCheck:
    """The stream's caller resolved again as the `Caller` dependency does, without counting
    it as a use (an open console does not keep an idle session alive): what it may see now,
    or None once it may not see the stream (revoked, expired, signed out, disabled)."""
    def keep() -> sse.Keep | None:
        try:
            token = _staff(token_of(request, record_use=False))
        except ApiError:
            return None
        return sse.visible_to(token, ctx.hall.windows)
    return sse.CallerCheck(keep, ctx.caller_check_seconds)


@router.get("/api/staff/events", response_class=StreamingResponse, responses=_SSE_DOC)
async def staff_events(token: Caller, cursor: Annotated[int, Depends(event_cursor)], ctx: Ctx,
                       request: Request) -> StreamingResponse:
    """Staff, supervisor or admin (bearer token or the session cookie, which EventSource
    sends): the public events, the application events of the services the caller handles
    (all of them for an admin or a supervisor of no windows), and, for an admin, the
    terminal and content events. A terminal token is refused (403). Replays as
    /api/events, from any id. The caller is checked again every 30 s: the stream ends
    (after a `: signed out` comment) once the token is revoked or expired or the session
    ended, and follows a change of the account's role or windows."""
    store, notifier = ctx.store, ctx.notifier
    stream = sse.stream(notifier, cursor, ctx.heartbeat_seconds, lambda at, now: notifier.events_after(store, at, now),
                        sse.visible_to(_staff(token), ctx.hall.windows), _caller_check(request, ctx))
    return StreamingResponse(stream, media_type="text/event-stream", headers=_HEADERS)


@router.get("/api/tickets/{ticket_id}/events", tags=["tickets"], response_class=StreamingResponse, responses=_SSE_DOC)
async def ticket_events(ticket_id: TicketId, cursor: Annotated[int, Depends(event_cursor)],
                        ctx: Ctx) -> StreamingResponse:
    """Public: whoever holds the ticket's id (the slip's QR code), as GET
    /api/tickets/{id}. First a `ticket.position` event (status, ahead, position,
    eta_minutes), then that ticket's own events as they happen and a new `ticket.position`
    whenever its place in line changes; the stream ends after the ticket is finished or
    cancelled. With `Last-Event-ID` the ticket's events after it (of today) come first.
    404 for an unknown id."""
    ticket = ctx.store.ticket(ticket_id)  # a 404 before the stream opens
    stream = sse.ticket_stream(ctx.store, ctx.notifier, ticket, cursor, ctx.heartbeat_seconds)
    return StreamingResponse(stream, media_type="text/event-stream", headers=_HEADERS)
