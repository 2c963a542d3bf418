"""The fleet: enrollment codes and enrollment, revocation, heartbeats, and the fleet view
with its alerts.

A terminal's token is checked on every request (store.token), so a revoked terminal is
refused at its next request. Heartbeats carry no personal data; nor do the events sent to
/admin when a terminal's state changes.
"""

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from kiosq.content import signing
from kiosq.queue import fleet, throttle
from kiosq.queue.auth import client_address, require_role, who_of
from kiosq.queue.context import Context, Ctx
from kiosq.queue.errors import ApiError
from kiosq.queue.store import EnrollmentRefused

router = APIRouter(tags=["terminals"])

ENROLL_TRIES = 10  # refused enrollments per client address in throttle.WINDOW
TerminalName = Annotated[str, Field(pattern=fleet.TERMINAL_ID, description="the terminal's id, e.g. T03")]
PrinterState = Literal["ok", "near_end", "out", "cover_open", "offline", "none", "unknown"]
ReaderState = Literal["ok", "missing", "none", "unknown"]
Version = Annotated[str | None, Field(max_length=64)]

_REFUSALS = {
    "unknown": (404, "unknown_code", "no such enrollment code; check what was typed, or ask the hall admin "
                "for a new one"),
    "used": (410, "code_used", "this enrollment code was used already (codes work once); ask the hall admin "
             "for a new one"),
    "replaced": (410, "code_replaced", "a newer code was made for this terminal (or it was revoked); use the "
                 "newest code"),
    "expired": (410, "code_expired", "this enrollment code has expired; ask the hall admin for a new one"),
    "name_taken": (409, "name_taken", "a staff or admin token holds this terminal's name; the hall admin must "
                   "choose another terminal id"),
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class EnrollCodeIn(_Body):
    terminal: TerminalName
    ttl_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60, description="how long the code works")] = 60


class EnrollIn(_Body):
    code: Annotated[str, Field(min_length=4, max_length=40, description="the code, e.g. K7QF-2M9X (case, spaces "
                                                                        "and dashes do not matter)")]


class DevicesIn(_Body):
    printer: PrinterState = "unknown"
    card_reader: ReaderState = "unknown"
    scanner: ReaderState = "unknown"


class MaintenanceIn(_Body):
    """The maintenance PIN's lockouts (kiosk/maintenance.py PinGuard.report()): how many since
    the terminal was installed, the end of the one in force (null: not locked), when the last
    one began. Times carry their zone."""

    lockouts: Annotated[int, Field(ge=0, le=10**9)] = 0
    locked_until: AwareDatetime | None = None
    last_lockout_at: AwareDatetime | None = None


class HeartbeatIn(_Body):
    software_version: Annotated[str, Field(min_length=1, max_length=64)]
    content_version: Version = None
    content_sha256: Annotated[str | None, Field(pattern=r"^[0-9a-f]{64}$")] = None
    devices: DevicesIn = DevicesIn()
    last_error: Annotated[str | None, Field(max_length=500)] = None
    uptime_seconds: Annotated[int, Field(ge=0, le=10 * 365 * 86400)]
    outbox_waiting: Annotated[int | None, Field(ge=0, le=10**9)] = None
    outbox_refused: Annotated[int | None, Field(ge=0, le=10**9)] = None
    maintenance: MaintenanceIn | None = None


# -- enrollment ----------------------------------------------------------------------

@router.post("/api/terminals/enroll-codes", status_code=201)
async def enroll_code(body: EnrollCodeIn, request: Request, ctx: Ctx) -> JSONResponse:
    """A one-time code for `kiosq enroll CODE --server URL` on the terminal (admin)."""
    token = require_role(request, "admin")
    code = fleet.new_enroll_code()
    expires = ctx.store.clock() + timedelta(minutes=body.ttl_minutes)
    try:
        ctx.store.add_enroll_code(body.terminal, fleet.hash_code(code), expires, token.name, who_of(request, token))
    except ValueError as exc:
        raise ApiError(409, "name_taken", str(exc)) from None
    return JSONResponse({"code": code, "terminal": body.terminal, "expires_at": ctx.local(expires)},
                        status_code=201)


