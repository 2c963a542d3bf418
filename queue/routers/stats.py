"""Figures: a business day's tickets (waits, service, SLA) and a period's applications
(办结率, deadlines), as JSON, CSV and a chart."""

from datetime import date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from kiosq.queue import application_stats, engine, stats
from kiosq.queue.auth import Caller, CallerUndocumented, require_admin, require_admin_or_supervisor
from kiosq.queue.context import Context, Ctx
from kiosq.queue.errors import ApiError
from kiosq.queue.store import Token

router = APIRouter()

# -- tickets ------------------------------------------------------------------------

Day = Annotated[date | None, Query(description="business day, YYYY-MM-DD; default today")]


def hall_figures_allowed(token: Token) -> None:
    require_admin(token, f"the hall's figures need an admin token; {token.name!r} is a {token.role} token")


def day_figures(ctx: Context, day: date | None) -> tuple[date, list[engine.Ticket], datetime, datetime]:
    """The tickets of a business day (today by default) and the moment to measure at."""
    store = ctx.store
    now = store.clock()
    today = store.today()
    day = day or today
    if day > today:
        raise ApiError(404, "not_found", f"{day} has not begun; figures exist up to today ({today})")
    start, end = stats.day_bounds(day, ctx.hall)
    # A past day is measured at its last instant, so its figures no longer move.
    as_of = now if day == today else end - timedelta(microseconds=1)
    return day, store.tickets_of_day(day), start, as_of


@router.get("/api/stats", tags=["stats"])
async def get_stats(token: Caller, ctx: Ctx, day: Day = None) -> JSONResponse:
    """Today's (or a past day's) figures: waits, service times, throughput, no-shows, SLA."""
    hall_figures_allowed(token)
    _day, tickets, _start, as_of = day_figures(ctx, day)
    return JSONResponse(stats.day_stats(tickets, ctx.hall, as_of))


@router.get("/api/stats/export.csv", tags=["stats"], response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "one row per hall, service and window"}})
async def export_csv(token: Caller, ctx: Ctx, day: Day = None, lang: Literal["zh", "en"] = "zh") -> Response:
    hall_figures_allowed(token)
    the_day, tickets, _start, as_of = day_figures(ctx, day)
    return Response(stats.stats_csv(stats.day_stats(tickets, ctx.hall, as_of), lang),
                    media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="kiosq-{the_day}.csv"'})


@router.get("/api/stats/chart.svg", tags=["stats"], response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}, "description": "waiting count over the day"}})
async def chart(token: Caller, ctx: Ctx, day: Day = None, lang: Literal["zh", "en"] = "zh") -> Response:
    hall_figures_allowed(token)
    _day, tickets, start, as_of = day_figures(ctx, day)
    series = stats.waiting_series(tickets, start, as_of)
    return Response(stats.chart_svg(series, lang=lang), media_type="image/svg+xml")


# -- applications (before /api/applications/{number}, which would take "stats" for a number)

From = Annotated[date | None, Query(alias="from", description="first day of filing, YYYY-MM-DD; default the "
                                                             "first of the month")]
To = Annotated[date | None, Query(alias="to", description="last day of filing, YYYY-MM-DD; default today")]


def application_figures_allowed(token: Token) -> None:
    require_admin_or_supervisor(token, f"the figures need an admin or supervisor token; {token.name!r} is a "
                                f"{token.role} token")


def period(ctx: Context, first: date | None, last: date | None) -> tuple[date, date]:
    last = last or ctx.local_today()
    first = first or last.replace(day=1)
    if first > last:
        raise ApiError(422, "invalid_request", f"from ({first}) is after to ({last})")
    if (last - first).days > 366 * 5:
        raise ApiError(422, "invalid_request", "a period of at most 5 years")
    return first, last


def application_figures(ctx: Context, first: date, last: date) -> dict:
    hall = ctx.hall
    found = ctx.store.applications_filed(first, last)
    return application_stats.figures(found, first, last, ctx.local_today(), hall.calendar, hall.tz)


@router.get("/api/applications/stats", tags=["applications"])
async def figures(token: CallerUndocumented, ctx: Ctx, first: From = None, last: To = None) -> JSONResponse:
    """办结率, 提前办结率, warnings and overdue, for the hall, each department and each item
    (definitions: queue/application_stats.py)."""
    application_figures_allowed(token)
    first, last = period(ctx, first, last)
    return JSONResponse(application_figures(ctx, first, last))


@router.get("/api/applications/export.csv", tags=["applications"], response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "one row for the hall, each department "
                                                                        "and each item; no personal data"}})
async def figures_csv(token: CallerUndocumented, ctx: Ctx, first: From = None, last: To = None,
                      lang: Literal["zh", "en"] = "zh") -> Response:
    application_figures_allowed(token)
    first, last = period(ctx, first, last)
    data = application_figures(ctx, first, last)
    return Response(application_stats.figures_csv(data, lang), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="kiosq-applications-{first}-{last}.csv"'})
