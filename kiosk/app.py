"""The self-service kiosk: a Kivy app with one screen manager, screens loaded on first
use (kiosk/screens/NAME.kv + NAME.py), every string from kiosk/messages/. The app keeps
the life cycle, navigation, the citizen's preferences and the guides being browsed; each
flow is its own EventDispatcher with its state in Kivy properties (`app.tickets`,
`app.apply`, `app.progress`, `app.rating`, `app.maintenance`, `app.fleet`, `app.session`).
`kiosq kiosk` (provisioning/) runs it."""

from __future__ import annotations

from kiosq.kiosk.boot import CJK_FONT, apply_kiosk_settings, prepare_environment

prepare_environment()  # before Kivy reads its environment on import

import importlib
import logging
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kivy.app import App
from kivy.clock import Clock, mainthread
from kivy.core.text import DEFAULT_FONT, LabelBase
from kivy.lang import Builder
from kivy.properties import BooleanProperty, DictProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager

from kiosq.content.model import ItemGuide
from kiosq.devices.printer import Printer
from kiosq.devices.receipts import PAPER_58, PAPER_80
from kiosq.kiosk.apply_flow import ApplyFlow
from kiosq.kiosk.background import in_background
from kiosq.kiosk.fleet import Fleet
from kiosq.kiosk.guides import Guides
from kiosq.kiosk.hall_client import HallClient
from kiosq.kiosk.maintenance_flow import MaintenanceFlow
from kiosq.kiosk.messages import messages  # type: ignore[attr-defined]  # mypy finds the messages/ folder first
from kiosq.kiosk.progress_flow import ProgressFlow
from kiosq.kiosk.rating_flow import RatingFlow
from kiosq.kiosk.session import Session
from kiosq.kiosk.settings import KioskConfig, catalog_path
from kiosq.kiosk.speech import Speaker
from kiosq.kiosk.ticket_flow import TicketFlow

if TYPE_CHECKING:
    from kiosq.kiosk.cards import CardWatcher

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SCREENS = {"home": "HomeScreen", "guide": "GuideScreen", "detail": "DetailScreen",
           "ticket": "TicketScreen", "ticket_confirm": "TicketConfirmScreen", "ticket_done": "TicketDoneScreen",
           "maintenance_pin": "MaintenancePinScreen", "maintenance": "MaintenanceScreen",
           "apply": "ApplyScreen", "apply_card": "ApplyCardScreen", "apply_form": "ApplyFormScreen",
           "apply_review": "ApplyReviewScreen", "apply_done": "ApplyDoneScreen",
           "progress": "ProgressScreen", "progress_result": "ProgressResultScreen"}
SIZES = {False: {"body_dp": 22, "title_dp": 32, "target_dp": 64},
         True: {"body_dp": 30, "title_dp": 40, "target_dp": 90}}  # 长辈模式: text ≥ 30 dp, targets ≥ 90 dp
PRINT_OK = ("print_done", "print_done_near_end", "print_a4_done")


def load_kv(path: Path) -> None:
    """Load a .kv file once per process: loading it again (a second app, as in the tests)
    would add its rules twice, and every widget it styles would get its children twice."""
    Builder.unload_file(str(path))
    Builder.load_file(str(path))


