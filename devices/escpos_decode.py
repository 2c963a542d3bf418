"""ESC/POS bytes back to what the paper would show: lines of text with their styles, QR
payloads, images and cuts, and a PNG preview of them. Used by the printer simulator, the
tests and the kiosk's maintenance screen.

Knows the commands that receipts.py emits and the common ones of other software; unknown
commands are skipped, and a command cut short at the end of the data is left undecoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal, Union

from kiosq.devices.receipts import COLUMN_DOTS, LINE_DOTS, PAPER_58, render_text, wrap
from PIL import Image as PILImage
from PIL import ImageDraw

try:  # python-escpos depends on qrcode, but the preview works without it
    import qrcode as _qrcode
    from qrcode.exceptions import DataOverflowError
except ImportError:  # pragma: no cover - depends on the environment
    _qrcode = None

    class DataOverflowError(Exception):  # type: ignore[no-redef]
        pass

Align = Literal["left", "center", "right"]
ALIGNS: dict[int, Align] = {0: "left", 1: "center", 2: "right", 48: "left", 49: "center", 50: "right"}
CODEPAGES = {0: "cp437", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865", 16: "cp1252", 17: "cp866",
             18: "cp852", 19: "cp858"}
QR_LEVEL_NAMES = {48: "L", 49: "M", 50: "Q", 51: "H"}
PARTIAL_CUTS = {1, 49, 66, 98, 104}


# --- the tokens ------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    """One command (or run of text) at data[start:end]; `args` is what follows the
    command's name (parameters and payload), or the text bytes."""

    name: str
    start: int
    end: int
    args: bytes = b""


# Parameter bytes after ESC x / GS x / FS x, for the commands with a fixed length.
ESC_FIXED = {b"\x0c": 0, b" ": 1, b"!": 1, b"$": 2, b"%": 1, b"-": 1, b"2": 0, b"3": 1, b"<": 0, b"=": 1,
             b"?": 1, b"@": 0, b"B": 2, b"E": 1, b"G": 1, b"J": 1, b"K": 1, b"L": 0, b"M": 1, b"R": 1,
             b"S": 0, b"T": 1, b"U": 1, b"V": 1, b"W": 8, b"\\": 2, b"a": 1, b"c": 2, b"d": 1, b"e": 1,
             b"i": 0, b"m": 0, b"p": 3, b"r": 1, b"t": 1, b"u": 1, b"v": 0, b"{": 1}
GS_FIXED = {b"!": 1, b"$": 2, b"/": 1, b":": 0, b"B": 1, b"E": 1, b"H": 1, b"I": 1, b"L": 2, b"P": 2,
            b"T": 1, b"W": 2, b"\\": 2, b"^": 3, b"a": 1, b"b": 1, b"c": 0, b"f": 1, b"g": 3, b"h": 1,
            b"j": 1, b"r": 1, b"w": 1, b"z": 2}
FS_FIXED = {b"!": 1, b"&": 0, b"-": 1, b".": 0, b"?": 2, b"C": 1, b"S": 2, b"W": 1, b"p": 2}
DLE_DC4_PARAMS = {1: 2, 2: 2, 3: 2, 7: 1, 8: 7}

TEXT_RUN = re.compile(rb"[\x20-\xff]+")
CONTROL_NAMES = {0x0A: "LF", 0x0D: "CR", 0x09: "HT", 0x0C: "FF", 0x18: "CAN"}
PREFIXES = {0x1B: "ESC", 0x1D: "GS", 0x1C: "FS", 0x10: "DLE"}

Length = Callable[[bytes, int], "int | None"]  # data, offset after the name -> end, or None if cut short


def _need(data: bytes, end: int) -> int | None:
    return end if end <= len(data) else None


def _byte(data: bytes, i: int) -> int | None:
    return data[i] if i < len(data) else None


def _word(data: bytes, i: int) -> int | None:
    return int.from_bytes(data[i:i + 2], "little") if i + 2 <= len(data) else None


def _fixed(count: int) -> Length:
    return lambda data, p: _need(data, p + count)


def _block(data: bytes, p: int) -> int | None:
    """X pL pH and pL + 256 pH bytes: GS ( X, ESC ( X, FS ( X."""
    size = _word(data, p + 1)
    return None if size is None else _need(data, p + 3 + size)


def _until_nul(data: bytes, p: int) -> int | None:
    nul = data.find(b"\x00", p)
    return None if nul < 0 else nul + 1


def _raster(data: bytes, p: int) -> int | None:
    """GS v 0 m xL xH yL yH, then x × y bytes."""
    x, y = _word(data, p + 2), _word(data, p + 4)
    return None if x is None or y is None else _need(data, p + 6 + x * y)


