"""Applications over HTTP: filing at a terminal, citizens' progress lookups, the staff's
list, views and actions, and the notification record.

Personal data (ID number, name, phone, address and the form's values) is sealed before it
reaches the store and opened only to show it masked, to answer a replayed filing its lookup
code, or for staff of the item's windows on `/personal` (recorded in the history). The
lookup code is kept as a keyed hash (queue/lookup_code.py) and, sealed with the record, for
replays. Nothing here logs a request body, a lookup code or a client address.
"""

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kiosq.content.model import ItemGuide, id_number_valid
from kiosq.queue import applications as rules
from kiosq.queue import lookup_code, throttle
from kiosq.queue.application_views import filed_view, open_record, public_view, staff_view, summary_view
from kiosq.queue.applications import Application
from kiosq.queue.auth import CallerUndocumented, optional_token, require_admin, require_terminal, who_of
from kiosq.queue.context import Context, Ctx
from kiosq.queue.errors import ApiError
from kiosq.queue.retention import erased_note
from kiosq.queue.store import TRACKING_PREFIX, Token

log = logging.getLogger("kiosq.applications")
router = APIRouter(tags=["applications"])

# Lookups by code: 5 wrong tries per client address and number in throttle.WINDOW (a
# terminal token counts as its own address), so wrong guesses from one address never shut
# out the right code from another. Guessing is hopeless anyway: 31^8 codes.
WRONG_TRIES = 5
CARD_LOOKUPS = 30  # lookups by ID number per terminal in the same window
LOOKUP_KEY = "lookup_code"  # in the sealed record: the code, for a replay's answer
NUMBER = r"^[A-Za-z0-9][A-Za-z0-9-]{3,39}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ApplicantIn(_Body):
    id_number: Annotated[str, Field(min_length=1, max_length=18,
                                    description="18 characters; the check digit is verified")]
    name: Annotated[str, Field(min_length=1, max_length=60)]
    phone: Annotated[str, Field(min_length=1, max_length=20, description="a mobile (11 digits) or a landline")]
    address: Annotated[str | None, Field(max_length=200)] = None
    source: Literal["card", "typed"] = Field(description="card: read from the ID card; typed: keyed in")


class ApplicationIn(_Body):
    item: Annotated[str, Field(min_length=1, max_length=40, description="the item's code, e.g. GA-SFZ-002")]
    applicant: ApplicantIn
    values: Annotated[dict[str, Any], Field(description="the form's values by field name")] = {}
    provisional_no: Annotated[str | None, Field(pattern=NUMBER, description=(
        "the number a terminal printed while the server was away; filing again with it returns the same "
        "application"))] = None


class LookupIn(_Body):
    id_number: Annotated[str, Field(min_length=1, max_length=18)]


class CodeIn(_Body):
    code: Annotated[str, Field(min_length=1, max_length=lookup_code.TYPED_MAX, description=(
        "the lookup code (查询密码) on the receipt; case, spaces and dashes do not matter"))]


class NoteIn(_Body):
    note: Annotated[str | None, Field(max_length=500, description="why: required to return or reject")] = None


class FiledOut(BaseModel):
    tracking_no: str
    status: str
    promised_date: str
    legal_date: str
    submitted_at: str
    item: str
    item_name: str
    department: str
    provisional_no: str | None
    lookup_code: str | None = Field(description="the application's lookup code (8 characters), in this answer "
                                                "only: print it on the receipt (null on a replay once the "
                                                "personal data was erased)")


class StepOut(BaseModel):
    action: str
    status: str
    at: str
    note: str | None


class ApplicationOut(BaseModel):
    tracking_no: str
    provisional_no: str | None
    item: str
    item_name: str
    department: str
    status: str
    rejection_pending: bool
    submitted_at: str
    promised_date: str
    legal_date: str
    applicant: dict[str, str] | None = Field(description="masked; null once the retention run erased it")
    personal_erased: str | None = Field(description='"personal data erased after N days", or null')
    history: list[StepOut]


def refuse_if_throttled(ctx: Context, scopes: tuple[str, ...], limit: int, what: str) -> None:
    wait = throttle.check(ctx.store, scopes, limit)
    if wait is not None:
        at = wait.until.astimezone(ctx.hall.tz).strftime("%H:%M")
        raise throttle.too_many(f"too many {what} in {throttle.WINDOW_MINUTES} minutes; try again after {at} "
                                f"(in {wait.minutes} min)", wait)


# -- filing --------------------------------------------------------------------------

