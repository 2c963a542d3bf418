"""Rows as the rest of the server sees them: each table's columns and the dataclass a row
becomes, stored values (UTC ISO 8601 text) to datetimes, and a ticket or an application's
change as JSON data for events, displays and the webhook. No SQL is run here."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from kiosq.queue.applications import Application, Rejection, Step
from kiosq.queue.config import Hall
from kiosq.queue.engine import Ticket
from kiosq.queue.fleet import TerminalRecord


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    tracking_no: str
    status: str
    payload: dict  # no personal data: the sender adds the phone when it sends
    state: str  # queued, sent, failed
    attempts: int
    next_at: datetime | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    type: str
    data: str  # JSON, as sent to SSE clients
    ticket: str | None = None  # the ticket's id (its holder's secret, never sent), where read


def ts(value: datetime | None) -> str | None:
    """A moment as stored: UTC, ISO 8601."""
    return None if value is None else value.astimezone(UTC).isoformat()


def dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


# seq is the order of issue, and so the place in line (engine.Ticket.queue_seq): a transfer
# or reinstatement keeps it.
TICKET_COLUMNS = ("id, day, number_service, number, label, service, priority, status, issued_at, "
                  'seq, "window", called_at, started_at, ended_at, recalls, transfers')
APPLICATION_COLUMNS = ("tracking_no, provisional_no, item, item_name, department, service, status, submitted_at, "
                       "clock_from, promised_days, legal_days, promised_date, legal_date, terminal, finished_at, "
                       "rejection_by, rejection_at, rejection_sealed")
NOTIFICATION_COLUMNS = ("id, tracking_no, status, payload, state, attempts, next_at, last_error, created_at, sent_at, "
                        "sealed_note")
STEP_COLUMNS = "action, status, at, actor, sealed_note"
# Opens a sealed note (queue/store/sealed.py Notes.open): None for none.
OpenNote = Callable[[Any], str | None]
TERMINAL_COLUMNS = "name, enrolled_at, revoked_at, last_seen, heartbeat"


def row_ticket(row: tuple) -> Ticket:
    return Ticket(id=row[0], day=date.fromisoformat(row[1]), number_service=row[2], number=row[3],
                  label=row[4], service=row[5], priority=row[6], status=row[7],
                  issued_at=datetime.fromisoformat(row[8]), queue_seq=row[9], window=row[10],
                  called_at=dt(row[11]), started_at=dt(row[12]), ended_at=dt(row[13]),
                  recalls=row[14], transfers=row[15])


def row_application(row: tuple, open_note: OpenNote) -> Application:
    rejection = None if row[15] is None else Rejection(row[15], datetime.fromisoformat(row[16]),
                                                       open_note(row[17]) or "")
    return Application(tracking_no=row[0], provisional_no=row[1], item=row[2], item_name=row[3], department=row[4],
                       service=row[5], status=row[6], submitted_at=datetime.fromisoformat(row[7]),
                       clock_from=date.fromisoformat(row[8]), promised_days=row[9], legal_days=row[10],
                       promised_date=date.fromisoformat(row[11]), legal_date=date.fromisoformat(row[12]),
                       terminal=row[13], finished_at=dt(row[14]), rejection=rejection)


def row_step(row: tuple, open_note: OpenNote) -> Step:
    return Step(row[0], row[1], datetime.fromisoformat(row[2]), row[3], open_note(row[4]))


def row_notification(row: tuple, open_note: OpenNote) -> Notification:
    payload = json.loads(row[3])
    if row[10] is not None:  # the note the payload quotes, kept sealed beside it
        payload["note"] = open_note(row[10])
    return Notification(id=row[0], tracking_no=row[1], status=row[2], payload=payload, state=row[4],
                        attempts=row[5], next_at=dt(row[6]), last_error=row[7],
                        created_at=datetime.fromisoformat(row[8]), sent_at=dt(row[9]))


def row_terminal(row: tuple) -> TerminalRecord:
    return TerminalRecord(row[0], dt(row[1]), row[2] is not None, dt(row[3]), row[4] and json.loads(row[4]))


def ticket_data(ticket: Ticket, hall: Hall) -> dict[str, Any]:
    """A ticket as displays and clients see it (no id: ids are the holder's secret)."""
    tz = hall.tz

    def local(value: datetime | None) -> str | None:
        return None if value is None else value.astimezone(tz).isoformat(timespec="seconds")

    svc = hall.services.get(ticket.service)
    return {"number": ticket.label, "service": ticket.service,
            "service_name": svc.name if svc else ticket.service,
            "service_name_en": svc.name_en if svc else ticket.service,
            "priority": ticket.priority, "status": ticket.status, "window": ticket.window,
            "day": ticket.day.isoformat(), "issued_at": local(ticket.issued_at),
            "called_at": local(ticket.called_at), "started_at": local(ticket.started_at),
            "ended_at": local(ticket.ended_at), "recalls": ticket.recalls, "transfers": ticket.transfers}


def application_event_data(app: Application, step: Step) -> dict[str, Any]:
    """What the public event stream and the webhook say of a change: no personal data and
    no staff names."""
    return {"tracking_no": app.tracking_no, "item": app.item, "item_name": app.item_name,
            "department": app.department, "service": app.service, "status": app.status,
            "action": step.action, "rejection_pending": app.rejection is not None,
            "promised_date": app.promised_date.isoformat(), "legal_date": app.legal_date.isoformat()}
