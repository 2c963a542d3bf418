"""The content rollout: the published bundle for terminals, and publishing and rolling
back for the admin."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kiosq.content.bundle import BundleError
from kiosq.queue.auth import require_role
from kiosq.queue.context import Context, Ctx
from kiosq.queue.errors import ApiError
from kiosq.queue.rollout import NoSuchBundle

router = APIRouter(tags=["content"])


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: Annotated[str, Field(min_length=1, max_length=64, description="a bundle already on the server "
                                  "(GET /api/content lists them)")]


@router.get("/api/content/manifest")
async def manifest(request: Request, ctx: Ctx) -> JSONResponse:
    """The published bundle; 404 `not_published` while the server runs the sample catalog."""
    require_role(request, "terminal", "admin")
    ctx.rollout.follow()
    published = ctx.rollout.published()
    if published is None:
        raise ApiError(404, "not_published", "no content bundle is published on this server; keep the "
                       "catalog you have")
    return JSONResponse(published.view())


@router.get("/api/content/bundles/{version}", response_class=FileResponse, responses={
    200: {"description": "the bundle's catalog database (SQLite); Range requests resume a download",
          "content": {"application/vnd.sqlite3": {}}}})
async def bundle_file(version: Annotated[str, Path(max_length=64)], request: Request, ctx: Ctx) -> FileResponse:
    require_role(request, "terminal", "admin")
    try:
        path, manifest = ctx.rollout.bundle_file(version)
    except NoSuchBundle as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    return FileResponse(path, media_type="application/vnd.sqlite3", filename=f"catalog-{version}.sqlite",
                        headers={"X-Content-SHA256": manifest.sha256, "Cache-Control": "no-cache"})


def content_state(ctx: Context) -> dict[str, Any]:
    rollout = ctx.rollout
    published = rollout.published()
    return {"published": None if published is None else published.view(),
            "previous": rollout.state().get("previous"), "bundles": rollout.bundles(),
            "catalog": rollout.items.source if rollout.items else None}


@router.get("/api/content")
async def content(request: Request, ctx: Ctx) -> JSONResponse:
    """What is published, what was before, and the bundles kept on the server (admin)."""
    require_role(request, "admin")
    ctx.rollout.follow()
    return JSONResponse(content_state(ctx))


def changed(ctx: Context, action: str, version: str, by: str) -> JSONResponse:
    """Record the change as an event for /admin, and answer with the new state."""
    ctx.store.record_event(f"content.{action}", {"content": {"version": version, "action": action, "by": by}})
    return JSONResponse(content_state(ctx))


@router.post("/api/content/publish")
async def publish(body: PublishIn, request: Request, ctx: Ctx) -> JSONResponse:
    """Publish a bundle already on the server (copied there by `kiosq server publish`)."""
    token = require_role(request, "admin")
    try:
        published = ctx.rollout.publish_version(body.version)
    except NoSuchBundle as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except BundleError as exc:
        raise ApiError(409, "bundle_damaged", str(exc)) from None
    return changed(ctx, "published", published.version, token.name)


@router.post("/api/content/rollback")
async def rollback(request: Request, ctx: Ctx) -> JSONResponse:
    """Publish the bundle published before the current one again."""
    token = require_role(request, "admin")
    try:
        version = ctx.rollout.rollback()
    except BundleError as exc:
        raise ApiError(409, "no_previous", str(exc)) from None
    return changed(ctx, "rolled_back", version, token.name)
