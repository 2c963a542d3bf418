"""The hall as a whole: health, the services with their waits, who a token is, the hall CA."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from kiosq.queue.auth import Caller
from kiosq.queue.context import Ctx
from kiosq.queue.errors import ApiError
from kiosq.queue.tls import TlsFiles
from kiosq.queue.views import services_view

router = APIRouter(tags=["hall"])


@router.get("/api/health")
async def health(ctx: Ctx) -> JSONResponse:
    """Who may call: anyone (load balancers and monitoring). 503 when the database cannot be
    reached; `database` says which one and its round trip in milliseconds."""
    store, hall = ctx.store, ctx.hall
    database = store.database_health()
    if not database["ok"]:
        return JSONResponse({"ok": False, "hall": hall.info.name, "database": database}, status_code=503)
    return JSONResponse({"ok": True, "hall": hall.info.name, "business_day": store.today().isoformat(),
            "schema_version": store.schema_version(), "last_event_id": store.last_event_id(),
            "database": database, **ctx.hours_now().as_dict(hall.tz)})


@router.get("/api/services")
async def services(ctx: Ctx) -> JSONResponse:
    return JSONResponse(services_view(ctx))


@router.get("/api/me")
async def me(token: Caller) -> dict[str, Any]:
    """Who is asking: a token's holder, or the person signed in (`login` and their `name`)."""
    if token.via == "session":
        return {"name": token.display_name, "login": token.name, "role": token.role, "windows": list(token.windows),
                "via": "session"}
    return {"name": token.name, "role": token.role, "windows": list(token.windows), "via": "token"}


@router.get("/api/tls/ca.pem", response_class=Response,
            responses={200: {"content": {"application/x-pem-file": {}}, "description": "the hall CA (PEM)"}})
async def tls_ca(ctx: Ctx) -> Response:
    """Who may call: anyone. The hall CA's certificate, for a staff browser to trust and for
    `kiosq enroll`, which checks it against the fingerprint IT staff typed. 404 without one."""
    ca = TlsFiles.of(ctx.store.data_dir).ca
    if not ca.is_file():
        raise ApiError(404, "no_ca", "this server has no hall CA; make one with `kiosq server tls init`")
    return Response(ca.read_bytes(), media_type="application/x-pem-file",
                    headers={"Content-Disposition": 'attachment; filename="kiosq-hall-ca.pem"'})
