"""The self-service kiosk: a Kivy app with one screen manager, screens loaded on first
use (kiosk/screens/NAME.kv + NAME.py), app state in Kivy properties, every string from
kiosk/messages/, printing on worker threads, and a privacy wipe after inactivity.

    python -m kiosq.kiosk.app --printer serial:/dev/ttyUSB0 --idle 60
"""

from __future__ import annotations

from kiosq.kiosk.boot import CJK_FONT, apply_kiosk_settings, prepare_environment

prepare_environment()  # before Kivy reads its environment on import

import argparse
import importlib
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

from kiosq.devices.printer import Printer
from kiosq.devices.receipts import PAPER_58, PAPER_80
from kiosq.kiosk.settings import KioskConfig, catalog_path
from kiosq.kiosk.guides import Guides
from kiosq.kiosk.maintenance import CornerTaps, PinGuard
from kiosq.kiosk.messages import messages
from kiosq.kiosk.hall_client import HallClient, new_key
from kiosq.kiosk.speech import Speaker
from kivy.app import App
from kivy.clock import Clock, mainthread
from kivy.core.text import DEFAULT_FONT, LabelBase
from kivy.lang import Builder
from kivy.properties import (
    BooleanProperty,
    DictProperty,
    ListProperty,
    NumericProperty,
    ObjectProperty,
    StringProperty,
)
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager

HERE = Path(__file__).parent
SCREENS = {"home": "HomeScreen", "guide": "GuideScreen", "detail": "DetailScreen",
           "ticket": "TicketScreen", "ticket_confirm": "TicketConfirmScreen", "ticket_done": "TicketDoneScreen",
           "maintenance_pin": "MaintenancePinScreen", "maintenance": "MaintenanceScreen",
           "apply": "ApplyScreen", "apply_card": "ApplyCardScreen", "apply_form": "ApplyFormScreen",
           "apply_review": "ApplyReviewScreen", "apply_done": "ApplyDoneScreen",
           "progress": "ProgressScreen", "progress_result": "ProgressResultScreen"}
CARD_SCREENS = ("apply_card", "progress")  # where a card placed on the reader is read
SIZES = {False: {"body_dp": 22, "title_dp": 32, "target_dp": 64},
         True: {"body_dp": 30, "title_dp": 40, "target_dp": 90}}  # 长辈模式: text ≥ 30 dp, targets ≥ 90 dp
PRINT_OK = ("print_done", "print_done_near_end", "print_a4_done")


def load_kv(path: Path) -> None:
    """Load a .kv file once per process: loading it again (a second app, as in the tests)
    would add its rules twice, and every widget it styles would get its children twice."""
    Builder.unload_file(str(path))
    Builder.load_file(str(path))


