"""效能投诉 over HTTP: a citizen files a complaint at a kiosk (terminal token) or from a
phone (no token, throttled per address) and follows it with the number and the lookup
code; supervisors accept or decline it, answer it, and the citizen (or the supervisor who
called them) closes it with their satisfaction. Rules: queue/complaints.py."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kiosq.base.privacy import mask_numbers_in_text, mask_phone
from kiosq.queue import complaints as rules
from kiosq.queue import lookup_code, throttle
from kiosq.queue.auth import describe, optional_token, require_role
from kiosq.queue.context import Context, Ctx
from kiosq.queue.errors import ApiError
from kiosq.queue.store.complaints import Complaint

router = APIRouter(tags=["complaints"])
HANDLERS = ("supervisor", "admin")
WRONG_CODES = 5  # wrong lookup codes per address and number in throttle.WINDOW
NO_MATCH = "no complaint with this number and code; check both on the slip"
PHONE_WINDOW = timedelta(hours=1)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class About(_Body):
    window: Annotated[int | None, Field(ge=1, le=999)] = None
    staff_name: Annotated[str | None, Field(max_length=40)] = None
    item: Annotated[str | None, Field(max_length=80)] = None


class Contact(_Body):
    phone: Annotated[str, Field(pattern=r"^1[3-9]\d{9}$", description="a mainland mobile number, 11 digits")]


class ComplaintIn(_Body):
    about: About = About()
    category: Literal["evasion", "favours", "rudeness", "inaction", "other"]
    text: Annotated[str, Field(min_length=5, max_length=1000, description="what happened")]
    contact: Contact | None = None


class CodeIn(_Body):
    code: Annotated[str, Field(min_length=1, max_length=32)]


class StepIn(_Body):
    text: Annotated[str | None, Field(max_length=1000)] = None


class CloseIn(_Body):
    satisfaction: Annotated[int, Field(ge=1, le=5, description="the citizen's satisfaction with the answer, 5 best")]
    code: Annotated[str | None, Field(max_length=32, description="the lookup code (the citizen closing it)")] = None


Number = Annotated[str, Path(max_length=24, description="the complaint's number, e.g. TS20261208-0001")]


def deadlines_view(ctx: Context, c: Complaint) -> dict[str, Any]:
    today = ctx.local_today()
    decided = c.state != rules.RECEIVED
    replied = c.state in (rules.DECLINED, rules.ANSWERED, rules.CLOSED)
    return {"accept_by": c.accept_by.isoformat(), "reply_by": c.reply_by.isoformat(),
            "accept_due": rules.due_state(c.accept_by, decided, today),
            "reply_due": rules.due_state(c.reply_by, replied, today)}


def public_view(ctx: Context, c: Complaint) -> dict[str, Any]:
    """What the citizen sees with their code: the state, the deadlines, a decline's reason
    and the answer; not who handled it."""
    zh, en = rules.CATEGORIES[c.category]
    return {"complaint_no": c.complaint_no, "state": c.state, "category": c.category, "category_name": zh,
            "category_name_en": en, "received_at": ctx.local(c.received_at), **deadlines_view(ctx, c),
            "decline_reason": c.decline_reason, "answer": c.answer, "answered_at": ctx.local(c.answered_at),
            "satisfaction": c.satisfaction}


def staff_view(ctx: Context, c: Complaint, record: dict[str, Any]) -> dict[str, Any]:
    """What a supervisor sees: the text (numbers in it masked), the phone masked, who did what."""
    phone = (record.get("contact") or {}).get("phone")
    return {**public_view(ctx, c), "channel": c.channel,
            "about": {"window": c.about_window, "staff_name": c.about_staff, "item": c.about_item},
            "text": record.get("text"), "phone": mask_phone(phone) if phone else None,
            "accepted_by": c.accepted_by, "accepted_at": ctx.local(c.accepted_at), "declined_by": c.declined_by,
            "declined_at": ctx.local(c.declined_at), "answered_by": c.answered_by,
            "closed_at": ctx.local(c.closed_at)}


def _record(ctx: Context, number: str) -> dict[str, Any]:
    found = ctx.store.complaint_secrets(number)
    return {} if found is None or not found[0] else ctx.personal.open(found[0])


@router.post("/api/complaints", status_code=201)
async def file_complaint(body: ComplaintIn, request: Request, ctx: Ctx) -> JSONResponse:
    """Who may call: a terminal token (the kiosk's 投诉建议), or no token (the phone page
    /complain; `[complaints] phone_per_hour` per address, then 429). Staff tokens are
    refused. `Idempotency-Key` (optional): a retry answers the same complaint and code.
    201 `{complaint_no, lookup_code, state, accept_by, reply_by}`: the lookup code is in
    this answer only (kept hashed, and sealed with the text for a replay's answer)."""
    token = optional_token(request)
    if token is not None and token.role != "terminal":
        raise ApiError(403, "forbidden", f"complaints are filed by citizens, at a kiosk or on a phone; "
                       f"{describe(token)} is a {token.role}")
    if token is None:
        scope = throttle.client_scope(ctx.personal, request, "complain")
        limit = ctx.hall.complaints.phone_per_hour
        wait = throttle.check(ctx.store, (scope,), limit, PHONE_WINDOW)
        if wait is not None:
            raise throttle.too_many(f"{limit} complaints an hour from one address; try again in {wait.minutes} min, "
                                    "or at the hall's kiosk", wait)
        throttle.count_try(ctx.store, (scope,), PHONE_WINDOW)
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 200:
        raise ApiError(400, "bad_idempotency_key", "the Idempotency-Key header must be 1 to 200 characters")
    text = mask_numbers_in_text(body.text)
    code = lookup_code.new_code()
    record = {"text": text, "contact": body.contact.model_dump() if body.contact else None, "lookup_code": code}
    fingerprint = ctx.personal.digest(json.dumps(body.model_dump(), sort_keys=True, ensure_ascii=False))
    caller = token.key if token is not None else "phone"
    complaint, replayed = ctx.store.file_complaint(
        channel="kiosk" if token is not None else "phone", about=body.about.model_dump(), category=body.category,
        sealed=ctx.personal.seal(record), lookup_hash=lookup_code.code_hash(ctx.personal, code), caller=caller,
        key=key if token is not None else None, fingerprint=fingerprint)
    if replayed:
        code = _record(ctx, complaint.complaint_no).get("lookup_code", code)
    return JSONResponse({"complaint_no": complaint.complaint_no, "lookup_code": code, "state": complaint.state,
                         "accept_by": complaint.accept_by.isoformat(), "reply_by": complaint.reply_by.isoformat()},
                        status_code=201, headers={"Cache-Control": "no-store",
                                                  **({"Idempotent-Replayed": "true"} if replayed else {})})


def verified(ctx: Context, request: Request, number: str, code: str) -> Complaint:
    """The complaint, if `code` is its lookup code; throttled per address and number."""
    scope = "ccode:" + ctx.personal.digest(f"complaint|{throttle.client_address(request)}|{number.upper()}")[:32]
    wait = throttle.check(ctx.store, (scope,), WRONG_CODES)
    if wait is not None:
        raise throttle.too_many(f"too many wrong codes for this number from here; try again in {wait.minutes} min",
                                wait)
    found = ctx.store.complaint_secrets(number)
    complaint = ctx.store.complaint(number) if found else None
    if complaint is None or not lookup_code.matches(ctx.personal, code, found[1] if found else None):
        throttle.count_try(ctx.store, (scope,))
        raise ApiError(403, "no_match", NO_MATCH)
    return complaint


@router.post("/api/complaints/{number}/lookup")
async def lookup(number: Number, body: CodeIn, request: Request, ctx: Ctx) -> JSONResponse:
    """Who may call: whoever holds the slip's number and code (no token). The state, the
    deadlines, a decline's reason, the answer; a wrong code and an unknown number are 403
    alike; 5 wrong codes from an address for one number in 10 minutes: 429."""
    return JSONResponse(public_view(ctx, verified(ctx, request, number, body.code)),
                        headers={"Cache-Control": "no-store"})


@router.get("/api/complaints")
async def listing(request: Request, ctx: Ctx,
                  state: Annotated[list[Literal["received", "accepted", "declined", "answered", "closed"]] | None,
                                   Query(description="only these states (repeat the parameter)")] = None
                  ) -> JSONResponse:
    """Who may call: a supervisor or an admin. Every complaint, oldest first, with its text
    (numbers masked), the phone masked and the deadlines' states; `overdue` counts those
    past a deadline not met."""
    require_role(request, *HANDLERS)
    found = [staff_view(ctx, c, _record(ctx, c.complaint_no)) for c in ctx.store.complaints(
        tuple(state) if state else None)]
    overdue = sum(1 for v in found if "overdue" in (v["accept_due"], v["reply_due"]))
    return JSONResponse({"count": len(found), "overdue": overdue, "complaints": found})


def _act(ctx: Context, number: str, action: str, actor: str, text: str | None = None,
         satisfaction: int | None = None) -> Complaint:
    try:
        return ctx.store.act_on_complaint(number, action, actor, text, satisfaction)
    except rules.ComplaintRefused as refused:
        raise ApiError(refused.status, refused.code, str(refused)) from None


@router.post("/api/complaints/{number}/accept")
@router.post("/api/complaints/{number}/decline")
@router.post("/api/complaints/{number}/answer")
async def handle(number: Number, body: StepIn, request: Request, ctx: Ctx) -> JSONResponse:
    """Who may call: a supervisor or an admin. accept; decline (`text`: the reason, which
    the citizen sees); answer (`text`: the answer). Numbers in a text are masked and it is
    sealed. 409 `invalid_transition` out of order; 422 `text_required`."""
    token = require_role(request, *HANDLERS)
    action = request.url.path.rsplit("/", 1)[1]
    if action in ("decline", "answer") and not body.text:
        raise ApiError(422, "text_required", "give the reason for declining" if action == "decline"
                       else "give the answer the citizen will read")
    c = _act(ctx, number, action, token.name, mask_numbers_in_text(body.text) if body.text else None)
    return JSONResponse(staff_view(ctx, c, _record(ctx, c.complaint_no)))


@router.post("/api/complaints/{number}/close")
async def close(number: Number, body: CloseIn, request: Request, ctx: Ctx) -> JSONResponse:
    """Who may call: the citizen with the lookup code (no token), or a supervisor or admin
    recording what the citizen said on the phone. An answered complaint is closed with the
    citizen's satisfaction with the answer (1-5)."""
    if body.code is not None:
        verified(ctx, request, number, body.code)
        c = _act(ctx, number, "close", "citizen", satisfaction=body.satisfaction)
        return JSONResponse(public_view(ctx, c))
    token = require_role(request, *HANDLERS)
    c = _act(ctx, number, "close", token.name, satisfaction=body.satisfaction)
    return JSONResponse(staff_view(ctx, c, _record(ctx, c.complaint_no)))


@router.get("/api/complaints/categories")
async def categories() -> JSONResponse:
    """Public: the categories a complaint is filed under, zh and en (the kiosk's and the phone's forms)."""
    return JSONResponse({"categories": [{"code": k, "name": zh, "name_en": en}
                                        for k, (zh, en) in rules.CATEGORIES.items()]})
