"""The kiosk's shared widgets (styled in widgets.kv): tiles, list buttons, the on-screen
keyboard, the idle prompt, the status bar, QR codes, the done screens' rating row and the
maintenance corner."""

from __future__ import annotations

from kivy.app import App
from kivy.graphics.texture import Texture
from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.image import Image
from kivy.uix.label import Label
from kivy.uix.modalview import ModalView
from kivy.uix.widget import Widget

from kiosq.kiosk.rating_flow import LEVELS

KEY_ROWS: tuple[tuple[str, ...], ...] = (
    tuple("1234567890"),
    tuple("qwertyuiop"),
    tuple("asdfghjkl") + ("backspace",),
    tuple("zxcvbnm-") + ("space", "clear"),
)


class Tile(Button):
    """A big home-screen button with a second, smaller line."""

    hint = StringProperty("")


class ListButton(Button):
    """One line of a list (a department, a category, an item); `code` is what it opens."""

    code = StringProperty("")
    level = NumericProperty(0)  # 1: indented under the line above


class QrCode(Image):
    """A QR code of `data`, drawn module by module (nearest filtering keeps it sharp at any
    size), dark on white with the quiet zone the standard asks for; nothing when data is ""."""

    data = StringProperty("")

    def on_data(self, _widget: object, data: str) -> None:
        if not data:
            self.texture = None
            return
        import qrcode

        code = qrcode.QRCode(border=4, error_correction=qrcode.constants.ERROR_CORRECT_M)
        code.add_data(data)
        code.make(fit=True)
        matrix = code.get_matrix()
        side = len(matrix)
        dark, light = b"\x10\x10\x10\xff", b"\xff\xff\xff\xff"
        # textures start at the bottom row; RGBA keeps every row 4-byte aligned
        pixels = b"".join(dark if cell else light for row in reversed(matrix) for cell in row)
        texture = Texture.create(size=(side, side), colorfmt="rgba")
        texture.mag_filter = texture.min_filter = "nearest"
        texture.blit_buffer(pixels, colorfmt="rgba", bufferfmt="ubyte")
        self.texture = texture


class BodyLabel(Label):
    """Dark text on the light background, wrapped to its width, as tall as its text."""


class SearchBar(ButtonBehavior, Label):
    """The search line: shows what was typed; a tap on it brings the keyboard back."""


class KeyButton(Button):
    """One key: a letter or digit types itself; backspace, space and clear are named keys."""

    key = StringProperty("")


class OnScreenKeyboard(BoxLayout):
    """Letters (for pinyin and initials), digits, space, backspace and clear; dispatches
    on_key(key) for each key tapped. `keys` maps a key to its button."""

    __events__ = ("on_key",)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(orientation="vertical", **kwargs)
        self.keys: dict[str, KeyButton] = {}
        for row in KEY_ROWS:
            line = BoxLayout(orientation="horizontal")
            for key in row:
                button = KeyButton(key=key)
                button.bind(on_release=lambda b: self.dispatch("on_key", b.key))
                self.keys[key] = button
                line.add_widget(button)
            self.add_widget(line)

    def on_key(self, key: str) -> None:
        """Default handler: the screen binds its own."""


def typed(query: str, key: str, limit: int = 30) -> str:
    """The query after a key press."""
    if key == "backspace":
        return query[:-1]
    if key == "clear":
        return ""
    if key == "space":
        return query + " " if query and not query.endswith(" ") and len(query) < limit else query
    return query + key if len(query) < limit else query


class IdlePrompt(ModalView):
    """"还在吗？" with the seconds left; any touch closes it (the app's idle watcher)."""

    seconds = NumericProperty(0)
    app = ObjectProperty(None, allownone=True)


class ServiceButton(Button):
    """A queue service on the ticket screen: its name, and how many wait and how long."""

    code = StringProperty("")


class StatusBar(BoxLayout):
    """Above every screen: the time, the hall server (when one is configured) and the
    printer, from the app's clock_text, server_state and printer_state (widgets.kv)."""


class RatingButton(Button):
    """One choice in the rating row: a level (1..5), or a 差评's reason (`reason`, zh)."""

    level = NumericProperty(0)
    reason = StringProperty("")


