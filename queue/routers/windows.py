"""Service windows: their state, and the staff's actions at a window."""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kiosq.queue.auth import Caller, StaffWindow
from kiosq.queue.context import Ctx
from kiosq.queue.views import action_result, window_view

router = APIRouter(tags=["windows"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TransferRequest(_Body):
    service: Annotated[str, Field(min_length=1, max_length=16, description="the service to move the ticket to")]


class ReinstateRequest(_Body):
    ticket: Annotated[str, Field(min_length=2, max_length=12, description="ticket number, e.g. A012")]


@router.get("/api/windows")
async def windows(ctx: Ctx) -> JSONResponse:
    return JSONResponse([window_view(ctx.hall, s) for s in ctx.store.windows()])


@router.post("/api/windows/{window}/call-next")
async def call_next(window: StaffWindow, token: Caller, ctx: Ctx) -> JSONResponse:
    # Who called (and below: started, finished) is kept on the ticket: its rating names them.
    return action_result(ctx, window, ctx.store.call_next(window, served_by=token.name))


def _current_ticket_action(action: str) -> Callable[..., Coroutine[Any, Any, JSONResponse]]:
    async def handler(window: StaffWindow, token: Caller, ctx: Ctx) -> JSONResponse:
        return action_result(ctx, window, ctx.store.act(window, action, served_by=token.name))
    return handler


# recall, start, finish and no-show act on the window's current ticket and take no body.
for _action, _path in (("recall", "recall"), ("start", "start"), ("finish", "finish"), ("no_show", "no-show")):
    router.post(f"/api/windows/{{window}}/{_path}", name=_action)(_current_ticket_action(_action))


@router.post("/api/windows/{window}/transfer")
async def transfer(window: StaffWindow, body: TransferRequest, ctx: Ctx) -> JSONResponse:
    return action_result(ctx, window, ctx.store.act(window, "transfer", body.service))


@router.post("/api/windows/{window}/reinstate")
async def reinstate(window: StaffWindow, body: ReinstateRequest, ctx: Ctx) -> JSONResponse:
    return action_result(ctx, window, ctx.store.reinstate(window, body.ticket))


@router.post("/api/windows/{window}/pause")
async def pause(window: StaffWindow, ctx: Ctx) -> JSONResponse:
    return action_result(ctx, window, ctx.store.set_window_state(window, paused=True))


@router.post("/api/windows/{window}/resume")
async def resume(window: StaffWindow, ctx: Ctx) -> JSONResponse:
    return action_result(ctx, window, ctx.store.set_window_state(window, paused=False))
