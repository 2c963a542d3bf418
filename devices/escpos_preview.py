"""A PNG preview of decoded ESC/POS (escpos_decode's elements): text drawn with the CJK
font at the printer's cell sizes, QR codes, raster images, and the cuts as torn edges.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageDraw

from kiosq.devices.escpos_decode import Barcode, Element, Image, Line, QRCode
from kiosq.devices.receipts import PAPER_58
from kiosq.devices.slip_text import COLUMN_DOTS, LINE_DOTS, render_text, wrap

try:  # python-escpos depends on qrcode, but the preview works without it
    import qrcode as _qrcode
    from qrcode.exceptions import DataOverflowError
except ImportError:  # pragma: no cover - depends on the environment
    _qrcode = None

    class DataOverflowError(Exception):  # type: ignore[no-redef]
        pass


MARGIN = 12
LINE_GAP = 6  # the default line spacing is 30 dots: 24 for the characters, 6 between lines
WHITE, INK = 255, 0


def preview_png(decoded: Iterable[Element], path: str | Path, width_px: int = PAPER_58.dots) -> Path:
    """Draw the elements on a strip of paper `width_px` dots wide (384: 58 mm, 576: 80 mm)
    and save it as PNG. Text is drawn with the CJK font; a QR code is drawn with the
    `qrcode` package when it is installed, otherwise as a box with its payload."""
    elements = list(decoded)
    parts = [_draw(e, width_px) for e in elements]
    height = sum(p.height for p in parts) + 2 * MARGIN
    paper = PILImage.new("L", (width_px + 2 * MARGIN, max(height, 2 * MARGIN + 1)), WHITE)
    y = MARGIN
    for element, part in zip(elements, parts):
        paper.paste(part, (MARGIN + _left(getattr(element, "align", "left"), part.width, width_px), y))
        y += part.height
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    paper.save(path, "PNG")
    return path


def _left(align: str, width: int, paper_width: int) -> int:
    room = max(0, paper_width - width)
    return {"center": room // 2, "right": room}.get(align, 0)


def _draw(element: Element, width_px: int) -> PILImage.Image:
    if isinstance(element, Line):
        return _draw_line(element)
    if isinstance(element, QRCode):
        return _draw_qr(element, width_px)
    if isinstance(element, Image):
        return _draw_image(element)
    if isinstance(element, Barcode):
        return _draw_box(f"barcode: {element.data}", min(width_px, 24 * COLUMN_DOTS), 60)
    return _draw_cut(width_px)


def _draw_line(line: Line) -> PILImage.Image:
    height = LINE_DOTS * line.height
    strip = PILImage.new("L", (max(1, line.columns * COLUMN_DOTS), height + LINE_GAP), WHITE)
    x = 0
    for span in line.spans:
        glyphs = render_text(span.text, span.char_columns(), bold=span.bold)
        if (span.width, span.height) != (1, 1):
            glyphs = glyphs.resize((glyphs.width * span.width, LINE_DOTS * span.height),
                                   PILImage.Resampling.NEAREST)
        strip.paste(INK, (x, height - glyphs.height), mask=glyphs)
        x += span.columns * COLUMN_DOTS
    return strip


def _draw_image(image: Image) -> PILImage.Image:
    row_bytes = (image.width + 7) // 8
    rows = image.rows.ljust(row_bytes * image.height, b"\x00")[:row_bytes * image.height]
    bits = PILImage.frombytes("1", (max(1, image.width), max(1, image.height)),
                              rows or b"\x00" * ((max(1, image.width) + 7) // 8))
    ink = bits.convert("L").point(lambda v: INK if v else WHITE)
    sx, sy = image.scale
    return ink.resize((ink.width * sx, ink.height * sy), PILImage.Resampling.NEAREST) if (sx, sy) != (1, 1) else ink


def _draw_qr(qr: QRCode, width_px: int) -> PILImage.Image:
    module = max(1, min(qr.module, 16))
    if _qrcode is not None:
        try:
            return _qr_image(qr.payload, module, qr.level)
        except (ValueError, DataOverflowError):
            pass  # a payload the library will not encode: show it as a box
    side = min(width_px, 29 * module)
    return _draw_box(f"QR: {qr.payload}", side, side)


def _qr_image(payload: str, module: int, level: str) -> PILImage.Image:
    levels = {"L": _qrcode.constants.ERROR_CORRECT_L, "M": _qrcode.constants.ERROR_CORRECT_M,
              "Q": _qrcode.constants.ERROR_CORRECT_Q, "H": _qrcode.constants.ERROR_CORRECT_H}
    code = _qrcode.QRCode(error_correction=levels.get(level, levels["L"]), box_size=1, border=0)
    code.add_data(payload.encode("utf-8"))
    code.make(fit=True)
    matrix = code.get_matrix()
    n = len(matrix)
    img = PILImage.new("L", (n, n), WHITE)
    img.putdata([INK if dark else WHITE for row in matrix for dark in row])
    return _pad(img.resize((n * module, n * module), PILImage.Resampling.NEAREST), LINE_GAP)


def _draw_box(label: str, width: int, height: int) -> PILImage.Image:
    """A framed box with `label` wrapped inside: what we show for a code we do not draw."""
    columns = max(2, (width - 8) // COLUMN_DOTS)
    lines = wrap(label, columns)[: max(1, (height - 8) // LINE_DOTS)] or [""]
    box = PILImage.new("L", (width, max(height, len(lines) * LINE_DOTS + 8)), WHITE)
    ImageDraw.Draw(box).rectangle((0, 0, box.width - 1, box.height - 1), outline=INK, width=2)
    for i, text in enumerate(lines):
        box.paste(INK, (4, 4 + i * LINE_DOTS), mask=render_text(text))
    return _pad(box, LINE_GAP)


def _draw_cut(width_px: int) -> PILImage.Image:
    """A torn edge: a zigzag across the paper where the cutter cut."""
    strip = PILImage.new("L", (width_px, LINE_DOTS), WHITE)
    points = [(x, LINE_DOTS // 2 + (4 if (x // 8) % 2 else -4)) for x in range(0, width_px + 8, 8)]
    ImageDraw.Draw(strip).line(points, fill=INK, width=2)
    return strip


def _pad(img: PILImage.Image, below: int) -> PILImage.Image:
    out = PILImage.new("L", (img.width, img.height + below), WHITE)
    out.paste(img, (0, 0))
    return out