class RatingRow(BoxLayout):
    """"请为本次自助服务评价" beside (or above) the five levels; a 差评 opens the hall's
    reasons (`RatingReasons`); then the thanks in place of the row (the state is
    app.rating's, kiosk/rating_flow.py). `needed` is its height; with `shown` False it takes
    no room and nothing in it can be tapped (a done screen shows it only where it fits)."""

    shown = BooleanProperty(True)
    needed = NumericProperty(0)
    quiet = BooleanProperty(False)  # the prompt in grey: the rating could not be sent

    def on_kv_post(self, _base: object) -> None:
        app = App.get_running_app()
        self.reasons = RatingReasons()
        app.bind(msg=self.refresh)
        app.rating.bind(state=self.refresh)
        app.rating.load_reasons()
        self.bind(orientation=self._arrange)
        self.refresh()

    def refresh(self, *_args: object) -> None:
        app = App.get_running_app()
        flow, msg, choices = app.rating, app.msg, self.ids.choices
        choices.clear_widgets()
        self.quiet = flow.state == "failed"
        if flow.state in ("", "reasons"):
            self.ids.prompt.text = msg["rating_prompt"]
            for level in LEVELS:
                button = RatingButton(text=msg[f"rating_level_{level}"], level=level)
                button.bind(on_release=self._tapped)
                choices.add_widget(button)
        else:
            self.ids.prompt.text = msg["rating_thanks" if flow.state == "thanks" else "rating_failed"]
        self._arrange()

    def _tapped(self, button: RatingButton) -> None:
        flow = App.get_running_app().rating
        flow.rate(int(button.level))
        if flow.state == "reasons":
            self.reasons.open(animation=False)

    def _arrange(self, *_args: object) -> None:
        """The prompt beside the choices (or above them); alone (the thanks), the whole row."""
        choices, wide = self.ids.choices, self.orientation == "horizontal"
        if not choices.children:
            choices.size_hint_x, choices.width = None, 0
        else:
            choices.size_hint_x = 0.8 if wide else 1
        self.ids.prompt.size_hint_x = 0.2 if wide and choices.children else 1

    def on_touch_down(self, touch) -> bool:
        # hidden, its buttons overflow the empty row: they must not catch a touch meant for another
        return super().on_touch_down(touch) if self.shown else False


class RatingReasons(ModalView):
    """After a 差评: "请选择不满意的原因" and the hall's reasons, one tap sends one; 重新评价
    goes back to the levels. Closes itself once the rating leaves "reasons" (sent, changed,
    or the session ended under it)."""

    def on_kv_post(self, _base: object) -> None:
        app = App.get_running_app()
        app.bind(msg=self.refresh)
        app.rating.bind(state=self._follow, reasons=self.refresh)
        self.refresh()

    def refresh(self, *_args: object) -> None:
        app = App.get_running_app()
        flow, choices, side = app.rating, self.ids.choices, "en" if app.lang == "en" else "zh"
        choices.clear_widgets()
        for reason in flow.shown_reasons():
            button = RatingButton(text=reason[side], reason=reason["zh"])
            button.bind(on_release=lambda b: flow.give_reason(b.reason))
            choices.add_widget(button)
        back = RatingButton(text=app.msg["rating_change"])
        back.bind(on_release=lambda _b: flow.change_level())
        choices.add_widget(back)

    def _follow(self, _flow: object, state: str) -> None:
        if state != "reasons" and self.parent is not None:
            self.dismiss(animation=False)


class CornerTarget(Widget):
    """An invisible patch in the home screen's top-left corner: each tap counts towards
    the five that ask for the maintenance PIN. Not a button: citizens see nothing."""

    def on_touch_down(self, touch) -> bool:
        app, screen = App.get_running_app(), self.parent
        shown = (screen is not None and getattr(screen, "manager", None) is getattr(app, "manager", None)
                 and screen.manager.current == screen.name)  # not a screen left behind, nor another app's
        if shown and self.collide_point(*touch.pos):
            app.maintenance.corner_tap(touch.uid)
        return False  # the touch goes on (the title under it does nothing)
