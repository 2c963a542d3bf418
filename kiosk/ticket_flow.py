"""Taking a queue ticket at the kiosk (取号): the services listed, the one chosen, the
confirm in flight and the ticket issued, in Kivy properties the ticket screens bind to
(`app.tickets.x`). The blocking work is kiosk/tickets.py's, run off the UI thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, DictProperty, ListProperty, ObjectProperty, StringProperty

from kiosq.kiosk.background import in_background
from kiosq.kiosk.hall_client import new_key
from kiosq.kiosk.tickets import Issued, Services, issue_and_print, load_services

if TYPE_CHECKING:
    from kiosq.kiosk.app import KiosqApp


class TicketFlow(EventDispatcher):
    """The services ("loading", "ready" or "error" with its kind and detail), the hall as
    /api/health tells it, the service chosen, the confirm in flight (`busy`, its `error`),
    the ticket issued with its slip's message key, and the windows serving each service."""

    services_state = StringProperty("")
    services = ListProperty()
    services_error = StringProperty("")
    services_error_kind = StringProperty("")
    hall = DictProperty()
    service = DictProperty()
    busy = BooleanProperty(False)
    error = StringProperty("")
    error_kind = StringProperty("")
    ticket = DictProperty()
    print_key = StringProperty("")
    windows = ObjectProperty({})

    def __init__(self, app: KiosqApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.key: str | None = None  # the Idempotency-Key of the confirm in progress
        self._preselect = ""  # the service to confirm once the services load (a ticket from a guide)

    def open(self) -> None:
        """The ticket screen, its services (re)loaded on a worker thread."""
        self.app.show("ticket")
        self.load_services()

    def for_item(self, service_code: str) -> None:
        """A ticket for a guide's queue service: the confirm screen once the services have
        loaded (the list of services if the hall does not have that one now)."""
        self._preselect = service_code
        self.open()

    def load_services(self) -> None:
        server = self.app.server
        if server is None or self.services_state == "loading":
            return
        self.services_state, self.services_error, self.services_error_kind = "loading", "", ""
        in_background(lambda: load_services(server), self._services_loaded, "load-services")

    def _services_loaded(self, loaded: Services) -> None:
        self.windows = loaded.windows
        self.hall = loaded.hall
        self.services = loaded.services
        self.services_error, self.services_error_kind = loaded.error, loaded.kind
        self.services_state = "error" if loaded.error else "ready"
        if "open" in loaded.hall:  # /api/health carries the opening hours
            self.app.fleet.set_hours({k: loaded.hall.get(k) for k in ("open", "opens_at", "closes_at")})
        self._confirm_preselected()

    def _confirm_preselected(self) -> None:
        code, self._preselect = self._preselect, ""
        if code and self.services_state == "ready" and self.app.manager.current == "ticket":
            self.choose_service(code)

    def choose_service(self, code: str) -> None:
        """Confirm a ticket for this service next; a new service is a new confirm."""
        service = next((s for s in self.services if s["code"] == code), None)
        if service is None or self.busy:
            return
        if self.service.get("code") != code:
            self.key = None
        self.service = service
        self.error = self.error_kind = ""
        self.app.show("ticket_confirm")

    def confirm(self) -> None:
        """Take the ticket on a worker thread, then print its slip there. The key is made
        once per confirm and reused when the citizen retries after a failure."""
        app = self.app
        if app.server is None or self.busy or not self.service:
            return
        if self.key is None:
            self.key = new_key()
        self.busy, self.error, self.error_kind = True, "", ""
        server, printer, service, key, lang = app.server, app.printer, dict(self.service), self.key, app.lang
        hall = app.hall_name()
        in_background(lambda: issue_and_print(server, printer, service, key, hall, lang),
                      lambda issued: self._issued(key, issued), f"ticket-{service['code']}")

    def _issued(self, key: str, issued: Issued) -> None:
        self.busy = False
        if key != self.key:
            return  # the session was wiped meanwhile: this result is no one's to see
        if issued.ticket is None:
            self.error, self.error_kind = issued.error, issued.kind
            self.app.fleet.note_error(f"ticket: {issued.kind}")
            return  # the key stays: a retry asks for the same ticket
        self.key = None
        self.ticket, self.print_key = issued.ticket, issued.print_key
        self.app.history = []
        self.app.show("ticket_done", remember=False)

    def forget(self) -> None:
        """The session's end: the service chosen, the confirm and the ticket are gone (the
        services listed stay: they are the hall's, not the citizen's)."""
        self.key = None
        self.service, self.ticket, self.print_key = {}, {}, ""
        self.error = self.error_kind = ""
        self._preselect = ""
