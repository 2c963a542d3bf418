"""The maintenance screens at the kiosk: five taps in a corner, the PIN keypad, the test
print and the last slip's preview, in Kivy properties the screens bind to
(`app.maintenance.x`). The PIN rules are kiosk/maintenance.py's."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, StringProperty

from kiosq.devices.receipts import PAPER_58
from kiosq.kiosk.background import in_background
from kiosq.kiosk.maintenance import MAX_TRIES, CornerTaps, PinGuard

if TYPE_CHECKING:
    from kiosq.kiosk.app import KiosqApp

PIN_MAX = 12


class MaintenanceFlow(EventDispatcher):
    """The PIN being typed and what the keypad says, the test print's outcome and the last
    slip's preview (a PNG path; "" when this kiosk has printed nothing yet)."""

    pin_entry = StringProperty("")
    pin_message = StringProperty("")
    test_printing = BooleanProperty(False)
    test_print_message = StringProperty("")
    last_slip_png = StringProperty("")

    def __init__(self, app: KiosqApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.corner_taps = CornerTaps()
        self._last_corner_touch: object = None
        self.pin_guard = PinGuard(app.kiosk_config.maintenance_pin_hash)
        self._preview_dir = tempfile.mkdtemp(prefix="kiosq-slip-preview-")
        self._preview_count = 0

    def corner_tap(self, touch_id: object = None) -> None:
        """A tap in the home screen's top-left corner: the fifth within 3 s asks for the PIN.
        One touch counts once, however many corner widgets it reaches (a .kv loaded twice)."""
        if touch_id is not None:
            if touch_id == self._last_corner_touch:
                return
            self._last_corner_touch = touch_id
        if self.corner_taps.tap():
            self.pin_entry = ""
            self.pin_message = "" if self.app.kiosk_config.maintenance_pin_hash else self.app.msg["maint_no_pin"]
            self.app.show("maintenance_pin")

    def pin_key(self, key: str) -> None:
        if key == "backspace":
            self.pin_entry = self.pin_entry[:-1]
        elif key == "clear":
            self.pin_entry = ""
        elif key.isdigit() and len(self.pin_entry) < PIN_MAX:
            self.pin_entry += key

    def submit_pin(self) -> None:
        """Check the typed PIN: the maintenance screen, or why not."""
        msg = self.app.msg
        pin, self.pin_entry = self.pin_entry, ""
        result = self.pin_guard.attempt(pin)
        if result == "ok":
            self.pin_message = ""
            self.test_print_message = ""
            self.app.show("maintenance", remember=False)
        elif result == "wrong":
            self.pin_message = msg["maint_pin_wrong"].format(n=MAX_TRIES - self.pin_guard.wrong)
        elif result == "locked":
            self.pin_message = msg["maint_pin_locked"].format(n=max(1, round(self.pin_guard.locked_for())))
        else:
            self.pin_message = msg["maint_no_pin"]

    def refresh(self) -> None:
        """Ask for fresh device states and redraw the last slip (the maintenance screen's entry)."""
        self.app.fleet.check_status()
        self.render_last_slip()

    def test_print(self) -> None:
        """Print a test slip on a worker thread; the outcome in test_print_message."""
        from kiosq.kiosk.printing import print_test

        if self.test_printing:
            return
        msg = self.app.msg
        self.test_printing = True
        self.test_print_message = msg["printing"]
        printer = self.app.printer
        lines = [msg["maint_test_slip"], msg["maint_terminal"].format(id=self.app.kiosk_config.terminal_id),
                 datetime.now().strftime("%Y-%m-%d %H:%M:%S")]
        in_background(lambda: print_test(printer, lines), self._test_printed, "test-print")

    def _test_printed(self, key: str) -> None:
        self.test_printing = False
        self.test_print_message = self.app.msg[key]
        self.refresh()

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
        printer = self.app.printer
        width = printer.paper.dots if printer is not None else PAPER_58.dots

        def draw() -> str:
            preview_png(decode(data), path, width)
            return str(path)

        in_background(draw, self._slip_rendered, "slip-preview")  # a failure is logged; the old preview stays

    def _slip_rendered(self, path: str) -> None:
        old, self.last_slip_png = self.last_slip_png, path
        if old and old != path:
            Path(old).unlink(missing_ok=True)

    def forget(self) -> None:
        self.pin_entry = self.pin_message = self.test_print_message = ""
