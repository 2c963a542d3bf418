"""申报, done: the tracking number (or, with the server away, the provisional number and
the promise that it will be delivered), the promised date, and the receipt, or a QR code
to photograph when no receipt could be printed, and the one-tap rating where it fits
(widgets.RatingRow). "Done" ends the session (a wipe)."""

from __future__ import annotations

from kivy.app import App
from kivy.properties import BooleanProperty
from kivy.uix.screenmanager import Screen

from kiosq.devices.receipts import printed_code

PRINT_OK = ("print_done", "print_done_near_end")
NO_SLIP_WHY = {"print_paper_out": "ticket_why_paper"}


class ApplyDoneScreen(Screen):
    printed = BooleanProperty(True)

    def on_kv_post(self, _base: object) -> None:
        app = App.get_running_app()
        app.bind(lang=self.refresh)
        app.apply.bind(result=self.refresh)
        self.refresh()

    def refresh(self, *_args: object) -> None:
        app = App.get_running_app()
        msg, result = app.msg, app.apply.result
        if not result:
            return
        self.ids.number.text = result["number"]
        self.ids.promised.text = (
            msg["apply_done_promised"].format(date=result["promised_date"], days=result["promised_days"])
            if result.get("promised_date") else "")
        if result.get("refused"):
            self.ids.offline.text = msg["apply_done_refused"].format(why=result["refused"])
        else:
            self.ids.offline.text = "" if result.get("delivered") else msg["apply_done_offline"]
        self.printed = result.get("print_key") in PRINT_OK
        if self.printed:
            self.ids.receipt.text, self.ids.qr.data = msg["apply_done_receipt"], ""
        else:
            why = msg[NO_SLIP_WHY.get(result.get("print_key", ""), "ticket_why_printer")]
            code = result.get("lookup_code", "")
            self.ids.receipt.text = msg["apply_done_no_receipt"].format(why=why) + (
                "\n" + msg["apply_done_code"].format(code=printed_code(code)) if code else "")
            self.ids.qr.data = result.get("query_url", "")
