"""申报, second step: place the ID card. The app reads it (kiosk.cards) and moves on to the
form by itself; this screen says what the reader is doing, or why it cannot."""

from __future__ import annotations

from kivy.app import App
from kivy.uix.screenmanager import Screen

PROMPTS = {"waiting": "apply_card_prompt", "read": "apply_card_reading", "unreadable": "apply_card_unreadable",
           "lost": "apply_card_lost", "no_reader": "apply_card_no_reader"}


class ApplyCardScreen(Screen):
    def on_kv_post(self, _base: object) -> None:
        app = App.get_running_app()
        app.bind(lang=self.refresh)
        app.apply.bind(item=self.refresh)
        self.refresh()

    @staticmethod
    def prompt_text(state: str, msg: dict[str, str]) -> str:
        return msg[PROMPTS.get(state, "apply_card_prompt")]

    def refresh(self, *_args: object) -> None:
        app = App.get_running_app()
        if app.apply.item:
            item = app.guides.item(app.apply.item)
            name = item.name_en if app.lang == "en" else item.name
            self.ids.item_name.text = app.msg["apply_card_for"].format(name=name)
