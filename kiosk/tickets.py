"""Taking a queue ticket, apart from the screens: loading the services a terminal offers,
issuing a ticket and printing its slip. Each function blocks (HTTP, the printer): the
ticket flow (kiosk/ticket_flow.py) runs them through kiosk.background.in_background."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kiosq.devices.printer import Printer
from kiosq.devices.receipts import QueueTicket, ticket_slip
from kiosq.kiosk.hall_client import (
    Hall,
    HallClient,
    ServerError,
    ServerRefused,
    ServerUnreachable,
    ServerUntrusted,
    Ticket,
)
from kiosq.kiosk.printing import print_bytes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """What the ticket screen lists: the hall, its services, and for each service the
    windows that serve it (for "where to wait"); `error` when the server could not say."""

    hall: Hall = field(default_factory=lambda: Hall())
    services: list[dict[str, Any]] = field(default_factory=list)
    windows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    error: str = ""
    kind: str = ""  # of the error: see failure_kind()


@dataclass(frozen=True)
class Issued:
    """The outcome of a confirm: the ticket (None: not issued, `error` says why) and the
    message key of the slip's printing."""

    ticket: Ticket | None
    print_key: str = ""
    error: str = ""
    kind: str = ""  # of the error: see failure_kind()

    @property
    def printed(self) -> bool:
        return self.print_key in ("print_done", "print_done_near_end")


def failure_kind(exc: Exception) -> str:
    """"untrusted" (an https server the pinned hall CA did not certify: nothing was sent),
    "unreachable" (no answer), "refused" (a 4xx: the server said no) or "failed"."""
    if isinstance(exc, ServerUntrusted):
        return "untrusted"
    if isinstance(exc, ServerUnreachable):
        return "unreachable"
    return "refused" if isinstance(exc, ServerRefused) else "failed"


def load_services(client: HallClient) -> Services:
    """The hall's name, its services with waiting counts and estimated waits, and the
    windows serving each. Never raises: an unreachable server is `Services(error=...)`."""
    try:
        services = client.services()
        hall = client.hall()
    except Exception as exc:  # also a malformed answer: it must not take the kiosk down
        if not isinstance(exc, ServerError):
            log.exception("loading the services failed")
        return Services(error=str(exc) or type(exc).__name__, kind=failure_kind(exc))
    windows: dict[str, list[dict[str, Any]]] = {}
    try:
        for win in client.windows():
            for code in win.get("services", []):
                windows.setdefault(code, []).append(win)
    except Exception as exc:  # noqa: BLE001  where to wait is a nicety: the tickets still work without it
        log.warning("the windows could not be loaded: %s", exc)
    return Services(hall=hall, services=list(services), windows=windows)


def slip_ticket(ticket: Ticket, hall: str, service_name: str) -> QueueTicket:
    """What the slip shows, from the server's answer."""
    issued = ticket.get("issued_at")
    return QueueTicket(hall=hall, number=ticket["number"], service=service_name,
                       ahead=int(ticket.get("ahead") or 0), eta_minutes=ticket.get("eta_minutes"),
                       issued_at=datetime.fromisoformat(issued) if issued else datetime.now().astimezone(),
                       follow_url=ticket.get("follow_url", ""))


def issue_and_print(client: HallClient, printer: Printer | None, service: dict[str, Any], key: str,
                    hall: str, lang: str) -> Issued:
    """POST the ticket with `key` (the same key on a retry: never a second ticket), then
    print its slip. A printer fault leaves the ticket issued. Never raises."""
    try:
        ticket = client.take_ticket(service["code"], key)
    except Exception as exc:
        if not isinstance(exc, ServerError):
            log.exception("taking a ticket failed")
        return Issued(None, error=str(exc) or type(exc).__name__, kind=failure_kind(exc))
    name = service.get("name_en" if lang == "en" else "name") or service["code"]
    key_ = print_bytes(printer, lambda p: ticket_slip(slip_ticket(ticket, hall, name), p.paper, lang=lang),
                       f"ticket slip {ticket.get('number')}", private=True)
    return Issued(ticket, print_key=key_)

