"""好差评 over HTTP: citizens rate a ticket's service (the ticket id is the right to) or an
application (its lookup code); supervisors follow each 差评's case (call-back, fix),
the window appeals, a supervisor decides; the figures as JSON and CSV. The rules are
queue/ratings.py's, the SQL queue/store/ratings.py's."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from kiosq.base.privacy import mask_numbers_in_text
from kiosq.queue import applications as app_rules
from kiosq.queue import ratings as rules
from kiosq.queue.auth import describe, optional_token, require_role
from kiosq.queue.context import Context, Ctx
from kiosq.queue.errors import ApiError
from kiosq.queue.routers.applications import Number, verified_by_code
from kiosq.queue.routers.stats import From, To, period
from kiosq.queue.routers.tickets import TicketId
from kiosq.queue.store import Token
from kiosq.queue.store.ratings import Rating

router = APIRouter(tags=["ratings"])
DECIDERS = ("supervisor", "admin")  # who follows the cases up and decides appeals
GROUPS = ("window", "clerk", "service", "item", "department", "channel")


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    level: Annotated[int, Field(ge=1, le=5, description="5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意")]
    reasons: Annotated[list[Annotated[str, Field(min_length=1, max_length=40)]],
                       Field(max_length=rules.MAX_REASONS)] = []
    comment: Annotated[str | None, Field(max_length=rules.MAX_COMMENT)] = None
    channel: Literal["window", "kiosk"] | None = Field(
        None, description="with a terminal token: the window's rating device or a kiosk (default kiosk)")


class WindowRatingIn(RatingIn):
    number: Annotated[str, Field(min_length=2, max_length=12, description="the ticket's number, e.g. A012, from the "
                                                                          "ticket.finished event")]


class ApplicationRatingIn(RatingIn):
    code: Annotated[str, Field(min_length=1, max_length=32, description="the lookup code on the receipt")]


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    note: Annotated[str | None, Field(max_length=500)] = None


class DecisionIn(NoteIn):
    uphold: bool = Field(description="true: the appeal is upheld (the rating stays on record, out of the figures)")


# -- citizens rate ------------------------------------------------------------------------


def _channel(request: Request, body: RatingIn) -> str:
    """No token: the citizen's own phone (the slip's QR, /t/{id}); a terminal token: the
    window's rating device or a kiosk. Staff do not rate the services they give."""
    token = optional_token(request)
    if token is None:
        if body.channel is not None:
            raise ApiError(403, "forbidden", f"channel {body.channel!r} is a terminal's (the window's rating device "
                           "or a kiosk): send its terminal token, or no channel from a phone")
        return "online"
    if token.role != "terminal":
        raise ApiError(403, "forbidden", f"a service is rated by the citizen (no token) or at a terminal; "
                       f"{describe(token)} is a {token.role}")
    return body.channel or "kiosk"


def _cleaned(body: RatingIn) -> tuple[list[str], str | None]:
    reasons = list(dict.fromkeys(r for r in body.reasons if r))
    comment = mask_numbers_in_text(body.comment) if body.comment else None
    try:
        rules.check_rating(body.level, reasons, comment)
    except rules.RatingRefused as refused:
        raise ApiError(refused.status, refused.code, str(refused)) from None
    return reasons, comment


def _refused(refused: rules.RatingRefused | rules.CaseRefused) -> ApiError:
    return ApiError(refused.status, refused.code, str(refused))


def citizen_view(rating: Rating) -> dict[str, Any]:
    """What the citizen is answered: their rating and, for a 差评, when it is followed up."""
    case = rating.case
    return {"id": rating.id, "level": rating.level, "level_name": rules.LEVELS[rating.level],
            "level_name_en": rules.LEVELS_EN[rating.level], "bad": rules.is_bad(rating.level),
            "channel": rating.channel, "reasons": rating.reasons,
            "follow_up": None if case is None else {"callback_due": case.callback_due.isoformat(),
                                                    "fix_due": case.fix_due.isoformat()}}


