"""申报, third step: the form, prefilled from the ID card (or, without one, with the name and
ID number to type). Typed fields are buttons that take the keyboard when touched; in a
Chinese field the letters compose pinyin and a row of characters to touch appears above the
keyboard (a space takes the first); choices are rows of buttons; boxes are ticked with a
touch. What the card gave is shown masked and is not typed over. Problems are marked in red
when the citizen touches "next"."""

from __future__ import annotations

from kivy.app import App
from kivy.metrics import dp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.gridlayout import GridLayout
from kivy.uix.screenmanager import Screen
from kivy.uix.togglebutton import ToggleButton

from kiosq.content.model import FormField
from kiosq.kiosk.filing import kiosk_fields, masked, shown
from kiosq.kiosk.pinyin_input import candidates
from kiosq.kiosk.widgets import BodyLabel

BLUE, PALE, RED, DARK = (0.09, 0.36, 0.70, 1), (0.85, 0.91, 0.98, 1), (0.75, 0.10, 0.10, 1), (0.10, 0.20, 0.40, 1)


class ApplyFormScreen(Screen):
    def on_kv_post(self, _base: object) -> None:
        app = App.get_running_app()
        app.bind(lang=self.refresh, elder=self.refresh)
        app.apply.bind(entered=self.refresh, focus=self.refresh, problems=self.refresh, item=self.refresh,
                       typed=self.refresh)
        app.apply.bind(compose=self._fill_candidates)
        self._page = 0
        self.ids.keyboard.bind(on_key=lambda _kb, key: App.get_running_app().apply.key(key))
        self.controls: dict[str, list] = {}
        self.refresh()

    def refresh(self, *_args: object) -> None:
        app = App.get_running_app()
        box = self.ids.fields
        box.clear_widgets()
        self.controls = {}
        if not app.apply.item:
            return
        for field in kiosk_fields(app.guides.item(app.apply.item)):
            box.add_widget(self._row(app, field))

    def candidate_buttons(self) -> list[Button]:
        return [w for w in reversed(self.ids.candidates.children) if getattr(w, "char", "")]

    def _fill_candidates(self, *_args: object) -> None:
        """The characters for the pinyin typed so far, ten at a time (更多: the next ten)."""
        app = App.get_running_app()
        bar = self.ids.candidates
        bar.clear_widgets()
        if not app.apply.compose:
            self._page = 0
            return
        field = next((f for f in kiosk_fields(app.guides.item(app.apply.item)) if f.name == app.apply.focus), None)
        text = str(app.apply.entered.get(app.apply.focus) or "")
        found = candidates(app.apply.compose, surname=bool(field and field.prefill == "name" and not text))
        per_page = 6 if app.elder else 10
        pages = max(1, -(-len(found) // per_page))
        self._page %= pages
        bar.add_widget(BodyLabel(text=app.apply.compose, size_hint=(None, 1), width=dp(app.body_dp) * 4, bold=True,
                                 color=BLUE))
        for char in found[self._page * per_page:(self._page + 1) * per_page]:
            button = Button(text=char, font_size=dp(app.title_dp), background_normal="", background_down="",
                            background_color=PALE, color=DARK)
            button.char = char
            button.bind(on_release=lambda b: App.get_running_app().apply.pick(b.char))
            bar.add_widget(button)
        if pages > 1:
            more = Button(text=app.msg["apply_more"], font_size=dp(app.body_dp), size_hint_x=None,
                          width=max(dp(app.target_dp), dp(app.body_dp) * 3), background_normal="",
                          background_down="", background_color=BLUE, color=(1, 1, 1, 1))
            more.bind(on_release=lambda _b: self._next_page())
            bar.add_widget(more)

    def _next_page(self) -> None:
        self._page += 1
        self._fill_candidates()

    def _row(self, app, field: FormField) -> BoxLayout:
        en = app.lang == "en"
        label = (field.label_en if en else field.label) + (" *" if field.required else "")
        value = app.apply.entered.get(field.name)
        problem = app.apply.problems.get(field.name)
        row = BoxLayout(orientation="vertical", size_hint_y=None, spacing=dp(4))
        row.add_widget(BodyLabel(text=label, bold=True))
        controls: list = []
        if field.prefill is not None and value and not app.apply.typed:
            row.add_widget(BodyLabel(text=masked(field, value, app.lang)))
        elif field.type == "choice":
            grid = GridLayout(cols=2, spacing=dp(8), size_hint_y=None)
            grid.bind(minimum_height=grid.setter("height"))
            for choice in field.choices or ():
                button = ToggleButton(text=choice.label_en if en else choice.label, group=f"form-{field.name}",
                                      state="down" if value == choice.value else "normal", allow_no_selection=False,
                                      font_size=dp(app.body_dp), size_hint_y=None, height=dp(app.target_dp),
                                      background_normal="", background_down="", halign="center", valign="middle",
                                      background_color=BLUE if value == choice.value else PALE,
                                      color=(1, 1, 1, 1) if value == choice.value else DARK)
                button.bind(width=lambda b, w: setattr(b, "text_size", (w - dp(16), None)))
                button.bind(on_release=lambda _b, v=choice.value: App.get_running_app().apply.set(field.name, v))
                grid.add_widget(button)
                controls.append(button)
            row.add_widget(grid)
        elif field.type == "checkbox":
            button = Button(text=("✓ " if value else "□ ") + (field.hint_en if en else field.hint or label).strip(),
                            font_size=dp(app.body_dp), size_hint_y=None, height=dp(app.target_dp),
                            background_normal="", background_down="", halign="left", valign="middle",
                            background_color=BLUE if value else PALE, color=(1, 1, 1, 1) if value else DARK)
            button.bind(width=lambda b, w: setattr(b, "text_size", (w - dp(24), None)))
            button.bind(on_release=lambda _b: App.get_running_app().apply.set(field.name, not value))
            row.add_widget(button)
            controls.append(button)
        else:
            focused = app.apply.focus == field.name
            text = shown(field, str(value or ""))
            hint = field.hint_en if en else field.hint
            button = Button(text=(text or hint or "") + ("▏" if focused else ""), font_size=dp(app.title_dp),
                            size_hint_y=None, height=dp(app.target_dp), background_normal="", background_down="",
                            halign="left", valign="middle",
                            background_color=(1, 1, 1, 1), color=DARK if text else (0.40, 0.43, 0.48, 1))
            button.bind(size=lambda b, s: setattr(b, "text_size", (s[0] - dp(24), None)))
            with button.canvas.after:
                from kivy.graphics import Color, Line

                Color(*(BLUE if focused else (0.55, 0.60, 0.68, 1)))
                outline = Line(width=dp(3) if focused else dp(1))
            button.bind(pos=lambda b, _p, o=outline: setattr(o, "rectangle", (b.x, b.y, b.width, b.height)),
                        size=lambda b, _s, o=outline: setattr(o, "rectangle", (b.x, b.y, b.width, b.height)))
            button.bind(on_release=lambda _b: App.get_running_app().apply.focus_field(field.name))
            row.add_widget(button)
            controls.append(button)
        if problem:
            words = {"required": "apply_field_required", "must be ticked": "apply_field_tick"}
            row.add_widget(BodyLabel(text=app.msg[words.get(problem, "apply_field_wrong")], color=RED))
        row.bind(minimum_height=row.setter("height"))
        self.controls[field.name] = controls
        return row