def fileable_item(ctx: Context, body: ApplicationIn) -> ItemGuide:
    if body.provisional_no and _looks_like_tracking(body.provisional_no):
        raise ApiError(422, "invalid_request", f"provisional_no must not look like a tracking number "
                       f"({TRACKING_PREFIX}YYYYMMDD-NNNN)")
    item = ctx.items.get(body.item)
    if item is None:
        raise ApiError(404, "not_found", f"no item {body.item} in the catalog; GET /api/items?fileable=true "
                       "lists the items that can be filed")
    if not item.fileable:
        raise ApiError(422, "not_fileable", f"{item.code} {item.name} cannot be filed at a terminal; "
                       "the citizen goes to a window")
    return item


def checked_record(item: ItemGuide, body: ApplicationIn) -> dict[str, Any]:
    """The applicant record to seal, once the rules find nothing wrong with it."""
    applicant = body.applicant.model_dump()
    applicant["id_number"] = applicant["id_number"].upper()
    problems = rules.filing_problems(item, applicant, body.values)
    if problems:
        raise ApiError(422, "invalid_values", "; ".join(f"{k}: {v}" for k, v in sorted(problems.items())),
                       fields=problems)
    return {"applicant": applicant, "values": body.values}


@router.post("/api/applications", status_code=201,
             responses={201: {"model": FiledOut, "description": "filed (the same answer for a repeated key or "
                                                                "provisional number)"}})
