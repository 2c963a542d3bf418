"""The HTTP API of the fleet and the content rollout: enrollment codes and enrollment,
revocation, heartbeats, the fleet view with its alerts, and the published content bundle.

A terminal's token is checked on every request (store.token), so a revoked terminal is
refused at its next request. Heartbeats carry no personal data; nor do the events sent to
/admin when a terminal's state changes.
"""


import math
from datetime import datetime, timedelta
from typing import Annotated, Callable, Literal

from fastapi import FastAPI, Path, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kiosq.content.bundle import BundleError
from kiosq.queue import fleet
from kiosq.queue.application_api import ApiProblem
from kiosq.queue.hours import HoursStatus
from kiosq.queue.personal import Personal
from kiosq.queue.rollout import NoSuchBundle, Rollout
from kiosq.queue.store import EnrollmentRefused, Store, Token

ENROLL_TRIES = 10  # refused enrollments per client address in THROTTLE_WINDOW
THROTTLE_WINDOW = timedelta(minutes=10)
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


class HeartbeatIn(_Body):
    software_version: Annotated[str, Field(min_length=1, max_length=64)]
    content_version: Version = None
    content_sha256: Annotated[str | None, Field(pattern=r"^[0-9a-f]{64}$")] = None
    devices: DevicesIn = DevicesIn()
    last_error: Annotated[str | None, Field(max_length=500)] = None
    uptime_seconds: Annotated[int, Field(ge=0, le=10 * 365 * 86400)]
    outbox_waiting: Annotated[int | None, Field(ge=0, le=10**9)] = None
    outbox_refused: Annotated[int | None, Field(ge=0, le=10**9)] = None


class PublishIn(_Body):
    version: Annotated[str, Field(min_length=1, max_length=64, description="a bundle already on the server "
                                  "(GET /api/content lists them)")]


