"""Text on thermal paper, apart from the printer's commands: the columns a character takes,
wrapping by display columns (避头: no line starts with closing punctuation), which
characters the printer's own font prints, and a line drawn as that font would (for raster
lines and previews).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw, ImageFont

COLUMN_DOTS = 12  # font A: an ASCII character is 12 × 24 dots, a Hanzi 24 × 24
LINE_DOTS = 24

# Fonts for the characters drawn as images and for previews: the first one that has a glyph
# draws it. WenQuanYi Micro Hei (fonts-wqy-microhei) covers GBK; Droid Sans Fallback adds
# CJK Extension A (e.g. 䶮) where it is installed.
CJK_FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
             "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf")

# Closing punctuation that must not begin a line (避头); the wrap pulls one character down instead.
NO_LINE_START = set("，。、；：？！）】」』》〕〉”’…%,.;:?!)]}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class FontMissing(RuntimeError):
    """No CJK font to draw with; the message names the package to install."""


@dataclass(frozen=True)
class PrinterFont:
    """What the printer's own font can print: `gbk` (GB18030's two-byte range) or only
    `gb2312`, minus any characters listed in `missing`. Everything else is drawn."""

    charset: Literal["gbk", "gb2312"] = "gbk"
    missing: frozenset[str] = field(default_factory=frozenset)

    def prints(self, ch: str) -> bool:
        if ch.isascii():
            return ch.isprintable()
        if ch in self.missing or not _two_byte(ch):
            return False
        lead, trail = ch.encode("gb18030")
        return self.charset == "gbk" or (lead >= 0xA1 and trail >= 0xA1)

    def prints_all(self, text: str) -> bool:
        return all(self.prints(ch) for ch in text)


GBK_FONT = PrinterFont()  # what most Chinese thermal printers have: every two-byte GB18030 character


# --- widths and wrapping ---------------------------------------------------------------

def char_width(ch: str) -> int:
    """Columns of font A that a character takes: 0 for a combining mark, 1 for ASCII, and 2
    for a Hanzi or full-width character. Ambiguous-width characters (·, —, ①, é), and any
    other character in GB18030's two-byte range (ǹ), count as 2: a Chinese printer prints
    them from its 24-dot two-byte font."""
    if unicodedata.combining(ch):
        return 0
    if ch.isascii():
        return 1
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F", "A") or _two_byte(ch) else 1


def _two_byte(ch: str) -> bool:
    try:
        return len(ch.encode("gb18030")) == 2
    except UnicodeEncodeError:  # a lone surrogate
        return False


def display_width(text: str) -> int:
    return sum(char_width(ch) for ch in text)


def clean(text: str) -> str:
    """Text safe to send: tabs become spaces, other control characters are dropped (a name
    holding ESC must not become a printer command), ¥ becomes ￥."""
    # ¥ (U+00A5) has no two-byte GB18030 code; its full-width twin prints as text.
    return _CONTROL.sub("", text.replace("\t", " ").replace("\u00a5", "\uffe5"))


def _units(text: str) -> list[str]:
    """Unbreakable pieces: a run of narrow non-space characters (a word, a number), a single
    wide character, or a space; a combining mark stays with the character before it."""
    units: list[str] = []
    for ch in text:
        narrow_word = char_width(ch) == 1 and not ch.isspace()
        if units and (char_width(ch) == 0 or (narrow_word and _is_word(units[-1]))):
            units[-1] += ch
        else:
            units.append(ch)
    return units


def _is_word(unit: str) -> bool:
    return not unit[0].isspace() and char_width(unit[0]) == 1


def _graphemes(unit: str) -> list[str]:
    pieces: list[str] = []
    for ch in unit:
        if pieces and char_width(ch) == 0:
            pieces[-1] += ch
        else:
            pieces.append(ch)
    return pieces


def _fit(units: list[str], columns: int) -> list[str]:
    """Units, with any unit wider than a line split into its characters."""
    return [piece for unit in units for piece in (_graphemes(unit) if display_width(unit) > columns else [unit])]


def wrap(text: str, columns: int) -> list[str]:
    """Lines of at most `columns` display columns. Breaks between Hanzi or at spaces, never
    inside a character or a word that fits on a line, and never puts closing punctuation at
    the start of a line. An empty text gives no lines; "\\n" starts a new line."""
    if columns < 2:
        raise ValueError(f"cannot wrap text into {columns} column(s)")
    lines: list[str] = []
    for paragraph in clean(text).split("\n"):
        lines += _wrap_paragraph(paragraph, columns) if paragraph.strip() else ([""] if lines else [])
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _wrap_paragraph(paragraph: str, columns: int) -> list[str]:
    lines: list[list[str]] = [[]]
    for unit in _fit(_units(paragraph.rstrip()), columns):
        if display_width("".join(lines[-1])) + display_width(unit) > columns:
            lines.append(_carry(lines[-1], unit, columns))
            if lines[-1]:
                continue  # the unit went down with the piece before it
        if unit.isspace() and not lines[-1] and len(lines) > 1:
            continue  # no leading space on a continuation line
        lines[-1].append(unit)
    return ["".join(units).rstrip() for units in lines]


def _carry(previous: list[str], unit: str, columns: int) -> list[str]:
    """The start of the next line: empty, or, when `unit` is closing punctuation, the
    previous line's last piece carried down with it (避头: no line starts with "，")."""
    if unit[0] not in NO_LINE_START or len(previous) < 2:
        return []
    last = previous[-1]
    if last.isspace() or last[0] in NO_LINE_START or display_width(last + unit) > columns:
        return []
    previous.pop()
    return [last, unit]


