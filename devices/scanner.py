"""Barcode and QR scanners: one `Scanned` event per code.

Two kinds: serial scanners, which end every code with a suffix (CR, CRLF or ETX) and may
hand it over in pieces (`CodeSplitter`, `SerialScanner`); and keyboard-wedge scanners,
which type the code as a burst of keystrokes, told apart from a person typing by timing
(`WedgeDecoder`). Codes can carry personal data (an application number, a health code),
so logs give their length, never their content.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import serial

from kiosq.devices.uri import DeviceURI, DeviceURIError, backoff_delays, serial_uri

log = logging.getLogger(__name__)

SUFFIXES: dict[str, bytes] = {"CR": b"\r", "CRLF": b"\r\n", "ETX": b"\x03"}
DEFAULT_BAUDRATE = 9600
# Separators that belong inside codes: GS (GS1 FNC1), RS and EOT (ISO/IEC 15434 envelopes).
CODE_CONTROLS = frozenset("\x1d\x1e\x04")
_PORT_ERRORS = (OSError,)  # serial.SerialException is an OSError


class ScannerError(Exception):
    """Base of what this module raises."""


class ScannerUnavailable(ScannerError):
    """The scanner's port cannot be opened or has gone away."""


@dataclass(frozen=True)
class Scanned:
    """One code read by a scanner."""

    code: str


@dataclass(frozen=True)
class Typed:
    """Keys a person typed on a keyboard shared with a wedge scanner ("\\n" for Enter)."""

    text: str


@dataclass(frozen=True)
class ScannerLost:
    reason: str


@dataclass(frozen=True)
class ScannerBack:
    pass


ScannerEvent = Scanned | ScannerLost | ScannerBack


def suffix_bytes(suffix: str) -> bytes:
    """The bytes that end a code for a suffix named CR, CRLF or ETX."""
    try:
        return SUFFIXES[suffix.upper()]
    except KeyError:
        raise ScannerError(f"unknown scanner suffix {suffix!r}; use one of {', '.join(SUFFIXES)}") from None


def clean_code(raw: bytes, encoding: str = "utf-8") -> tuple[str | None, str]:
    """The code in `raw` (the bytes between two suffixes), or None and why it is not one.

    Stray line ends, NULs and spaces around a code are dropped (a scanner set to CRLF
    feeding a host that expects CR leaves an LF in front of the next code).
    """
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        return None, f"not {encoding} text"
    code = text.strip(" \t\r\n\x00")
    if not code:
        return None, "empty code"
    if any(not c.isprintable() and c not in CODE_CONTROLS for c in code):
        return None, "control characters inside the code"
    return code, ""


class CodeSplitter:
    """Cuts the byte stream of a serial scanner into codes (pure: time is passed in).

    Pieces are joined until the suffix comes. Bytes that wait longer than `stale_after`
    seconds for their suffix are dropped as noise (a scanner sends a whole code within
    milliseconds), as is a run of `max_length` bytes with no suffix (a scanner set to
    another suffix).
    """

    def __init__(self, suffix: str = "CR", *, encoding: str = "utf-8", max_length: int = 4096,
                 stale_after: float = 1.0, device: str = "scanner") -> None:
        self.suffix = suffix_bytes(suffix)
        self.encoding = encoding
        self.max_length = max_length
        self.stale_after = stale_after
        self.device = device
        self._buffer = bytearray()
        self._last = 0.0

    def feed(self, data: bytes, now: float) -> list[Scanned]:
        if self._buffer and now - self._last > self.stale_after:
            self._skip(len(self._buffer), f"no suffix within {self.stale_after:g} s")
            self._buffer.clear()
        self._buffer += data
        self._last = now
        codes = []
        while (end := self._buffer.find(self.suffix)) >= 0:
            raw = bytes(self._buffer[:end])
            del self._buffer[:end + len(self.suffix)]
            code, reason = clean_code(raw, self.encoding)
            if code is None:
                self._skip(len(raw), reason)
            else:
                codes.append(Scanned(code))
        if len(self._buffer) > self.max_length:
            self._skip(len(self._buffer), f"no suffix within {self.max_length} bytes; is the scanner set "
                                          f"to end codes with {self._suffix_name()}?")
            self._buffer.clear()
        return codes

    def _suffix_name(self) -> str:
        return next(name for name, value in SUFFIXES.items() if value == self.suffix)

    def _skip(self, size: int, reason: str) -> None:
        log.warning("%s: skipped %d bytes: %s", self.device, size, reason)