async def file_application(body: ApplicationIn, token: CallerUndocumented, ctx: Ctx,
                           idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> JSONResponse:
    """File an application at a terminal (terminal token). Answers 201 with the tracking
    number, the deadlines and the `lookup_code` (shown nowhere else: the receipt prints it);
    a retry with the same Idempotency-Key, or the same provisional number, gets the same
    answer, the same code included, with `Idempotent-Replayed: true`."""
    require_terminal(token, f"applications are filed at a terminal, with a terminal token; "
                     f"{token.name!r} is a {token.role} token")
    if not idempotency_key:
        raise ApiError(400, "idempotency_key_required", "send an Idempotency-Key header (one per application, "
                       "kept for its retries) so that a retry cannot file it twice")
    item = fileable_item(ctx, body)
    record = checked_record(item, body)
    personal = ctx.personal
    fingerprint = personal.digest("application:" + _canonical(
        {"item": item.code, "provisional_no": body.provisional_no, **record}))
    new_code = lookup_code.new_code()
    filed, replayed = ctx.store.submit_application(
        item, terminal=token.name, id_hash=personal.id_hash(record["applicant"]["id_number"]),
        sealed=personal.seal({**record, LOOKUP_KEY: new_code}), fingerprint=fingerprint,
        provisional_no=body.provisional_no, caller=token.key, idempotency_key=idempotency_key, notify=ctx.notify,
        lookup_hash=lookup_code.code_hash(personal, new_code))
    code: str | None = new_code
    if replayed:  # the first try's code, from its sealed record (None if filed before codes, or erased)
        first = open_record(ctx, filed)
        code = None if first is None else first.get(LOOKUP_KEY)
    return JSONResponse({**filed_view(ctx, filed), "lookup_code": code}, status_code=201,
                        headers={"Idempotent-Replayed": "true", "Cache-Control": "no-store"} if replayed
                        else {"Cache-Control": "no-store"})


# -- lookups -------------------------------------------------------------------------

@router.post("/api/applications/lookup")
async def lookup_by_card(body: LookupIn, token: CallerUndocumented, ctx: Ctx) -> JSONResponse:
    """A person's applications, newest first, found by the ID number read from the card."""
    require_terminal(token, "lookups by ID number are made at a terminal, with a terminal token")
    number = body.id_number.upper()
    if not id_number_valid(number):
        raise ApiError(422, "invalid_values", "id_number: not a valid resident ID number",
                       fields={"id_number": "not a valid resident ID number (check its last character)"})
    throttle.limit_terminal_lookup(ctx.store, token)  # [terminals] lookups_per_minute
    scope = ("terminal:" + token.name,)
    refuse_if_throttled(ctx, scope, CARD_LOOKUPS, "lookups at this terminal")
    throttle.count_try(ctx.store, scope)
    found = ctx.store.applications_of_person(ctx.personal.id_hash(number))
    return JSONResponse({"applications": [public_view(ctx, a) for a in found]})


# -- staff ---------------------------------------------------------------------------

def listed_services(ctx: Context, token: Token, window: int | None) -> tuple[str, ...] | None:
    """The services whose applications a list shows: one window's, or all the token handles."""
    windows = ctx.hall.windows
    services = rules.services_of(token, windows)  # a 403 (NotPermitted) for a terminal token
    if window is None:
        return services
    if window not in windows:
        raise ApiError(404, "not_found", f"no window {window} in this hall")
    if not token.may_act_at(window):
        raise ApiError(403, "forbidden", f"{token.name!r} may not act at window {window}")
    return windows[window].services


def listed_statuses(status: str | None) -> tuple[str, ...] | None:
    if not status:
        return None
    statuses = tuple(s.strip() for s in status.split(",") if s.strip())
    unknown = [s for s in statuses if s not in rules.STATUSES]
    if unknown:
        raise ApiError(422, "invalid_request", f"status: unknown {', '.join(unknown)}; statuses are "
                       f"{', '.join(rules.STATUSES)}")
    return statuses


@router.get("/api/applications")
async def staff_list(token: CallerUndocumented, ctx: Ctx,
                     window: Annotated[int | None, Query(ge=1, le=999, description="only this window's items")] = None,
                     status: Annotated[str | None, Query(description="comma-separated statuses")] = None,
                     due: Annotated[Literal["near", "over"] | None, Query(
                         description="near: 80 % of the promised time used; over: past the promised date")] = None,
                     ) -> JSONResponse:
    """The applications of a window's items (or all a token may handle), soonest due first."""
    services = listed_services(ctx, token, window)
    statuses = listed_statuses(status)
    day, calendar = ctx.local_today(), ctx.hall.calendar
    found = ctx.store.applications(services, statuses)
    if due is not None:
        found = [a for a in found if rules.due_state(a, day, calendar) == due]
    found.sort(key=lambda a: (a.status in rules.FINISHED, a.promised_date, a.tracking_no))
    return JSONResponse({"today": day.isoformat(), "count": len(found),
                         "applications": [summary_view(ctx, a) for a in found]})


@router.get("/api/notifications")
async def notifications(token: CallerUndocumented, ctx: Ctx, state: Literal["queued", "sent", "failed"] | None = None,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> JSONResponse:
    """What the webhook was sent, newest first (admin). Payloads as sent, less the phone."""
    require_admin(token, "the notification record needs an admin token")
    local = ctx.local
    return JSONResponse({
        "webhook": ctx.notify, "notifications": [
            {"id": n.id, "tracking_no": n.tracking_no, "status": n.status, "state": n.state,
             "attempts": n.attempts, "next_at": local(n.next_at), "last_error": n.last_error,
             "created_at": local(n.created_at), "sent_at": local(n.sent_at), "payload": n.payload}
            for n in ctx.store.notifications(limit, state)]})


# -- one application -------------------------------------------------------------------

Number = Annotated[str, Path(max_length=40, description="tracking number (SQ20261122-0007) or the provisional "
                                                        "number on an offline receipt")]


def handled_application(ctx: Context, number: str, token: Token) -> rules.Application:
    """The application `number`, if `token` may handle it."""
    app = ctx.store.application(number)
    if app is None:
        raise ApiError(404, "not_found", f"no application {number}")
    rules.may_handle(token, app, ctx.hall.windows)
    return app


NO_MATCH = ("no application matches this number and this lookup code; check both on the receipt "
            "(the ID card finds your applications at a kiosk)")


def code_scope(ctx: Context, request: Request, token: Token | None, number: str) -> str:
    """What wrong codes count against: this asker (the client address, hashed, or a terminal
    token: a kiosk is many citizens at one address) with this number."""
    asker = "terminal:" + token.name if token is not None and token.role == "terminal" else (
        "ip:" + throttle.client_address(request))
    return "code:" + ctx.personal.digest(f"lookup|{asker}|{number}")[:32]


@router.post("/api/applications/{number}/lookup", responses={200: {"model": ApplicationOut}})
async def lookup_by_code(number: Number, body: CodeIn, request: Request, ctx: Ctx) -> JSONResponse:
    """A citizen's progress lookup: the number and the lookup code on the receipt (no token
    needed; a terminal token is fine and counts against its [terminals] lookups_per_minute).
    A wrong code and an unknown number get the same 403; 5 wrong tries from one address (or
    terminal) for one number in 10 minutes: 429 with Retry-After for that address and number
    only. Applications filed before lookup codes have none: the ID card at a kiosk finds them."""
    app = verified_by_code(ctx, request, number, body.code)
    return JSONResponse(public_view(ctx, app), headers={"Cache-Control": "no-store"})


def verified_by_code(ctx: Context, request: Request, number: str, code: str) -> Application:
    """The application whose lookup code `code` is, throttled as the lookup is (a rating by
    the citizen, POST /api/applications/{number}/rating, proves the same right)."""
    token = optional_token(request)
    throttle.limit_terminal_lookup(ctx.store, token)  # [terminals] lookups_per_minute
    app = ctx.store.application(number)
    scope = code_scope(ctx, request, token, app.tracking_no if app else number.upper())
    refuse_if_throttled(ctx, (scope,), WRONG_TRIES, "wrong lookup codes for this number from here")
    stored = None if app is None else ctx.store.application_lookup_hash(app.tracking_no)
    if app is None or not lookup_code.matches(ctx.personal, code, stored):
        throttle.count_try(ctx.store, (scope,))
        # The same answer for an unknown number: nobody can learn which numbers exist.
        raise ApiError(403, "no_match", NO_MATCH)
    return app


@router.get("/api/applications/{number}", responses={200: {"model": ApplicationOut}})
async def get_application(number: Number, request: Request, ctx: Ctx) -> JSONResponse:
    """The staff view of one application (a staff, supervisor or admin token or session).
    Citizens look theirs up with the lookup code: POST /api/applications/{number}/lookup."""
    token = optional_token(request)
    if token is not None and token.role in rules.STAFF_ROLES:
        return JSONResponse(staff_view(ctx, handled_application(ctx, number, token)))
    raise ApiError(403, "lookup_code_required", "citizens look an application up with the lookup code on the "
                   "receipt: POST /api/applications/{number}/lookup {\"code\": \"...\"}; staff send "
                   "their token")


@router.get("/api/applications/{number}/personal")
async def personal_data(number: Number, token: CallerUndocumented, request: Request, ctx: Ctx) -> JSONResponse:
    """The applicant's data and form values in clear, for the staff who process the
    application (staff of the item's windows, supervisor, admin). Each opening is
    recorded in the history (`view_personal`, with the name) and in the audit log (with
    the login and the address)."""
    app = handled_application(ctx, number, token)
    record = open_record(ctx, app)
    if record is None:
        raise ApiError(410, "personal_data_erased", f"{app.tracking_no}: {erased_note(ctx.hall)} (the hall's "
                       "[retention] personal_days); its status and history stay")
    ctx.store.record_personal_access(app.tracking_no, token.name, who_of(request, token))
    log.info("personal data of %s opened by %s", app.tracking_no, token.name)
    shown = {k: v for k, v in record.items() if k != LOOKUP_KEY}  # the citizen's secret, not staff's
    return JSONResponse({"tracking_no": app.tracking_no, **shown}, headers={"Cache-Control": "no-store"})


ACTION_DOCS = {
    "accept": "受理: submitted (or returned, once the material is in) -> accepted. A returned application's "
              "deadlines start again from today.",
    "review": "审查: accepted -> in_review.",
    "complete": "办结: accepted or in_review -> completed.",
    "return": "补正: back to the citizen for more material; `note` (required) says which.",
    "reject": "Ask for a rejection; `note` (required) gives the ground. The status stays until a supervisor "
              "approves (窗口无否决权).",
    "approve_rejection": "Supervisor or admin, not the one who asked: the application becomes rejected.",
    "deny_rejection": "Supervisor or admin: the rejection is withdrawn; the application goes on.",
}


def _action_route(action: str) -> Callable[..., Coroutine[Any, Any, JSONResponse]]:
    async def handler(number: Number, token: CallerUndocumented, request: Request, ctx: Ctx,
                      body: NoteIn | None = None) -> JSONResponse:
        rules.services_of(token, ctx.hall.windows)  # a terminal token is refused before the number is looked up
        new, _step = ctx.store.act_on_application(number, action, token.name, body.note if body else None,
                                                  by=token, notify=ctx.notify,
                                                  who=who_of(request, token))  # if rules.may_act
        return JSONResponse(staff_view(ctx, new))

    handler.__doc__ = ACTION_DOCS[action]
    return handler


for _action in rules.ACTIONS:
    router.post(f"/api/applications/{{number}}/{_action.replace('_', '-')}",
                name=f"application_{_action}")(_action_route(_action))


def _looks_like_tracking(number: str) -> bool:
    return number.upper().startswith(TRACKING_PREFIX) and number[2:10].isdigit()


def _canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