def hanging(prefix: str, text: str, columns: int) -> list[str]:
    """`prefix` then `text` wrapped, continuation lines indented under the text."""
    indent = display_width(prefix)
    if indent > columns // 2:
        return wrap(prefix, columns) + wrap(text, columns)
    body = wrap(text, columns - indent) or [""]
    return [prefix + body[0]] + [" " * indent + line for line in body[1:]]




# --- drawing text (for raster lines in receipts, previews in escpos_preview) -------------

@lru_cache(maxsize=8)
def _fonts(size: int) -> tuple[ImageFont.FreeTypeFont, ...]:
    fonts = tuple(ImageFont.truetype(p, size) for p in CJK_FONTS if Path(p).exists())
    if not fonts:
        raise FontMissing(f"no CJK font found at {', '.join(CJK_FONTS)}; "
                          "install one: apt-get install fonts-wqy-microhei")
    return fonts


def _glyph(font: ImageFont.FreeTypeFont, ch: str) -> bytes:
    img = Image.new("L", (40, 40))
    ImageDraw.Draw(img).text((4, 32), ch, font=font, fill=255, anchor="ls")
    return img.tobytes()


@lru_cache(maxsize=4096)
def _font_for(ch: str, size: int) -> ImageFont.FreeTypeFont:
    fonts = _fonts(size)
    for font in fonts:
        if _glyph(font, ch) != _glyph(font, "\U000f0000"):  # a plane-15 private use char: no font has it
            return font
    return fonts[0]


def render_text(text: str, widths: Sequence[int] | None = None, *, bold: bool = False) -> Image.Image:
    """One line of text drawn as the printer would: each character centred in its cell of
    12 × 24 dots per column. Mode "L", text 255 on 0. `widths` overrides the columns per
    character (the decoder knows them from the bytes)."""
    widths = list(widths) if widths is not None else [char_width(ch) for ch in text]
    img = Image.new("L", (max(1, sum(widths)) * COLUMN_DOTS, LINE_DOTS), 0)
    draw = ImageDraw.Draw(img)
    x = 0
    for ch, w in zip(text, widths):
        if w and not ch.isspace():
            font = _font_for(ch, 22 if w > 1 else 20)
            left = x + (w * COLUMN_DOTS - font.getlength(ch)) / 2
            for dx in (0, 1) if bold else (0,):
                draw.text((left + dx, 19), ch, font=font, fill=255, anchor="ls")
        x += w * COLUMN_DOTS
    return img