class SerialScanner:
    """A scanner on a serial port (or a USB scanner in CDC/serial mode).

    The URI may carry the suffix and encoding: `serial:/dev/ttyACM0?baudrate=9600&suffix=CRLF&encoding=gb18030`;
    arguments override it. `read()` returns the codes that arrive within a timeout;
    `scans()` yields events until `stop()`, reopening the port with backoff if it goes.
    """

    def __init__(self, uri: str | DeviceURI, *, suffix: str | None = None, encoding: str | None = None,
                 stale_after: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        parsed = serial_uri(uri, "a serial scanner", DEFAULT_BAUDRATE)
        self.device = parsed.target
        self.baudrate = parsed.option("baudrate", DEFAULT_BAUDRATE)
        suffix = suffix or parsed.options.get("suffix", "CR")
        encoding = encoding or parsed.options.get("encoding", "utf-8")
        try:
            "".encode(encoding)
            self.splitter = CodeSplitter(suffix, encoding=encoding, stale_after=stale_after,
                                         device=f"scanner on {self.device}")
        except (ScannerError, LookupError) as e:
            raise DeviceURIError(f"{parsed}: {e}") from None
        self._clock = clock
        self._port: serial.Serial | None = None
        self._stop = threading.Event()

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def open(self) -> None:
        if self._port is not None:
            return
        try:
            self._port = serial.Serial(self.device, self.baudrate, timeout=0.05)
        except _PORT_ERRORS as e:
            raise ScannerUnavailable(f"cannot open the scanner on {self.device}: {e}; check that it is plugged "
                                     "in, in serial (not keyboard) mode, and that this user may use the port") from None

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(*_PORT_ERRORS):  # already gone
                port.close()

    def __enter__(self) -> SerialScanner:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, timeout: float) -> list[Scanned]:
        """The codes completed within `timeout` seconds (returns as soon as there is one)."""
        port = self._port
        if port is None:
            raise ScannerUnavailable(f"the scanner on {self.device} is not open; open it once it is plugged in")
        deadline = self._clock() + timeout
        try:
            while True:
                chunk = port.read(max(1, port.in_waiting))
                codes = self.splitter.feed(chunk, self._clock()) if chunk else []
                if codes or self._clock() >= deadline:
                    return codes
        except _PORT_ERRORS as e:
            self.close()
            raise ScannerUnavailable(f"the scanner on {self.device} went away ({e}); check its cable") from None

    def stop(self) -> None:
        self._stop.set()

    def scans(self, *, backoff: tuple[float, float] = (0.2, 5.0),
              give_up_after: float | None = None) -> Iterator[ScannerEvent]:
        """Scanned events until stop(); ScannerLost/ScannerBack around an unplugged spell.
        Raises ScannerUnavailable if the scanner stays away for `give_up_after` seconds."""
        try:
            while not self._stop.is_set():
                try:
                    self.open()
                    while not self._stop.is_set():
                        yield from self.read(0.2)
                except ScannerUnavailable as e:
                    log.warning("%s", e)
                    yield ScannerLost(str(e))
                    if self._reconnect(backoff, give_up_after):
                        yield ScannerBack()
        finally:
            self.close()

    def _reconnect(self, backoff: tuple[float, float], give_up_after: float | None) -> bool:
        lost_at = self._clock()
        for delay in backoff_delays(*backoff):
            if self._stop.wait(delay):
                return False
            try:
                self.open()
                log.warning("scanner on %s is back", self.device)
                return True
            except ScannerUnavailable as e:
                if give_up_after is not None and self._clock() - lost_at >= give_up_after:
                    raise ScannerUnavailable(f"the scanner on {self.device} has been away for {give_up_after:g} s; "
                                             f"check its cable ({e})") from None
        return False  # pragma: no cover - backoff_delays never ends


ENTER = frozenset("\r\n")


class WedgeDecoder:
    """Tells a keyboard-wedge scanner from a person typing by the timing of the keys (pure).

    Keys closer together than `max_gap` seconds form a run. A run of at least `min_length`
    keys that ends with Enter, or with a pause, is a scan; anything else is typing and is
    passed on as Typed. Feed every key with its time; call `flush(now)` from a timer (more
    often than `max_gap`) so that a run ended by a pause is delivered without waiting for
    the next key.
    """

    def __init__(self, *, max_gap: float = 0.03, min_length: int = 4) -> None:
        self.max_gap = max_gap
        self.min_length = min_length
        self._keys: list[str] = []
        self._last = 0.0

    def feed(self, char: str, at: float) -> list[Scanned | Typed]:
        events = self.flush(at)
        if char in ENTER:
            burst = len(self._keys) >= self.min_length
            text = "".join(self._keys)
            self._keys.clear()
            return events + [Scanned(text) if burst else Typed(text + "\n")]
        self._keys.append(char)
        self._last = at
        return events

    def flush(self, now: float) -> list[Scanned | Typed]:
        """End the current run if `now` is a pause after its last key."""
        if not self._keys or now - self._last < self.max_gap:
            return []
        text = "".join(self._keys)
        self._keys.clear()
        return [Scanned(text) if len(text) >= self.min_length else Typed(text)]