def _barcode(data: bytes, p: int) -> int | None:
    """GS k m: NUL-terminated data for m 0–6, else a length byte n and n bytes."""
    m = _byte(data, p)
    if m is None:
        return None
    if m <= 6:
        return _until_nul(data, p + 1)
    n = _byte(data, p + 1)
    return None if n is None else _need(data, p + 2 + n)


def _cut(data: bytes, p: int) -> int | None:
    m = _byte(data, p)
    return None if m is None else _need(data, p + (2 if m in (65, 66, 97, 98, 103, 104) else 1))


def _defined_image(data: bytes, p: int) -> int | None:
    """GS * x y, then x × y × 8 bytes."""
    x, y = _byte(data, p), _byte(data, p + 1)
    return None if x is None or y is None else _need(data, p + 2 + x * y * 8)


def _large_block(data: bytes, p: int) -> int | None:
    """GS 8 X p1 p2 p3 p4, then that many bytes."""
    if p + 5 > len(data):
        return None
    return _need(data, p + 5 + int.from_bytes(data[p + 1:p + 5], "little"))


def _bit_image(data: bytes, p: int) -> int | None:
    """ESC * m nL nH: n columns of 1 byte (8-dot modes) or 3 bytes (24-dot modes)."""
    m, n = _byte(data, p), _word(data, p + 1)
    return None if m is None or n is None else _need(data, p + 3 + n * (3 if m in (32, 33) else 1))


def _user_chars(data: bytes, p: int) -> int | None:
    """ESC & y c1 c2, then for each character x and y × x bytes."""
    if p + 3 > len(data):
        return None
    y, c1, c2 = data[p], data[p + 1], data[p + 2]
    i = p + 3
    for _ in range(max(0, c2 - c1 + 1)):
        x = _byte(data, i)
        if x is None:
            return None
        i += 1 + x * y
    return _need(data, i)


def _nv_images(data: bytes, p: int) -> int | None:
    """FS q n, then n images of xL xH yL yH and x × y × 8 bytes."""
    count = _byte(data, p)
    if count is None:
        return None
    i = p + 1
    for _ in range(count):
        x, y = _word(data, i), _word(data, i + 2)
        if x is None or y is None:
            return None
        i += 4 + x * y * 8
    return _need(data, i)


ESC_VARIABLE: dict[bytes, Length] = {b"(": _block, b"*": _bit_image, b"&": _user_chars, b"D": _until_nul}
GS_VARIABLE: dict[bytes, Length] = {b"(": _block, b"v": _raster, b"k": _barcode, b"V": _cut,
                                    b"*": _defined_image, b"8": _large_block}
FS_VARIABLE: dict[bytes, Length] = {b"(": _block, b"2": _fixed(74), b"q": _nv_images}
TABLES = {"ESC": (ESC_FIXED, ESC_VARIABLE), "GS": (GS_FIXED, GS_VARIABLE), "FS": (FS_FIXED, FS_VARIABLE)}


def _dle_length(data: bytes, p: int) -> int | None:
    """DLE EOT n (a, for n 7 and 8), DLE ENQ n, DLE DC4 fn …; p is after DLE x."""
    kind = data[p - 1]
    n = _byte(data, p)
    if n is None:
        return None
    if kind == 0x04:
        return _need(data, p + (2 if n in (7, 8) else 1))
    if kind == 0x14:
        return _need(data, p + 1 + DLE_DC4_PARAMS.get(n, 2))
    return _need(data, p + 1)


DLE_NAMES = {0x04: "DLE EOT", 0x05: "DLE ENQ", 0x14: "DLE DC4"}


def _command(data: bytes, i: int) -> Token | None:
    """The command starting at data[i] (a prefix byte), or None if it is cut short."""
    prefix = PREFIXES[data[i]]
    if i + 1 >= len(data):
        return None
    code = data[i + 1:i + 2]
    if prefix == "DLE":
        if data[i + 1] not in DLE_NAMES:
            return Token("DLE", i, i + 1)
        end = _dle_length(data, i + 2)
        return None if end is None else Token(DLE_NAMES[data[i + 1]], i, end, data[i + 2:end])
    fixed, variable = TABLES[prefix]
    if code in fixed:
        end = _need(data, i + 2 + fixed[code])
    elif code in variable:
        end = variable[code](data, i + 2)
    else:
        return Token("unknown", i, i + 2, code)
    name = f"{prefix} {code.decode('latin-1')}"
    if code == b"(" and end is not None:
        name += " " + chr(data[i + 2])
    return None if end is None else Token(name, i, end, data[i + 2:end])


