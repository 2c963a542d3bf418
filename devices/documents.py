"""A4 documents: an item guide or an application receipt laid out as a PDF with an embedded
Chinese font, and printed through CUPS (`lp -d QUEUE`), the `cups:QUEUE` device.

Why fpdf2: it is pure Python, already a dependency, and reads the TrueType collection
that Debian's fonts-wqy-microhei ships (`add_font(..., collection_font_number=0)` picks
WenQuanYi Micro Hei out of the .ttc), so no font is extracted or cached: it embeds a
subset of the glyphs a page uses as a /FontFile2 stream (tens of KB, not the 5 MB file),
and the PDF prints the same on any printer. That font has no ☐ (U+2610), so checklist
boxes are drawn with rect(); it has no bold face, so headings are filled and stroked.
fpdf2 has no QR code of its own: `qrcode` (a dependency of python-escpos) gives the
modules, drawn here as vector squares. Lines are broken here, not by fpdf2, because
Chinese may break between any two characters but never before "，" or after "（".

Layout is pure (a document in, PDF bytes out); only print_pdf() touches the system.
"""

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime
from pathlib import Path
from typing import Any

import qrcode
from fpdf import FPDF

from kiosq.base.privacy import mask_id_number, mask_name
from kiosq.devices.guide_shape import GuideDocument, GuideSection

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
FAMILY = "wqy"

MARGIN = 20  # mm, left, right and top
BOTTOM = 22  # mm kept free for the footer
BOX = 3.6  # mm, side of a checklist box
INDENT = 7  # mm, checklist text right of its box
GREY = (100, 100, 100)

WORDS = {
    "zh": {"code": "事项编码", "page": "第 {n} / {nb} 页", "printed": "打印时间", "receipt": "受理回执",
           "tracking_no": "受理编号", "item": "办理事项", "applicant": "申请人", "id_number": "证件号码",
           "filed_at": "申请时间", "promised": "承诺办结", "scan": "扫码查询办理进度",
           "lookup": "也可在自助终端凭受理编号和证件号码后四位查询进度。请妥善保管本回执。"},
    "en": {"code": "Item code", "page": "Page {n} / {nb}", "printed": "Printed", "receipt": "Application receipt",
           "tracking_no": "Tracking no.", "item": "Item", "applicant": "Applicant", "id_number": "ID number",
           "filed_at": "Filed", "promised": "Promised by", "scan": "Scan to follow your application",
           "lookup": "You can also check progress at a self-service terminal with the tracking number "
                     "and the last four digits of your ID number. Please keep this receipt."},
}

# Chinese line breaking (a small kinsoku): no line starts with a closing mark, none ends
# with an opening one.
NO_LINE_START = set("，。、；：？！）》」』】〕〉”’…—·%,.;:?!)]}")
NO_LINE_END = set("（《「『【〔〈“‘([{")


class A4Error(Exception):
    """An A4 document could not be made or printed; the message says what to do."""


class FontMissingError(A4Error):
    pass


class CupsError(A4Error):
    pass


@dataclass(frozen=True)
class Receipt:
    """What a citizen takes home after filing an application at a terminal."""

    tracking_no: str
    item: str  # the item's name
    applicant_name: str  # in full: the receipt masks it
    id_number: str  # in full: the receipt masks it
    filed_at: datetime | str
    promised_date: date | str
    follow_url: str  # the QR code's payload: where the application's progress is shown




def _units(text: str) -> list[str]:
    """Pieces that must stay on one line: a CJK character, an ASCII word, a run of spaces;
    closing marks are glued to what precedes them, opening marks to what follows."""
    units: list[str] = []
    for token in re.findall(r"[!-~]+| +|.", text):
        glue = units and not token.isspace() and not units[-1].isspace() and (
            token[0] in NO_LINE_START or units[-1][-1] in NO_LINE_END)
        if glue:
            units[-1] += token
        else:
            units.append(token)
    return units


