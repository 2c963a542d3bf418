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
from collections.abc import Sequence
from pathlib import Path

from kiosq.devices.printer import Printer
from kiosq.kiosk.config import KioskConfig, catalog_path
from kiosq.kiosk.guides import Guides
from kiosq.kiosk.messages import messages
from kivy.app import App
from kivy.clock import mainthread
from kivy.core.text import DEFAULT_FONT, LabelBase
from kivy.lang import Builder
from kivy.properties import (
    BooleanProperty,
    DictProperty,
    ListProperty,
    NumericProperty,
    StringProperty,
)
from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager

HERE = Path(__file__).parent
SCREENS = {"home": "HomeScreen", "guide": "GuideScreen", "detail": "DetailScreen"}
SIZES = {False: {"body_dp": 22, "title_dp": 32, "target_dp": 64},
         True: {"body_dp": 30, "title_dp": 40, "target_dp": 90}}  # 长辈模式: text ≥ 30 dp, targets ≥ 90 dp
PRINT_OK = ("print_done", "print_done_near_end")


class KiosqApp(App):
    """The kiosk. `kiosk=True` (run_kiosk) also hooks Escape; tests leave it False."""

    lang = StringProperty("zh")
    elder = BooleanProperty(False)
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

    def __init__(self, config: KioskConfig | None = None, *, kiosk: bool = False, **kwargs: object) -> None:
        self.kiosk_config = config or KioskConfig()
        self.kiosk = kiosk
        super().__init__(**kwargs)
        self.lang, self.elder = self.kiosk_config.lang, self.kiosk_config.elder
        self.msg = messages(self.lang)
        self.on_elder(self, self.elder)
        self.guides: Guides | None = None
        self.printer = Printer(self.kiosk_config.printer_uri) if self.kiosk_config.printer_uri else None
        self.idle = None
        self.prompt = None

    # --- Kivy life cycle

    def build(self) -> ScreenManager:
        LabelBase.register(DEFAULT_FONT, str(CJK_FONT))
        from kiosq.kiosk import widgets  # noqa: F401  (registers the classes widgets.kv styles)
        from kiosq.kiosk.idle import IdleWatcher
        from kivy.core.window import Window

        Window.clearcolor = (0.95, 0.96, 0.98, 1)
        self.title = self.msg["app_title"]
        self.guides = Guides(catalog_path(self.kiosk_config))
        Builder.load_file(str(HERE / "widgets.kv"))
        self.idle = IdleWatcher(self.kiosk_config.idle_timeout, self.kiosk_config.idle_countdown,
                                in_session=self.in_session, show=self._show_prompt,
                                hide=self._hide_prompt, expire=self.wipe)
        self.manager = ScreenManager(transition=NoTransition())
        self.show("home", remember=False)
        return self.manager

    def on_start(self) -> None:
        from kivy.core.window import Window

        Window.bind(on_touch_down=self._on_any_touch)
        if self.kiosk:
            Window.bind(on_keyboard=self._swallow_escape)

    def on_stop(self) -> None:
        from kivy.core.window import Window

        Window.unbind(on_touch_down=self._on_any_touch)
        Window.unbind(on_keyboard=self._swallow_escape)
        if self.idle is not None:
            self.idle.stop()
        if self.guides is not None:
            self.guides.close()
        if self.printer is not None:
            self.printer.close()

    # --- preferences

    def on_lang(self, _app: object, lang: str) -> None:
        self.msg = messages(lang)

    def on_elder(self, _app: object, elder: bool) -> None:
        for name, value in SIZES[bool(elder)].items():
            setattr(self, name, value)

    def toggle_language(self) -> None:
        self.lang = "en" if self.lang == "zh" else "zh"

    def toggle_elder(self) -> None:
        self.elder = not self.elder

    # --- screens

    def screen(self, name: str) -> Screen:
        """The screen, loading its .kv and class on first use."""
        if not self.manager.has_screen(name):
            module = importlib.import_module(f"kiosq.kiosk.screens.{name}")
            Builder.load_file(str(HERE / "screens" / f"{name}.kv"))
            self.manager.add_widget(getattr(module, SCREENS[name])(name=name))
        return self.manager.get_screen(name)

    def show(self, name: str, *, remember: bool = True) -> None:
        if remember and self.manager.current:
            self.history.append(self.manager.current)
        self.screen(name)
        self.manager.current = name

    def back(self) -> None:
        self.show(self.history.pop() if self.history else "home", remember=False)

    def go_home(self) -> None:
        self.history = []
        self.show("home", remember=False)

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

    @mainthread  # called by the worker; runs on the UI thread
    def _show_printed(self, key: str) -> None:
        self.printing = False
        self.print_failed = key not in PRINT_OK
        self.print_message = self.msg[key]

    # --- privacy

    def in_session(self) -> bool:
        return bool(self.manager.current != "home" or self.history or self.query or self.department
                    or self.lang != self.kiosk_config.lang or self.elder != self.kiosk_config.elder)

    def wipe(self) -> None:
        """Forget the session (search, choices, open item, screens, preferences) and go home."""
        self.query = self.department = self.category = self.item_code = self.print_message = ""
        self.print_failed = False
        self.lang, self.elder = self.kiosk_config.lang, self.kiosk_config.elder
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

    def _hide_prompt(self) -> None:
        if self.prompt is not None and self.prompt.parent is not None:
            self.prompt.dismiss(animation=False)

    @staticmethod
    def _swallow_escape(_window: object, key: int, *_args: object) -> bool:
        return key == 27  # Escape (and Android's back) never quits a kiosk


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
    parser.add_argument("--idle", type=float, default=60.0, help="seconds without a touch before the prompt")
    args = parser.parse_args(argv)
    run_kiosk(KioskConfig(catalog_db=args.catalog, content=args.content, data_dir=args.data,
                          printer_uri=args.printer, lang=args.lang, elder=args.elder, idle_timeout=args.idle))


if __name__ == "__main__":
    main()
