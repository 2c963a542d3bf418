"""Tickets: take one (the busiest route), see one, cancel one."""

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kiosq.queue import engine, throttle
from kiosq.queue.auth import Caller, token_of
from kiosq.queue.context import Ctx, context_of
from kiosq.queue.errors import ApiError
from kiosq.queue.store import RateLimited
from kiosq.queue.views import ticket_view

router = APIRouter(tags=["tickets"])


class TicketRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    service: Annotated[str, Field(min_length=1, max_length=16, description="service code, e.g. A")]
    priority: Literal["normal", "elderly", "appointment", "green"] = "normal"


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


_TICKET_REQUEST_DOC = {
    "parameters": [
        {"name": "Idempotency-Key", "in": "header", "required": True,
         "schema": {"type": "string", "minLength": 1, "maxLength": 200},
         "description": "a new random key (e.g. a UUID) per ticket; a retry with the same key gets the same ticket"},
    ],
    "security": [{"HTTPBearer": []}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": TicketRequest.model_json_schema()}}},
}


def idempotency_key(request: Request) -> str:
    key = request.headers.get("idempotency-key")
    if not key:
        raise ApiError(400, "idempotency_key_required", "send an Idempotency-Key header (a new UUID per ticket) "
                       "so that a retried request returns the same ticket instead of a second one")
    if len(key) > 200:
        raise ApiError(400, "bad_idempotency_key", "the Idempotency-Key header is longer than 200 characters")
    return key


async def ticket_request(request: Request) -> TicketRequest:
    raw = await request.body()
    if not raw.strip():
        raise ApiError(422, "invalid_request", 'body: required; send a JSON object such as {"service": "A"}')
    try:
        return TicketRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


# The busiest endpoint reads its request itself instead of through FastAPI's
# dependency and body machinery, which costs more than the ticket's SQL (BENCHMARKS.md).
# openapi_extra documents what it takes.
@router.post("/api/tickets", status_code=201,
             responses={201: {"model": TicketOut, "description": "the ticket (the same one for a repeated key)"}},
             openapi_extra=_TICKET_REQUEST_DOC)
async def issue_ticket(request: Request) -> JSONResponse:
    ctx = context_of(request)
    token = token_of(request)  # every role may issue; a terminal what the hall file's [terminals] allows
    key = idempotency_key(request)
    body = await ticket_request(request)
    engine.may_issue(body.priority, token, ctx.hall.terminals.priorities)
    try:  # in opening hours (hours.refuse_when_closed); a terminal's tickets per minute, a replay never refused
        ticket, replayed = ctx.store.issue_ticket(body.service, body.priority, caller=token.key, issued_by=token.name,
                                                  idempotency_key=key,
                                                  limited=throttle.terminal_limit(ctx.store, token, "tickets"))
    except RateLimited as refused:
        raise throttle.terminal_refused(ctx.store, token, "tickets", refused) from None
    return JSONResponse(ticket_view(ctx, ticket, ctx.public_url), status_code=201,
                        headers={"Idempotent-Replayed": "true"} if replayed else None)


# Not checked against a pattern here: a mistyped or truncated link is "no such ticket"
# (404, from the store), which says more to a citizen than a 422 quoting a regex.
TicketId = Annotated[str, Path(max_length=64, description="the id from the ticket's answer or QR code: "
                               "<seq>-<16 random characters>")]


@router.get("/api/tickets/{ticket_id}", responses={200: {"model": TicketOut}})
async def get_ticket(ticket_id: TicketId, request: Request, ctx: Ctx) -> JSONResponse:
    return JSONResponse(ticket_view(ctx, ctx.store.ticket(ticket_id), ctx.public_url))


@router.post("/api/tickets/{ticket_id}/cancel", responses={200: {"model": TicketOut}})
async def cancel_ticket(ticket_id: TicketId, request: Request, token: Caller, ctx: Ctx) -> JSONResponse:
    """A waiting ticket: anyone holding its id. A called one: staff of its window, or admin."""
    outcome = ctx.store.cancel(ticket_id, by=token)  # if engine.may_cancel
    return JSONResponse(ticket_view(ctx, outcome.tickets[-1], ctx.public_url))