@router.post("/api/tickets/{ticket_id}/rating", tags=["tickets"], status_code=201)
async def rate_ticket(ticket_id: TicketId, body: RatingIn, request: Request, ctx: Ctx) -> JSONResponse:
    """Who may call: whoever holds the ticket's id (the slip's QR): no token; or a terminal
    token (the window's rating device, a kiosk). 201 with the rating; 409 `not_finished`
    before the window finished the ticket, `already_rated` the second time, `too_late` after
    the end of its business day plus `[ratings] grace_hours`; 422 `reason_required` for a
    差评 (1 or 2) with neither a reason nor a comment. A 差评 opens a case."""
    channel = _channel(request, body)
    reasons, comment = _cleaned(body)
    try:
        rating = ctx.store.rate_ticket(ticket_id, channel, body.level, reasons, comment)
    except rules.RatingRefused as refused:
        raise _refused(refused) from None
    return JSONResponse(citizen_view(rating), status_code=201)


@router.post("/api/windows/{window}/rating", tags=["windows"], status_code=201)
async def rate_at_window(window: Annotated[int, Path(ge=1, le=999)], body: WindowRatingIn, request: Request,
                         ctx: Ctx) -> JSONResponse:
    """Who may call: a terminal token (the window's rating device, 评价器, enrolled as a
    terminal; the page /rate/window/{n}). Rates today's ticket `number`, finished at this
    window within `[ratings] device_minutes`; 403 `not_this_window` for another window's,
    409 as for a ticket (and `too_late` past those minutes), 404 for an unknown number."""
    require_role(request, "terminal")
    if window not in ctx.hall.windows:
        raise ApiError(404, "not_found", f"no window {window} in this hall")
    reasons, comment = _cleaned(body)
    try:
        rating = ctx.store.rate_at_window(window, body.number.upper(), body.level, reasons, comment)
    except rules.RatingRefused as refused:
        raise _refused(refused) from None
    return JSONResponse(citizen_view(rating), status_code=201)


class KioskRatingIn(RatingIn):
    session: Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                                  description="the kiosk's id of the self-service session (a new random one per "
                                              "session): one rating per session")]


@router.post("/api/kiosk/rating", status_code=201)
async def rate_kiosk_session(body: KioskRatingIn, request: Request, ctx: Ctx) -> JSONResponse:
    """Who may call: a terminal token (a kiosk). The citizen's one-tap rating of the
    self-service session on the kiosk's done screens (channel `kiosk`, no window or clerk);
    once per `session` (409 `already_rated`); 422 `reason_required` for a 差评 with neither
    reason nor comment; a 差评 opens a case as any other."""
    token = require_role(request, "terminal")
    reasons, comment = _cleaned(body)
    try:
        rating = ctx.store.rate_kiosk_session(token.name, body.session, body.level, reasons, comment)
    except rules.RatingRefused as refused:
        raise _refused(refused) from None
    return JSONResponse(citizen_view(rating), status_code=201)


@router.get("/api/tickets/{ticket_id}/rating", tags=["tickets"])
async def ticket_rating(ticket_id: TicketId, ctx: Ctx) -> JSONResponse:
    """Public, with the ticket's id: whether its service can be rated now and, if rated,
    the rating (the follow page offers the five levels once the ticket is finished)."""
    ticket = ctx.store.ticket(ticket_id)
    rating = ctx.store.rating_of(f"ticket:{ticket.queue_seq}")
    return JSONResponse({"number": ticket.label, "status": ticket.status, "rateable": rating is None and
                         ticket.status == "done", "rating": None if rating is None else citizen_view(rating),
                         **reasons_view(ctx)})


@router.post("/api/applications/{number}/rating", tags=["applications"], status_code=201)
async def rate_application(number: Number, body: ApplicationRatingIn, request: Request, ctx: Ctx) -> JSONResponse:
    """一事一评. Who may call: whoever holds the receipt's lookup code (no token, or a
    terminal's): a wrong code or an unknown number is 403, throttled as the lookup is. 409
    `not_finished` before the application is completed or rejected, `already_rated`, and
    `too_late` past `[ratings] application_days` after it closed; 422 as for tickets."""
    token = optional_token(request)
    if token is not None and token.role != "terminal":
        raise ApiError(403, "forbidden", f"an application is rated by its applicant; {describe(token)} is a "
                       f"{token.role}")
    app = verified_by_code(ctx, request, number, body.code)
    reasons, comment = _cleaned(body)
    try:
        rating = ctx.store.rate_application(app.tracking_no, "application", body.level, reasons, comment)
    except rules.RatingRefused as refused:
        raise _refused(refused) from None
    return JSONResponse(citizen_view(rating), status_code=201)


