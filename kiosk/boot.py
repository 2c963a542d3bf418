"""What must happen before Kivy is imported (its environment) or before its window opens
(the kiosk settings). Kivy reads KIVY_HOME and KIVY_NO_ARGS at import and the [graphics]
settings when the window is created, so both live here, apart from the widgets.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
KIOSK_SETTINGS = {
    "kivy": {"exit_on_escape": "0", "keyboard_mode": "dock"},
    "graphics": {"fullscreen": "auto", "show_cursor": "0", "allow_screensaver": "0"},
}


def prepare_environment(kivy_home: Path | None = None) -> None:
    """Kivy keeps its config and logs in KIVY_HOME (never the user's ~/.kivy) and leaves
    the command line alone. Values already set (by a test, or systemd) win."""
    home = kivy_home or Path(tempfile.gettempdir()) / "kiosq-kivy"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("KIVY_HOME", str(home))
    os.environ.setdefault("KIVY_NO_ARGS", "1")


def apply_kiosk_settings() -> None:
    """Full screen, no cursor, no screensaver, Escape does not quit: for a real kiosk
    run, before the window is created (tests keep Kivy's defaults)."""
    from kivy.config import Config

    for section, values in KIOSK_SETTINGS.items():
        for key, value in values.items():
            Config.set(section, key, value)
