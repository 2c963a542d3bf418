"""ESC/POS bytes back to what the paper would show: lines of text with their styles, QR
payloads, images, barcodes and cuts. Used by the printer simulator, the tests and the
kiosk's maintenance screen (escpos_preview draws them as a PNG).

Knows the commands that receipts.py emits and the common ones of other software; unknown
commands are skipped, and a command cut short at the end of the data is left undecoded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from kiosq.devices.escpos_tokens import Token, tokenize

Align = Literal["left", "center", "right"]
ALIGNS: dict[int, Align] = {0: "left", 1: "center", 2: "right", 48: "left", 49: "center", 50: "right"}
CODEPAGES = {0: "cp437", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865", 16: "cp1252", 17: "cp866",
             18: "cp852", 19: "cp858"}
QR_LEVEL_NAMES = {48: "L", 49: "M", 50: "Q", 51: "H"}
PARTIAL_CUTS = {1, 49, 66, 98, 104}


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


Element = Line | QRCode | Image | Barcode | Cut


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