def install_fleet(app: FastAPI, store: Store, rollout: Rollout, personal: Personal,
                  authenticate: Callable[[str | None], Token], hours_now: Callable[[], HoursStatus]) -> None:
    hall = store.hall

    def local(value: datetime | None) -> str | None:
        return None if value is None else value.astimezone(hall.tz).isoformat(timespec="seconds")

    def token_of(request: Request, *roles: str) -> Token:
        token = authenticate(request.headers.get("authorization"))
        if token.role not in roles:
            raise ApiProblem(403, "forbidden", f"this needs a {' or '.join(roles)} token; {token.name!r} is a "
                             f"{token.role} token")
        return token

    # -- enrollment ------------------------------------------------------------------

    def make_code(terminal: str, ttl: timedelta, by: str) -> dict:
        code = fleet.new_enroll_code()
        expires = store.clock() + ttl
        try:
            store.add_enroll_code(terminal, fleet.hash_code(code), expires, by)
        except ValueError as exc:
            raise ApiProblem(409, "name_taken", str(exc)) from None
        return {"code": code, "terminal": terminal, "expires_at": local(expires)}

    @app.post("/api/terminals/enroll-codes", status_code=201, tags=["terminals"])
    async def enroll_code(body: EnrollCodeIn, request: Request) -> JSONResponse:
        """A one-time code for `kiosq enroll CODE --server URL` on the terminal (admin)."""
        token = token_of(request, "admin")
        return JSONResponse(make_code(body.terminal, timedelta(minutes=body.ttl_minutes), token.name),
                            status_code=201)

    def client_scope(request: Request) -> str:
        host = request.client.host if request.client else "unknown"
        return "enroll:" + personal.digest("client:" + host)[:32]

    def throttled(scope: str) -> None:
        now = store.clock()
        hits = store.throttle_hits((scope,), now - THROTTLE_WINDOW)[scope]
        if len(hits) >= ENROLL_TRIES:
            seconds = max(1, math.ceil((hits[len(hits) - ENROLL_TRIES] + THROTTLE_WINDOW - now).total_seconds()))
            raise ApiProblem(429, "too_many_tries", f"too many refused enrollment codes from this address; try again "
                             f"in {math.ceil(seconds / 60)} min", {"Retry-After": str(seconds)}, retry_after=seconds)

    @app.post("/api/terminals/enroll", status_code=201, tags=["terminals"])
    async def enroll(body: EnrollIn, request: Request) -> JSONResponse:
        """Trade a one-time code for the terminal's token (no auth: the code is the secret)."""
        scope = client_scope(request)
        throttled(scope)
        try:
            terminal, secret = store.enroll(fleet.hash_code(body.code))
        except EnrollmentRefused as exc:
            store.throttle_count((scope,), store.clock() - THROTTLE_WINDOW)
            status, code, detail = _REFUSALS[exc.reason]
            raise ApiProblem(status, code, detail) from None
        return JSONResponse({"terminal": terminal, "token": secret, "server_time": local(store.clock())},
                            status_code=201, headers={"Cache-Control": "no-store"})

    @app.post("/api/terminals/{terminal}/revoke", tags=["terminals"])
    async def revoke(terminal: Annotated[str, Path(pattern=fleet.TERMINAL_ID)], request: Request) -> JSONResponse:
        """Refuse the terminal's token from its next request on (admin). Enroll it again to
        bring it back."""
        token_of(request, "admin")
        store.revoke_terminal(terminal)
        return JSONResponse(next(v for v in fleet_views()[0] if v["terminal"] == terminal))

    # -- heartbeats and the fleet view -------------------------------------------------

    def published_version() -> str | None:
        published = rollout.published()
        return None if published is None else published.manifest.version

    def fleet_views() -> tuple[list[dict], list[dict]]:
        now, published = store.clock(), published_version()
        views, alerts = [], []
        for rec in store.terminals():
            view = fleet.terminal_view(rec, now, hall.fleet.online_seconds, published, local)
            views.append(view)
            alerts += fleet.alerts_of(view, published, view["last_seen"])
        return views, alerts

    @app.post("/api/terminals/heartbeat", tags=["terminals"])
    async def heartbeat(body: HeartbeatIn, request: Request) -> JSONResponse:
        """A terminal's state every `heartbeat_seconds`; the answer carries the published
        content and the opening hours, so the terminal needs no other polling."""
        token = token_of(request, "terminal")
        rollout.follow()
        now, published = store.clock(), rollout.published()
        data = body.model_dump()
        rec = fleet.TerminalRecord(token.name, None, False, now, data)
        view = fleet.terminal_view(rec, now, hall.fleet.online_seconds,
                                   None if published is None else published.manifest.version, local)
        store.record_heartbeat(token.name, data, fleet.state_of(view),
                               offline_before=now - timedelta(seconds=hall.fleet.online_seconds))
        return JSONResponse({"server_time": local(now), "terminal": token.name,
                             "content": None if published is None else published.view(),
                             "hours": hours_now().as_dict(hall.tz),
                             "heartbeat_seconds": hall.fleet.heartbeat_seconds})

    @app.get("/api/terminals", tags=["terminals"])
    async def terminals(request: Request) -> JSONResponse:
        """Every terminal with its state, and the alerts (admin)."""
        token_of(request, "admin")
        views, alerts = fleet_views()
        return JSONResponse({"terminals": views, "alerts": alerts, "online_seconds": hall.fleet.online_seconds,
                             "published": published_version(), "server_time": local(store.clock())})

    # -- content -----------------------------------------------------------------------

    @app.get("/api/content/manifest", tags=["content"])
    async def manifest(request: Request) -> JSONResponse:
        """The published bundle; 404 `not_published` while the server runs the sample catalog."""
        token_of(request, "terminal", "admin")
        rollout.follow()
        published = rollout.published()
        if published is None:
            raise ApiProblem(404, "not_published", "no content bundle is published on this server; keep the "
                             "catalog you have")
        return JSONResponse(published.view())

    @app.get("/api/content/bundles/{version}", tags=["content"], response_class=FileResponse, responses={
        200: {"description": "the bundle's catalog database (SQLite); Range requests resume a download",
              "content": {"application/vnd.sqlite3": {}}}})
    async def bundle_file(version: Annotated[str, Path(max_length=64)], request: Request) -> FileResponse:
        token_of(request, "terminal", "admin")
        try:
            path, manifest = rollout.bundle_file(version)
        except NoSuchBundle as exc:
            raise ApiProblem(404, "not_found", str(exc)) from None
        return FileResponse(path, media_type="application/vnd.sqlite3", filename=f"catalog-{version}.sqlite",
                            headers={"X-Content-SHA256": manifest.sha256, "Cache-Control": "no-cache"})

    def content_state() -> dict:
        published = rollout.published()
        return {"published": None if published is None else published.view(),
                "previous": rollout.state().get("previous"), "bundles": rollout.bundles(),
                "catalog": rollout.items.source if rollout.items else None}

    @app.get("/api/content", tags=["content"])
    async def content(request: Request) -> JSONResponse:
        """What is published, what was before, and the bundles kept on the server (admin)."""
        token_of(request, "admin")
        rollout.follow()
        return JSONResponse(content_state())

    def changed(action: str, version: str, by: str) -> JSONResponse:
        store.record_event(f"content.{action}", {"content": {"version": version, "action": action, "by": by}})
        return JSONResponse(content_state())

    @app.post("/api/content/publish", tags=["content"])
    async def publish(body: PublishIn, request: Request) -> JSONResponse:
        """Publish a bundle already on the server (copied there by `kiosq server publish`)."""
        token = token_of(request, "admin")
        try:
            manifest = rollout.publish_version(body.version)
        except NoSuchBundle as exc:
            raise ApiProblem(404, "not_found", str(exc)) from None
        except BundleError as exc:
            raise ApiProblem(409, "bundle_damaged", str(exc)) from None
        return changed("published", manifest.version, token.name)

    @app.post("/api/content/rollback", tags=["content"])
    async def rollback(request: Request) -> JSONResponse:
        """Publish the bundle published before the current one again."""
        token = token_of(request, "admin")
        try:
            version = rollout.rollback()
        except BundleError as exc:
            raise ApiProblem(409, "no_previous", str(exc)) from None
        return changed("rolled_back", version, token.name)
