"""The HTTP API of applications: items and their forms, filing at a terminal, progress
lookups by citizens, the staff's list and actions, figures, and the notification record.

Personal data (ID number, name, phone, address and the form's values) is sealed before it
reaches the store and opened only to check the last 4 digits of a lookup, to show it
masked, or for staff of the item's windows on `/personal` (recorded in the history).
Nothing here logs a request body, a lookup's digits or a client address.
"""


import hmac
import json
import logging
import math
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Callable, Literal

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from kiosq.content.model import PHONE, ItemGuide, check_values, id_number_valid
from kiosq.queue import application_stats
from kiosq.queue import applications as rules
from kiosq.queue.applications import Application, Step
from kiosq.queue.items import ItemCatalog
from kiosq.queue.personal import Personal, mask_field_value, mask_id_number, mask_name, mask_phone
from kiosq.queue.store import TRACKING_PREFIX, Store, Token

log = logging.getLogger("kiosq.applications")

# Lookups: 5 wrong tries per tracking number, or per client address, in 10 minutes.
WRONG_TRIES = 5
CARD_LOOKUPS = 30  # lookups by ID number per terminal in the same window
TERMINAL_WRONG_TRIES = 30  # wrong digits from one kiosk: many citizens share its address
THROTTLE_WINDOW = timedelta(minutes=10)
PUBLIC_STEPS = ("submit", "accept", "review", "complete", "return", "approve_rejection")
STAFF_ROLES = ("staff", "supervisor", "admin")
NUMBER = r"^[A-Za-z0-9][A-Za-z0-9-]{3,39}$"