def wrap_lines(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """Break text into lines no wider than width (as measured), the Chinese way."""
    lines: list[str] = []
    line = ""
    for unit in _units(text):
        if unit.isspace():
            line += unit if line else ""
            continue
        if measure(line + unit) <= width:
            line += unit
            continue
        if line.strip():
            lines.append(line.rstrip())
        while measure(unit) > width:  # wider than a whole line (a long URL): cut it
            cut = next((n for n in range(len(unit) - 1, 0, -1) if measure(unit[:n]) <= width), 1)
            lines.append(unit[:cut])
            unit = unit[cut:]
        line = unit
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


def _when(value: datetime | date | str, with_time: bool = True) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class _Page(FPDF):
    """A4 portrait in mm with the CJK font; every page ends in the hall, the print time
    and "第 n / N 页"."""

    def __init__(self, hall: str, printed_at: datetime, lang: str, font: Path) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        if not font.is_file():
            raise FontMissingError(f"The Chinese font {font} is missing: apt-get install fonts-wqy-microhei")
        self.words = WORDS.get(lang, WORDS["zh"])
        self.hall = hall
        self.printed_at = printed_at
        self.add_font(FAMILY, fname=str(font), collection_font_number=0)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=BOTTOM)
        self.set_creation_date(printed_at)
        self.set_creator("kiosq")
        self.set_lang("zh-CN" if lang == "zh" else "en")
        self.set_font(FAMILY, size=11)
        self.add_page()

    def footer(self) -> None:
        y = self.h - BOTTOM + 6
        self.set_draw_color(*GREY)
        self.set_line_width(0.2)
        self.line(self.l_margin, y, self.w - self.r_margin, y)
        self.set_xy(self.l_margin, y)
        self.set_font(FAMILY, size=9)
        self.set_text_color(*GREY)
        self.cell(self.epw * 0.7, 8, f"{self.hall}  {self.words['printed']} {_when(self.printed_at)}")
        # fpdf2 puts the total in for {nb} only at the end, so it cannot right-align it: the
        # text starts where it ends at the margin when the total has as many digits as n.
        page = self.words["page"].format(n=self.page_no(), nb="{nb}")
        width = self.get_string_width(page.replace("{nb}", str(self.page_no()))) + 2 * self.c_margin
        self.set_x(self.w - self.r_margin - width)
        self.cell(width, 8, page)

    def room_for(self, height: float) -> None:
        """Start a new page unless height fits on this one (keeps a heading with its text)."""
        if self.get_y() + height > self.page_break_trigger:
            self.add_page()

    def paragraph(self, text: str, size: float, height: float, width: float | None = None,
                  x: float | None = None, colour: tuple[int, int, int] = (0, 0, 0), bold: bool = False,
                  align: str = "L") -> None:
        """Text wrapped to width from x, one cell per line; cells break pages as needed."""
        self.set_font(FAMILY, size=size)
        self.set_text_color(*colour)
        x = self.l_margin if x is None else x
        width = self.w - self.r_margin - x if width is None else width
        # Bold is the outline stroked over the fill; fpdf2 2.8 writes this width in points
        # inside the text object, so 20 pt gets a 0.33 pt stroke.
        with self.local_context(text_mode="FILL_STROKE" if bold else "FILL", line_width=size / 60,
                                draw_color=colour):
            for line in wrap_lines(text, width, self.get_string_width):
                self.set_x(x)
                self.cell(width, height, line, new_x="LEFT", new_y="NEXT", align=align)


def guide_pdf(doc: GuideDocument, hall: str, printed_at: datetime, font: Path = FONT) -> bytes:
    """An item guide on A4: title, department, code, then each section; the materials as a
    checklist with a box to tick before coming to the hall."""
    pdf = _Page(hall, printed_at, getattr(doc, "lang", "zh"), font)
    pdf.set_title(doc.title)
    pdf.set_subject(doc.subtitle)
    pdf.paragraph(doc.title, 20, 10, bold=True)
    pdf.ln(1)
    pdf.paragraph(doc.subtitle, 12, 6.5, colour=GREY)
    pdf.paragraph(f"{pdf.words['code']} {doc.code}", 10, 5.5, colour=GREY)
    pdf.ln(2)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.4)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    for section in doc.sections:
        _section(pdf, section)
    return bytes(pdf.output())


def _section(pdf: _Page, section: GuideSection) -> None:
    pdf.ln(4)
    pdf.room_for(7 + 6)
    pdf.paragraph(section.heading, 13, 7, bold=True)
    pdf.ln(0.5)
    for line in section.lines:
        pdf.paragraph(line, 11, 6)
    for check in section.checklist:
        pdf.room_for(6)
        pdf.set_draw_color(0, 0, 0)
        pdf.set_line_width(0.3)
        pdf.rect(pdf.l_margin + 0.5, pdf.get_y() + (6 - BOX) / 2, BOX, BOX)
        pdf.paragraph(check.text, 11, 6, x=pdf.l_margin + INDENT)
        if check.note:
            pdf.paragraph(check.note, 9.5, 5, x=pdf.l_margin + INDENT, colour=GREY)
        pdf.ln(1)