class KiosqApp(App):
    """The kiosk. `kiosk=True` (run_kiosk) also hooks Escape; tests leave it False.

    Preferences: the language, 长辈模式 and its sizes, spoken prompts (in 长辈模式 only; the
    citizen may switch them off). Navigation: the screens gone through (`history`). The
    guides: the search typed, the department and category browsed, the item open and its
    printing. The card reader as the card screens show it (`card_state`: "waiting", "read",
    "unreadable", "lost", "no_reader"). The status bar's clock."""

    lang = StringProperty("zh")
    elder = BooleanProperty(False)
    speech_on = BooleanProperty(True)
    msg = DictProperty()
    body_dp = NumericProperty(SIZES[False]["body_dp"])
    title_dp = NumericProperty(SIZES[False]["title_dp"])
    target_dp = NumericProperty(SIZES[False]["target_dp"])
    history = ListProperty()
    query = StringProperty("")
    department = StringProperty("")
    category = StringProperty("")
    item_code = StringProperty("")
    printing = BooleanProperty(False)
    print_message = StringProperty("")
    print_failed = BooleanProperty(False)
    card_state = StringProperty("")
    clock_text = StringProperty("")

    def __init__(self, config: KioskConfig | None = None, *, kiosk: bool = False, speaker: Speaker | None = None,
                 **kwargs: Any) -> None:
        self.kiosk_config = config or KioskConfig()
        self.kiosk = kiosk
        super().__init__(**kwargs)
        cfg = self.kiosk_config
        self.speaker = speaker or Speaker()
        self.guides: Guides | None = None
        paper = PAPER_80 if cfg.paper_mm == 80 else PAPER_58
        self.printer = Printer(cfg.printer_uri, paper=paper) if cfg.printer_uri else None
        self.server = (HallClient(cfg.server_url, cfg.terminal_token, ca_file=cfg.server_ca_file)
                       if cfg.server_url else None)
        self.cards: CardWatcher | None = None  # with a card reader
        self.fleet = Fleet(self)
        self.tickets = TicketFlow(self)
        self.apply = ApplyFlow(self)
        self.progress = ProgressFlow(self)
        self.rating = RatingFlow(self)
        self.maintenance = MaintenanceFlow(self)
        self.session = Session(self)
        self.reset_preferences()
        self.msg = messages(self.lang)
        self.on_elder(self, self.elder)

    # --- Kivy life cycle

    def build(self) -> BoxLayout:
        LabelBase.register(DEFAULT_FONT, str(CJK_FONT))
        from kivy.core.window import Window

        from kiosq.kiosk import widgets  # noqa: F401  (registers the classes widgets.kv styles)
        from kiosq.kiosk.widgets import StatusBar

        Window.clearcolor = (0.95, 0.96, 0.98, 1)
        self.title = self.msg["app_title"]
        self.guides = Guides(catalog_path(self.kiosk_config))
        self.fleet.catalog_shown(self.guides.path)
        load_kv(HERE / "widgets.kv")
        self.manager = ScreenManager(transition=NoTransition())
        self.show("home", remember=False)
        root = BoxLayout(orientation="vertical")
        self.status_bar = StatusBar()
        root.add_widget(self.status_bar)
        root.add_widget(self.manager)
        return root

    def on_start(self) -> None:
        from kivy.core.window import Window

        self.session.start()
        if self.kiosk:
            Window.bind(on_keyboard=self._swallow_escape)
        self._tick()
        Clock.schedule_interval(self._tick, 1.0)
        self.fleet.start_monitor()
        if self.kiosk_config.card_reader_uri:
            from kiosq.kiosk.cards import CardWatcher

            self.cards = CardWatcher(self.kiosk_config.card_reader_uri, self._card_event).start()
        if self.server is not None:
            self.apply.start_outbox(Path(self.kiosk_config.data_dir or self._fallback_data_dir()))
        self.fleet.start_heartbeat()

    def on_stop(self) -> None:
        from kivy.core.window import Window

        self.session.stop()
        Window.unbind(on_keyboard=self._swallow_escape)
        Clock.unschedule(self._tick)
        self.fleet.stop()
        if self.cards is not None:
            self.cards.stop()
        self.apply.stop_outbox()
        if self.guides is not None:
            self.guides.close()
        if self.printer is not None:
            self.printer.close()
        if self.server is not None:
            self.server.close()
        self.speaker.close()

    def _fallback_data_dir(self) -> Path:
        """No data folder configured (development): one that stays the same across restarts,
        so applications waiting in the outbox are not lost when the kiosk restarts."""
        name = re.sub(r"[^A-Za-z0-9_-]+", "-", self.kiosk_config.terminal_id) or "kiosk"
        folder = Path(tempfile.gettempdir()) / f"kiosq-{name}-{os.getuid()}"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        log.warning("no data folder configured: the outbox is kept in %s "
                    "(set [terminal] data_dir in the terminal config)", folder)
        return folder

    def _tick(self, *_args: object) -> None:
        self.clock_text = datetime.now().strftime("%H:%M")

    @staticmethod
    def _swallow_escape(_window: object, key: int, *_args: object) -> bool:
        return key == 27  # Escape (and Android's back) never quits a kiosk

    def hall_name(self) -> str:
        """The hall's name for a slip or a receipt: the server's, else the app's title."""
        return self.tickets.hall.get("hall") or self.msg["app_title"]

    # --- preferences

    def reset_preferences(self) -> None:
        """The configured language, 长辈模式 and speech: a new citizen starts from them."""
        cfg = self.kiosk_config
        self.lang, self.elder = cfg.lang, cfg.elder
        self.speech_on = cfg.speech and self.speaker.available
        self.speaker.stop()

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
            return template.format(name=self.tickets.service.get("name_en" if en else "name", ""))
        if name == "ticket_done":
            return template.format(number=spell_number(self.tickets.ticket.get("number", ""), self.lang))
        if name == "apply_card" and self.card_state == "no_reader":
            return self.msg["apply_card_no_reader"]
        return template

    def speak_screen(self, name: str | None = None) -> None:
        """Say the current screen's prompt, in 长辈模式 with speech on."""
        self.say(self.spoken_prompt(name or self.manager.current))

    def say(self, text: str) -> None:
        """Say `text`, in 长辈模式 with speech on."""
        if self.elder and self.speech_on:
            self.speaker.say(text, self.lang)

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
        or a lookup (the card, the answers, the results) is forgotten at once; so is the
        session's rating id (whoever comes next rates a session of their own)."""
        self.history = []
        self.apply.forget()
        self.progress.forget()
        self.rating.forget()
        self.show("home", remember=False)
        self.fleet.swap_pending_catalog()  # a bundle that came during the session: its end is the moment

    # --- the card reader

    @mainthread  # called by the card watcher's thread
    def _card_event(self, event: object) -> None:
        from kiosq.devices.idcard import CardRead, CardRemoved, CardUnreadable, ReaderBack, ReaderLost

        screen = self.manager.current
        self.fleet.reader_state = "missing" if isinstance(event, ReaderLost) else "ok"  # for the heartbeat
        if isinstance(event, CardRead):
            if screen == "apply_card":
                self.apply.card_read(event.identity.as_dict())
            elif screen == "progress":
                self.progress.by_card(event.identity.id_number)
        elif isinstance(event, CardUnreadable):
            self.card_state = "unreadable"
        elif isinstance(event, ReaderLost):
            self.card_state = "lost"
        elif isinstance(event, (ReaderBack, CardRemoved)) and self.card_state in ("lost", "unreadable"):
            self.card_state = "waiting"

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
        from kiosq.kiosk.printing import print_guide

        if self.printing or not self.item_code:
            return
        printer, item, lang = self.printer, self._open_item(), self.lang
        self._printing()
        in_background(lambda: print_guide(printer, item, lang), self._show_printed, f"print-{item.code}")

    def print_item_a4(self) -> None:
        """Print the open item's guide on the A4 printer, on a worker thread."""
        from kiosq.kiosk.printing import print_a4_guide

        if self.printing or not self.item_code or not self.kiosk_config.a4_printer_uri:
            return
        uri, item, lang, hall = self.kiosk_config.a4_printer_uri, self._open_item(), self.lang, self.hall_name()
        self._printing()
        in_background(lambda: print_a4_guide(uri, item, lang, hall), self._show_printed, f"print-a4-{item.code}")

    def _open_item(self) -> ItemGuide:
        assert self.guides is not None
        return self.guides.item(self.item_code)

    def _printing(self) -> None:
        self.printing, self.print_failed = True, False
        self.print_message = self.msg["printing"]

    def _show_printed(self, key: str) -> None:
        self.printing = False
        self.print_failed = key not in PRINT_OK
        self.print_message = self.msg[key]
        if self.print_failed:
            self.fleet.note_error(f"guide print: {key}")

    def ticket_for_item(self) -> None:
        """Take a ticket for the open item's queue service."""
        if self.server is None or not self.item_code:
            return
        self.tickets.for_item(self._open_item().service)

    def forget_guides(self) -> None:
        """The search, the choices, the open item and its printing's outcome: gone."""
        self.query = self.department = self.category = self.item_code = self.print_message = ""
        self.print_failed = False


def run_kiosk(config: KioskConfig) -> None:
    """Run the kiosk full screen, without cursor or screensaver; Escape does not quit."""
    apply_kiosk_settings()
    KiosqApp(config, kiosk=True).run()
