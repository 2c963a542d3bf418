"""The hall as a whole: health, the services with their waits, and who a token is."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from kiosq.queue.auth import Caller
from kiosq.queue.context import Ctx
from kiosq.queue.views import services_view

router = APIRouter(tags=["hall"])


@router.get("/api/health")
async def health(ctx: Ctx) -> dict[str, Any]:
    store, hall = ctx.store, ctx.hall
    return {"ok": True, "hall": hall.info.name, "business_day": store.today().isoformat(),
            "schema_version": store.schema_version(), "last_event_id": store.last_event_id(),
            **ctx.hours_now().as_dict(hall.tz)}


@router.get("/api/services")
async def services(ctx: Ctx) -> JSONResponse:
    return JSONResponse(services_view(ctx))


@router.get("/api/me")
async def me(token: Caller) -> dict[str, Any]:
    """Who a token belongs to: the consoles check a token with this before using it."""
    return {"name": token.name, "role": token.role, "windows": list(token.windows)}
