"""A screenshot tour of the kiosk: the whole app started offscreen (as the tests start it),
every screen reachable without a server (home, the guide with the results of typing "sfz"
on the on-screen keyboard, an item's detail) and, with a hall server, the ticket screens
(services, confirm, the issued ticket: the tour takes one real ticket per variant), in
Chinese, English and elder mode, landscape 1920×1080 and portrait 1080×1920. One PNG per
(screen, variant): OUT_DIR/home-zh-landscape.png, detail-elder-portrait.png, ...

    python -m kiosq.kiosk.tour OUT_DIR [--server URL]   # token from $KIOSQ_TERMINAL_TOKEN

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

from kiosq.kiosk.config import KioskConfig

VARIANTS: dict[str, tuple[str, bool]] = {"zh": ("zh", False), "en": ("en", False), "elder": ("zh", True)}
ORIENTATIONS: dict[str, tuple[int, int]] = {"landscape": (1920, 1080), "portrait": (1080, 1920)}
SCREENS = ("home", "guide", "detail")
TICKET_SCREENS = ("ticket", "ticket_confirm", "ticket_done")


def expected_names(with_server: bool = False) -> list[str]:
    """The file names render_tour writes, in order."""
    screens = SCREENS + (TICKET_SCREENS if with_server else ())
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
    from kiosq.kiosk.app import KiosqApp
    from kivy.base import EventLoop
    from kivy.core.window import Window

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
        app.wipe()
        _pump(2)
        app._stop()
    return written


def _visit(app, out_dir: Path, suffix: str, lang: str, elder: bool) -> list[Path]:
    def screen(name: str):
        return app.manager.get_screen(name)

    def shoot(name: str) -> Path:
        assert app.manager.current == name, f"the tour expected {name}, the kiosk shows {app.manager.current}"
        return _shoot(out_dir / f"{name}-{suffix}.png")

    app.wipe()
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
        if not _pump_until(lambda: app.services_state not in ("", "loading")):
            raise RuntimeError("the hall server's services did not load within 10 s")
        _pump(3)
        shots.append(shoot("ticket"))
        buttons = screen("ticket").service_buttons()
        if app.services_state != "ready" or not buttons:
            raise RuntimeError(f"no services to choose from: {app.services_error or 'none listed'}")
        _tap(buttons[0])
        shots.append(shoot("ticket_confirm"))
        _tap(screen("ticket_confirm").ids.confirm_button)
        if not _pump_until(lambda: app.manager.current == "ticket_done" and not app.ticket_busy):
            raise RuntimeError(f"no ticket issued within 10 s: {app.ticket_error or 'no answer'}")
        shots.append(shoot("ticket_done"))
    return shots


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosq.kiosk.tour", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder for the PNGs")
    parser.add_argument("--server", help="the hall server's URL (adds the ticket screens; takes real tickets)")
    parser.add_argument("--token-env", default="KIOSQ_TERMINAL_TOKEN",
                        help="environment variable holding this terminal's token (default: %(default)s)")
    parser.add_argument("--catalog", type=Path, help="catalog database to show")
    parser.add_argument("--content", type=Path, help="folder of catalog JSON files (default: the sample)")
    args = parser.parse_args(argv)
    config = KioskConfig(catalog_db=args.catalog, content=args.content, server_url=args.server,
                         terminal_token=os.environ.get(args.token_env))
    for path in render_tour(args.out_dir, config):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
