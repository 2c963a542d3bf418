"""What the hall's displays show: the snapshot, the notice and the spoken calls (the live
event streams are in routers/streams.py)."""

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from kiosq.queue.auth import Caller, require_admin
from kiosq.queue.context import Ctx
from kiosq.queue.errors import ApiError, ErrorOut
from kiosq.queue.views import services_view, voice_status, window_view
from kiosq.queue.voice import VoiceError

log = logging.getLogger("kiosq.server")
router = APIRouter()
RECENT_CALLS = 8


class NoticeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    notice: Annotated[str, Field(max_length=200, description="one line under the calls; empty clears it")]


@router.get("/api/display", tags=["displays"])
async def display(ctx: Ctx) -> JSONResponse:
    """Everything a display shows, in one snapshot, with the event id to stream from."""
    store, hall = ctx.store, ctx.hall
    return JSONResponse({
        "hall": {"name": hall.info.name, "name_en": hall.info.name_en, "notice": store.notice(),
                 "sla_wait_minutes": hall.info.sla_wait_minutes},
        "now": store.clock().astimezone(hall.tz).isoformat(timespec="milliseconds"),
        "business_day": store.today().isoformat(), "windows": [window_view(hall, w) for w in store.windows()],
        "services": services_view(ctx), "last_event_id": store.last_event_id(), "voice": voice_status(ctx),
        "calls": [{"id": e.id, "type": e.type, **json.loads(e.data)} for e in store.recent_calls(RECENT_CALLS)]})


@router.put("/api/hall/notice", tags=["displays"])
async def set_notice(body: NoticeRequest, token: Caller, ctx: Ctx) -> dict[str, Any]:
    require_admin(token, "only an admin token can change the hall notice")
    ctx.store.set_notice(body.notice)
    return {"notice": body.notice}


@router.get("/api/announcements", tags=["displays"], response_class=FileResponse, responses={
    200: {"description": "chime and spoken call, WAV", "content": {"audio/wav": {}}},
    503: {"model": ErrorOut, "description": "no voice on this server (the reason says why)"}})
async def announcement(number: Annotated[str, Query(pattern=r"^[A-Z]{1,3}[0-9]{1,5}$")],
                       window: Annotated[int, Query(ge=1, le=999)], ctx: Ctx) -> FileResponse:
    """The announcement of one call, 「请 A001 号到 3 号窗口办理」, made once and cached."""
    if window not in ctx.hall.windows:
        raise ApiError(404, "not_found", f"no window {window} in this hall")
    status = voice_status(ctx)
    if ctx.voice is None or not status["available"]:
        raise ApiError(503, "voice_unavailable", status["reason"])
    try:
        path = await run_in_threadpool(ctx.voice.announcement, number, window)  # espeak-ng takes ~50 ms
    except VoiceError as exc:
        log.error("announcement failed: %s", exc)
        raise ApiError(503, "voice_unavailable", f"speech synthesis failed: {exc}") from None
    return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": "public, max-age=86400"})
