"""A screenshot tour of the kiosk: the whole app started offscreen (as the tests start it),
every screen reachable without a server (home, the guide with the results of typing "sfz"
on the on-screen keyboard, an item's detail) and, with a hall server, the ticket screens
(services, confirm, the issued ticket: the tour takes one real ticket per variant) and,
with an ID card reader holding a card too, the application screens (the items, the form
prefilled from the card, the review, the receipt's screen: one real application per
variant) and progress (by number, then the card's applications), in Chinese, English and
elder mode, landscape 1920×1080 and portrait 1080×1920. One PNG per (screen, variant):
OUT_DIR/home-zh-landscape.png, detail-elder-portrait.png, ...

    python -m kiosq.kiosk.tour OUT_DIR [--server URL] [--card-reader URI]   # token from $KIOSQ_TERMINAL_TOKEN

A Kivy process hosts one window: run the tour in a process of its own.
"""

from __future__ import annotations

import os
import tempfile

# Before Kivy is imported: its home in a temp folder, no command-line parsing, no X (the
# offscreen driver), the log through Python's logging, and no mouse (touches are the tour's).
if "kivy" not in __import__("sys").modules:
    os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kiosq-kivy-tour-"))
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    os.environ.pop("DISPLAY", None)
    from kivy.config import Config

    Config.set("input", "mouse", "")

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from kiosq.kiosk.settings import KioskConfig

VARIANTS: dict[str, tuple[str, bool]] = {"zh": ("zh", False), "en": ("en", False), "elder": ("zh", True)}
ORIENTATIONS: dict[str, tuple[int, int]] = {"landscape": (1920, 1080), "portrait": (1080, 1920)}
SCREENS = ("home", "guide", "detail")
TICKET_SCREENS = ("ticket", "ticket_confirm", "ticket_done")
APPLY_SCREENS = ("apply", "apply_form", "apply_review", "apply_done", "progress", "progress_result")


def expected_names(with_server: bool = False, with_card: bool = False) -> list[str]:
    """The file names render_tour writes, in order."""
    screens = SCREENS + (TICKET_SCREENS if with_server else ()) + (APPLY_SCREENS if with_server and with_card else ())
    return [f"{screen}-{variant}-{orientation}.png"
            for orientation in ORIENTATIONS for variant in VARIANTS for screen in screens]


def _pump(frames: int = 3) -> None:
    from kivy.base import EventLoop

    for _ in range(frames):
        EventLoop.idle()


