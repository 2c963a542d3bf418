"""The item catalog as the server knows it: every guide, with its form if it has one."""

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from kiosq.queue.application_views import item_view
from kiosq.queue.context import Ctx
from kiosq.queue.errors import ApiError

router = APIRouter(tags=["items"])


@router.get("/api/items")
async def list_items(ctx: Ctx, fileable: Annotated[bool | None, Query(description="true: only items with a form")]
                     = None) -> JSONResponse:
    """The catalog as the server knows it: every guide, with its form if it has one."""
    items = ctx.items
    return JSONResponse({"source": items.source, "items": [item_view(i) for i in items.all(fileable)]})


@router.get("/api/items/{code}")
async def get_item(code: Annotated[str, Path(max_length=40)], ctx: Ctx) -> JSONResponse:
    item = ctx.items.get(code)
    if item is None:
        raise ApiError(404, "not_found", f"no item {code} in the catalog ({ctx.items.source})")
    return JSONResponse(item_view(item))
