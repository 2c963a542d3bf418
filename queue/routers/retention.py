"""Retention over HTTP: the last run's report, for /admin (queue/retention.py runs it)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from kiosq.queue import retention
from kiosq.queue.auth import require_role
from kiosq.queue.context import Ctx

router = APIRouter(tags=["retention"])


@router.get("/api/retention")
async def retention_report(request: Request, ctx: Ctx) -> JSONResponse:
    """Who may call: an admin (token or account). The hall's [retention] settings, the last
    run (its day, state, times and how many applications' personal data it erased and how
    many events, sessions and throttle rows it deleted) and when the next one is due."""
    require_role(request, "admin")
    return JSONResponse(retention.report(ctx.store))
