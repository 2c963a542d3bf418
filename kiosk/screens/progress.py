"""进度查询: the tracking number (or provisional number) and the last four characters of
the ID number typed on the keyboard, or an ID card placed on the reader (the app looks
that person's applications up)."""

from __future__ import annotations

from kivy.app import App
from kivy.uix.screenmanager import Screen


class ProgressScreen(Screen):
    def on_kv_post(self, _base: object) -> None:
        self.ids.keyboard.bind(on_key=lambda _kb, key: App.get_running_app().progress.key(key))