class KiosqApp(App):
    """The kiosk. `kiosk=True` (run_kiosk) also hooks Escape; tests leave it False."""

    lang = StringProperty("zh")
    elder = BooleanProperty(False)
    speech_on = BooleanProperty(True)  # spoken prompts, in 长辈模式 only; the citizen may switch them off
    msg = DictProperty()
    body_dp = NumericProperty(SIZES[False]["body_dp"])
    title_dp = NumericProperty(SIZES[False]["title_dp"])
    target_dp = NumericProperty(SIZES[False]["target_dp"])
    # the session: what a wipe clears
    history = ListProperty()
    query = StringProperty("")
    department = StringProperty("")
    category = StringProperty("")
    item_code = StringProperty("")
    printing = BooleanProperty(False)
    print_message = StringProperty("")
    print_failed = BooleanProperty(False)
    # taking a ticket: the services listed ("loading", "ready" or "error" with its kind and
    # detail), the service chosen, the confirm in flight, the ticket issued and its slip
    services_state = StringProperty("")
    services = ListProperty()
    services_error = StringProperty("")
    services_error_kind = StringProperty("")
    hall = DictProperty()
    service = DictProperty()
    ticket_busy = BooleanProperty(False)
    ticket_error = StringProperty("")
    ticket_error_kind = StringProperty("")
    ticket = DictProperty()
    ticket_print_key = StringProperty("")
    ticket_windows = ObjectProperty({})
    # the status bar: the time, the printer (kiosk.status.PRINTER_STATES; "" until the first
    # check) and the server ("" when none is configured or before the first check)
    clock_text = StringProperty("")
    printer_state = StringProperty("")
    server_state = StringProperty("")
    # maintenance: the PIN being typed and what the keypad says, the test print's outcome
    # and the last slip's preview (a PNG path; "" when this kiosk has printed nothing yet)
    pin_entry = StringProperty("")
    pin_message = StringProperty("")
    test_printing = BooleanProperty(False)
    test_print_message = StringProperty("")
    last_slip_png = StringProperty("")
    # filing an application: the item, the card reader's state ("waiting", "read",
    # "unreadable", "lost", "no_reader"), what was typed or chosen by field name (personal:
    # wiped with the session), the field being typed, what must be fixed, and the result
    apply_item = StringProperty("")
    card_state = StringProperty("")
    form_entered = DictProperty()
    form_focus = StringProperty("")
    form_compose = StringProperty("")  # pinyin letters typed for the focused Chinese field
    form_problems = DictProperty()
    apply_typed = BooleanProperty(False)  # no ID card: the identity is typed into the form
    apply_busy = BooleanProperty(False)
    apply_error = StringProperty("")
    apply_result = DictProperty()
    outbox_waiting = NumericProperty(0)
    outbox_refused = NumericProperty(0)
    # progress lookups: the two typed inputs, which is being typed, the answer
    progress_number = StringProperty("")
    progress_last4 = StringProperty("")
    progress_focus = StringProperty("number")
    progress_busy = BooleanProperty(False)
    progress_message = StringProperty("")
    progress_results = ListProperty()
    # the fleet (kiosk/heartbeat.py, kiosk/updater.py): the hall's opening hours as the server
    # last told them ({open, opens_at, closes_at}; {} unknown: open), what the 取号 tile and
    # the ticket screen say while tickets are not issued ("" while they are), and the version
    # of the catalog shown
    hours = DictProperty()
    tickets_closed_text = StringProperty("")
    content_version = StringProperty("")

    def __init__(self, config: KioskConfig | None = None, *, kiosk: bool = False, speaker: Speaker | None = None,
                 **kwargs: object) -> None:
        self.kiosk_config = config or KioskConfig()
        self.kiosk = kiosk
        super().__init__(**kwargs)
        self.speaker = speaker or Speaker()
        self.speech_on = self.kiosk_config.speech and self.speaker.available
        self.lang, self.elder = self.kiosk_config.lang, self.kiosk_config.elder
        self.msg = messages(self.lang)
        self.on_elder(self, self.elder)
        self.guides: Guides | None = None
        paper = PAPER_80 if self.kiosk_config.paper_mm == 80 else PAPER_58
        self.printer = Printer(self.kiosk_config.printer_uri, paper=paper) if self.kiosk_config.printer_uri else None
        self.server = (HallClient(self.kiosk_config.server_url, self.kiosk_config.terminal_token)
                       if self.kiosk_config.server_url else None)
        self.ticket_key: str | None = None  # the Idempotency-Key of the confirm in progress
        self._preselect = ""  # the service to confirm once the services load (a ticket from a guide)
        self.idle = None
        self.prompt = None
        self.monitor = None
        self.corner_taps = CornerTaps()
        self._last_corner_touch: object = None
        self.pin_guard = PinGuard(self.kiosk_config.maintenance_pin_hash)
        self._preview_dir = tempfile.mkdtemp(prefix="kiosq-slip-preview-")
        self._preview_count = 0
        self._card: dict[str, str] | None = None  # the card read for this session's application
        self.cards = None  # kiosk.cards.CardWatcher, with a card reader
        self.outbox = None  # kiosk.outbox.Outbox and its Sender, with a hall server
        self.sender = None
        self.heartbeat = None  # kiosk.heartbeat.Heartbeat and kiosk.updater.Updater, with a server and token
        self.updater = None
        self._started_at = time.monotonic()
        self._content_sha256: str | None = None
        self._pending_catalog: Path | None = None  # installed while a citizen was mid-session
        self._not_enrolled = False  # the server refused this terminal's token (revoked, or unknown)
        self._reader_state = "unknown" if self.kiosk_config.card_reader_uri else "none"
        self._last_error: str | None = None

    # --- Kivy life cycle

    def build(self) -> BoxLayout:
        LabelBase.register(DEFAULT_FONT, str(CJK_FONT))
        from kiosq.kiosk import widgets  # noqa: F401  (registers the classes widgets.kv styles)
        from kiosq.kiosk.idle import IdleWatcher
        from kivy.core.window import Window

        Window.clearcolor = (0.95, 0.96, 0.98, 1)
        self.title = self.msg["app_title"]
        self.guides = Guides(catalog_path(self.kiosk_config))
        self._catalog_shown(self.guides.path)
        load_kv(HERE / "widgets.kv")
        self.idle = IdleWatcher(self.kiosk_config.idle_timeout, self.kiosk_config.idle_countdown,
                                in_session=self.in_session, show=self._show_prompt,
                                hide=self._hide_prompt, expire=self.end_session)
        from kiosq.kiosk.widgets import StatusBar

        self.manager = ScreenManager(transition=NoTransition())
        self.show("home", remember=False)
        root = BoxLayout(orientation="vertical")
        self.status_bar = StatusBar()
        root.add_widget(self.status_bar)
        root.add_widget(self.manager)
        return root

    def on_start(self) -> None:
        from kiosq.kiosk.status import StatusMonitor
        from kivy.core.window import Window

        Window.bind(on_touch_down=self._on_any_touch)
        if self.kiosk:
            Window.bind(on_keyboard=self._swallow_escape)
        self._tick()
        Clock.schedule_interval(self._tick, 1.0)
        self.monitor = StatusMonitor(self.printer, self.server, self.kiosk_config.status_interval,
                                     self._status_checked).start()
        if self.kiosk_config.card_reader_uri:
            from kiosq.kiosk.cards import CardWatcher

            self.cards = CardWatcher(self.kiosk_config.card_reader_uri, self._card_event).start()
        if self.server is not None:
            from kiosq.kiosk.outbox import Outbox, Sender

            folder = Path(self.kiosk_config.data_dir or self._fallback_data_dir())
            self.outbox = Outbox(folder, self.kiosk_config.terminal_id)
            self.sender = Sender(self.outbox, self.server, lambda *_: self._outbox_changed(),  # runs at once
                                 on_refused=lambda *_: self._outbox_changed())
            self._outbox_changed()
        self._start_fleet()

    def on_stop(self) -> None:
        from kivy.core.window import Window

        Window.unbind(on_touch_down=self._on_any_touch)
        Window.unbind(on_keyboard=self._swallow_escape)
        Clock.unschedule(self._tick)
        if self.monitor is not None:
            self.monitor.stop()
        if self.cards is not None:
            self.cards.stop()
        if self.sender is not None:
            self.sender.stop()
        self._stop_fleet()
        if self.idle is not None:
            self.idle.stop()
        if self.guides is not None:
            self.guides.close()
        if self.printer is not None:
            self.printer.close()
        if self.server is not None:
            self.server.close()
        self.speaker.close()

    # --- preferences

    def on_lang(self, _app: object, lang: str) -> None:
        self.msg = messages(lang)

    def on_elder(self, _app: object, elder: bool) -> None:
        for name, value in SIZES[bool(elder)].items():
            setattr(self, name, value)

    def toggle_language(self) -> None:
        self.lang = "en" if self.lang == "zh" else "zh"
        self.speak_screen()

    def toggle_elder(self) -> None:
        self.elder = not self.elder
        if self.elder:
            self.speak_screen()
        else:
            self.speaker.stop()

    def toggle_speech(self) -> None:
        self.speech_on = not self.speech_on and self.speaker.available
        if self.speech_on:
            self.speak_screen()
        else:
            self.speaker.stop()

    # --- spoken prompts (长辈模式)

    def spoken_prompt(self, name: str) -> str:
        """What the screen says when it opens: its own words (an item's or a service's
        name, a ticket number), never anything a citizen typed or a card held."""
        from kiosq.kiosk.speech import spell_number

        template = self.msg.get(f"say_{name}", "")
        if not template:
            return ""
        en = self.lang == "en"
        if name == "detail" and self.item_code and self.guides is not None:
            item = self.guides.item(self.item_code)
            return template.format(name=item.name_en if en else item.name)
        if name == "ticket_confirm":
            return template.format(name=self.service.get("name_en" if en else "name", ""))
        if name == "ticket_done":
            return template.format(number=spell_number(self.ticket.get("number", ""), self.lang))
        if name == "apply_card" and self.card_state == "no_reader":
            return self.msg["apply_card_no_reader"]
        return template

    def speak_screen(self, name: str | None = None) -> None:
        """Say the current screen's prompt, in 长辈模式 with speech on."""
        if self.elder and self.speech_on:
            self.speaker.say(self.spoken_prompt(name or self.manager.current), self.lang)

    # --- screens

    def screen(self, name: str) -> Screen:
        """The screen, loading its .kv and class on first use."""
        if not self.manager.has_screen(name):
            module = importlib.import_module(f"kiosq.kiosk.screens.{name}")
            load_kv(HERE / "screens" / f"{name}.kv")
            self.manager.add_widget(getattr(module, SCREENS[name])(name=name))
        return self.manager.get_screen(name)

    def show(self, name: str, *, remember: bool = True) -> None:
        if remember and self.manager.current:
            self.history.append(self.manager.current)
        self.screen(name)
        self.manager.current = name
        self.speak_screen(name)

    def back(self) -> None:
        self.show(self.history.pop() if self.history else "home", remember=False)

    def go_home(self) -> None:
        """Home: the flow in progress is given up, and what a citizen gave to an application
        or a lookup (the card, the answers, the results) is forgotten at once."""
        self.history = []
        self._forget_application()
        self.show("home", remember=False)
        self._swap_pending_catalog()  # a bundle that came during the session: its end is the moment

    # --- guides

    def choose(self, department: str, category: str) -> None:
        """Browse a department (category ""), or one of its categories; ends a search."""
        self.query = ""
        self.department, self.category = department, category

    def open_item(self, code: str) -> None:
        self.item_code = code
        self.print_message, self.print_failed = "", False
        self.show("detail")

    def print_item(self) -> None:
        """Print the open item's guide slip on a worker thread; never blocks the UI."""
        from kiosq.kiosk.printing import print_in_background

        if self.printing or not self.item_code:
            return
        self.printing, self.print_failed = True, False
        self.print_message = self.msg["printing"]
        print_in_background(self.printer, self.guides.item(self.item_code), self.lang, self._show_printed)

    def print_item_a4(self) -> None:
        """Print the open item's guide on the A4 printer, on a worker thread."""
        from kiosq.kiosk.printing import print_a4_guide

        if self.printing or not self.item_code or not self.kiosk_config.a4_printer_uri:
            return
        self.printing, self.print_failed = True, False
        self.print_message = self.msg["printing"]
        uri, item, lang = self.kiosk_config.a4_printer_uri, self.guides.item(self.item_code), self.lang
        hall = self.hall.get("hall") or self.msg["app_title"]
        threading.Thread(target=lambda: self._show_printed(print_a4_guide(uri, item, lang, hall)),
                         name=f"print-a4-{item.code}", daemon=True).start()

    def ticket_for_item(self) -> None:
        """Take a ticket for the open item's queue service: the confirm screen once the
        services have loaded (the list of services if the hall does not have that one now)."""
        if self.server is None or not self.item_code:
            return
        self._preselect = self.guides.item(self.item_code).service
        self.open_tickets()

    @mainthread  # called by the worker; runs on the UI thread
    def _show_printed(self, key: str) -> None:
        self.printing = False
        self.print_failed = key not in PRINT_OK
        self.print_message = self.msg[key]
        if self.print_failed:
            self.note_error(f"guide print: {key}")

    # --- tickets

    def open_tickets(self) -> None:
        """The ticket screen, its services (re)loaded on a worker thread."""
        self.show("ticket")
        self.load_services()

    def load_services(self) -> None:
        from kiosq.kiosk.tickets import in_background, load_services

        if self.server is None or self.services_state == "loading":
            return
        self.services_state, self.services_error, self.services_error_kind = "loading", "", ""
        server = self.server
        in_background(lambda: load_services(server), self._services_loaded, "load-services")

    @mainthread
    def _services_loaded(self, loaded) -> None:
        self.ticket_windows = loaded.windows
        self.hall = loaded.hall
        self.services = loaded.services
        self.services_error, self.services_error_kind = loaded.error, loaded.kind
        self.services_state = "error" if loaded.error else "ready"
        if "open" in loaded.hall:  # /api/health carries the opening hours
            self.set_hours({k: loaded.hall.get(k) for k in ("open", "opens_at", "closes_at")})
        self._confirm_preselected()

    def _confirm_preselected(self) -> None:
        code, self._preselect = self._preselect, ""
        if code and self.services_state == "ready" and self.manager.current == "ticket":
            self.choose_service(code)

    def choose_service(self, code: str) -> None:
        """Confirm a ticket for this service next; a new service is a new confirm."""
        service = next((s for s in self.services if s["code"] == code), None)
        if service is None or self.ticket_busy:
            return
        if self.service.get("code") != code:
            self.ticket_key = None
        self.service = service
        self.ticket_error = self.ticket_error_kind = ""
        self.show("ticket_confirm")

    def confirm_ticket(self) -> None:
        """Take the ticket on a worker thread, then print its slip there. The key is made
        once per confirm and reused when the citizen retries after a failure."""
        from kiosq.kiosk.tickets import in_background, issue_and_print

        if self.server is None or self.ticket_busy or not self.service:
            return
        if self.ticket_key is None:
            self.ticket_key = new_key()
        self.ticket_busy, self.ticket_error, self.ticket_error_kind = True, "", ""
        server, printer, service, key, lang = self.server, self.printer, dict(self.service), self.ticket_key, self.lang
        hall = self.hall.get("hall") or self.msg["app_title"]
        in_background(lambda: issue_and_print(server, printer, service, key, hall, lang),
                      lambda issued: self._ticket_issued(key, issued), f"ticket-{service['code']}")

    @mainthread
    def _ticket_issued(self, key: str, issued) -> None:
        self.ticket_busy = False
        if key != self.ticket_key:
            return  # the session was wiped meanwhile: this result is no one's to see
        if issued.ticket is None:
            self.ticket_error, self.ticket_error_kind = issued.error, issued.kind
            self.note_error(f"ticket: {issued.kind}")
            return  # the key stays: a retry asks for the same ticket
        self.ticket_key = None
        self.ticket, self.ticket_print_key = issued.ticket, issued.print_key
        self.history = []
        self.show("ticket_done", remember=False)

    # --- applications (申报) and progress (进度查询)

    def open_apply(self) -> None:
        from kiosq.kiosk.pinyin_input import warm_up

        warm_up()  # the pinyin index (0.5 s) built while the citizen chooses and places the card
        self.show("apply")

    def start_apply(self, code: str) -> None:
        """File this item: ask for the ID card (one on the reader already is used at once)."""
        from kiosq.kiosk.filing import fileable_here

        if self.server is None or not fileable_here(self.guides.item(code)):
            return
        self.apply_item, self._card, self.apply_typed = code, None, False
        self.form_entered, self.form_problems, self.form_focus, self.form_compose = {}, {}, "", ""
        self.apply_error, self.apply_result = "", {}
        self.card_state = "waiting" if self.cards is not None else "no_reader"
        self.show("apply_card")
        present = self.cards.present() if self.cards is not None else None
        if present:
            self._card_read(present)

    @mainthread  # called by the card watcher's thread
    def _card_event(self, event: object) -> None:
        from kiosq.devices.idcard import CardRead, CardRemoved, CardUnreadable, ReaderBack, ReaderLost

        screen = self.manager.current
        self._reader_state = "missing" if isinstance(event, ReaderLost) else "ok"  # for the heartbeat
        if isinstance(event, CardRead):
            if screen == "apply_card":
                self._card_read(event.identity.as_dict())
            elif screen == "progress":
                self.progress_by_card(event.identity.id_number)
        elif isinstance(event, CardUnreadable):
            self.card_state = "unreadable"
        elif isinstance(event, ReaderLost):
            self.card_state = "lost"
        elif isinstance(event, (ReaderBack, CardRemoved)) and self.card_state in ("lost", "unreadable"):
            self.card_state = "waiting"

    def _card_read(self, card: dict[str, str]) -> None:
        from kiosq.kiosk.filing import prefill

        item = self.guides.item(self.apply_item)
        self._card, self.card_state, self.apply_typed = card, "read", False
        self.form_entered, self.form_compose = prefill(item, card), ""
        self.form_focus, self.form_problems = self._first_to_type(), {}
        self.history = [h for h in self.history if h != "apply_card"]
        self.show("apply_form")

    def apply_without_card(self) -> None:
        """No ID card: the same form, with the name and ID number typed (source "typed")."""
        if not self.apply_item:
            return
        self._card, self.apply_typed = None, True
        self.form_entered, self.form_problems, self.form_compose = {}, {}, ""
        self.form_focus = self._first_to_type()
        self.history = [h for h in self.history if h != "apply_card"]
        self.show("apply_form")

    def _first_to_type(self) -> str:
        from kiosq.kiosk.filing import kiosk_fields

        item = self.guides.item(self.apply_item)
        return next((f.name for f in kiosk_fields(item) if f.type in ("number", "date", "phone", "id_number", "text")
                     and not self.form_entered.get(f.name)), "")

    def focus_field(self, name: str) -> None:
        self.form_focus, self.form_compose = name, ""

    def form_key(self, key: str) -> None:
        """A key on the form's keyboard: into the focused field, or (a Chinese field) into
        the pinyin being composed; a space takes the first character offered."""
        from kiosq.kiosk.filing import key_into, kiosk_fields, uses_pinyin

        field = next((f for f in kiosk_fields(self.guides.item(self.apply_item)) if f.name == self.form_focus), None)
        if field is None or (field.prefill is not None and self._card is not None):
            return  # what the card says is not typed over
        text = str(self.form_entered.get(field.name) or "")
        if uses_pinyin(field):
            if key.isalpha() and len(key) == 1:
                self.form_compose = (self.form_compose + key.lower())[:6]
                return
            if self.form_compose and key in ("backspace", "clear", "space"):
                if key == "space":
                    from kiosq.kiosk.pinyin_input import candidates

                    found = candidates(self.form_compose, surname=field.prefill == "name" and not text)
                    if found:
                        self.form_pick(found[0])
                    return
                self.form_compose = self.form_compose[:-1] if key == "backspace" else ""
                return  # the pinyin being composed is what a backspace or clear takes back
            elif key == "space":
                return
        self._set_typed(field.name, key_into(field, text, key))

    def form_pick(self, char: str) -> None:
        """A character chosen for the composed pinyin."""
        from kiosq.kiosk.filing import kiosk_fields

        field = next((f for f in kiosk_fields(self.guides.item(self.apply_item)) if f.name == self.form_focus), None)
        if field is None:
            return
        text = str(self.form_entered.get(field.name) or "")
        limit = field.max_length or 60
        self.form_compose = ""
        if len(text) < limit:
            self._set_typed(field.name, text + char)

    def _set_typed(self, name: str, text: str) -> None:
        self.form_entered = {**self.form_entered, name: text}
        self.form_problems = {k: v for k, v in self.form_problems.items() if k != name}

    def form_set(self, name: str, value: object) -> None:
        """A choice chosen or a box ticked."""
        self.form_entered = {**self.form_entered, name: value}
        self.form_problems = {k: v for k, v in self.form_problems.items() if k != name}

    def form_next(self) -> None:
        from kiosq.kiosk.filing import problems

        found = problems(self.guides.item(self.apply_item), dict(self.form_entered))
        self.form_problems = found
        if not found:
            self.apply_error = ""
            self.show("apply_review")

    def submit_application(self) -> None:
        """Into the outbox and on to the server (a worker), then the receipt."""
        from kiosq.kiosk.filing import applicant, values_for_server
        from kiosq.kiosk.tickets import in_background

        if self.apply_busy or (self._card is None and not self.apply_typed) or self.outbox is None:
            return
        item = self.guides.item(self.apply_item)
        person = applicant(item, self._card, dict(self.form_entered))
        values = values_for_server(item, dict(self.form_entered))
        self.apply_busy, self.apply_error = True, ""
        hall = self.hall.get("hall") or self.msg["app_title"]
        job = (self.outbox, self.sender, self.printer, item, person, values, hall, self.lang,
               self.kiosk_config.server_url)
        in_background(lambda: _file_and_print(*job), self._application_filed, f"apply-{item.code}")

    @mainthread
    def _application_filed(self, result: dict) -> None:
        self.apply_busy = False
        self._outbox_changed()
        if not self.apply_item:
            return  # wiped meanwhile
        if result.get("error"):
            self.apply_error = self.msg["apply_failed"].format(why=result["error"])
            return
        self.apply_result = result
        self.history = []
        self.show("apply_done", remember=False)

    def _fallback_data_dir(self) -> Path:
        """No data folder configured (development): one that stays the same across restarts,
        so applications waiting in the outbox are not lost when the kiosk restarts."""
        import logging
        import re

        name = re.sub(r"[^A-Za-z0-9_-]+", "-", self.kiosk_config.terminal_id) or "kiosk"
        folder = Path(tempfile.gettempdir()) / f"kiosq-{name}-{os.getuid()}"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        logging.getLogger(__name__).warning("no data folder configured: the outbox is kept in %s "
                                            "(set [terminal] data_dir in the terminal config)", folder)
        return folder

    def _outbox_changed(self) -> None:
        if self.outbox is not None:
            self._set_outbox_counts(self.outbox.pending_count(), self.outbox.refused_count())

    @mainthread
    def _set_outbox_counts(self, waiting: int, refused: int) -> None:
        self.outbox_waiting, self.outbox_refused = waiting, refused

    def open_progress(self) -> None:
        self.progress_number = self.progress_last4 = self.progress_message = ""
        self.progress_focus, self.progress_results = "number", []
        self.card_state = "waiting" if self.cards is not None else "no_reader"
        self.show("progress")

    def progress_key(self, key: str) -> None:
        name = "progress_last4" if self.progress_focus == "last4" else "progress_number"
        text = getattr(self, name)
        if key == "backspace":
            text = text[:-1]
        elif key == "clear":
            text = ""
        elif len(key) == 1 and (key.isalnum() or (key == "-" and name == "progress_number")):
            limit = 4 if name == "progress_last4" else 40
            if len(text) < limit and (name == "progress_number" or key.isdigit() or key.upper() == "X"):  # 4 of an ID
                text += key.upper()
        elif key == "space":
            return
        setattr(self, name, text)
        if name == "progress_number" and len(text) and self.progress_message:
            self.progress_message = ""

    def progress_search(self) -> None:
        from kiosq.kiosk.tickets import in_background

        if self.server is None or self.progress_busy:
            return
        number, last4 = self.progress_number.strip(), self.progress_last4.strip()
        if not number or len(last4) != 4:
            self.progress_message = self.msg["progress_wrong"]
            return
        self.progress_busy, self.progress_message = True, self.msg["progress_searching"]
        server = self.server
        in_background(lambda: _lookup(lambda: [server.application(number, last4)]), self._progress_found, "progress")

    def progress_by_card(self, id_number: str) -> None:
        from kiosq.kiosk.tickets import in_background

        if self.server is None or self.progress_busy:
            return
        self.progress_busy, self.progress_message = True, self.msg["progress_searching"]
        server = self.server
        in_background(lambda: _lookup(lambda: server.lookup_by_id(id_number)), self._progress_found, "progress")

    @mainthread
    def _progress_found(self, found: dict) -> None:
        self.progress_busy = False
        if self.manager.current != "progress":
            return  # the citizen left (or the session was wiped)
        if "error" in found:
            kind, minutes = found["error"], found.get("minutes", 1)
            self.progress_message = self.msg[kind].format(n=minutes)
            return
        self.progress_message = "" if found["applications"] else self.msg["progress_none"]
        if found["applications"]:
            self.progress_results = found["applications"]
            self.progress_last4 = ""
            self.show("progress_result")

    # --- the status bar

    def _tick(self, *_args: object) -> None:
        self.clock_text = datetime.now().strftime("%H:%M")

    @mainthread  # called by the status monitor's thread
    def _status_checked(self, printer: str, server: str) -> None:
        # /api/health needs no token: a refused heartbeat is what says this terminal is out
        if printer != self.printer_state and self.heartbeat is not None:
            self.heartbeat.wake()  # paper out (or back) reaches the fleet view at once
        self.printer_state = printer
        self.server_state = "not_enrolled" if self._not_enrolled and server == "ok" else server

    def printer_trouble(self) -> bool:
        """Whether a ticket taken now gets no slip (out of paper, not answering, none)."""
        from kiosq.kiosk.status import PRINTER_TROUBLE

        return self.printer_state in PRINTER_TROUBLE

    # --- the fleet: heartbeats, the content rollout, opening hours (issue #8)

    def _start_fleet(self) -> None:
        """With a hall server and a terminal token: heartbeats, and the updater when this kiosk
        shows a content folder's bundles (config.content_folder: the configured [content]
        folder, else DATA_DIR/content for a kiosk that started on the sample catalog)."""
        from kiosq.kiosk.settings import content_folder
        from kiosq.kiosk.heartbeat import Heartbeat

        if self.server is None or not self.kiosk_config.terminal_token:
            return
        folder = content_folder(self.kiosk_config)
        if folder is not None:
            from kiosq.kiosk.updater import Updater

            self.updater = Updater(self.server, folder, self._content_installed,
                                   lambda why: self.note_error(f"content update: {why}")).start()
        self.heartbeat = Heartbeat(self.server, self._heartbeat_body, self.kiosk_config.heartbeat_interval,
                                   self._heartbeat_answered, self._heartbeat_refused,
                                   lambda exc: self.note_error(f"server: {exc}")).start()

    def _stop_fleet(self) -> None:
        from kivy.clock import Clock

        Clock.unschedule(self._hours_due)
        for worker in (self.heartbeat, self.updater):
            if worker is not None:
                worker.stop()

    def note_error(self, text: str) -> None:
        """The last thing that went wrong, for the fleet view: device and server trouble in a
        few words, never anything a citizen typed or a card held."""
        self._last_error = f"{datetime.now():%Y-%m-%d %H:%M:%S} {text}"[:500]

    def _heartbeat_body(self) -> dict:
        """On the heartbeat's thread: this terminal's state, read from the app's properties."""
        from kiosq.kiosk.heartbeat import printer_for_server, software_version

        return {"software_version": software_version(), "content_version": self.content_version or None,
                "content_sha256": self._content_sha256,
                "devices": {"printer": printer_for_server(self.printer_state), "card_reader": self._reader_state,
                            "scanner": _scanner_state(self.kiosk_config.scanner_uri)},
                "last_error": self._last_error, "uptime_seconds": int(time.monotonic() - self._started_at),
                "outbox_waiting": int(self.outbox_waiting), "outbox_refused": int(self.outbox_refused)}

    def _heartbeat_answered(self, reply: dict) -> None:
        """On the heartbeat's thread: the published content to the updater, the rest to the UI."""
        if self.updater is not None:
            self.updater.offer(reply.get("content"))
        self._heartbeat_told(reply.get("hours"))

    @mainthread
    def _heartbeat_told(self, hours: object) -> None:
        if self._not_enrolled:
            self._not_enrolled = False
            self.server_state = "ok"
        if isinstance(hours, dict):
            self.set_hours(hours)

    @mainthread
    def _heartbeat_refused(self, refused) -> None:
        if refused.status == 401:  # revoked, or never known: say so on the status bar and maintenance
            self._not_enrolled = True
            self.server_state = "not_enrolled"
            self.note_error("heartbeat refused: this terminal's token is not accepted")

    def set_hours(self, hours: dict) -> None:
        """The hall's opening hours as the server says them now; the 取号 tile follows, and
        comes back by itself at the time the server gave (a heartbeat then confirms it)."""
        from kiosq.kiosk.hours_text import is_closed, parse_time
        from kivy.clock import Clock

        self.hours = dict(hours)
        self._say_hours()
        Clock.unschedule(self._hours_due)
        due = parse_time(hours.get("opens_at") if is_closed(hours) else hours.get("closes_at"))
        if due is not None:
            wait = (due - datetime.now(due.tzinfo)).total_seconds()
            Clock.schedule_once(self._hours_due, min(max(0.0, wait) + 0.5, 24 * 3600.0))

    def _say_hours(self) -> None:
        from kiosq.kiosk.hours_text import closed_text

        self.tickets_closed_text = closed_text(dict(self.hours), datetime.now().astimezone(), self.msg)

    def _hours_due(self, *_args: object) -> None:
        """The time the server gave has come: open the tile again (or, at closing, ask)."""
        from kiosq.kiosk.hours_text import is_closed, parse_time

        hours = dict(self.hours)
        due = parse_time(hours.get("opens_at") if is_closed(hours) else hours.get("closes_at"))
        if due is None or datetime.now(due.tzinfo) < due:
            if due is not None:
                self.set_hours(hours)  # woken early (the wait is capped at a day): wait again
            return
        if is_closed(hours):
            self.set_hours({"open": True, "opens_at": None, "closes_at": None})
        if self.heartbeat is not None:
            self.heartbeat.wake()  # the server says what holds now (and, at closing, when it opens)

    def on_msg(self, *_args: object) -> None:
        self._say_hours()  # the language changed

    @mainthread  # called by the updater's thread
    def _content_installed(self, manifest, catalog: Path) -> None:
        self._pending_catalog = Path(catalog)
        if not self.in_session():
            self._swap_pending_catalog()

    def _swap_pending_catalog(self) -> None:
        """Show the catalog installed by the updater: a new Guides, the old one closed, the
        screens that list items redrawn; then a heartbeat reports the new version."""
        catalog, self._pending_catalog = self._pending_catalog, None
        if catalog is None or (self.guides is not None and self.guides.path == catalog):
            return
        try:
            guides = Guides(catalog)
        except Exception as exc:  # the old catalog stays: a kiosk never goes blank
            import logging

            logging.getLogger(__name__).exception("the new catalog %s cannot be opened", catalog)
            self.note_error(f"content: the new catalog cannot be opened ({type(exc).__name__})")
            return
        old, self.guides = self.guides, guides
        if old is not None:
            old.close()
        if self.item_code not in guides.items:  # an item the new catalog no longer has
            self.item_code = ""
        self._catalog_shown(catalog)
        for name in ("guide", "detail", "apply"):
            if self.manager.has_screen(name):
                self.manager.get_screen(name).refresh()
        if self.heartbeat is not None:
            self.heartbeat.wake()

    def _catalog_shown(self, catalog: Path) -> None:
        from kiosq.kiosk.updater import content_identity

        cfg = self.kiosk_config
        self.content_version, self._content_sha256 = content_identity(catalog, cfg.catalog_db, cfg.content)

    # --- maintenance

    def corner_tap(self, touch_id: object = None) -> None:
        """A tap in the home screen's top-left corner: the fifth within 3 s asks for the PIN.
        One touch counts once, however many corner widgets it reaches (a .kv loaded twice)."""
        if touch_id is not None:
            if touch_id == self._last_corner_touch:
                return
            self._last_corner_touch = touch_id
        if self.corner_taps.tap():
            self.pin_entry = ""
            self.pin_message = "" if self.kiosk_config.maintenance_pin_hash else self.msg["maint_no_pin"]
            self.show("maintenance_pin")

    def pin_key(self, key: str) -> None:
        if key == "backspace":
            self.pin_entry = self.pin_entry[:-1]
        elif key == "clear":
            self.pin_entry = ""
        elif key.isdigit() and len(self.pin_entry) < 12:
            self.pin_entry += key

    def submit_pin(self) -> None:
        """Check the typed PIN: the maintenance screen, or why not."""
        from kiosq.kiosk.maintenance import MAX_TRIES

        pin, self.pin_entry = self.pin_entry, ""
        result = self.pin_guard.attempt(pin)
        if result == "ok":
            self.pin_message = ""
            self.test_print_message = ""
            self.show("maintenance", remember=False)
        elif result == "wrong":
            self.pin_message = self.msg["maint_pin_wrong"].format(n=MAX_TRIES - self.pin_guard.wrong)
        elif result == "locked":
            self.pin_message = self.msg["maint_pin_locked"].format(n=max(1, round(self.pin_guard.locked_for())))
        else:
            self.pin_message = self.msg["maint_no_pin"]

    def refresh_maintenance(self) -> None:
        """Ask for fresh device states and redraw the last slip (the maintenance screen's entry)."""
        if self.monitor is not None:
            self.monitor.wake()
        self.render_last_slip()

    def test_print(self) -> None:
        """Print a test slip on a worker thread; the outcome in test_print_message."""
        from kiosq.kiosk.printing import print_test

        if self.test_printing:
            return
        self.test_printing = True
        self.test_print_message = self.msg["printing"]
        printer = self.printer
        lines = [self.msg["maint_test_slip"], self.msg["maint_terminal"].format(id=self.kiosk_config.terminal_id),
                 datetime.now().strftime("%Y-%m-%d %H:%M:%S")]
        threading.Thread(target=lambda: self._test_printed(print_test(printer, lines)),
                         name="test-print", daemon=True).start()

    @mainthread
    def _test_printed(self, key: str) -> None:
        self.test_printing = False
        self.test_print_message = self.msg[key]
        if self.monitor is not None:
            self.monitor.wake()
        self.render_last_slip()

    def render_last_slip(self) -> None:
        """Draw the last slip this kiosk printed into a PNG on a worker thread."""
        from kiosq.devices.escpos_decode import decode
        from kiosq.devices.escpos_preview import preview_png
        from kiosq.kiosk.printing import last_slip

        data = last_slip()
        if data is None:
            self.last_slip_png = ""
            return
        self._preview_count += 1
        path = Path(self._preview_dir) / f"last-slip-{self._preview_count}.png"
        width = self.printer.paper.dots if self.printer is not None else PAPER_58.dots

        def work() -> None:
            try:
                preview_png(decode(data), path, width)
            except Exception:
                import logging

                logging.getLogger(__name__).exception("slip preview failed")
                return
            self._slip_rendered(str(path))

        threading.Thread(target=work, name="slip-preview", daemon=True).start()

    @mainthread
    def _slip_rendered(self, path: str) -> None:
        old, self.last_slip_png = self.last_slip_png, path
        if old and old != path:
            Path(old).unlink(missing_ok=True)

    # --- privacy

    def in_session(self) -> bool:
        return bool(self.manager.current != "home" or self.history or self.query or self.department
                    or self.lang != self.kiosk_config.lang or self.elder != self.kiosk_config.elder
                    or self._card is not None or self.form_entered or self.apply_item or self.progress_results)

    def _forget_application(self) -> None:
        """The card read, the form's answers, the result and progress lookups: gone."""
        self._card, self.apply_typed = None, False
        self.apply_item = self.apply_error = self.form_focus = self.form_compose = ""
        self.form_entered, self.form_problems, self.apply_result = {}, {}, {}
        self.progress_number = self.progress_last4 = self.progress_message = ""
        self.progress_results = []

    def end_session(self) -> None:
        """The citizen is done or gone (完成, or the idle countdown ran out): wipe, and a card
        still on the reader is not offered to whoever comes next; it must be lifted and
        placed again to be read."""
        if self.cards is not None:
            self.cards.forget()
        self.wipe()

    def wipe(self) -> None:
        """Forget the session (search, choices, open item, screens, preferences) and go home."""
        self.query = self.department = self.category = self.item_code = self.print_message = ""
        self.print_failed = False
        self.ticket_key = None
        self.service, self.ticket, self.ticket_print_key = {}, {}, ""
        self.ticket_error = self.ticket_error_kind = ""
        self.pin_entry = self.pin_message = self.test_print_message = ""
        self._preselect = ""
        self.lang, self.elder = self.kiosk_config.lang, self.kiosk_config.elder
        self.speech_on = self.kiosk_config.speech and self.speaker.available
        self.speaker.stop()
        self.go_home()

    def _on_any_touch(self, _window: object, _touch: object) -> bool:
        self.idle.touched()
        return False  # the touch goes on to the widgets

    def _show_prompt(self, seconds: int) -> None:
        from kiosq.kiosk.widgets import IdlePrompt

        if self.prompt is None:
            self.prompt = IdlePrompt()
        self.prompt.seconds = seconds
        if self.prompt.parent is None:
            self.prompt.open(animation=False)
            if self.elder and self.speech_on:
                self.speaker.say(self.msg["say_idle"], self.lang)

    def _hide_prompt(self) -> None:
        if self.prompt is not None and self.prompt.parent is not None:
            self.prompt.dismiss(animation=False)

    @staticmethod
    def _swallow_escape(_window: object, key: int, *_args: object) -> bool:
        return key == 27  # Escape (and Android's back) never quits a kiosk