def tokenize(data: bytes, start: int = 0) -> tuple[list[Token], int]:
    """The tokens of data[start:], and the offset where a command cut short begins
    (len(data) when the data ends cleanly). Feed more data and call again from there."""
    tokens: list[Token] = []
    i = start
    while i < len(data):
        byte = data[i]
        if byte >= 0x20:
            run = TEXT_RUN.match(data, i)
            assert run is not None
            tokens.append(Token("text", i, run.end(), run.group()))
            i = run.end()
            continue
        if byte in PREFIXES:
            token = _command(data, i)
            if token is None:
                return tokens, i
        else:
            token = Token(CONTROL_NAMES.get(byte, "control"), i, i + 1)
        tokens.append(token)
        i = token.end
    return tokens, i


# --- what the paper shows --------------------------------------------------------------

@dataclass(frozen=True)
class Span:
    """Text in one style. `chinese`: sent in Chinese mode (FS &), where a non-ASCII
    character is a two-byte one and takes two columns."""

    text: str
    bold: bool = False
    width: int = 1
    height: int = 1
    chinese: bool = False

    def char_columns(self) -> list[int]:
        return [1 if not self.chinese or ch.isascii() else 2 for ch in self.text]

    @property
    def columns(self) -> int:
        return sum(self.char_columns()) * self.width


@dataclass(frozen=True)
class Line:
    spans: tuple[Span, ...] = ()
    align: Align = "left"

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.spans)

    @property
    def columns(self) -> int:
        """Columns of font A the line takes on paper, sizes included."""
        return sum(s.columns for s in self.spans)

    @property
    def bold(self) -> bool:
        printed = [s for s in self.spans if s.text.strip()]
        return bool(printed) and all(s.bold for s in printed)

    @property
    def width(self) -> int:
        return max((s.width for s in self.spans), default=1)

    @property
    def height(self) -> int:
        return max((s.height for s in self.spans), default=1)


@dataclass(frozen=True)
class QRCode:
    payload: str
    module: int = 3
    level: str = "L"
    align: Align = "left"


@dataclass(frozen=True)
class Image:
    """A raster image (GS v 0): rows of ⌈width/8⌉ bytes, bit 1 = ink."""

    width: int
    height: int
    rows: bytes = field(repr=False)
    align: Align = "left"
    scale: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class Barcode:
    system: int
    data: str
    align: Align = "left"


@dataclass(frozen=True)
class Cut:
    partial: bool = False


Element = Union[Line, QRCode, Image, Barcode, Cut]


@dataclass
class _Style:
    align: Align = "left"
    emphasized: bool = False
    double_strike: bool = False
    width: int = 1
    height: int = 1
    chinese: bool = False
    codepage: str = "cp437"


