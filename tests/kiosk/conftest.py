"""A real Kivy window for the kiosk tests, rendered offscreen (DISPLAY unset: SDL draws
through Mesa), one window and one app for a test module, and helpers that tap widgets with
real touch events and let Kivy's clock run."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest

# Before Kivy is imported anywhere: its home in a temp folder, no command-line parsing,
# no X (the offscreen driver), the console log kept short.
os.environ["KIVY_HOME"] = tempfile.mkdtemp(prefix="kiosq-kivy-test-")
os.environ["KIVY_NO_ARGS"] = "1"
os.environ["KIVY_LOG_MODE"] = "PYTHON"
os.environ.pop("DISPLAY", None)

from kivy.config import Config

Config.set("graphics", "width", "1280")
Config.set("graphics", "height", "800")
Config.set("input", "mouse", "")  # touches come from the tests only

SHOTS = Path(__file__).resolve().parents[2] / "build" / "kiosk"


def pump(frames: int = 3) -> None:
    """Run Kivy's loop for a few frames (clock, layout, drawing)."""
    from kivy.base import EventLoop

    for _ in range(frames):
        EventLoop.idle()


def pump_until(done: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Run Kivy's loop until done() or the timeout; whether done() came true."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        pump(1)
        if done():
            return True
        time.sleep(0.01)
    return done()


def tap(widget) -> None:
    """A real touch, down and up, at the widget's centre in window coordinates."""
    from kivy.tests.common import UnitTestTouch

    x, y = widget.to_window(*widget.center)
    touch = UnitTestTouch(x, y)
    touch.touch_down()
    pump(1)
    touch.touch_up()
    pump(2)


def window_image():
    """The window as a PIL image (through a PNG screenshot in a temp folder)."""
    from kivy.core.window import Window
    from PIL import Image

    pump(2)
    with tempfile.TemporaryDirectory(prefix="kiosq-shot-") as tmp:
        written = Path(Window.screenshot(name=str(Path(tmp) / "window.png")))
        with Image.open(written) as image:
            return image.convert("RGB")


def screenshot(name: str) -> Path:
    """The window as build/kiosk/NAME.png."""
    from kivy.core.window import Window

    SHOTS.mkdir(parents=True, exist_ok=True)
    pump(2)
    written = Path(Window.screenshot(name=str(SHOTS / f"{name}.png")))
    target = SHOTS / f"{name}.png"
    written.replace(target)
    return target


@pytest.fixture(scope="module")
def printer_sim():
    from kiosq.devices.sim.printer import PrinterSimulator

    with PrinterSimulator() as sim:
        yield sim


@contextmanager
def running_app(config, **kwargs):
    """The whole app on the (reused) window, started the way App.run() starts it, and
    stopped afterwards; each test module's `kiosk_app` fixture makes one with its config
    (kwargs go to KiosqApp, e.g. a Speaker writing WAV files)."""
    from kivy.base import EventLoop

    from kiosq.kiosk.app import KiosqApp

    app = KiosqApp(config, **kwargs)
    EventLoop.ensure_window()
    app._run_prepare()
    EventLoop.start()
    pump(5)
    try:
        yield app
    finally:
        app._stop()


@pytest.fixture(scope="module")
def kiosk_app(tmp_path_factory, printer_sim):
    from kiosq.kiosk.settings import KioskConfig

    with running_app(KioskConfig(printer_uri=printer_sim.uri, data_dir=tmp_path_factory.mktemp("kiosk"))) as app:
        yield app


@pytest.fixture
def app(kiosk_app, printer_sim):
    """The app at home, its session wiped and the printer full of paper."""
    printer_sim.set_paper("ok")
    kiosk_app.session.wipe()
    pump(3)
    return kiosk_app
