"""Thermal slips as ESC/POS bytes: the queue ticket, the application receipt and the
item-guide slip, for 58 mm (32 columns) and 80 mm (48 columns) paper.

Pure layout: plain data in, bytes out; no port is opened here (printer.py sends them), and
widths, wrapping and drawing text are slip_text's. Chinese goes out as GB18030 between
FS & and FS .; a line holding a character outside GB18030's two-byte range, or one the
printer's font lacks, is drawn with Pillow and sent as a raster image line, so a rare
name character is never printed as "?".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from urllib.parse import quote

from PIL import Image

from kiosq.base.privacy import mask_id_number, mask_name
from kiosq.devices.guide_shape import GuideDocument, GuideSection
from kiosq.devices.slip_text import (
    COLUMN_DOTS,
    GBK_FONT,
    PrinterFont,
    clean,
    display_width,
    hanging,
    render_text,
    wrap,
)

Align = Literal["left", "center", "right"]

ESC, GS, FS = b"\x1b", b"\x1d", b"\x1c"
LF = b"\n"
INIT = ESC + b"@"
CHINESE_ON = FS + b"&"  # FS &: two-byte characters from here on (GB18030 on Chinese printers)
CHINESE_OFF = FS + b"."
ALIGN_CODES: dict[str, int] = {"left": 0, "center": 1, "right": 2}
QR_LEVELS = {"L": 48, "M": 49, "Q": 50, "H": 51}
QR_CAPACITY = {"L": 2953, "M": 2331, "Q": 1663, "H": 1273}  # bytes, QR version 40, byte mode


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


# --- the builder -----------------------------------------------------------------------

def raster_command(img: Image.Image) -> bytes:
    """GS v 0: a bitmap (ink where the image is bright) printed as one image line."""
    bits = img.convert("L").point(lambda v: 255 if v >= 128 else 0).convert("1")
    row_bytes = (bits.width + 7) // 8
    header = GS + b"v0\x00" + row_bytes.to_bytes(2, "little") + bits.height.to_bytes(2, "little")
    return header + bits.tobytes()



class SlipBuilder:
    """Appends ESC/POS commands for one slip. Styles are sent only when they change; each
    `line` must fit the paper (wrap first: `paragraph` and `hanging` do)."""

    def __init__(self, paper: Paper = PAPER_58, font: PrinterFont = GBK_FONT) -> None:
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
           "code": "查询密码：", "scan_app": "扫码或凭受理编号和查询密码查询办理进度。",
           "no_code": "可凭身份证在自助终端查询办理进度。", "keep": "请妥善保管本回执。",
           "printed": "打印时间 {t}", "heading": "【{h}】"},
    "en": {"your_number": "Your number", "ahead": "{n} people ahead of you", "next": "You are next: watch the display",
           "eta": "Estimated wait: about {m} min", "issued": "Issued {t}", "scan": "Scan to follow your number",
           "notice": "If you miss your call, please take a new ticket. Valid today only.",
           "receipt": "Application receipt", "tracking": "Tracking no.: ", "item": "Item: ", "applicant": "Applicant: ",
           "id": "ID number: ", "filed": "Filed: ", "promised": "Promised by: ",
           "code": "Lookup code: ",
           "scan_app": "Scan, or use the tracking number and the lookup code, to check progress.",
           "no_code": "Check progress at a kiosk with your ID card.",
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
    """What an application receipt shows; from POST /api/applications and the card read.
    `lookup_code` is the answer's (None: filed while the server was away, the code is not
    known yet); `server_url` the hall server's address for the QR code's progress page."""

    hall: str
    tracking_no: str
    item: str
    id_number: str  # printed masked
    filed_at: datetime
    promised_date: date | None
    server_url: str
    lookup_code: str | None = None
    applicant: str = ""

    @property
    def query_url(self) -> str:
        """The progress page, the code in the fragment (a browser never sends it to the
        server, nor does it land in a log): {server}/a/{no}#code={code}. Empty without a code."""
        if not self.lookup_code or not self.server_url:
            return ""
        page = f"{self.server_url.rstrip('/')}/a/{quote(self.tracking_no, safe='')}"
        return f"{page}#code={quote(self.lookup_code, safe='')}"


def printed_code(code: str) -> str:
    """A lookup code as printed: ABCD-EFGH, easier to read out and type (dashes do not matter)."""
    return f"{code[:4]}-{code[4:]}" if len(code) == 8 else code


def ticket_slip(ticket: QueueTicket, paper: Paper = PAPER_58, *, lang: str = "zh",
                font: PrinterFont = GBK_FONT) -> bytes:
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
                        font: PrinterFont = GBK_FONT) -> bytes:
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
    if filed.lookup_code:
        slip.hanging(w["code"], printed_code(filed.lookup_code), bold=True)
        if filed.server_url:
            slip.feed(1).qr(filed.query_url)
        slip.paragraph(w["scan_app"])
    else:  # filed while the server was away: no code yet, the ID card finds it at a kiosk
        slip.paragraph(w["no_code"])
    slip.rule().paragraph(w["keep"])
    return slip.cut().build()


BOX = "□"  # the checklist's ☐ (U+2610) is outside GB18030's two-byte range; □ is in GB2312
_NUMBERED = re.compile(r"^(\d+[.、]\s?|[-•·]\s)")


def guide_slip(doc: GuideDocument, paper: Paper = PAPER_58, *, printed_at: datetime | None = None,
               font: PrinterFont = GBK_FONT) -> bytes:
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