def _scanner_state(uri: str | None) -> str:
    """For the heartbeat: "none" (no scanner), "ok" (its port is there) or "missing"."""
    if not uri:
        return "none"
    from kiosq.devices.uri import DeviceURIError, parse_uri

    try:
        return "ok" if Path(parse_uri(uri).target).exists() else "missing"
    except DeviceURIError:
        return "missing"


def _file_and_print(outbox, sender, printer, item, person: dict, values: dict, hall: str, lang: str,
                    server_url: str | None) -> dict:
    """On a worker: the application into the outbox and to the server (waiting a few
    seconds for its answer), then the receipt. What the done screen shows; no personal data."""
    from kiosq.devices.receipts import ApplicationFiled, application_receipt
    from kiosq.kiosk.outbox import submit
    from kiosq.kiosk.printing import print_bytes

    try:
        submitted = submit(outbox, sender, item.code, person, values)
    except Exception as exc:  # the outbox could not keep it: the citizen is told, nothing is lost silently
        import logging

        logging.getLogger(__name__).error("application for %s not kept: %s", item.code, type(exc).__name__)
        return {"error": type(exc).__name__}
    filed = submitted.filed or {}
    number = filed.get("tracking_no") or submitted.provisional_no
    refused = submitted.refused.detail or submitted.refused.code if submitted.refused else ""
    promised = filed.get("promised_date")
    receipt = ApplicationFiled(hall=hall, tracking_no=number, item=item.name if lang == "zh" else item.name_en,
                               id_number=person["id_number"], filed_at=datetime.now(),
                               promised_date=date.fromisoformat(promised) if promised else None,
                               query_url=f"{(server_url or '').rstrip('/')}/a/{number}", applicant=person["name"])
    key = print_bytes(printer, lambda: application_receipt(receipt, printer.paper, lang=lang),
                      f"receipt for {item.code}") if printer is not None else "print_missing"
    return {"number": number, "delivered": bool(filed), "provisional_no": submitted.provisional_no,
            "promised_date": promised or "", "promised_days": item.promised_days, "print_key": key,
            "query_url": receipt.query_url, "refused": refused}


