"""The issued ticket: the number very large, the service, who is ahead and the wait, where
to wait, and whether the slip was printed (if not, the follow link as a QR code to
photograph and as text, since the ticket is issued all the same), and the one-tap rating
where it fits (widgets.RatingRow). Goes home by itself after `ticket_done_seconds`."""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.properties import BooleanProperty, NumericProperty
from kivy.uix.screenmanager import Screen

PRINT_OK = ("print_done", "print_done_near_end")
NO_SLIP_WHY = {"print_paper_out": "ticket_why_paper"}


class TicketDoneScreen(Screen):
    printed = BooleanProperty(True)
    left = NumericProperty(0)  # seconds before home

    def on_kv_post(self, _base: object) -> None:
        app = App.get_running_app()
        app.bind(lang=self.refresh)
        app.tickets.bind(ticket=self.refresh, print_key=self.refresh)
        self._tick = None
        self.refresh()

    def on_enter(self, *_args: object) -> None:
        self.left = App.get_running_app().kiosk_config.ticket_done_seconds
        self._stop()
        self._tick = Clock.schedule_interval(self._count, 1.0)
        self.refresh()

    def on_leave(self, *_args: object) -> None:
        self._stop()

    def on_left(self, *_args: object) -> None:
        self.refresh()

    def _stop(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None

    def _count(self, _dt: float) -> None:
        self.left -= 1
        if self.left <= 0:
            self._stop()
            App.get_running_app().go_home()

    def refresh(self, *_args: object) -> None:
        app = App.get_running_app()
        msg, ticket = app.msg, app.tickets.ticket
        if not ticket:
            return
        code = ticket.get("service", "")
        service: dict[str, Any] = next((s for s in app.tickets.services if s.get("code") == code), {})
        names = ("name_en", "service_name_en") if app.lang == "en" else ("name", "service_name")
        self.ids.number.text = ticket.get("number", "")
        self.ids.service_name.text = service.get(names[0]) or ticket.get(names[1]) or code
        ahead, eta = int(ticket.get("ahead") or 0), ticket.get("eta_minutes")
        if not ahead:
            self.ids.ahead.text = msg["ticket_next"]
        elif eta is not None:
            self.ids.ahead.text = msg["ticket_ahead"].format(n=ahead, m=eta)
        else:
            self.ids.ahead.text = msg["ticket_ahead_no_eta"].format(n=ahead)
        windows = app.tickets.windows.get(code, []) if app.tickets.windows else []
        where = msg["ticket_where"]
        if windows:
            sep = "、" if app.lang == "zh" else ", "
            where += "\n" + msg["ticket_windows"].format(
                windows=sep.join(w.get(names[0]) or str(w.get("number")) for w in windows))
        self.ids.where.text = where
        self.printed = app.tickets.print_key in PRINT_OK
        if self.printed:
            self.ids.slip.text = msg["ticket_slip_printed"]
            self.ids.follow_url.text = self.ids.qr.data = ""
        else:
            why = msg[NO_SLIP_WHY.get(app.tickets.print_key, "ticket_why_printer")]
            self.ids.slip.text = msg["ticket_no_slip"].format(why=why)
            self.ids.follow_url.text = self.ids.qr.data = ticket.get("follow_url", "")
        self.ids.countdown.text = msg["ticket_done_home"].format(n=max(0, int(self.left)))
