"""The maintenance PIN: a numeric keypad, the digits shown as dots, and what went wrong
(a wrong PIN, the lockout after five, or no PIN configured on this kiosk)."""

from kivy.app import App
from kivy.uix.screenmanager import Screen

from kiosq.kiosk.widgets import KeyButton

PAD = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "clear", "0", "backspace")


class MaintenancePinScreen(Screen):
    """Layout in maintenance_pin.kv; `keys` maps a key to its button."""

    def on_kv_post(self, _base: object) -> None:
        app = App.get_running_app()
        self.keys: dict[str, KeyButton] = {}
        for key in PAD:
            button = KeyButton(key=key, disabled=not app.kiosk_config.maintenance_pin_hash)
            button.bind(on_release=lambda b: App.get_running_app().maintenance.pin_key(b.key))
            self.keys[key] = button
            self.ids.pad.add_widget(button)
