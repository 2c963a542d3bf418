"""The guide screen: departments and their categories on the left, the items (or the
search results, updated at every key) on the right, the on-screen keyboard below. While a
citizen browses a department the keyboard folds away to give the lists the room; a tap on
the search line brings it back."""

from __future__ import annotations

from kivy.app import App
from kivy.properties import BooleanProperty
from kivy.uix.screenmanager import Screen

from kiosq.kiosk.guides import Entry
from kiosq.kiosk.widgets import ListButton, typed


class GuideScreen(Screen):
    """Redraws its lists when the app's query, department, category or language change."""

    keyboard_wanted = BooleanProperty(False)  # the search line was tapped while browsing
    keyboard_shown = BooleanProperty(True)

    def on_kv_post(self, _base: object) -> None:
        app = App.get_running_app()
        app.bind(query=self.refresh, department=self.refresh, category=self.refresh, lang=self.refresh)
        app.bind(department=self._browsing, category=self._browsing)
        self.bind(keyboard_wanted=self._fold)
        self.ids.keyboard.bind(on_key=lambda _kb, key: self.key(key))
        self.refresh()

    def key(self, key: str) -> None:
        app = App.get_running_app()
        app.query = typed(app.query, key)

    def _browsing(self, *_args: object) -> None:
        self.keyboard_wanted = False  # a department or category chosen: the keyboard folds

    def _fold(self, *_args: object) -> None:
        app = App.get_running_app()
        self.keyboard_shown = bool(self.keyboard_wanted or app.query or not app.department)

    def refresh(self, *_args: object) -> None:
        self._fill_departments()
        self._fill_results()
        self._fold()

    def result_buttons(self) -> list[ListButton]:
        """The item lines shown, top first."""
        return list(reversed(self.ids.results.children))

    def _fill_departments(self) -> None:
        app = App.get_running_app()
        box = self.ids.departments
        box.clear_widgets()
        for department in app.guides.departments():
            box.add_widget(self._line(department, 0, department == app.department and not app.category,
                                      lambda d=department: app.choose(d, "")))
            if department == app.department:
                for category in app.guides.categories(department):
                    box.add_widget(self._line(category, 1, category == app.category,
                                              lambda d=department, c=category: app.choose(d, c)))

    def _fill_results(self) -> None:
        app = App.get_running_app()
        if app.query.strip():
            entries = app.guides.search(app.query)
            heading = app.msg["results_for"].format(q=app.query)
        elif app.department:
            entries = app.guides.browse(app.department, app.category or None)
            heading = app.msg["browse_items"].format(what=app.category or app.department)
        else:
            entries, heading = [], app.msg["choose_department"]
        self.ids.heading.text = heading
        self.ids.empty.text = app.msg["no_results"] if app.query.strip() and not entries else ""
        box = self.ids.results
        box.clear_widgets()
        for entry in entries:
            box.add_widget(self._item(entry, app.lang))
        self.ids.results_scroll.scroll_y = 1

    @staticmethod
    def _line(text: str, level: int, chosen: bool, action) -> ListButton:
        button = ListButton(text=text, level=level, state="down" if chosen else "normal")
        button.bind(on_release=lambda _b: action())
        return button

    @staticmethod
    def _item(entry: Entry, lang: str) -> ListButton:
        button = ListButton(text=entry.title(lang), code=entry.code)
        button.bind(on_release=lambda b: App.get_running_app().open_item(b.code))
        return button