def _lookup(call) -> dict:
    """On a worker: a progress lookup; {"applications": [...]} or {"error": message key}."""
    from kiosq.kiosk.hall_client import ServerError, ServerRefused

    try:
        return {"applications": list(call())}
    except ServerRefused as exc:  # 403 no match, 422 not a valid number, 429 too many tries
        if exc.status == 429:
            minutes = max(1, round((getattr(exc, "retry_after", None) or 60) / 60))
            return {"error": "progress_throttled", "minutes": minutes}
        return {"error": "progress_wrong"}
    except ServerError:
        return {"error": "progress_unreachable"}


def run_kiosk(config: KioskConfig) -> None:
    """Run the kiosk full screen, without cursor or screensaver; Escape does not quit."""
    apply_kiosk_settings()
    KiosqApp(config, kiosk=True).run()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kiosq.kiosk.app", description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, help="catalog database to show")
    parser.add_argument("--content", type=Path, help="folder of catalog JSON files (default: the sample)")
    parser.add_argument("--data", type=Path, help="folder for the built catalog")
    parser.add_argument("--printer", help="receipt printer URI, e.g. serial:/dev/ttyUSB0")
    parser.add_argument("--lang", choices=("zh", "en"), default="zh")
    parser.add_argument("--elder", action="store_true", help="start in 长辈模式 (large text)")
    parser.add_argument("--server", help="the hall server's URL, e.g. http://10.0.0.2:8080 (enables tickets)")
    parser.add_argument("--token-env", default="KIOSQ_TERMINAL_TOKEN",
                        help="environment variable holding this terminal's token (default: %(default)s)")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds without a touch before the prompt")
    parser.add_argument("--terminal-id", help="this kiosk's name on the maintenance screen (default: the host name)")
    parser.add_argument("--maintenance-pin-hash-env", default="KIOSQ_MAINTENANCE_PIN_HASH",
                        help="environment variable holding the maintenance PIN's hash, from "
                             "`python -m kiosq.kiosk.maintenance` (default: %(default)s; unset: no maintenance)")
    args = parser.parse_args(argv)
    extra = {"terminal_id": args.terminal_id} if args.terminal_id else {}
    run_kiosk(KioskConfig(catalog_db=args.catalog, content=args.content, data_dir=args.data,
                          printer_uri=args.printer, lang=args.lang, elder=args.elder, idle_timeout=args.idle,
                          server_url=args.server, terminal_token=os.environ.get(args.token_env),
                          maintenance_pin_hash=os.environ.get(args.maintenance_pin_hash_env) or None, **extra))


if __name__ == "__main__":
    main()
