"""The confirm screen: the chosen service and its queue, one big button that takes the
ticket (on a worker thread), and, if that failed, why and that trying again is safe."""

from __future__ import annotations

from kivy.app import App
from kivy.uix.screenmanager import Screen

from kiosq.kiosk.screens.ticket import why_text


class TicketConfirmScreen(Screen):
    def on_kv_post(self, _base: object) -> None:
        app = App.get_running_app()
        app.bind(lang=self.refresh)
        app.tickets.bind(service=self.refresh, busy=self.refresh, error=self.refresh)
        self.refresh()

    def refresh(self, *_args: object) -> None:
        app = App.get_running_app()
        msg, service = app.msg, app.tickets.service
        if not service:
            return
        self.ids.service_name.text = service.get("name_en" if app.lang == "en" else "name") or service["code"]
        waiting, eta = int(service.get("waiting") or 0), service.get("eta_minutes")
        self.ids.queue.text = (msg["ticket_confirm_queue"].format(n=waiting, m=eta) if waiting and eta is not None
                               else msg["ticket_waiting"].format(n=waiting))
        if app.tickets.busy:
            self.ids.status.text = msg["ticket_issuing"]
        elif app.tickets.error:
            why = why_text(app.tickets.error_kind, app.tickets.error, msg)
            self.ids.status.text = f"{msg['ticket_not_issued']} {why}\n{msg['ticket_try_again']}"
        else:
            self.ids.status.text = ""
