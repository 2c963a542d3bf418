"""Checks that what the kiosk draws can be read: text contrast of at least 4.5:1 (WCAG 2.1,
1.4.3) against the background actually drawn behind it, and, in 长辈模式, text of at least
30 dp and touch targets of at least 90 dp.

The text colour is the label's own (its disabled colour when disabled, and every
`[color=…]` of its markup); the background is measured, not declared: the commonest colour
in the widget's box on a screenshot of the window. So a tinted button, a panel's canvas
or the window's clear colour are all judged as the citizen sees them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MIN_CONTRAST = 4.5
ELDER_TEXT_DP = 30
ELDER_TARGET_DP = 90
_MARKUP_COLOR = re.compile(r"\[color=#?([0-9a-fA-F]{6})\]")

RGB = tuple[float, float, float]


def luminance(rgb: RGB) -> float:
    """Relative luminance of an sRGB colour with channels in 0..1."""

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    """The WCAG contrast ratio, 1 to 21."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def over(color: Iterable[float], background: RGB) -> RGB:
    """An RGBA colour drawn over an opaque background."""
    r, g, b, a = (list(color) + [1.0])[:4]
    return tuple(c * a + bg * (1 - a) for c, bg in zip((r, g, b), background))  # type: ignore[return-value]


@dataclass(frozen=True)
class Problem:
    widget: str
    text: str
    what: str

    def __str__(self) -> str:
        return f"{self.widget} {self.text[:30]!r}: {self.what}"


def visible_labels(root) -> Iterator:
    """Labels (buttons included) with text, shown, inside the window."""
    from kivy.core.window import Window
    from kivy.uix.label import Label

    for widget in root.walk(restrict=True):
        if not isinstance(widget, Label) or not widget.text.strip() or widget.width < 2 or widget.height < 2:
            continue
        if _hidden(widget):
            continue
        x, y = widget.to_window(*widget.pos)
        if x >= Window.width or y >= Window.height or x + widget.width <= 0 or y + widget.height <= 0:
            continue
        yield widget


def _hidden(widget) -> bool:
    """Transparent, or (partly) outside a scrolled view's visible part."""
    from kivy.uix.stencilview import StencilView

    x, y = widget.to_window(*widget.pos)
    node = widget
    while node is not None:
        if getattr(node, "opacity", 1) <= 0.01:
            return True
        if isinstance(node, StencilView) and node is not widget:
            sx, sy = node.to_window(*node.pos)
            if (x < sx - 1 or y < sy - 1
                    or x + widget.width > sx + node.width + 1 or y + widget.height > sy + node.height + 1):
                return True
        parent = node.parent
        if parent is node:
            break
        node = parent
    return False


def background(widget, image) -> RGB:
    """The commonest colour in the widget's box on the screenshot (a PIL image of the
    window, which may be larger than Window.size on a HiDPI surface)."""
    from kivy.core.window import Window

    sx, sy = image.width / Window.width, image.height / Window.height
    x, y = widget.to_window(*widget.pos)
    left, right = max(0, int(x * sx)), min(image.width, int((x + widget.width) * sx))
    top, bottom = max(0, int(image.height - (y + widget.height) * sy)), min(image.height, int(image.height - y * sy))
    if right - left < 1 or bottom - top < 1:
        return (1.0, 1.0, 1.0)
    box = image.crop((left, top, right, bottom)).convert("RGB")
    if box.width * box.height > 40_000:  # a sample is enough for the commonest colour
        box = box.resize((max(1, box.width // 4), max(1, box.height // 4)), resample=0)
    (r, g, b), _ = Counter(box.get_flattened_data()).most_common(1)[0]
    return (r / 255, g / 255, b / 255)


def text_colors(widget) -> list[tuple[str, tuple[float, ...]]]:
    """(where, RGBA) of every colour the label's text is drawn in."""
    base = tuple(widget.disabled_color if widget.disabled else widget.color)
    colors = [("color", base)]
    if widget.markup:
        for hexa in _MARKUP_COLOR.findall(widget.text):
            rgb = tuple(int(hexa[i:i + 2], 16) / 255 for i in (0, 2, 4))
            colors.append((f"[color={hexa}]", rgb + (base[3] if len(base) > 3 else 1.0,)))
    return colors


def contrast_problems(root, image, minimum: float = MIN_CONTRAST) -> list[Problem]:
    """Every visible text under root whose contrast with what is drawn behind it is below minimum."""
    problems = []
    for widget in visible_labels(root):
        bg = background(widget, image)
        for where, color in text_colors(widget):
            ratio = contrast(over(color, bg), bg)
            if ratio < minimum:
                problems.append(Problem(_name(widget), widget.text,
                                        f"{where} contrast {ratio:.2f}:1 on {_hex(bg)} (needs {minimum}:1)"))
    return problems


def elder_size_problems(root) -> list[Problem]:
    """Visible text under ELDER_TEXT_DP, and buttons smaller than ELDER_TARGET_DP either way."""
    from kivy.metrics import dp
    from kivy.uix.button import Button

    problems = []
    for widget in visible_labels(root):
        if widget.font_size < dp(ELDER_TEXT_DP) - 0.5:
            problems.append(Problem(_name(widget), widget.text, f"text {widget.font_size / dp(1):.0f} dp"))
        if isinstance(widget, Button) and min(widget.width, widget.height) < dp(ELDER_TARGET_DP) - 0.5:
            problems.append(Problem(_name(widget), widget.text,
                                    f"target {widget.width / dp(1):.0f}×{widget.height / dp(1):.0f} dp"))
    return problems


def _name(widget) -> str:
    return type(widget).__name__


def _hex(rgb: RGB) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb)
