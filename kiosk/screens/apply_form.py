"""申报, third step: the form, prefilled from the ID card. Typed fields are buttons that
take the keyboard when touched; choices are rows of buttons; boxes are ticked with a
touch. What the card gave is shown masked and is not typed over. Problems are marked
in red when the citizen touches "next"."""

from __future__ import annotations

from kiosq.content.model import FormField
from kiosq.kiosk.filing import kiosk_fields, masked, shown
from kivy.app import App
from kivy.metrics import dp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.gridlayout import GridLayout
from kivy.uix.screenmanager import Screen
from kivy.uix.togglebutton import ToggleButton

from kiosq.kiosk.widgets import BodyLabel

BLUE, PALE, RED, DARK = (0.09, 0.36, 0.70, 1), (0.85, 0.91, 0.98, 1), (0.75, 0.10, 0.10, 1), (0.10, 0.20, 0.40, 1)


class ApplyFormScreen(Screen):
    def on_kv_post(self, _base: object) -> None:
        app = App.get_running_app()
        app.bind(form_entered=self.refresh, form_focus=self.refresh, form_problems=self.refresh, lang=self.refresh,
                 apply_item=self.refresh, elder=self.refresh)
        self.ids.keyboard.bind(on_key=lambda _kb, key: App.get_running_app().form_key(key))
        self.controls: dict[str, list] = {}
        self.refresh()

    def refresh(self, *_args: object) -> None:
        app = App.get_running_app()
        box = self.ids.fields
        box.clear_widgets()
        self.controls = {}
        if not app.apply_item:
            return
        for field in kiosk_fields(app.guides.item(app.apply_item)):
            box.add_widget(self._row(app, field))

    def _row(self, app, field: FormField) -> BoxLayout:
        en = app.lang == "en"
        label = (field.label_en if en else field.label) + (" *" if field.required else "")
        value = app.form_entered.get(field.name)
        problem = app.form_problems.get(field.name)
        row = BoxLayout(orientation="vertical", size_hint_y=None, spacing=dp(4))
        row.add_widget(BodyLabel(text=label, bold=True))
        controls: list = []
        if field.prefill is not None and value:
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
                button.bind(on_release=lambda _b, v=choice.value: App.get_running_app().form_set(field.name, v))
                grid.add_widget(button)
                controls.append(button)
            row.add_widget(grid)
        elif field.type == "checkbox":
            button = Button(text=("☑ " if value else "☐ ") + (field.hint_en if en else field.hint or label).strip(),
                            font_size=dp(app.body_dp), size_hint_y=None, height=dp(app.target_dp),
                            background_normal="", background_down="", halign="left", valign="middle",
                            background_color=BLUE if value else PALE, color=(1, 1, 1, 1) if value else DARK)
            button.bind(width=lambda b, w: setattr(b, "text_size", (w - dp(24), None)))
            button.bind(on_release=lambda _b: App.get_running_app().form_set(field.name, not value))
            row.add_widget(button)
            controls.append(button)
        else:
            focused = app.form_focus == field.name
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
            button.bind(on_release=lambda _b: setattr(App.get_running_app(), "form_focus", field.name))
            row.add_widget(button)
            controls.append(button)
        if problem:
            words = {"required": "apply_field_required", "must be ticked": "apply_field_tick"}
            row.add_widget(BodyLabel(text=app.msg[words.get(problem, "apply_field_wrong")], color=RED))
        row.bind(minimum_height=row.setter("height"))
        self.controls[field.name] = controls
        return row