def _pump_until(done: Callable[[], bool], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        _pump(1)
        if done():
            return True
        time.sleep(0.01)
    return done()


def _tap(widget) -> None:
    from kivy.tests.common import UnitTestTouch

    x, y = widget.to_window(*widget.center)
    touch = UnitTestTouch(x, y)
    touch.touch_down()
    _pump(1)
    touch.touch_up()
    _pump(2)


def _shoot(path: Path) -> Path:
    from kivy.core.window import Window

    _pump(3)
    written = Path(Window.screenshot(name=str(path)))
    written.replace(path)
    return path


def render_tour(out_dir: Path, config: KioskConfig) -> list[Path]:
    """Start the app offscreen, visit its screens in every variant and orientation, write
    one PNG each into out_dir, stop the app; the PNGs written, in expected_names order.

    The offscreen surface never grows after the window is created (a larger Window.size
    draws into a corner and reads back garbage), so the window starts as large as the
    largest orientation in both directions and Window.size then sets each orientation:
    call this before anything has opened a Kivy window in this process."""
    from kivy.config import Config

    side = max(max(size) for size in ORIENTATIONS.values())
    Config.set("graphics", "width", str(side))
    Config.set("graphics", "height", str(side))
    from kivy.base import EventLoop
    from kivy.core.window import Window

    from kiosq.kiosk.app import KiosqApp

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # the tour chooses language and mode itself; nothing may wipe the session meanwhile
    config = replace(config, lang="zh", elder=False, idle_timeout=3600.0,
                     data_dir=config.data_dir or Path(tempfile.mkdtemp(prefix="kiosq-tour-")))
    app = KiosqApp(config)
    EventLoop.ensure_window()
    app._run_prepare()
    EventLoop.start()
    _pump(5)
    if min(Window.system_size) < side:
        app._stop()
        raise RuntimeError(f"the Kivy window was opened before the tour at {Window.system_size}; "
                           "run the tour in a process of its own")
    written: list[Path] = []
    try:
        for orientation, size in ORIENTATIONS.items():
            Window.size = size
            _pump(5)
            for variant, (lang, elder) in VARIANTS.items():
                written += _visit(app, out_dir, f"{variant}-{orientation}", lang, elder)
    finally:
        app.session.wipe()
        _pump(2)
        app._stop()
    return written


def _visit(app, out_dir: Path, suffix: str, lang: str, elder: bool) -> list[Path]:
    def screen(name: str):
        return app.manager.get_screen(name)

    def shoot(name: str) -> Path:
        assert app.manager.current == name, f"the tour expected {name}, the kiosk shows {app.manager.current}"
        return _shoot(out_dir / f"{name}-{suffix}.png")

    app.session.wipe()
    app.lang, app.elder = lang, elder
    _pump(3)
    shots = [shoot("home")]
    _tap(screen("home").ids.guide_tile)
    keyboard = screen("guide").ids.keyboard
    for key in "sfz":
        _tap(keyboard.keys[key])
    results = screen("guide").result_buttons()
    if not results:
        raise RuntimeError("typing sfz found nothing: the tour has no detail to show")
    shots.append(shoot("guide"))
    _tap(results[0])
    shots.append(shoot("detail"))
    if app.server is not None:
        app.go_home()
        _pump(3)
        _tap(screen("home").ids.ticket_tile)
        if not _pump_until(lambda: app.tickets.services_state not in ("", "loading")):
            raise RuntimeError("the hall server's services did not load within 10 s")
        _pump(3)
        shots.append(shoot("ticket"))
        buttons = screen("ticket").service_buttons()
        if app.tickets.services_state != "ready" or not buttons:
            raise RuntimeError(f"no services to choose from: {app.tickets.services_error or 'none listed'}")
        _tap(buttons[0])
        shots.append(shoot("ticket_confirm"))
        _tap(screen("ticket_confirm").ids.confirm_button)
        if not _pump_until(lambda: app.manager.current == "ticket_done" and not app.tickets.busy):
            raise RuntimeError(f"no ticket issued within 10 s: {app.tickets.error or 'no answer'}")
        shots.append(shoot("ticket_done"))
    if app.server is not None and app.cards is not None:
        shots += _visit_applications(app, shoot)
    return shots


def sample_answers(item) -> dict[str, object]:
    """Answers a citizen could give to the fields the card did not fill (for the tour)."""
    from kiosq.kiosk.filing import kiosk_fields

    answers: dict[str, object] = {}
    for field in kiosk_fields(item):
        if field.prefill is not None:
            continue
        if field.type == "choice" and field.choices:  # a choice field has two or more (FormField checks)
            answers[field.name] = field.choices[0].value
        elif field.type == "checkbox":
            answers[field.name] = True
        elif field.type == "date":
            answers[field.name] = "20250101"
        elif field.type == "phone":
            answers[field.name] = "13800138000"
        elif field.type == "number":
            answers[field.name] = "1"
    return answers


def _visit_applications(app, shoot) -> list[Path]:
    """申报 with the card on the reader (one real application), then 进度查询."""
    app.go_home()
    _pump(3)
    _tap(app.manager.get_screen("home").ids.apply_tile)
    shots = [shoot("apply")]
    buttons = app.manager.get_screen("apply").item_buttons()
    if not buttons:
        raise RuntimeError("no item this kiosk can file in the catalog")
    _tap(buttons[0])
    if not _pump_until(lambda: app.manager.current == "apply_form"):
        raise RuntimeError(f"no card was read within 10 s ({app.card_state}): the tour needs a card on the reader")
    item = app.guides.item(app.apply.item)
    app.apply.entered = {**app.apply.entered, **{k: v for k, v in sample_answers(item).items() if k != "promise"}}
    _pump(3)
    shots.append(shoot("apply_form"))
    app.apply.entered = {**app.apply.entered, **sample_answers(item)}
    app.apply.next()
    _pump(3)
    shots.append(shoot("apply_review"))
    _tap(app.manager.get_screen("apply_review").ids.submit_button)
    if not _pump_until(lambda: app.manager.current == "apply_done" and not app.apply.busy, timeout=15):
        raise RuntimeError(f"the application was not filed within 15 s: {app.apply.error or 'no answer'}")
    number = app.apply.result["number"]
    shots.append(shoot("apply_done"))
    app.go_home()
    _pump(3)
    _tap(app.manager.get_screen("home").ids.progress_tile)
    app.progress.number, app.progress.focus = number, "code"
    _pump(3)
    shots.append(shoot("progress"))
    card = app.cards.present()
    if card is None:
        raise RuntimeError("the card was lifted during the tour")
    app.progress.by_card(card["id_number"])
    if not _pump_until(lambda: app.manager.current == "progress_result"):
        raise RuntimeError(f"no progress within 10 s: {app.progress.message}")
    shots.append(shoot("progress_result"))
    return shots


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosq.kiosk.tour", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder for the PNGs")
    parser.add_argument("--server", help="the hall server's URL (adds the ticket screens; takes real tickets)")
    parser.add_argument("--token-env", default="KIOSQ_TERMINAL_TOKEN",
                        help="environment variable holding this terminal's token (default: %(default)s)")
    parser.add_argument("--card-reader", help="an ID card reader's URI with a card on it "
                        "(adds the application screens; files real applications)")
    parser.add_argument("--catalog", type=Path, help="catalog database to show")
    parser.add_argument("--content", type=Path, help="folder of catalog JSON files (default: the sample)")
    args = parser.parse_args(argv)
    config = KioskConfig(catalog_db=args.catalog, content=args.content, server_url=args.server,
                         card_reader_uri=args.card_reader, terminal_token=os.environ.get(args.token_env))
    for path in render_tour(args.out_dir, config):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
