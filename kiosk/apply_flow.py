"""Filing an application at the kiosk (申报): the item, the ID card read, the form typed,
its problems and the result, in Kivy properties the apply screens bind to
(`app.apply.x`); the outbox that keeps what was filed until the server has it. The rules
of the form are kiosk/filing.py's; the filing runs off the UI thread."""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kivy.clock import mainthread
from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, DictProperty, NumericProperty, StringProperty

from kiosq.content.model import ItemGuide
from kiosq.devices.printer import Printer
from kiosq.kiosk.background import in_background

if TYPE_CHECKING:
    from kiosq.content.model import FormField
    from kiosq.devices.receipts import ApplicationFiled
    from kiosq.kiosk.app import KiosqApp
    from kiosq.kiosk.outbox import Outbox
    from kiosq.kiosk.outbox_sender import Sender

log = logging.getLogger(__name__)

TYPED_FIRST = ("number", "date", "phone", "id_number", "text")  # the field types the form focuses first


class ApplyFlow(EventDispatcher):
    """The item being filed; what was typed or chosen by field name (personal: wiped with
    the session), the field being typed and the pinyin composed for it, what must be fixed;
    whether the identity is typed (no ID card); the filing in flight and its result; the
    outbox's counts of applications waiting for the server and refused by it."""

    item = StringProperty("")
    entered = DictProperty()
    focus = StringProperty("")
    compose = StringProperty("")  # pinyin letters typed for the focused Chinese field
    problems = DictProperty()
    typed = BooleanProperty(False)  # no ID card: the identity is typed into the form
    busy = BooleanProperty(False)
    error = StringProperty("")
    result = DictProperty()
    outbox_waiting = NumericProperty(0)
    outbox_refused = NumericProperty(0)
    outbox_problem = StringProperty("")  # why the outbox cannot be opened (its key is lost): no filing here

    def __init__(self, app: KiosqApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.card: dict[str, str] | None = None  # the card read for this session's application
        self.outbox: Outbox | None = None  # with a hall server (start_outbox)
        self.sender: Sender | None = None

    # --- the outbox

    def start_outbox(self, folder: Path) -> None:
        """Open the outbox in `folder` and its sender to the hall server."""
        from kiosq.kiosk.outbox import Outbox, OutboxError
        from kiosq.kiosk.outbox_sender import Sender

        assert self.app.server is not None
        try:
            self.outbox = Outbox(folder, self.app.kiosk_config.terminal_id)
        except OutboxError as exc:  # its key is lost: no filing until IT restores it, the rest of the kiosk runs
            log.error("the outbox cannot be opened, filing is off: %s", exc)
            self.outbox_problem = str(exc)
            self.app.fleet.note_error(f"outbox: {exc}")
            return
        self.sender = Sender(self.outbox, self.app.server, lambda *_: self.outbox_changed(),  # runs at once
                             on_refused=lambda *_: self.outbox_changed())
        self.outbox_changed()

    def stop_outbox(self) -> None:
        if self.sender is not None:
            self.sender.stop()

    def outbox_changed(self) -> None:
        """Count again (from any thread: the sender calls it from its own)."""
        if self.outbox is not None:
            self._set_outbox_counts(self.outbox.pending_count(), self.outbox.refused_count())

    @mainthread
    def _set_outbox_counts(self, waiting: int, refused: int) -> None:
        self.outbox_waiting, self.outbox_refused = waiting, refused

    # --- the item and the card

    def open(self) -> None:
        from kiosq.kiosk.pinyin_input import warm_up

        if self.outbox_problem:
            return  # the tile says filing is paused
        warm_up()  # the pinyin index (0.5 s) built while the citizen chooses and places the card
        self.app.show("apply")

    def start(self, code: str) -> None:
        """File this item: ask for the ID card (one on the reader already is used at once)."""
        from kiosq.kiosk.filing import fileable_here

        app = self.app
        if (app.server is None or self.outbox_problem or app.guides is None
                or not fileable_here(app.guides.item(code))):
            return
        self.item, self.card, self.typed = code, None, False
        self.entered, self.problems, self.focus, self.compose = {}, {}, "", ""
        self.error, self.result = "", {}
        app.card_state = "waiting" if app.cards is not None else "no_reader"
        app.show("apply_card")
        present = app.cards.present() if app.cards is not None else None
        if present:
            self.card_read(present)

    def card_read(self, card: dict[str, str]) -> None:
        """A card read on the card screen: the form, with what the card says filled in."""
        from kiosq.kiosk.filing import prefill

        self.card, self.app.card_state, self.typed = card, "read", False
        self.entered, self.compose = prefill(self._item(), card), ""
        self.focus, self.problems = self._first_to_type(), {}
        self._to_form()

    def without_card(self) -> None:
        """No ID card: the same form, with the name and ID number typed (source "typed")."""
        if not self.item:
            return
        self.card, self.typed = None, True
        self.entered, self.problems, self.compose = {}, {}, ""
        self.focus = self._first_to_type()
        self._to_form()

    def _to_form(self) -> None:
        self.app.history = [h for h in self.app.history if h != "apply_card"]
        self.app.show("apply_form")

    def _item(self) -> ItemGuide:
        assert self.app.guides is not None  # loaded in build(), before any screen shows
        return self.app.guides.item(self.item)

    def _first_to_type(self) -> str:
        from kiosq.kiosk.filing import kiosk_fields

        return next((f.name for f in kiosk_fields(self._item()) if f.type in TYPED_FIRST
                     and not self.entered.get(f.name)), "")

    # --- the form

    def focus_field(self, name: str) -> None:
        self.focus, self.compose = name, ""

    def _focused(self) -> FormField | None:
        from kiosq.kiosk.filing import kiosk_fields

        return next((f for f in kiosk_fields(self._item()) if f.name == self.focus), None)

    def key(self, key: str) -> None:
        """A key on the form's keyboard: into the focused field, or (a Chinese field) into
        the pinyin being composed; a space takes the first character offered."""
        from kiosq.kiosk.filing import key_into, uses_pinyin

        field = self._focused()
        if field is None or (field.prefill is not None and self.card is not None):
            return  # what the card says is not typed over
        text = str(self.entered.get(field.name) or "")
        if uses_pinyin(field) and self._compose_key(field, text, key):
            return
        self.set(field.name, key_into(field, text, key))

    def _compose_key(self, field: FormField, text: str, key: str) -> bool:
        """A key for a Chinese field's pinyin; whether it was taken (not typed into the field)."""
        if key.isalpha() and len(key) == 1:
            self.compose = (self.compose + key.lower())[:6]
            return True
        if self.compose and key == "space":
            from kiosq.kiosk.pinyin_input import candidates

            found = candidates(self.compose, surname=field.prefill == "name" and not text)
            if found:
                self.pick(found[0])
            return True
        if self.compose and key in ("backspace", "clear"):
            self.compose = self.compose[:-1] if key == "backspace" else ""
            return True  # the pinyin being composed is what a backspace or clear takes back
        return key == "space"

    def pick(self, char: str) -> None:
        """A character chosen for the composed pinyin."""
        field = self._focused()
        if field is None:
            return
        text = str(self.entered.get(field.name) or "")
        limit = field.max_length or 60
        self.compose = ""
        if len(text) < limit:
            self.set(field.name, text + char)

    def set(self, name: str, value: object) -> None:
        """A value typed, a choice chosen or a box ticked: its problem goes with the old value."""
        self.entered = {**self.entered, name: value}
        self.problems = {k: v for k, v in self.problems.items() if k != name}

    def next(self) -> None:
        from kiosq.kiosk.filing import problems

        found = problems(self._item(), dict(self.entered))
        self.problems = found
        if not found:
            self.error = ""
            self.app.show("apply_review")

    # --- filing

    def submit(self) -> None:
        """Into the outbox and on to the server (a worker), then the receipt."""
        from kiosq.kiosk.filing import applicant, values_for_server

        app = self.app
        if self.busy or (self.card is None and not self.typed) or self.outbox is None or self.sender is None:
            return
        item = self._item()
        person = applicant(item, self.card, dict(self.entered))
        values = values_for_server(item, dict(self.entered))
        self.busy, self.error = True, ""
        job = Filing(self.outbox, self.sender, app.printer, item, person, values, app.hall_name(), app.lang,
                     app.kiosk_config.server_url)
        in_background(job.run, self._filed, f"apply-{item.code}")

    def _filed(self, result: dict[str, Any]) -> None:
        self.busy = False
        self.outbox_changed()
        if not self.item:
            return  # wiped meanwhile
        if result.get("error"):
            self.error = self.app.msg["apply_failed"].format(why=result["error"])
            return
        self.result = result
        self.app.history = []
        self.app.show("apply_done", remember=False)

    def in_session(self) -> bool:
        return bool(self.card is not None or self.entered or self.item)

    def forget(self) -> None:
        """The card read, the form's answers and the result: gone."""
        self.card, self.typed = None, False
        self.item = self.error = self.focus = self.compose = ""
        self.entered, self.problems, self.result = {}, {}, {}


class Filing:
    """One application to file, run on a worker: into the outbox and to the server
    (waiting a few seconds for its answer), then the receipt."""

    def __init__(self, outbox: Outbox, sender: Sender, printer: Printer | None, item: ItemGuide,
                 person: dict[str, Any], values: dict[str, Any], hall: str, lang: str,
                 server_url: str | None) -> None:
        self.outbox, self.sender, self.printer, self.item = outbox, sender, printer, item
        self.person, self.values, self.hall, self.lang, self.server_url = person, values, hall, lang, server_url

    def run(self) -> dict[str, Any]:
        """What the done screen shows; no personal data. Never raises."""
        from kiosq.kiosk.outbox_sender import submit

        item = self.item
        try:
            submitted = submit(self.outbox, self.sender, item.code, self.person, self.values)
        except Exception as exc:  # the outbox could not keep it: the citizen is told, nothing is lost silently
            log.error("application for %s not kept: %s", item.code, type(exc).__name__)
            return {"error": type(exc).__name__}
        filed = submitted.filed or {}
        number = filed.get("tracking_no") or submitted.provisional_no
        refused = submitted.refused.detail or submitted.refused.code if submitted.refused else ""
        promised = filed.get("promised_date")
        receipt = self._receipt(number, promised, submitted.lookup_code)
        key = self._print_receipt(receipt)
        # The code is in the result only while this session lasts (ApplyFlow.forget wipes it):
        # the done screen's QR when no receipt could be printed.
        return {"number": number, "delivered": bool(filed), "provisional_no": submitted.provisional_no,
                "promised_date": promised or "", "promised_days": item.promised_days, "print_key": key,
                "query_url": receipt.query_url, "lookup_code": receipt.lookup_code or "", "refused": refused}

    def _receipt(self, number: str, promised: str | None, code: str | None) -> ApplicationFiled:
        """What the receipt shows. Without a code (filed while the server was away) it has
        no QR and sends the citizen to a kiosk's ID-card lookup."""
        from kiosq.devices.receipts import ApplicationFiled

        item, lang = self.item, self.lang
        return ApplicationFiled(hall=self.hall, tracking_no=number, item=item.name if lang == "zh" else item.name_en,
                                id_number=self.person["id_number"], filed_at=datetime.now(),
                                promised_date=date.fromisoformat(promised) if promised else None,
                                server_url=self.server_url or "", lookup_code=code, applicant=self.person["name"])

    def _print_receipt(self, receipt: ApplicationFiled) -> str:
        """The receipt's printing; its message key."""
        from kiosq.devices.receipts import application_receipt
        from kiosq.kiosk.printing import print_bytes

        printer, lang = self.printer, self.lang
        if printer is None:
            return "print_missing"
        return print_bytes(printer, lambda p: application_receipt(receipt, p.paper, lang=lang),
                           f"receipt for {self.item.code}", private=True)