@router.get("/api/ratings/reasons")
async def reasons(ctx: Ctx) -> JSONResponse:
    """Public: the five levels and the hall's preset reasons of a 差评, for the rating pages."""
    return JSONResponse(reasons_view(ctx))


def reasons_view(ctx: Context) -> dict[str, Any]:
    settings = ctx.hall.ratings
    return {"levels": [{"level": lv, "name": rules.LEVELS[lv], "name_en": rules.LEVELS_EN[lv],
                        "bad": rules.is_bad(lv)} for lv in sorted(rules.LEVELS, reverse=True)],
            "reasons": [{"zh": zh, "en": en} for zh, en in zip(settings.reasons, settings.reasons_en, strict=True)]}


# -- following up the 差评 --------------------------------------------------------------


def case_view(ctx: Context, rating: Rating) -> dict[str, Any]:
    """A 差评 and its case, as supervisors see it (the comment and notes masked, as typed)."""
    case = rating.case
    assert case is not None
    today, cal = ctx.local_today(), ctx.hall.calendar
    return {"id": rating.id, "label": rating.label, "subject": rating.subject.split(":", 1)[0],
            "level": rating.level, "level_name": rules.LEVELS[rating.level], "reasons": rating.reasons,
            "comment": rating.comment, "channel": rating.channel, "rated_at": ctx.local(rating.rated_at),
            "day": rating.day.isoformat(), "service": rating.service, "window": rating.window,
            "clerk": rating.clerk, "item": rating.item, "department": rating.department, "state": case.state,
            "opened_on": case.opened_on.isoformat(),
            "callback": {"due": case.callback_due.isoformat(), "at": ctx.local(case.callback_at),
                         "by": case.callback_by, "note": case.callback_note,
                         "due_state": rules.due_state(case.opened_on, case.callback_due,
                                                      case.callback_at is not None or case.state == rules.UPHELD,
                                                      today, cal)},
            "fix": {"due": case.fix_due.isoformat(), "at": ctx.local(case.fixed_at), "by": case.fixed_by,
                    "note": case.fix_note,
                    "due_state": rules.due_state(case.opened_on, case.fix_due,
                                                 case.state in (rules.FIXED, rules.UPHELD), today, cal)},
            "appeal": None if case.appeal_by is None else {
                "at": ctx.local(case.appeal_at), "by": case.appeal_by, "reason": case.appeal_note,
                "decided_at": ctx.local(case.decided_at), "decided_by": case.decided_by,
                "decision_note": case.decision_note,
                "outcome": {rules.UPHELD: "upheld", rules.APPEALED: None}.get(case.state, "rejected")}}


CaseId = Annotated[int, Path(ge=1, le=2**62, description="the rating's id (GET /api/ratings/cases)")]
States = Annotated[list[Literal["open", "fixed", "appealed", "upheld"]] | None,
                   Query(alias="state", description="only cases in these states (repeat the parameter)")]
Due = Annotated[Literal["warning", "overdue"] | None,
                Query(description="only cases whose call-back or fix is at 80 % of its time (warning) or late")]


@router.get("/api/ratings/cases")
async def cases(request: Request, ctx: Ctx, state: States = None, window: Annotated[int | None, Query(ge=1)] = None,
                due: Due = None) -> JSONResponse:
    """Who may call: a supervisor or an admin. Every 差评 with its case, oldest first;
    filters: `state` (repeatable), `window`, `due` (warning: 80 % of a deadline's working
    days used; overdue: past it). `counts` sums the warnings and overdue of all open cases."""
    require_role(request, *DECIDERS)
    found = [case_view(ctx, r) for r in ctx.store.rating_cases(tuple(state) if state else None, window)]
    everything = found if not (state or window) else [case_view(ctx, r) for r in ctx.store.rating_cases()]

    def due_states(view: dict[str, Any]) -> set[str | None]:
        return {view["callback"]["due_state"], view["fix"]["due_state"]}
    counts = {"open": sum(1 for v in everything if v["state"] in (rules.OPEN, rules.APPEALED)),
              "warning": sum(1 for v in everything if "warning" in due_states(v) and "overdue" not in due_states(v)),
              "overdue": sum(1 for v in everything if "overdue" in due_states(v))}
    if due == "overdue":
        found = [v for v in found if "overdue" in due_states(v)]
    elif due == "warning":
        found = [v for v in found if "warning" in due_states(v) and "overdue" not in due_states(v)]
    return JSONResponse({"count": len(found), "counts": counts, "cases": found})


