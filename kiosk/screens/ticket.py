"""The ticket screen: the hall's queue services with how many wait and the estimated wait
(loaded by the app on a worker thread), or, when the server cannot be reached, a plain
statement that tickets cannot be issued now and why (the guides still work); outside the
hall's opening hours, when tickets start again."""

from __future__ import annotations

from kivy.app import App
from kivy.metrics import dp
from kivy.uix.screenmanager import Screen
from kivy.utils import escape_markup

from kiosq.kiosk.widgets import ServiceButton


def service_text(service: dict, msg: dict[str, str], lang: str, body_dp: float) -> str:
    """Markup for one service button: the name, then the queue in smaller type."""
    name = service.get("name_en" if lang == "en" else "name") or service["code"]
    waiting = int(service.get("waiting") or 0)
    eta = service.get("eta_minutes")
    wait = msg["ticket_eta"].format(m=eta) if waiting and eta is not None else msg["ticket_eta_none"]
    queue = msg["ticket_waiting"].format(n=waiting) + "  ·  " + wait
    return f"{escape_markup(name)}\n[size={int(dp(body_dp))}]{escape_markup(queue)}[/size]"


def why_text(kind: str, detail: str, msg: dict[str, str]) -> str:
    """Why a ticket cannot be had, in plain words."""
    if kind == "refused":
        return msg["ticket_why_refused"].format(detail=detail)
    if kind == "unreachable":
        return msg["ticket_why_unreachable"]
    if kind == "untrusted":
        return msg["ticket_why_untrusted"]
    return msg["ticket_why_failed"].format(detail=detail)


class TicketScreen(Screen):
    """Redraws when the services, their state or the language change."""

    def on_kv_post(self, _base: object) -> None:
        app = App.get_running_app()
        app.bind(lang=self.refresh, elder=self.refresh)
        app.tickets.bind(services=self.refresh, services_state=self.refresh)
        app.fleet.bind(tickets_closed_text=self.refresh)
        self.refresh()

    def service_buttons(self) -> list[ServiceButton]:
        return list(reversed(self.ids.services.children))

    def refresh(self, *_args: object) -> None:
        app = App.get_running_app()
        msg, state = app.msg, app.tickets.services_state
        closed = app.fleet.tickets_closed_text  # outside opening hours: when tickets start again, no services
        if closed and state != "loading":
            state = "closed"
        failed = state == "error"
        self.ids.status.text = {"loading": msg["ticket_loading"], "error": msg["ticket_unavailable"],
                                "closed": msg["hours_closed_title"]}.get(state, msg["ticket_choose"])
        if state == "closed":
            self.ids.why.text = closed + "\n" + msg["hours_others_work"]
        else:
            self.ids.why.text = (why_text(app.tickets.services_error_kind, app.tickets.services_error, msg) + "\n"
                                 + msg["ticket_guides_work"]) if failed else ""
        tickets = app.tickets
        self.ids.detail.text = tickets.services_error if failed and tickets.services_error_kind == "unreachable" else ""
        self.ids.retry_box.height = self.ids.retry_button.height if failed else 0
        self.ids.retry_box.opacity = 1 if failed else 0
        box = self.ids.services
        box.clear_widgets()
        if state != "ready":
            return
        for service in app.tickets.services:
            button = ServiceButton(code=service["code"], text=service_text(service, msg, app.lang, app.body_dp))
            button.bind(on_release=lambda b: App.get_running_app().tickets.choose_service(b.code))
            box.add_widget(button)
        self.ids.scroll.scroll_y = 1
