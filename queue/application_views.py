"""What the applications' routes show: the public progress view, the staff's summary and
full views, and form values masked for lists and screens. Personal data is opened here only
to be masked (or, on `/personal`, by the route itself)."""

from typing import Any

from kiosq.content.model import ItemGuide
from kiosq.queue import applications as rules
from kiosq.queue.applications import Application, Step
from kiosq.queue.context import Context
from kiosq.queue.personal import mask_field_value, mask_id_number, mask_name, mask_phone
from kiosq.queue.retention import erased_note

PUBLIC_STEPS = ("submit", "accept", "review", "complete", "return", "approve_rejection")


def open_record(ctx: Context, app: Application) -> dict[str, Any] | None:
    """The applicant record, unsealed: {"applicant": {...}, "values": {...}}; None once the
    retention run has erased it (queue/retention.py)."""
    _hash, sealed = ctx.store.applicant_record(app.tracking_no)
    if not sealed:
        return None
    opened: dict[str, Any] = ctx.personal.open(sealed)
    return opened


def masked_applicant(record: dict[str, Any] | None) -> dict[str, str] | None:
    if record is None:
        return None
    applicant = record["applicant"]
    return {"name": mask_name(applicant["name"]), "id_number": mask_id_number(applicant["id_number"])}


def erased(ctx: Context, record: dict[str, Any] | None) -> str | None:
    """In place of an erased applicant: "personal data erased after N days"."""
    return erased_note(ctx.hall) if record is None else None


def step_view(ctx: Context, step: Step, staff: bool) -> dict[str, Any]:
    view = {"action": step.action, "status": step.status, "at": ctx.local(step.at), "note": step.note}
    if staff:
        view["by"] = step.actor
    return view


def filed_view(ctx: Context, app: Application) -> dict[str, Any]:
    """The answer to a filing: the tracking number and the deadlines."""
    return {"tracking_no": app.tracking_no, "status": app.status, "promised_date": app.promised_date.isoformat(),
            "legal_date": app.legal_date.isoformat(), "submitted_at": ctx.local(app.submitted_at),
            "item": app.item, "item_name": app.item_name, "department": app.department,
            "provisional_no": app.provisional_no}


def public_view(ctx: Context, app: Application, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a citizen sees of an application: no staff names, the applicant masked."""
    record = record or open_record(ctx, app)
    return {"tracking_no": app.tracking_no, "provisional_no": app.provisional_no, "item": app.item,
            "item_name": app.item_name, "department": app.department, "status": app.status,
            "rejection_pending": app.rejection is not None, "submitted_at": ctx.local(app.submitted_at),
            "promised_date": app.promised_date.isoformat(), "legal_date": app.legal_date.isoformat(),
            "applicant": masked_applicant(record), "personal_erased": erased(ctx, record),
            "history": [step_view(ctx, s, staff=False) for s in ctx.store.application_steps(app.tracking_no)
                        if s.action in PUBLIC_STEPS]}


def summary_view(ctx: Context, app: Application, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the staff list shows of each application."""
    record = record or open_record(ctx, app)
    calendar, local = ctx.hall.calendar, ctx.local
    day = ctx.local_today()
    share = rules.used_share(app, day, calendar)
    rejection = app.rejection
    return {"tracking_no": app.tracking_no, "provisional_no": app.provisional_no, "item": app.item,
            "item_name": app.item_name, "department": app.department, "service": app.service,
            "status": app.status, "submitted_at": local(app.submitted_at), "terminal": app.terminal,
            "clock_from": app.clock_from.isoformat(), "promised_days": app.promised_days,
            "legal_days": app.legal_days, "promised_date": app.promised_date.isoformat(),
            "legal_date": app.legal_date.isoformat(), "finished_at": local(app.finished_at),
            "due": rules.due_state(app, day, calendar),
            "workdays_left": rules.workdays_left(app, day, calendar),
            "used_share": None if share is None else round(share, 3),
            "rejection_pending": None if rejection is None else {
                "by": rejection.by, "at": local(rejection.at), "note": rejection.note},
            "applicant": None if record is None else {
                **(masked_applicant(record) or {}), "phone": mask_phone(record["applicant"].get("phone", "")),
                "source": record["applicant"].get("source")},
            "personal_erased": erased(ctx, record)}


def staff_view(ctx: Context, app: Application) -> dict[str, Any]:
    """The summary with the form's values (masked) and the whole history, with names."""
    record = open_record(ctx, app)
    item = ctx.items.get(app.item)
    return {**summary_view(ctx, app, record),
            "values": masked_values(item, {} if record is None else record.get("values", {})),
            "history": [step_view(ctx, s, staff=True) for s in ctx.store.application_steps(app.tracking_no)]}


def item_view(item: ItemGuide) -> dict[str, Any]:
    return {**item.model_dump(mode="json"), "fileable": item.fileable}


def masked_values(item: ItemGuide | None, values: dict) -> dict:
    """Form values for lists and screens: personal fields masked, the rest as filed."""
    fields = {f.name: f for f in item.form.fields} if item and item.form else {}
    out = {}
    for name, value in values.items():
        field = fields.get(name)
        out[name] = value if field is None or not isinstance(value, str) else mask_field_value(field, value)
    return out
