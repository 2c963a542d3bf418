"""ESC/POS bytes cut into commands (pure): each command's name, where it starts and ends,
and its parameters, by the length rules of ESC, GS, FS and DLE commands. Unknown
commands become "unknown" tokens; a command cut short at the end of the data is left
for the next call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


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
