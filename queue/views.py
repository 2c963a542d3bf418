"""The JSON the hall's routes answer with: tickets, windows, services and window actions."""

from typing import Any

from fastapi.responses import JSONResponse

from kiosq.queue import engine
from kiosq.queue.config import Hall
from kiosq.queue.context import Context
from kiosq.queue.store import ticket_data


def ticket_view(ctx: Context, ticket: engine.Ticket, base_url: str) -> dict[str, Any]:
    """A ticket with its place in line and the page that follows it."""
    store = ctx.store
    ahead = store.ahead(ticket)
    waiting = ticket.status == engine.WAITING
    data = ticket_data(ticket, ctx.hall)
    data.update(id=ticket.id, ahead=ahead, position=ahead + 1 if waiting else None,
                eta_minutes=store.eta(ticket, ahead) if waiting else None,
                follow_url=f"{base_url.rstrip('/')}/t/{ticket.id}")
    return data


def window_view(hall: Hall, state: engine.WindowState) -> dict[str, Any]:
    win = hall.windows[state.number]
    return {"number": win.number, "name": win.name, "name_en": win.name_en, "services": list(win.services),
            "policy": win.policy, "state": state.state,
            "current": None if state.current is None else ticket_data(state.current, hall)}


def action_result(ctx: Context, window: int, outcome: engine.Outcome) -> JSONResponse:
    """What a window action answers: the window now, the ticket acted on, the events."""
    hall = ctx.hall
    return JSONResponse({"window": window_view(hall, ctx.store.window(window)),
                         "ticket": None if outcome.ticket is None else ticket_data(outcome.ticket, hall),
                         "events": [e.type for e in outcome.events]})


def services_view(ctx: Context) -> list[dict[str, Any]]:
    """Each service with its waiting count, open windows and estimated wait."""
    store, hall = ctx.store, ctx.hall
    waiting, open_windows = store.waiting_counts(), store.open_windows()
    hours = ctx.hours_now().as_dict(hall.tz)  # the hall's: the same on every service
    return [{"code": s.code, "name": s.name, "name_en": s.name_en, "prefix": s.prefix, "waiting": waiting[s.code],
             "open_windows": open_windows[s.code], "avg_service_minutes": s.avg_service_minutes,
             "eta_minutes": engine.eta_minutes(waiting[s.code], s, open_windows[s.code]), **hours}
            for s in hall.services.values()]


def voice_status(ctx: Context) -> dict[str, Any]:
    voice = ctx.voice
    if voice is None:
        return {"available": False, "reason": "voice is not configured on this server"}
    return {"available": voice.available, "reason": voice.reason}