def _step(ctx: Context, rating_id: int, step: str, token: Token, note: str | None,
          uphold: bool | None = None) -> JSONResponse:
    note = mask_numbers_in_text(note) if note else None
    try:
        rating = ctx.store.rating_step(rating_id, step, token.name, note, uphold)
    except rules.CaseRefused as refused:
        raise _refused(refused) from None
    return JSONResponse(case_view(ctx, rating))


@router.post("/api/ratings/cases/{rating_id}/callback")
async def callback(rating_id: CaseId, body: NoteIn, request: Request, ctx: Ctx) -> JSONResponse:
    """Who may call: a supervisor or an admin. The call-back (回访) to the citizen was made;
    `note` what they said (numbers in it masked, then sealed). 409 if recorded already."""
    token = require_role(request, *DECIDERS)
    return _step(ctx, rating_id, "callback", token, body.note)


@router.post("/api/ratings/cases/{rating_id}/fix")
async def fix(rating_id: CaseId, body: NoteIn, request: Request, ctx: Ctx) -> JSONResponse:
    """Who may call: a supervisor or an admin. The cause is fixed (整改); `note` (required)
    says how. Closes the case; 409 during an appeal or once closed."""
    token = require_role(request, *DECIDERS)
    if not body.note:
        raise ApiError(422, "note_required", "say how the cause was fixed (整改情况) in `note`")
    return _step(ctx, rating_id, "fix", token, body.note)


@router.post("/api/ratings/cases/{rating_id}/appeal")
async def appeal(rating_id: CaseId, body: NoteIn, request: Request, ctx: Ctx) -> JSONResponse:
    """Who may call: staff or a supervisor of the rated window (for an application's
    rating: of a window serving its service). The window thinks the rating malicious
    (申诉); `note` (required) says why. One appeal per rating, while the case is open."""
    token = require_role(request, "staff", "supervisor")
    rating = ctx.store.rating(rating_id)
    if rating.window is not None:
        allowed = token.may_act_at(rating.window)
    else:
        services = app_rules.services_of(token, ctx.hall.windows)
        allowed = services is None or rating.service in services
    if not allowed:
        where = f"window {rating.window}" if rating.window is not None else f"service {rating.service}"
        raise ApiError(403, "forbidden", f"{describe(token)} does not work at {where}; the rated window appeals")
    if not body.note:
        raise ApiError(422, "note_required", "say why the rating is thought malicious (申诉理由) in `note`")
    return _step(ctx, rating_id, "appeal", token, body.note)


@router.post("/api/ratings/cases/{rating_id}/decide")
async def decide(rating_id: CaseId, body: DecisionIn, request: Request, ctx: Ctx) -> JSONResponse:
    """Who may call: a supervisor or an admin, not the one who appealed. `uphold` true:
    the rating stays on record and out of the figures, the case is closed; false: the case
    goes on (call-back and fix)."""
    token = require_role(request, *DECIDERS)
    return _step(ctx, rating_id, "decide", token, body.note, body.uphold)


# -- figures ------------------------------------------------------------------------------


def rating_figures(ctx: Context, first: date, last: date) -> dict[str, Any]:
    rows = []
    for r in ctx.store.ratings_between(first, last):
        case = r.case
        rows.append({"level": r.level, "window": r.window, "clerk": r.clerk, "service": r.service, "item": r.item,
                     "department": r.department, "channel": r.channel,
                     "state": None if case is None else case.state,
                     "callback_at": None if case is None or case.callback_at is None else ctx.local(case.callback_at),
                     "fixed_at": None if case is None or case.fixed_at is None else ctx.local(case.fixed_at),
                     "fix_due": None if case is None else case.fix_due.isoformat()})
    by: dict[str, dict[str, Any]] = {}
    for group in GROUPS:
        keys = sorted({str(row[group]) for row in rows if row[group] is not None})
        by[group] = {k: rules.figures([row for row in rows if str(row[group]) == k]) for k in keys}
    return {"from": first.isoformat(), "to": last.isoformat(), "hall": rules.figures(rows), "by": by}


CSV_COLUMNS = ("ratings", "good", "good_rate", "bad", "called_back", "callback_rate", "fixed", "fix_rate",
               "fixed_on_time", "on_time_fix_rate", "upheld")
