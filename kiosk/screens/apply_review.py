"""申报, fourth step: what will be sent, masked (kiosk.filing.review_lines), and submit."""

from __future__ import annotations

from kivy.app import App
from kivy.uix.screenmanager import Screen
from kivy.utils import escape_markup

from kiosq.kiosk.filing import review_lines
from kiosq.kiosk.widgets import BodyLabel


class ApplyReviewScreen(Screen):
    def on_kv_post(self, _base: object) -> None:
        app = App.get_running_app()
        app.bind(lang=self.refresh)
        app.apply.bind(entered=self.refresh, item=self.refresh)
        self.refresh()

    def on_pre_enter(self, *_args: object) -> None:
        self.refresh()

    def refresh(self, *_args: object) -> None:
        app = App.get_running_app()
        box = self.ids.lines
        box.clear_widgets()
        if not app.apply.item:
            return
        item = app.guides.item(app.apply.item)
        self.ids.item_name.text = item.name_en if app.lang == "en" else item.name
        for line in review_lines(item, dict(app.apply.entered), app.lang):
            box.add_widget(BodyLabel(text=f"[b]{escape_markup(line.label)}[/b]  {escape_markup(line.value)}",
                                     markup=True))