def refuse_if_throttled(ctx: Context, scope: str) -> None:
    wait = throttle.check(ctx.store, (scope,), ENROLL_TRIES)
    if wait is not None:
        raise throttle.too_many(f"too many refused enrollment codes from this address; try again in "
                                f"{wait.minutes} min", wait)


@router.post("/api/terminals/enroll", status_code=201)
async def enroll(body: EnrollIn, request: Request, ctx: Ctx) -> JSONResponse:
    """Trade a one-time code for the terminal's token (no auth: the code is the secret)."""
    scope = throttle.client_scope(ctx.personal, request, "enroll")
    refuse_if_throttled(ctx, scope)
    try:
        terminal, secret = ctx.store.enroll(fleet.hash_code(body.code), client_address(request))
    except EnrollmentRefused as exc:
        throttle.count_try(ctx.store, (scope,))
        status, code, detail = _REFUSALS[exc.reason]
        raise ApiError(status, code, detail) from None
    # The key terminals check content bundles with: learnt here, over the TLS the terminal pinned.
    signing_key = signing.public_text(signing.hall_key(ctx.store.data_dir).public_key())
    return JSONResponse({"terminal": terminal, "token": secret, "server_time": ctx.local(ctx.store.clock()),
                         "signing_key": signing_key}, status_code=201, headers={"Cache-Control": "no-store"})


@router.post("/api/terminals/{terminal}/revoke")
async def revoke(terminal: Annotated[str, Path(pattern=fleet.TERMINAL_ID)], request: Request, ctx: Ctx) -> JSONResponse:
    """Refuse the terminal's token from its next request on (admin). Enroll it again to
    bring it back."""
    token = require_role(request, "admin")
    ctx.store.revoke_terminal(terminal, who_of(request, token))
    return JSONResponse(next(v for v in fleet_views(ctx)[0] if v["terminal"] == terminal))


# -- heartbeats and the fleet view -----------------------------------------------------

def published_version(ctx: Context) -> str | None:
    published = ctx.rollout.published()
    return None if published is None else published.manifest.version


def fleet_views(ctx: Context) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every terminal's view, and the alerts they raise."""
    now, published = ctx.store.clock(), published_version(ctx)
    throttled = throttle.throttled_terminals(ctx.store)
    views, alerts = [], []
    for rec in ctx.store.terminals():
        view = fleet.terminal_view(rec, now, ctx.hall.fleet.online_seconds, published, ctx.local,
                                   throttled.get(rec.name, fleet.Throttled()))
        views.append(view)
        alerts += fleet.alerts_of(view, published, view["last_seen"])
    return views, alerts


@router.post("/api/terminals/heartbeat")
async def heartbeat(body: HeartbeatIn, request: Request, ctx: Ctx) -> JSONResponse:
    """A terminal's state every `heartbeat_seconds`; the answer carries the published
    content and the opening hours, so the terminal needs no other polling."""
    token = require_role(request, "terminal")
    store, rollout, settings = ctx.store, ctx.rollout, ctx.hall.fleet
    rollout.follow()
    now, published = store.clock(), rollout.published()
    data = body.model_dump(mode="json")  # times as ISO text, as kept in the store
    rec = fleet.TerminalRecord(token.name, None, False, now, data)
    view = fleet.terminal_view(rec, now, settings.online_seconds,
                               None if published is None else published.manifest.version, ctx.local)
    store.record_heartbeat(token.name, data, fleet.state_of(view),
                           offline_before=now - timedelta(seconds=settings.online_seconds))
    return JSONResponse({"server_time": ctx.local(now), "terminal": token.name,
                         "content": None if published is None else published.view(),
                         "hours": ctx.hours_now().as_dict(ctx.hall.tz),
                         "heartbeat_seconds": settings.heartbeat_seconds})


@router.get("/api/terminals")
async def terminals(request: Request, ctx: Ctx) -> JSONResponse:
    """Every terminal with its state, and the alerts (admin)."""
    require_role(request, "admin")
    views, alerts = fleet_views(ctx)
    return JSONResponse({"terminals": views, "alerts": alerts, "online_seconds": ctx.hall.fleet.online_seconds,
                         "published": published_version(ctx), "server_time": ctx.local(ctx.store.clock())})