class _Decoder:
    """Printer state while the tokens go by; `elements` is what came out on paper."""

    def __init__(self) -> None:
        self.elements: list[Element] = []
        self.style = _Style()
        self.spans: list[Span] = []
        self.pending = bytearray()  # text bytes in the current style, not yet a Span
        self.line_align: Align | None = None  # set by the first text of a line
        self.qr_data: bytes | None = None
        self.qr_module, self.qr_level = 3, "L"

    # text and lines

    def text(self, data: bytes) -> None:
        if self.line_align is None:
            self.line_align = self.style.align
        self.pending += data

    def close_span(self) -> None:
        if not self.pending:
            return
        codec = "gb18030" if self.style.chinese else self.style.codepage
        s = self.style
        self.spans.append(Span(bytes(self.pending).decode(codec, errors="replace"), s.emphasized or s.double_strike,
                               s.width, s.height, s.chinese))
        self.pending.clear()

    def restyle(self, **changes: object) -> None:
        self.close_span()
        for name, value in changes.items():
            setattr(self.style, name, value)

    def end_line(self, blank_if_empty: bool = True) -> None:
        self.close_span()
        if self.spans or blank_if_empty:
            self.elements.append(Line(tuple(self.spans), self.line_align or self.style.align))
        self.spans, self.line_align = [], None

    def flush(self) -> None:
        """Text waiting in the buffer goes out before an image, a code or a cut."""
        self.end_line(blank_if_empty=False)

    def place(self, element: Element) -> None:
        self.flush()
        self.elements.append(element)

    # commands

    def feed(self, token: Token) -> None:
        handler = HANDLERS.get(token.name)
        if handler is not None:
            handler(self, token.args)

    def reset(self, _: bytes = b"") -> None:
        """ESC @: the buffer is cleared and every setting goes back to its default."""
        self.pending.clear()
        self.spans, self.line_align = [], None
        self.style = _Style()

    def print_mode(self, args: bytes) -> None:
        n = args[0]
        self.restyle(emphasized=bool(n & 0x08), height=2 if n & 0x10 else 1, width=2 if n & 0x20 else 1)

    def size(self, args: bytes) -> None:
        n = args[0]
        self.restyle(width=((n >> 4) & 7) + 1, height=(n & 7) + 1)

    def align(self, args: bytes) -> None:
        if args[0] in ALIGNS:
            self.style.align = ALIGNS[args[0]]

    def feed_lines(self, args: bytes) -> None:
        """ESC d n: print the buffer and feed n lines."""
        if args[0] == 0:
            self.flush()
            return
        self.end_line()
        for _ in range(args[0] - 1):
            self.elements.append(Line((), self.style.align))

    def qr(self, args: bytes) -> None:
        """GS ( k with cn 49: store and print a QR code; other symbols are skipped."""
        if len(args) < 5 or args[3] != 49:  # args: k pL pH cn fn params
            return
        fn, params = args[4], args[5:]
        if fn == 67 and params:
            self.qr_module = params[0]
        elif fn == 69 and params:
            self.qr_level = QR_LEVEL_NAMES.get(params[0], "L")
        elif fn == 80 and params:
            self.qr_data = bytes(params[1:])
        elif fn == 81 and self.qr_data is not None:
            self.place(QRCode(self.qr_data.decode("utf-8", errors="replace"), self.qr_module, self.qr_level,
                              self.style.align))

    def raster(self, args: bytes) -> None:
        m, x, y = args[1], int.from_bytes(args[2:4], "little"), int.from_bytes(args[4:6], "little")
        scale = (2 if m & 1 else 1, 2 if m & 2 else 1)
        if x and y:
                self.place(Image(x * 8, y, bytes(args[6:]), self.style.align, scale))

    def barcode(self, args: bytes) -> None:
        m = args[0]
        data = args[1:-1] if m <= 6 else args[2:]
        self.place(Barcode(m, data.decode("latin-1"), self.style.align))

    def cut(self, args: bytes) -> None:
        self.place(Cut(partial=args[0] in PARTIAL_CUTS))

    def codepage(self, args: bytes) -> None:
        self.restyle(codepage=CODEPAGES.get(args[0], "cp437"))


HANDLERS: dict[str, Callable[[_Decoder, bytes], None]] = {
    "text": _Decoder.text,
    "LF": lambda d, _: d.end_line(),
    "FF": lambda d, _: d.end_line(),
    "HT": lambda d, _: d.text(b" "),
    "ESC @": _Decoder.reset,
    "ESC !": _Decoder.print_mode,
    "ESC E": lambda d, a: d.restyle(emphasized=bool(a[0] & 1)),
    "ESC G": lambda d, a: d.restyle(double_strike=bool(a[0] & 1)),
    "ESC a": _Decoder.align,
    "ESC d": _Decoder.feed_lines,
    "ESC J": lambda d, _: d.flush(),
    "ESC t": _Decoder.codepage,
    "GS !": _Decoder.size,
    "GS ( k": _Decoder.qr,
    "GS v": _Decoder.raster,
    "GS k": _Decoder.barcode,
    "GS V": _Decoder.cut,
    "FS &": lambda d, _: d.restyle(chinese=True),
    "FS .": lambda d, _: d.restyle(chinese=False),
}


def decode(data: bytes) -> list[Element]:
    """What `data` prints: lines, QR codes, images, barcodes and cuts, in order. Text not
    yet ended by LF is shown as a last line; a command cut short at the end is ignored."""
    decoder = _Decoder()
    tokens, _ = tokenize(data)
    for token in tokens:
        if token.name == "GS v" and token.args[:1] != b"0":
            continue  # GS v with another function than 0 is not a raster image
        decoder.feed(token)
    decoder.flush()
    return decoder.elements


def text_lines(elements: Iterable[Element]) -> list[str]:
    return [e.text for e in elements if isinstance(e, Line)]


def qr_payloads(elements: Iterable[Element]) -> list[str]:
    return [e.payload for e in elements if isinstance(e, QRCode)]


def split_jobs(elements: Iterable[Element]) -> list[list[Element]]:
    """Elements per slip: each ends with its Cut; what follows the last cut is a last,
    unfinished job."""
    jobs: list[list[Element]] = [[]]
    for element in elements:
        jobs[-1].append(element)
        if isinstance(element, Cut):
            jobs.append([])
    return [job for job in jobs if job]


# --- the preview -----------------------------------------------------------------------

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