CSV_HEAD_ZH = ("维度", "名称", "评价数", "好评数", "好评率", "差评数", "已回访", "回访率", "已整改", "整改率",
               "按时整改", "按时整改率", "申诉成立", "非常满意", "满意", "基本满意", "不满意", "非常不满意")
CSV_HEAD_EN = ("dimension", "name", *CSV_COLUMNS, "level_5", "level_4", "level_3", "level_2", "level_1")


def figures_csv(data: dict[str, Any], lang: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEAD_ZH if lang == "zh" else CSV_HEAD_EN)

    def row(dimension: str, name: str, f: dict[str, Any]) -> None:
        writer.writerow([dimension, name, *(f[c] if f[c] is not None else "" for c in CSV_COLUMNS),
                         *(f["levels"][str(lv)] for lv in (5, 4, 3, 2, 1))])
    row("hall", "", data["hall"])
    for group, values in data["by"].items():
        for name, f in values.items():
            row(group, name, f)
    return "\ufeff" + out.getvalue() if lang == "zh" else out.getvalue()  # a BOM: Excel reads it as UTF-8


EXPORT_FORMAT = "kiosq-ratings-export/1"


def export_item(ctx: Context, r: Rating) -> dict[str, Any]:
    """One rating as docs/ratings-export.md describes it for a province's 好差评 system."""
    case = r.case
    kind = r.subject.split(":", 1)[0]
    return {"id": r.id, "kind": kind, "label": r.label, "channel": r.channel, "level": r.level,
            "level_name": rules.LEVELS[r.level], "bad": rules.is_bad(r.level), "reasons": r.reasons,
            "comment": r.comment, "rated_at": ctx.local(r.rated_at), "service_day": r.day.isoformat(),
            "service": r.service, "service_name": (ctx.hall.services[r.service].name
                                                   if r.service in ctx.hall.services else None),
            "item": r.item, "department": r.department, "window": r.window, "clerk": r.clerk,
            "counted": rules.counted(None if case is None else case.state),
            "rectification": None if case is None else {
                "state": case.state, "callback_due": case.callback_due.isoformat(),
                "called_back_at": ctx.local(case.callback_at), "fix_due": case.fix_due.isoformat(),
                "fixed_at": ctx.local(case.fixed_at), "fix_note": case.fix_note,
                "appeal": None if case.appeal_by is None else {
                    "at": ctx.local(case.appeal_at), "reason": case.appeal_note,
                    "outcome": {rules.UPHELD: "upheld", rules.APPEALED: None}.get(case.state, "rejected"),
                    "decided_at": ctx.local(case.decided_at)}}}


@router.get("/api/ratings/export")
async def export(request: Request, ctx: Ctx, first: From = None, last: To = None) -> JSONResponse:
    """Who may call: a supervisor or an admin. Every rating of services on the business days
    `from` to `to` (default this month), with its follow-up, in the documented shape
    (docs/ratings-export.md) a province's 好差评 system imports; staff notes on the call-back
    and the decision stay in the hall."""
    require_role(request, *DECIDERS)
    first, last = period(ctx, first, last)
    found = ctx.store.ratings_between(first, last)
    return JSONResponse({"format": EXPORT_FORMAT, "hall": {"name": ctx.hall.info.name},
                         "from": first.isoformat(), "to": last.isoformat(),
                         "exported_at": ctx.local(ctx.store.clock()),
                         "summary": rating_figures(ctx, first, last)["hall"],
                         "ratings": [export_item(ctx, r) for r in found]},
                        headers={"Content-Disposition": f'attachment; filename="kiosq-ratings-{first}-{last}.json"'})


@router.get("/api/ratings/stats")
async def stats(request: Request, ctx: Ctx, first: From = None, last: To = None,
                format: Literal["json", "csv"] = "json", lang: Literal["zh", "en"] = "zh") -> Response:
    """Who may call: a supervisor or an admin. The ratings of services given on the
    business days `from` to `to` (default: this month): counts per level, 好评率 (4-5 of
    all), 差评, 回访率, 整改率 and 按时整改率 (of the 差评), for the hall and per window,
    clerk, service, item, department and channel; ratings whose appeal was upheld are out
    of the figures (`upheld` counts them). `format=csv` for a spreadsheet."""
    require_role(request, *DECIDERS)
    first, last = period(ctx, first, last)
    data = rating_figures(ctx, first, last)
    if format == "csv":
        return Response(figures_csv(data, lang), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="kiosq-ratings-{first}-{last}.csv"'})
    return JSONResponse(data)