class ApiProblem(Exception):
    """A 4xx answer with the error shape, plus `extra` keys (e.g. `fields`)."""

    def __init__(self, status: int, code: str, detail: str, headers: dict | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers, self.extra = status, code, detail, headers, extra


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ApplicantIn(_Body):
    id_number: Annotated[str, Field(min_length=1, max_length=18, description="18 characters; the check digit is verified")]
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
    applicant: dict[str, str]
    history: list[StepOut]


def install_applications(app: FastAPI, store: Store, items: ItemCatalog, personal: Personal,
                         authenticate: Callable[[str | None], Token]) -> None:
    hall = store.hall
    notify = hall.notify.webhook_url is not None

    @app.exception_handler(ApiProblem)
    async def problem(_req: Request, exc: ApiProblem) -> JSONResponse:
        return JSONResponse({"error": exc.code, "detail": exc.detail, **exc.extra}, status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(rules.InvalidTransition)
    async def invalid_transition(_req: Request, exc: rules.InvalidTransition) -> JSONResponse:
        return JSONResponse({"error": exc.code, "detail": str(exc), "status": exc.status}, status_code=409)

    @app.exception_handler(rules.NotPermitted)
    async def not_permitted(_req: Request, exc: rules.NotPermitted) -> JSONResponse:
        return JSONResponse({"error": "forbidden", "detail": str(exc)}, status_code=403)

    @app.exception_handler(rules.NoteRequired)
    async def note_required(_req: Request, exc: rules.NoteRequired) -> JSONResponse:
        return JSONResponse({"error": "note_required", "detail": str(exc)}, status_code=422)

    def local(value: datetime | None) -> str | None:
        return None if value is None else value.astimezone(hall.tz).isoformat(timespec="seconds")

    def today() -> date:
        return store.clock().astimezone(hall.tz).date()

    async def caller(request: Request) -> Token:
        return authenticate(request.headers.get("authorization"))

    Caller = Annotated[Token, Depends(caller)]

    # -- who may act on what -------------------------------------------------------

    def services_of(token: Token) -> tuple[str, ...] | None:
        """The queue services whose applications a token handles (None: all of them)."""
        if token.role == "admin" or (token.role == "supervisor" and not token.windows):
            return None
        if token.role not in STAFF_ROLES:
            raise ApiProblem(403, "forbidden", f"applications are handled with a staff, supervisor or admin token; "
                             f"{token.name!r} is a {token.role} token")
        return tuple(dict.fromkeys(s for w in token.windows if w in hall.windows for s in hall.windows[w].services))

    def may_handle(token: Token, app: Application) -> None:
        services = services_of(token)
        if services is not None and app.service not in services:
            raise ApiProblem(403, "forbidden", f"{app.tracking_no} is an application for service {app.service}, "
                             f"which none of {token.name!r}'s windows serves")

    def may_decide(token: Token, app: Application) -> None:
        if token.role not in ("supervisor", "admin"):
            raise ApiProblem(403, "forbidden", "a rejection is approved or denied by a supervisor or an admin "
                             "(窗口无否决权)")
        may_handle(token, app)

    # -- views ---------------------------------------------------------------------

    def open_record(app: Application) -> dict:
        _hash, sealed = store.applicant_record(app.tracking_no)
        return personal.open(sealed)

    def masked_applicant(record: dict) -> dict[str, str]:
        applicant = record["applicant"]
        return {"name": mask_name(applicant["name"]), "id_number": mask_id_number(applicant["id_number"])}

    def step_view(step: Step, staff: bool) -> dict:
        view = {"action": step.action, "status": step.status, "at": local(step.at), "note": step.note}
        if staff:
            view["by"] = step.actor
        return view

    def public_view(app: Application, record: dict | None = None) -> dict:
        record = record or open_record(app)
        return {"tracking_no": app.tracking_no, "provisional_no": app.provisional_no, "item": app.item,
                "item_name": app.item_name, "department": app.department, "status": app.status,
                "rejection_pending": app.rejection is not None, "submitted_at": local(app.submitted_at),
                "promised_date": app.promised_date.isoformat(), "legal_date": app.legal_date.isoformat(),
                "applicant": masked_applicant(record),
                "history": [step_view(s, staff=False) for s in store.application_steps(app.tracking_no)
                            if s.action in PUBLIC_STEPS]}

    def summary_view(app: Application, record: dict | None = None) -> dict:
        """What the staff list shows of each application."""
        record = record or open_record(app)
        day = today()
        share = rules.used_share(app, day, hall.calendar)
        rejection = app.rejection
        return {"tracking_no": app.tracking_no, "provisional_no": app.provisional_no, "item": app.item,
                "item_name": app.item_name, "department": app.department, "service": app.service,
                "status": app.status, "submitted_at": local(app.submitted_at), "terminal": app.terminal,
                "clock_from": app.clock_from.isoformat(), "promised_days": app.promised_days,
                "legal_days": app.legal_days, "promised_date": app.promised_date.isoformat(),
                "legal_date": app.legal_date.isoformat(), "finished_at": local(app.finished_at),
                "due": rules.due_state(app, day, hall.calendar),
                "workdays_left": workdays_left(app, day),
                "used_share": None if share is None else round(share, 3),
                "rejection_pending": None if rejection is None else {
                    "by": rejection.by, "at": local(rejection.at), "note": rejection.note},
                "applicant": {**masked_applicant(record),
                              "phone": mask_phone(record["applicant"].get("phone", "")),
                              "source": record["applicant"].get("source")}}

    def workdays_left(app: Application, day: date) -> int | None:
        """Working days to the promised date (negative once past it); None off the clock."""
        if app.status not in rules.ON_THE_CLOCK:
            return None
        if day > app.promised_date:
            return -hall.calendar.between(app.promised_date, day)
        return hall.calendar.between(day, app.promised_date)

    def staff_view(app: Application) -> dict:
        record = open_record(app)
        item = items.get(app.item)
        return {**summary_view(app, record),
                "values": masked_values(item, record.get("values", {})),
                "history": [step_view(s, staff=True) for s in store.application_steps(app.tracking_no)]}

    # -- throttling ----------------------------------------------------------------

    def throttled(scopes: tuple[str, ...], limit: int, what: str) -> None:
        now = store.clock()
        hits = store.throttle_hits(scopes, now - THROTTLE_WINDOW)
        full = [h for h in hits.values() if len(h) >= limit]
        if full:
            # Free again when enough of the counted tries have aged out of the window.
            until = max(h[len(h) - limit] for h in full) + THROTTLE_WINDOW
            seconds = max(1, math.ceil((until - now).total_seconds()))
            at = until.astimezone(hall.tz).strftime("%H:%M")
            raise ApiProblem(429, "too_many_tries", f"too many {what} in {int(THROTTLE_WINDOW.total_seconds() // 60)} "
                             f"minutes; try again after {at} (in {math.ceil(seconds / 60)} min)",
                             {"Retry-After": str(seconds)}, retry_after=seconds)

    def count_try(scopes: tuple[str, ...]) -> None:
        store.throttle_count(scopes, store.clock() - THROTTLE_WINDOW)

    def client_scope(request: Request) -> str:
        # Addresses count as personal data: only a keyed hash is stored.
        host = request.client.host if request.client else "unknown"
        return "ip:" + personal.digest("client:" + host)[:32]

    # -- catalog -------------------------------------------------------------------

    @app.get("/api/items", tags=["items"])
    async def list_items(fileable: Annotated[bool | None, Query(description="true: only items with a form")] = None
                         ) -> JSONResponse:
        """The catalog as the server knows it: every guide, with its form if it has one."""
        return JSONResponse({"source": items.source,
                             "items": [item_view(i) for i in items.all(fileable)]})

    @app.get("/api/items/{code}", tags=["items"])
    async def get_item(code: Annotated[str, Path(max_length=40)]) -> JSONResponse:
        item = items.get(code)
        if item is None:
            raise ApiProblem(404, "not_found", f"no item {code} in the catalog ({items.source})")
        return JSONResponse(item_view(item))

    # -- filing --------------------------------------------------------------------

    @app.post("/api/applications", status_code=201, tags=["applications"],
              responses={201: {"model": FiledOut, "description": "filed (the same answer for a repeated key or "
                                                                 "provisional number)"}})
    async def file_application(body: ApplicationIn, token: Caller,
                               idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> JSONResponse:
        """File an application at a terminal. Answers 201 with the tracking number and the
        deadlines; a retry with the same Idempotency-Key, or the same provisional number, gets
        the same answer with `Idempotent-Replayed: true`."""
        if token.role != "terminal":
            raise ApiProblem(403, "forbidden", f"applications are filed at a terminal, with a terminal token; "
                             f"{token.name!r} is a {token.role} token")
        if not idempotency_key:
            raise ApiProblem(400, "idempotency_key_required", "send an Idempotency-Key header (one per application, "
                             "kept for its retries) so that a retry cannot file it twice")
        if body.provisional_no and _looks_like_tracking(body.provisional_no):
            raise ApiProblem(422, "invalid_request", f"provisional_no must not look like a tracking number "
                             f"({TRACKING_PREFIX}YYYYMMDD-NNNN)")
        item = items.get(body.item)
        if item is None:
            raise ApiProblem(404, "not_found", f"no item {body.item} in the catalog; GET /api/items?fileable=true "
                             "lists the items that can be filed")
        if not item.fileable:
            raise ApiProblem(422, "not_fileable", f"{item.code} {item.name} cannot be filed at a terminal; "
                             "the citizen goes to a window")
        applicant = body.applicant.model_dump()
        applicant["id_number"] = applicant["id_number"].upper()
        problems = applicant_problems(applicant) | check_values(item, body.values)
        problems |= card_consistency(item, applicant, body.values)
        if problems:
            raise ApiProblem(422, "invalid_values", "; ".join(f"{k}: {v}" for k, v in sorted(problems.items())),
                             fields=problems)
        record = {"applicant": applicant, "values": body.values}
        fingerprint = personal.digest("application:" + _canonical(
            {"item": item.code, "provisional_no": body.provisional_no, **record}))
        filed, replayed = store.submit_application(
            item, terminal=token.name, id_hash=personal.id_hash(applicant["id_number"]), sealed=personal.seal(record),
            fingerprint=fingerprint, provisional_no=body.provisional_no, caller=token.key,
            idempotency_key=idempotency_key, notify=notify)
        return JSONResponse({"tracking_no": filed.tracking_no, "status": filed.status,
                             "promised_date": filed.promised_date.isoformat(),
                             "legal_date": filed.legal_date.isoformat(), "submitted_at": local(filed.submitted_at),
                             "item": filed.item, "item_name": filed.item_name, "department": filed.department,
                             "provisional_no": filed.provisional_no},
                            status_code=201, headers={"Idempotent-Replayed": "true"} if replayed else None)

    # -- lookups -------------------------------------------------------------------

    @app.post("/api/applications/lookup", tags=["applications"])
    async def lookup_by_card(body: LookupIn, token: Caller) -> JSONResponse:
        """A person's applications, newest first, found by the ID number read from the card."""
        if token.role != "terminal":
            raise ApiProblem(403, "forbidden", "lookups by ID number are made at a terminal, with a terminal token")
        number = body.id_number.upper()
        if not id_number_valid(number):
            raise ApiProblem(422, "invalid_values", "id_number: not a valid resident ID number",
                             fields={"id_number": "not a valid resident ID number (check its last character)"})
        scope = ("terminal:" + token.name,)
        throttled(scope, CARD_LOOKUPS, "lookups at this terminal")
        count_try(scope)
        found = store.applications_of_person(personal.id_hash(number))
        return JSONResponse({"applications": [public_view(a) for a in found]})

    # -- staff ---------------------------------------------------------------------

    @app.get("/api/applications", tags=["applications"])
    async def staff_list(token: Caller,
                         window: Annotated[int | None, Query(ge=1, le=999, description="only this window's items")] = None,
                         status: Annotated[str | None, Query(description="comma-separated statuses")] = None,
                         due: Annotated[Literal["near", "over"] | None, Query(
                             description="near: 80 % of the promised time used; over: past the promised date")] = None,
                         ) -> JSONResponse:
        """The applications of a window's items (or all a token may handle), soonest due first."""
        services = services_of(token)
        if window is not None:
            if window not in hall.windows:
                raise ApiProblem(404, "not_found", f"no window {window} in this hall")
            if not token.may_act_at(window):
                raise ApiProblem(403, "forbidden", f"{token.name!r} may not act at window {window}")
            services = hall.windows[window].services
        statuses = None
        if status:
            statuses = tuple(s.strip() for s in status.split(",") if s.strip())
            unknown = [s for s in statuses if s not in rules.STATUSES]
            if unknown:
                raise ApiProblem(422, "invalid_request", f"status: unknown {', '.join(unknown)}; statuses are "
                                 f"{', '.join(rules.STATUSES)}")
        day = today()
        found = store.applications(services, statuses)
        if due is not None:
            found = [a for a in found if rules.due_state(a, day, hall.calendar) == due]
        found.sort(key=lambda a: (a.status in rules.FINISHED, a.promised_date, a.tracking_no))
        return JSONResponse({"today": day.isoformat(), "count": len(found),
                             "applications": [summary_view(a) for a in found]})

    # -- figures (before /{number}, which would take "stats" for a number) ----------

    def period(first: date | None, last: date | None) -> tuple[date, date]:
        last = last or today()
        first = first or last.replace(day=1)
        if first > last:
            raise ApiProblem(422, "invalid_request", f"from ({first}) is after to ({last})")
        if (last - first).days > 366 * 5:
            raise ApiProblem(422, "invalid_request", "a period of at most 5 years")
        return first, last

    From = Annotated[date | None, Query(alias="from", description="first day of filing, YYYY-MM-DD; default the "
                                                                 "first of the month")]
    To = Annotated[date | None, Query(alias="to", description="last day of filing, YYYY-MM-DD; default today")]

    def admin_only(token: Token) -> None:
        if token.role not in ("admin", "supervisor"):
            raise ApiProblem(403, "forbidden", f"the figures need an admin or supervisor token; {token.name!r} is a "
                             f"{token.role} token")

    @app.get("/api/applications/stats", tags=["applications"])
    async def figures(token: Caller, first: From = None, last: To = None) -> JSONResponse:
        """办结率, 提前办结率, warnings and overdue, for the hall, each department and each item
        (definitions: queue/application_stats.py)."""
        admin_only(token)
        first, last = period(first, last)
        found = store.applications_filed(first, last)
        return JSONResponse(application_stats.figures(found, first, last, today(), hall.calendar, hall.tz))

    @app.get("/api/applications/export.csv", tags=["applications"], response_class=Response,
             responses={200: {"content": {"text/csv": {}}, "description": "one row for the hall, each department "
                                                                         "and each item; no personal data"}})
    async def figures_csv(token: Caller, first: From = None, last: To = None,
                          lang: Literal["zh", "en"] = "zh") -> Response:
        admin_only(token)
        first, last = period(first, last)
        data = application_stats.figures(store.applications_filed(first, last), first, last, today(), hall.calendar,
                                         hall.tz)
        return Response(application_stats.figures_csv(data, lang), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="kiosq-applications-{first}-{last}.csv"'})

    @app.get("/api/notifications", tags=["applications"])
    async def notifications(token: Caller, state: Literal["queued", "sent", "failed"] | None = None,
                            limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> JSONResponse:
        """What the webhook was sent, newest first (admin). Payloads as sent, less the phone."""
        if token.role != "admin":
            raise ApiProblem(403, "forbidden", "the notification record needs an admin token")
        return JSONResponse({
            "webhook": notify, "notifications": [
                {"id": n.id, "tracking_no": n.tracking_no, "status": n.status, "state": n.state,
                 "attempts": n.attempts, "next_at": local(n.next_at), "last_error": n.last_error,
                 "created_at": local(n.created_at), "sent_at": local(n.sent_at), "payload": n.payload}
                for n in store.notifications(limit, state)]})

    # -- one application -------------------------------------------------------------

    Number = Annotated[str, Path(max_length=40, description="tracking number (SQ20261122-0007) or the provisional "
                                                            "number on an offline receipt")]

    @app.get("/api/applications/{number}", tags=["applications"], responses={200: {"model": ApplicationOut}})
    async def get_application(number: Number, request: Request,
                              id_last4: Annotated[str | None, Query(max_length=8, description=(
                                  "the last 4 characters of the applicant's ID number"))] = None) -> JSONResponse:
        """Progress of one application. Citizens give the last 4 characters of the ID number;
        staff (a staff, supervisor or admin token) get the staff view without them."""
        token = authenticate(request.headers["authorization"]) if request.headers.get("authorization") else None
        if token is not None and token.role in STAFF_ROLES:
            app_ = store.application(number)
            if app_ is None:
                raise ApiProblem(404, "not_found", f"no application {number}")
            may_handle(token, app_)
            return JSONResponse(staff_view(app_))
        if not id_last4:
            raise ApiProblem(403, "id_last4_required", "give the last 4 characters of the applicant's ID number "
                             "(?id_last4=NNNN)")
        app_ = store.application(number)
        # Per number: 5 wrong tries. Per asker: 5 from one address, but a kiosk (its terminal
        # token) is many citizens at one address, so it is counted by terminal, with more room.
        number_scope = "no:" + (app_.tracking_no if app_ else number.upper())
        if token is not None and token.role == "terminal":
            asker, asker_limit = "terminal:" + token.name, TERMINAL_WRONG_TRIES
        else:
            asker, asker_limit = client_scope(request), WRONG_TRIES
        scopes = (number_scope, asker)
        throttled((number_scope,), WRONG_TRIES, "wrong tries for this number")
        throttled((asker,), asker_limit, "wrong tries")
        record = open_record(app_) if app_ is not None else None
        given = id_last4.strip().upper().encode()
        if record is None or not hmac.compare_digest(given, record["applicant"]["id_number"][-4:].encode()):
            count_try(scopes)
            # The same answer for an unknown number: nobody can learn which numbers exist.
            raise ApiProblem(403, "no_match", "no application matches this number and these digits; check the "
                             "receipt and the last 4 characters of the ID number")
        return JSONResponse(public_view(app_, record))

    @app.get("/api/applications/{number}/personal", tags=["applications"])
    async def personal_data(number: Number, token: Caller) -> JSONResponse:
        """The applicant's data and form values in clear, for the staff who process the
        application (staff of the item's windows, supervisor, admin). Each opening is
        recorded in the history (`view_personal`, with the name)."""
        app_ = store.application(number)
        if app_ is None:
            raise ApiProblem(404, "not_found", f"no application {number}")
        may_handle(token, app_)
        record = open_record(app_)
        store.record_personal_access(app_.tracking_no, token.name)
        log.info("personal data of %s opened by %s", app_.tracking_no, token.name)
        return JSONResponse({"tracking_no": app_.tracking_no, **record}, headers={"Cache-Control": "no-store"})

    def action_route(action: str, path: str, decides: bool) -> None:
        async def handler(number: Number, token: Caller, body: NoteIn | None = None) -> JSONResponse:
            guard = (lambda a: may_decide(token, a)) if decides else (lambda a: may_handle(token, a))
            services_of(token)  # a terminal token is refused before the number is looked up
            new, _step = store.act_on_application(number, action, token.name, body.note if body else None,
                                                  guard=guard, notify=notify)
            return JSONResponse(staff_view(new))

        handler.__doc__ = ACTION_DOCS[action]
        app.post(f"/api/applications/{{number}}/{path}", tags=["applications"], name=f"application_{action}")(handler)

    for action in rules.ACTIONS:
        action_route(action, action.replace("_", "-"), action in rules.SUPERVISOR_ACTIONS)


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


def item_view(item: ItemGuide) -> dict:
    return {**item.model_dump(mode="json"), "fileable": item.fileable}


def applicant_problems(applicant: dict) -> dict[str, str]:
    problems = {}
    if not id_number_valid(applicant["id_number"]):
        problems["applicant.id_number"] = "not a valid resident ID number (check its last character)"
    if not PHONE.fullmatch(applicant["phone"].replace(" ", "")):
        problems["applicant.phone"] = "must be a mobile (11 digits) or a landline with its area code"
    return problems


def card_consistency(item: ItemGuide, applicant: dict, values: dict) -> dict[str, str]:
    """A field prefilled from the ID card must say what the card (the applicant) says."""
    problems = {}
    for field in item.form.fields if item.form else ():
        value = values.get(field.name)
        if field.prefill == "id_number" and isinstance(value, str) and value.upper() != applicant["id_number"]:
            problems[field.name] = "must be the applicant's own ID number"
    return problems


def masked_values(item: ItemGuide | None, values: dict) -> dict:
    """Form values for lists and screens: personal fields masked, the rest as filed."""
    fields = {f.name: f for f in item.form.fields} if item and item.form else {}
    out = {}
    for name, value in values.items():
        field = fields.get(name)
        out[name] = value if field is None or not isinstance(value, str) else mask_field_value(field, value)
    return out


def _looks_like_tracking(number: str) -> bool:
    return number.upper().startswith(TRACKING_PREFIX) and number[2:10].isdigit()


def _canonical(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

