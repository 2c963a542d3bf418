"""The server's one error type, `ApiError`, and the handlers that turn it and the rules'
refusals into `{"error": code, "detail": text}` with a 4xx status (a 500 is a bug)."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from kiosq.queue import applications, engine
from kiosq.queue.hours import Closed
from kiosq.queue.store import IdempotencyConflict, KeyRetired, NotFound, Unavailable

log = logging.getLogger("kiosq.server")


class ApiError(Exception):
    """A 4xx answer in the error shape, plus `extra` keys (e.g. `fields`, `retry_after`)."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers, self.extra = status, code, detail, headers, extra


class ErrorOut(BaseModel):
    error: str = Field(description="a stable code, e.g. not_allowed")
    detail: str = Field(description="what went wrong and what to do, in one sentence")


# Every route documents the one error shape; this also replaces FastAPI's own 422 schema.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text} for status, text in (
        (400, "malformed request"), (401, "missing, unknown or revoked token"), (403, "wrong role or window"),
        (404, "no such ticket, window, service or route"), (409, "refused by the queue rules"),
        (413, "body too large"), (422, "wrong fields or types"))}


def error_response(status_code: int, code: str, detail: str, headers: dict[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    """The one error shape; `extra` keys follow `error` and `detail` (e.g. `opens_at`)."""
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status_code, headers=headers)


async def api_error(_req: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.detail, exc.headers, **exc.extra)


async def refusal(_req: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, engine.Refusal)
    return error_response(409, exc.code, str(exc))


async def invalid_transition(_req: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, applications.InvalidTransition)
    return error_response(409, exc.code, str(exc), status=exc.status)


async def not_permitted(_req: Request, exc: Exception) -> JSONResponse:
    return error_response(403, "forbidden", str(exc))


async def note_required(_req: Request, exc: Exception) -> JSONResponse:
    return error_response(422, "note_required", str(exc))


async def not_found(_req: Request, exc: Exception) -> JSONResponse:
    return error_response(404, "not_found", str(exc))


async def closed(_req: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Closed)
    opens_at = None if exc.opens_at is None else exc.opens_at.isoformat(timespec="seconds")
    return error_response(409, "closed", str(exc), opens_at=opens_at)


async def idempotency_conflict(_req: Request, exc: Exception) -> JSONResponse:
    return error_response(409, "idempotency_conflict", str(exc))


async def invalid_request(_req: Request, exc: Exception) -> JSONResponse:
    """Pydantic's first complaint, as one line naming the field (400 for broken JSON)."""
    assert isinstance(exc, RequestValidationError)
    err = exc.errors()[0]
    if err["type"] == "json_invalid":
        reason = err.get("ctx", {}).get("error", "parse error")
        return error_response(400, "malformed_json", f"the request body is not valid JSON ({reason}); "
                              "send a JSON object")
    where = ".".join(str(p) for p in err["loc"] if p != "body") or "body"
    msg = "required" if err["type"] == "missing" else err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field; see /openapi.json for the fields this endpoint takes"
    return error_response(422, "invalid_request", f"{where}: {msg}")


async def http_error(_req: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    detail = str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = "no such endpoint; /openapi.json lists them"
    return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), detail,
                          getattr(exc, "headers", None))


async def unavailable(_req: Request, exc: Exception) -> JSONResponse:
    # The message names the database and why (no password): staff and monitoring see it.
    log.error("database unavailable: %s", exc)
    return error_response(503, "database_unavailable",
                          f"{exc}; try again in a moment (a retry with the same Idempotency-Key is safe)",
                          {"Retry-After": "2"})


async def key_retired(_req: Request, exc: Exception) -> JSONResponse:
    # Not the client's fault nor a passing one: the hall's IT must copy a file (the log says so too).
    log.error("%s", exc)
    return error_response(503, "key_retired", str(exc))


async def bug(req: Request, exc: Exception) -> JSONResponse:
    # The route's template, not the path: paths carry ticket ids, the holders' secrets.
    route = req.scope.get("route")
    log.exception("internal error on %s %s", req.method, getattr(route, "path", "(no route)"), exc_info=exc)
    return error_response(500, "internal", "the server hit a bug; it is logged. Try again, and tell the hall IT staff")


HANDLERS = {
    ApiError: api_error,
    engine.Refusal: refusal,
    applications.InvalidTransition: invalid_transition,
    engine.NotPermitted: not_permitted,
    applications.NoteRequired: note_required,
    NotFound: not_found,
    Closed: closed,
    IdempotencyConflict: idempotency_conflict,
    Unavailable: unavailable,
    KeyRetired: key_retired,
    RequestValidationError: invalid_request,
    StarletteHTTPException: http_error,
    Exception: bug,
}


def install_error_handlers(app: FastAPI) -> None:
    for exc_class, handler in HANDLERS.items():
        app.add_exception_handler(exc_class, handler)