def receipt_pdf(receipt: Receipt | Mapping[str, Any], hall: str, printed_at: datetime, lang: str = "zh",
                font: Path = FONT) -> bytes:
    """The receipt for an application filed at a terminal: tracking number, item, the
    applicant masked, when it was filed and promised, and a QR code to follow it."""
    if isinstance(receipt, Mapping):
        receipt = Receipt(**{f.name: receipt[f.name] for f in fields(Receipt) if f.name in receipt})
    pdf = _Page(hall, printed_at, lang, font)
    words = pdf.words
    pdf.set_title(f"{words['receipt']} {receipt.tracking_no}")
    pdf.paragraph(words["receipt"], 20, 10, bold=True)
    pdf.paragraph(hall, 12, 6.5, colour=GREY)
    pdf.ln(6)
    top = pdf.get_y()
    qr_side = 40
    label_w, value_w = 28, pdf.epw - qr_side - 8 - 28
    rows = [("tracking_no", receipt.tracking_no), ("item", receipt.item),
            ("applicant", mask_name(receipt.applicant_name)), ("id_number", mask_id_number(receipt.id_number)),
            ("filed_at", _when(receipt.filed_at)), ("promised", _when(receipt.promised_date, with_time=False))]
    for key, value in rows:
        y = pdf.get_y()
        pdf.paragraph(words[key], 11, 8, width=label_w, colour=GREY)
        below_label = pdf.get_y()
        pdf.set_y(y)
        big = key == "tracking_no"
        pdf.paragraph(value, 15 if big else 12, 8, width=value_w, x=pdf.l_margin + label_w, bold=big)
        pdf.set_y(max(pdf.get_y(), below_label) + 1.5)
    bottom = pdf.get_y()
    _qr(pdf, receipt.follow_url, pdf.w - pdf.r_margin - qr_side, top, qr_side)
    pdf.set_y(top + qr_side + 1)
    pdf.paragraph(words["scan"], 9, 4.5, width=qr_side, x=pdf.w - pdf.r_margin - qr_side, colour=GREY,
                  align="C")
    pdf.set_y(max(bottom, pdf.get_y()) + 6)
    pdf.paragraph(receipt.follow_url, 9, 4.5, colour=GREY)
    pdf.ln(2)
    pdf.paragraph(words["lookup"], 11, 6)
    return bytes(pdf.output())


def _qr(pdf: FPDF, payload: str, x: float, y: float, side: float) -> None:
    """The QR code of payload as filled squares, one rectangle per run of dark modules
    in a row, with the quiet zone of four modules inside side."""
    code = qrcode.QRCode(border=4, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(payload)
    code.make(fit=True)
    matrix = code.get_matrix()
    module = side / len(matrix)
    pdf.set_fill_color(0, 0, 0)
    for row, cells in enumerate(matrix):
        col = 0
        while col < len(cells):
            if not cells[col]:
                col += 1
                continue
            start = col
            while col < len(cells) and cells[col]:
                col += 1
            pdf.rect(x + start * module, y + row * module, (col - start) * module, module, style="F")


NO_CUPS = ("CUPS is not installed: there is no `lp` on PATH. Install it with apt-get install cups "
           "cups-client, then add the A4 printer's queue with lpadmin -p QUEUE -E -v DEVICE_URI -m everywhere")


def print_pdf(pdf: bytes, queue: str, title: str, timeout: float = 30.0) -> str:
    """Send a PDF to the CUPS queue (`lp -d QUEUE`) and return the job id CUPS gave it."""
    lp = shutil.which("lp")
    if lp is None:
        raise CupsError(NO_CUPS)
    with tempfile.NamedTemporaryFile(prefix="kiosq-", suffix=".pdf") as file:
        file.write(pdf)
        file.flush()
        command = [lp, "-d", queue, "-t", title, "-o", "media=A4", file.name]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CupsError(f"lp did not answer within {timeout:g} s for queue {queue}: "
                            "check the CUPS scheduler with lpstat -r") from None
    if done.returncode != 0:
        said = done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}"
        raise CupsError(f"CUPS could not print to queue {queue}: {said!r}; {_advice(said, queue)}")
    found = re.search(r"request id is (\S+) \(", done.stdout)
    if found is None:
        raise CupsError(f"lp printed to queue {queue} but gave no job id: {done.stdout.strip()!r}")
    return found.group(1)


def _advice(said: str, queue: str) -> str:
    said = said.lower()
    if "does not exist" in said or "no such" in said:
        return (f"add the queue with lpadmin -p {queue} -E -v DEVICE_URI -m everywhere "
                "(lpstat -p lists the queues there are)")
    if "scheduler" in said or "connect" in said:
        return "the CUPS scheduler is not running: apt-get install cups, then systemctl enable --now cups"
    return f"check the queue with lpstat -p {queue} -l"
