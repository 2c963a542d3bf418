"""申报, first step: the items this kiosk can file (kiosk.filing.fileable_here), one
large line each; choosing one asks for the ID card."""

from __future__ import annotations

from kivy.app import App
from kivy.uix.screenmanager import Screen

from kiosq.kiosk.filing import fileable_here
from kiosq.kiosk.widgets import ListButton


class ApplyScreen(Screen):
    def on_kv_post(self, _base: object) -> None:
        App.get_running_app().bind(lang=self.refresh)
        self.refresh()

    def item_buttons(self) -> list[ListButton]:
        return list(reversed(self.ids.item_list.children))

    def refresh(self, *_args: object) -> None:
        app = App.get_running_app()
        box = self.ids.item_list
        box.clear_widgets()
        for item in app.guides.items.values():
            if fileable_here(item):
                name = item.name_en if app.lang == "en" else item.name
                button = ListButton(text=f"{name}  ·  {item.department}", code=item.code)
                button.bind(on_release=lambda b: App.get_running_app().apply.start(b.code))
                box.add_widget(button)
