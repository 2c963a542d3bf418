"""The maintenance screens at the kiosk: five taps in a corner, the PIN keypad, the test
print and the last slip's preview, in Kivy properties the screens bind to
(`app.maintenance.x`). The PIN rules are kiosk/maintenance.py's; the lockout's state is kept
in the data folder (maintenance.STATE_FILE), so a restarted kiosk is still locked."""

from __future__ import annotations

import logging
import math
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, StringProperty

from kiosq.devices.receipts import PAPER_58
from kiosq.kiosk.background import in_background
from kiosq.kiosk.maintenance import PIN_MAX, STATE_FILE, CornerTaps, PinGuard

if TYPE_CHECKING:
    from kiosq.kiosk.app import KiosqApp
    from kiosq.kiosk.settings import KioskConfig

log = logging.getLogger(__name__)


def pin_state_file(config: KioskConfig) -> Path | None:
    """Where the PIN lockout is kept: DATA_DIR/maintenance-pin.json; None (in memory, lost at
    a restart) for a kiosk with no data folder, which only a developer runs."""
    if config.data_dir is None:
        if config.maintenance_pin_hash:
            log.warning("no data folder configured: the maintenance PIN lockout is not kept across restarts "
                        "(set [terminal] data_dir in the terminal config)")
        return None
    return Path(config.data_dir) / STATE_FILE


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
        self.pin_guard = PinGuard(app.kiosk_config.maintenance_pin_hash, pin_state_file(app.kiosk_config))
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
            if not self.app.kiosk_config.maintenance_pin_hash:
                self.pin_message = self.app.msg["maint_no_pin"]
            else:  # a lockout says so at once, even one from before a restart
                self.pin_message = self.locked_message() if self.pin_guard.locked_for() > 0 else ""
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
        lockouts = self.pin_guard.state.lockouts
        result = self.pin_guard.attempt(pin)
        if result == "ok":
            self.pin_message = ""
            self.test_print_message = ""
            self.app.show("maintenance", remember=False)
        elif result == "wrong":
            self.pin_message = msg["maint_pin_wrong"].format(n=self.pin_guard.tries_left())
        elif result == "locked":
            self.pin_message = self.locked_message()
            if self.pin_guard.state.lockouts != lockouts:
                self.app.fleet.wake_heartbeat()  # a new lockout reaches the fleet view at once
        else:
            self.pin_message = msg["maint_no_pin"]

    def locked_message(self) -> str:
        """How long the keypad stays locked: seconds in the last minute, else minutes."""
        left = self.pin_guard.locked_for()
        if left > 60:
            return self.app.msg["maint_pin_locked_minutes"].format(n=math.ceil(left / 60))
        return self.app.msg["maint_pin_locked"].format(n=max(1, math.ceil(left)))

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
