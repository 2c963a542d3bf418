"""Thermal slips as ESC/POS bytes: the queue ticket, the application receipt and the
item-guide slip, for 58 mm (32 columns) and 80 mm (48 columns) paper.

Pure layout: plain data in, bytes out; no port is opened here (printer.py sends them).
Chinese goes out as GB18030 between FS & and FS .; a line holding a character outside
GB18030's two-byte range, or one the printer's font lacks, is drawn with Pillow and sent
as a raster image line, so a rare name character is never printed as "?".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal, Protocol, Sequence

from kiosq.base.privacy import mask_id_number, mask_name
from PIL import Image, ImageDraw, ImageFont

Align = Literal["left", "center", "right"]

ESC, GS, FS = b"\x1b", b"\x1d", b"\x1c"
LF = b"\n"
INIT = ESC + b"@"
CHINESE_ON = FS + b"&"  # FS &: two-byte characters from here on (GB18030 on Chinese printers)
CHINESE_OFF = FS + b"."
ALIGN_CODES: dict[str, int] = {"left": 0, "center": 1, "right": 2}
QR_LEVELS = {"L": 48, "M": 49, "Q": 50, "H": 51}
QR_CAPACITY = {"L": 2953, "M": 2331, "Q": 1663, "H": 1273}  # bytes, QR version 40, byte mode

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
class Paper:
    """A roll width, counted in columns of font A (12 dots each)."""

    name: str
    columns: int

    @property
    def dots(self) -> int:
        return self.columns * COLUMN_DOTS


PAPER_58 = Paper("58 mm", 32)
PAPER_80 = Paper("80 mm", 48)


def paper(width_mm: int) -> Paper:
    """The Paper for a roll width in millimetres (58 or 80)."""
    sizes = {58: PAPER_58, 80: PAPER_80}
    if width_mm not in sizes:
        raise ValueError(f"no layout for {width_mm} mm paper; use 58 or 80")
    return sizes[width_mm]


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



# --- drawing text (raster lines here, previews in escpos_decode) -----------------------

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


def raster_command(img: Image.Image) -> bytes:
    """GS v 0: a bitmap (ink where the image is bright) printed as one image line."""
    bits = img.convert("L").point(lambda v: 255 if v >= 128 else 0).convert("1")
    row_bytes = (bits.width + 7) // 8
    header = GS + b"v0\x00" + row_bytes.to_bytes(2, "little") + bits.height.to_bytes(2, "little")
    return header + bits.tobytes()


# --- the builder -----------------------------------------------------------------------

class SlipBuilder:
    """Appends ESC/POS commands for one slip. Styles are sent only when they change; each
    `line` must fit the paper (wrap first: `paragraph` and `hanging` do)."""

    def __init__(self, paper: Paper = PAPER_58, font: PrinterFont = PrinterFont()) -> None:
        self.paper = paper
        self.font = font
        self._out = bytearray()
        self._align: str | None = None  # None: unknown, the next line states it
        self._bold: bool | None = None
        self._size: tuple[int, int] | None = None

    def init(self) -> SlipBuilder:
        """ESC @: the printer's defaults (left, regular, 1×1)."""
        self._out += INIT
        self._align, self._bold, self._size = "left", False, (1, 1)
        return self

    def columns(self, width: int = 1) -> int:
        return self.paper.columns // width

    def line(self, text: str = "", *, align: Align = "left", bold: bool = False,
             width: int = 1, height: int = 1) -> SlipBuilder:
        text = clean(text).replace("\n", " ")
        if display_width(text) * width > self.paper.columns:
            raise ValueError(f"{text!r} is wider than the {self.paper.columns} columns of {self.paper.name} "
                             "paper; wrap it first")
        self._style(align, bold, width, height)
        if self.font.prints_all(text):
            self._out += encode_text(text) + LF
        else:
            self._out += raster_command(_scaled(render_text(text, bold=bold), width, height))
        return self

    def paragraph(self, text: str, *, align: Align = "left", bold: bool = False,
                  width: int = 1, height: int = 1) -> SlipBuilder:
        for part in wrap(text, self.columns(width)):
            self.line(part, align=align, bold=bold, width=width, height=height)
        return self

    def hanging(self, prefix: str, text: str, *, bold: bool = False) -> SlipBuilder:
        for part in hanging(prefix, text, self.paper.columns):
            self.line(part, bold=bold)
        return self

    def rule(self, char: str = "-") -> SlipBuilder:
        return self.line(char * (self.paper.columns // display_width(char)))

    def feed(self, lines: int = 1) -> SlipBuilder:
        self._out += ESC + b"d" + bytes([max(0, min(lines, 255))])
        return self

    def qr(self, data: str, *, module: int | None = None, level: str = "M", align: Align = "center") -> SlipBuilder:
        """A QR code the printer draws itself (GS ( k, model 2)."""
        payload = data.encode("utf-8")
        if not payload or len(payload) > QR_CAPACITY[level]:
            raise ValueError(f"a QR code at level {level} holds 1 to {QR_CAPACITY[level]} bytes, not {len(payload)}")
        module = module or (8 if self.paper.columns >= 48 else 6)
        self._style(align, self._bold or False, *(self._size or (1, 1)))
        self._out += _qr_function(65, b"\x32\x00")  # model 2
        self._out += _qr_function(67, bytes([module]))
        self._out += _qr_function(69, bytes([QR_LEVELS[level]]))
        self._out += _qr_function(80, b"\x30" + payload)
        self._out += _qr_function(81, b"\x30")
        return self

    def cut(self, partial: bool = True) -> SlipBuilder:
        """GS V 66/65 0: feed to the cutter, then cut."""
        self._out += GS + b"V" + (b"B" if partial else b"A") + b"\x00"
        return self

    def build(self) -> bytes:
        return bytes(self._out)

    def _style(self, align: str, bold: bool, width: int, height: int) -> None:
        if align != self._align:
            self._out += ESC + b"a" + bytes([ALIGN_CODES[align]])
            self._align = align
        if bold != self._bold:
            self._out += ESC + b"E" + bytes([int(bold)])
            self._bold = bold
        if (width, height) != self._size:
            if not (1 <= width <= 8 and 1 <= height <= 8):
                raise ValueError(f"character size {width}×{height}: each side is 1 to 8")
            self._out += GS + b"!" + bytes([(width - 1) << 4 | (height - 1)])
            self._size = (width, height)


def encode_text(text: str) -> bytes:
    """ASCII as is; anything else as GB18030 inside FS & … FS . (Chinese mode)."""
    if text.isascii():
        return text.encode("ascii")
    return CHINESE_ON + text.encode("gb18030") + CHINESE_OFF


def _scaled(img: Image.Image, width: int, height: int) -> Image.Image:
    if (width, height) == (1, 1):
        return img
    return img.resize((img.width * width, img.height * height), Image.Resampling.NEAREST)


def _qr_function(fn: int, params: bytes) -> bytes:
    size = len(params) + 2
    return GS + b"(k" + size.to_bytes(2, "little") + b"\x31" + bytes([fn]) + params


# --- the slips -------------------------------------------------------------------------

WORDS = {
    "zh": {"your_number": "您的号码", "ahead": "您前面还有 {n} 人", "next": "下一位就是您，请留意叫号",
           "eta": "预计等候约 {m} 分钟", "issued": "取号时间 {t}", "scan": "扫码随时查看叫号进度",
           "notice": "过号请重新取号。请留意叫号屏幕和语音提示，本号当日有效。",
           "receipt": "申请受理回执", "tracking": "受理编号：", "item": "办理事项：", "applicant": "申请人：",
           "id": "证件号码：", "filed": "提交时间：", "promised": "承诺办结：",
           "scan_app": "扫码或凭受理编号和身份证号后四位查询办理进度。", "keep": "请妥善保管本回执。",
           "printed": "打印时间 {t}", "heading": "【{h}】"},
    "en": {"your_number": "Your number", "ahead": "{n} people ahead of you", "next": "You are next: watch the display",
           "eta": "Estimated wait: about {m} min", "issued": "Issued {t}", "scan": "Scan to follow your number",
           "notice": "If you miss your call, please take a new ticket. Valid today only.",
           "receipt": "Application receipt", "tracking": "Tracking no.: ", "item": "Item: ", "applicant": "Applicant: ",
           "id": "ID number: ", "filed": "Filed: ", "promised": "Promised by: ",
           "scan_app": "Scan, or use the tracking number and the last 4 digits of your ID, to check progress.",
           "keep": "Please keep this receipt.", "printed": "Printed {t}", "heading": "[{h}]"},
}
TIME_FORMAT = "%Y-%m-%d %H:%M"


def _words(lang: str) -> dict[str, str]:
    return WORDS.get(lang, WORDS["zh"])


@dataclass(frozen=True)
class QueueTicket:
    """What a ticket slip shows; the kiosk fills it from POST /api/tickets."""

    hall: str
    number: str
    service: str
    ahead: int
    eta_minutes: int | None
    issued_at: datetime
    follow_url: str
    notice: str | None = None  # None: the standard notice in the slip's language


@dataclass(frozen=True)
class ApplicationFiled:
    """What an application receipt shows; from POST /api/applications and the card read."""

    hall: str
    tracking_no: str
    item: str
    id_number: str  # printed masked
    filed_at: datetime
    promised_date: date | None
    query_url: str
    applicant: str = ""


def ticket_slip(ticket: QueueTicket, paper: Paper = PAPER_58, *, lang: str = "zh",
                font: PrinterFont = PrinterFont()) -> bytes:
    """The queue ticket: hall, the number in double size, service, people ahead, the wait,
    the time, a QR code to follow the ticket on a phone, and the notice."""
    w = _words(lang)
    slip = SlipBuilder(paper, font).init()
    slip.paragraph(ticket.hall, align="center", bold=True, height=2).rule()
    slip.line(w["your_number"], align="center")
    slip.paragraph(ticket.number, align="center", bold=True, width=2, height=2)
    slip.paragraph(ticket.service, align="center", bold=True)
    slip.paragraph(w["ahead"].format(n=ticket.ahead) if ticket.ahead else w["next"], align="center")
    if ticket.eta_minutes is not None and ticket.ahead:
        slip.paragraph(w["eta"].format(m=ticket.eta_minutes), align="center")
    slip.paragraph(w["issued"].format(t=ticket.issued_at.strftime(TIME_FORMAT)), align="center")
    slip.feed(1).qr(ticket.follow_url).line(w["scan"], align="center").rule()
    slip.paragraph(ticket.notice if ticket.notice is not None else w["notice"])
    return slip.cut().build()


def application_receipt(filed: ApplicationFiled, paper: Paper = PAPER_58, *, lang: str = "zh",
                        font: PrinterFont = PrinterFont()) -> bytes:
    """The receipt for an application filed at the terminal; the ID number masked."""
    w = _words(lang)
    slip = SlipBuilder(paper, font).init()
    slip.paragraph(filed.hall, align="center")
    slip.paragraph(w["receipt"], align="center", bold=True, height=2).rule()
    slip.hanging(w["tracking"], filed.tracking_no, bold=True)
    slip.hanging(w["item"], filed.item)
    if filed.applicant:
        slip.hanging(w["applicant"], mask_name(filed.applicant))
    slip.hanging(w["id"], mask_id_number(filed.id_number))
    slip.hanging(w["filed"], filed.filed_at.strftime(TIME_FORMAT))
    if filed.promised_date is not None:
        slip.hanging(w["promised"], filed.promised_date.isoformat())
    slip.feed(1).qr(filed.query_url).paragraph(w["scan_app"]).rule().paragraph(w["keep"])
    return slip.cut().build()


class GuideCheck(Protocol):
    text: str
    note: str


class GuideSection(Protocol):
    heading: str
    lines: Sequence[str]
    checklist: Sequence[GuideCheck]


class GuideDocument(Protocol):
    """The shape of kiosq.content.document.Document (devices does not import content)."""

    title: str
    subtitle: str
    code: str
    sections: Sequence[GuideSection]
    lang: str


BOX = "□"  # the checklist's ☐ (U+2610) is outside GB18030's two-byte range; □ is in GB2312
_NUMBERED = re.compile(r"^(\d+[.、]\s?|[-•·]\s)")


def guide_slip(doc: GuideDocument, paper: Paper = PAPER_58, *, printed_at: datetime | None = None,
               font: PrinterFont = PrinterFont()) -> bytes:
    """The item guide, every section of the document, materials as a □ checklist."""
    w = _words(doc.lang)
    slip = SlipBuilder(paper, font).init()
    slip.paragraph(doc.title, align="center", bold=True, height=2)
    slip.paragraph(doc.subtitle, align="center").paragraph(doc.code, align="center").rule()
    for section in doc.sections:
        _guide_section(slip, section, w["heading"])
    if printed_at is not None:
        slip.rule().paragraph(w["printed"].format(t=printed_at.strftime(TIME_FORMAT)))
    return slip.cut().build()


def _guide_section(slip: SlipBuilder, section: GuideSection, heading: str) -> None:
    if not section.lines and not section.checklist:
        return
    slip.paragraph(heading.format(h=section.heading), bold=True)
    for text in section.lines:
        numbered = _NUMBERED.match(text)
        prefix = numbered.group(0) if numbered else ""
        slip.hanging(prefix, text[len(prefix):])
    for check in section.checklist:
        slip.hanging(BOX + " ", check.text)
        if check.note:
            slip.hanging(" " * (display_width(BOX) + 1), check.note)
