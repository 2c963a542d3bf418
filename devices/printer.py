"""The receipt printer: ESC/POS over the transport its device URI names (serial, tcp, usb,
cups, file), with status through DLE EOT and a print that refuses before it starts when
the printer cannot finish the slip.

python-escpos provides the transports (opened lazily, on first use); the bytes are ours
(receipts.py), sent with `_raw`. A status query nobody answers is "unknown", never "fine".
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from escpos.escpos import Escpos
from escpos.exceptions import DeviceNotFoundError

from kiosq.devices.receipts import PAPER_58, Align, Paper, SlipBuilder
from kiosq.devices.slip_text import GBK_FONT, PrinterFont
from kiosq.devices.uri import DeviceURI, parse_uri

log = logging.getLogger(__name__)

PaperState = Literal["ok", "near_end", "out", "unknown"]

DLE_EOT = b"\x10\x04"
ONLINE, OFFLINE_CAUSE, PAPER_SENSOR = 1, 2, 4  # DLE EOT n
FIXED_MASK, FIXED_BITS = 0x93, 0x12  # every status byte: bits 1 and 4 set, bits 0 and 7 clear
OFFLINE = 0x08  # n=1
COVER_OPEN, STOPPED_PAPER_END = 0x04, 0x20  # n=2
NEAR_END, PAPER_END = 0x0C, 0x60  # n=4: near-end sensor bits 2-3, end sensor bits 5-6
REPORTING = ("serial", "tcp", "usb")  # transports with a way back from the printer


@dataclass(frozen=True)
class PrinterStatus:
    """What the printer said; None and "unknown" where it said nothing."""

    online: bool | None
    paper: PaperState
    cover_open: bool | None

    @property
    def known(self) -> bool:
        """The printer answered at all."""
        return self.online is not None

    @property
    def complete(self) -> bool:
        """The printer answered every question: online, paper and cover."""
        return self.known and self.paper != "unknown" and self.cover_open is not None

    @property
    def ready(self) -> bool:
        return self.online is True and self.cover_open is False and self.paper in ("ok", "near_end")


UNKNOWN = PrinterStatus(online=None, paper="unknown", cover_open=None)


def _bit(reply: int | None, mask: int) -> bool | None:
    """Whether `mask` is set in a status byte; None for no reply or a byte that is not a
    status byte (its fixed bits are wrong)."""
    if reply is None or reply & FIXED_MASK != FIXED_BITS:
        return None
    return bool(reply & mask)


def parse_status(online: int | None, offline_cause: int | None, paper: int | None) -> PrinterStatus:
    """A status from the replies to DLE EOT 1, 2 and 4 (None where there was no reply)."""
    offline = _bit(online, OFFLINE)
    return PrinterStatus(online=None if offline is None else not offline, paper=_paper(paper, offline_cause),
                         cover_open=_bit(offline_cause, COVER_OPEN))


def _paper(paper: int | None, offline_cause: int | None) -> PaperState:
    if _bit(paper, PAPER_END):
        return "out"
    if _bit(paper, NEAR_END):
        return "near_end"
    if _bit(paper, 0) is not None:
        return "ok"
    return "out" if _bit(offline_cause, STOPPED_PAPER_END) else "unknown"


# --- errors ----------------------------------------------------------------------------

class PrinterError(Exception):
    """A slip that was not printed; the message names the device and what to do."""

    def __init__(self, uri: DeviceURI | str, problem: str, action: str) -> None:
        self.uri = str(uri)
        super().__init__(f"Printer {self.uri} {problem}. {action}")


class PrinterUnavailable(PrinterError):
    """The printer cannot be opened or written to."""


class PrinterTimeout(PrinterError):
    """The printer did not answer (a status query) or stopped taking data in time."""


class PrinterOffline(PrinterError):
    """The printer says it is offline for another reason than paper or cover."""


class PaperOut(PrinterError):
    """No paper: nothing was sent."""


class CoverOpen(PrinterError):
    """The cover is open: nothing was sent."""


NOTHING = "nothing was printed"
CHECK_OPEN = {
    "serial": "Check that the printer is plugged in and switched on, that {target} is its port, "
              "and that the kiosq user may open it (group dialout).",
    "tcp": "Check that the printer is switched on and reachable at {target} (port open, same network).",
    "usb": "Check the USB cable and power, that {target} is the printer's vendor:product (lsusb), "
           "and that the kiosq user may open it (udev rule).",
    "cups": "Check that the CUPS queue {target} exists and accepts jobs (lpstat -p {target}).",
    "file": "Check that the folder of {target} exists and that the kiosq user may write there.",
}
RESTART = "Check that it is switched on and its cable is in; if it is, switch it off and on again."


# --- transports ------------------------------------------------------------------------

def _serial(uri: DeviceURI, timeout: float) -> Escpos:
    from escpos.printer import Serial

    return Serial(devfile=uri.target, baudrate=uri.option("baudrate", 9600), timeout=timeout)


def _network(uri: DeviceURI, timeout: float) -> Escpos:
    from escpos.printer import Network

    return Network(host=uri.host, port=uri.port, timeout=timeout)


def _usb(uri: DeviceURI, timeout: float) -> Escpos:
    from escpos.printer import Usb

    _require(Usb, "pyusb")
    vendor, product = (int(part, 16) for part in uri.target.split(":"))
    return Usb(idVendor=vendor, idProduct=product, timeout=int(timeout * 1000))


def _cups(uri: DeviceURI, timeout: float) -> Escpos:
    from escpos.printer import CupsPrinter

    _require(CupsPrinter, "pycups")
    return CupsPrinter(printer_name=uri.target)


def _file(uri: DeviceURI, timeout: float) -> Escpos:
    from escpos.printer import File

    return File(devfile=uri.target)


def _require(transport: type[Escpos], library: str) -> None:
    # Checked before building the transport: python-escpos' half-built object would raise
    # again from __del__.
    if not transport.is_usable():
        raise RuntimeError(f"python-escpos needs {library} for it: pip install {library}")


TRANSPORTS: dict[str, Callable[[DeviceURI, float], Escpos]] = {
    "serial": _serial, "tcp": _network, "usb": _usb, "cups": _cups, "file": _file}


def _is_timeout(error: BaseException) -> bool:
    # pyserial's SerialTimeoutException, socket timeouts, pyusb's USBTimeoutError
    return isinstance(error, TimeoutError) or type(error).__name__ in ("SerialTimeoutException", "USBTimeoutError")


# --- the printer -----------------------------------------------------------------------

class Printer:
    """An ESC/POS receipt printer at a device URI (`serial:/dev/ttyUSB0?baudrate=115200`,
    `tcp:10.0.0.5:9100`, `usb:04b8:0e15`, `cups:QUEUE`, `file:/path/out.bin`).

    Nothing is opened until the first status or print. `timeout` bounds each status reply
    and connection. serial, tcp and usb printers answer status queries; cups and file ones
    cannot say anything about paper or cover, so their status is "unknown" and print_slip
    sends to them without that check (use them for spools and tests, not for a kiosk that
    promises slips). Safe to share between threads.
    """

    def __init__(self, uri: str | DeviceURI, *, paper: Paper = PAPER_58, font: PrinterFont = GBK_FONT,
                 timeout: float = 1.0) -> None:
        self.uri = uri if isinstance(uri, DeviceURI) else parse_uri(uri)
        self.paper = paper
        self.font = font
        self.timeout = timeout
        self._escpos: Escpos | None = None
        self._lock = threading.RLock()

    @property
    def reports_status(self) -> bool:
        return self.uri.scheme in REPORTING

    def __enter__(self) -> Printer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Printer({str(self.uri)!r})"

    def __del__(self) -> None:
        # Before python-escpos' own finaliser, which drains a serial port: never ending on a dead line.
        if getattr(self, "_escpos", None) is not None:
            self.close()

    # opening and closing

    def open(self) -> None:
        """Open the transport now (otherwise the first status or print does)."""
        with self._lock:
            self._connection()

    def close(self) -> None:
        with self._lock:
            escpos, self._escpos = self._escpos, None
            if escpos is not None:
                _close(escpos)

    def _connection(self) -> Escpos:
        if self._escpos is None:
            self._escpos = self._open_transport()
        return self._escpos

    def _open_transport(self) -> Escpos:
        action = CHECK_OPEN[self.uri.scheme].format(target=self.uri.target)
        try:
            escpos = TRANSPORTS[self.uri.scheme](self.uri, self.timeout)
        except RuntimeError as e:  # python-escpos: the library this transport needs is missing
            raise PrinterUnavailable(self.uri, f"cannot be used on this machine ({e})",
                                     "Install the library named above, or use another transport.") from e
        try:
            escpos.open()
        except DeviceNotFoundError as e:
            detail = " ".join(str(e).split())
            raise PrinterUnavailable(self.uri, f"cannot be opened ({detail})", action) from e
        log.info("printer %s open", self.uri)
        return escpos

    # status

    def status(self) -> PrinterStatus:
        """Ask the printer (DLE EOT 1, 2, 4). No reply within the timeout gives an unknown
        status, not a fine one; only opening or writing failures raise."""
        with self._lock:
            if self.uri.scheme == "cups":
                return self._cups_status()
            if not self.reports_status:
                return UNKNOWN
            online = self._query(ONLINE)
            if online is None:
                log.warning("printer %s: no reply to a status query within %.1f s", self.uri, self.timeout)
                return UNKNOWN
            return parse_status(online, self._query(OFFLINE_CAUSE), self._query(PAPER_SENSOR))

    def _query(self, n: int) -> int | None:
        escpos = self._connection()
        self._guard(lambda: _drain(self.uri.scheme, escpos), "could not be read")
        self._send(DLE_EOT + bytes([n]))
        reply = self._guard(lambda: _read_reply(self.uri.scheme, escpos), "could not be read")
        return reply[0] if reply else None

    def _cups_status(self) -> PrinterStatus:
        escpos = self._connection()
        state = self._guard(escpos._read, "could not be asked for its state")
        return PrinterStatus(online=state == b"0", paper="unknown", cover_open=None)

    # printing

    def print_slip(self, slip: bytes, *, allow_unknown: bool = False) -> PrinterStatus:
        """Print a slip made by receipts.py, after checking that the printer can: raises
        CoverOpen, PaperOut, PrinterOffline, or PrinterTimeout (a status question left
        unanswered, unless `allow_unknown`) before sending anything. Returns the status it checked (the
        kiosk reports "near_end")."""
        with self._lock:
            state = self.status()
            self._check(state, allow_unknown)
            self._send(slip)
            if self.uri.scheme == "cups":
                self.close()  # CUPS takes the job when the connection closes
            return state

    def text(self, text: str, *, align: Align = "left", bold: bool = False, width: int = 1,
             height: int = 1) -> None:
        """Print text, wrapped to the paper; Chinese as GB18030 in Chinese mode, characters
        the printer lacks as an image line. Unchecked: for test prints (use print_slip)."""
        slip = SlipBuilder(self.paper, self.font).paragraph(text, align=align, bold=bold, width=width, height=height)
        with self._lock:
            self._send(slip.build())

    def qr(self, data: str, *, align: Align = "center") -> None:
        """A QR code drawn by the printer (GS ( k). Unchecked, like text()."""
        with self._lock:
            self._send(SlipBuilder(self.paper, self.font).qr(data, align=align).build())

    def cut(self) -> None:
        with self._lock:
            self._send(SlipBuilder(self.paper, self.font).cut().build())

    def _check(self, state: PrinterStatus, allow_unknown: bool) -> None:
        if state.cover_open:
            raise CoverOpen(self.uri, f"has its cover open: {NOTHING}", "Close the cover firmly, then try again.")
        if state.paper == "out":
            raise PaperOut(self.uri, f"is out of paper: {NOTHING}",
                           f"Load a new {self.paper.name} roll and close the cover, then try again.")
        if state.online is False:
            raise PrinterOffline(self.uri, f"is offline: {NOTHING}",
                                 "Look at its error light; switch it off and on again.")
        if self.reports_status and not state.complete and not allow_unknown:
            raise PrinterTimeout(self.uri, f"did not answer a status query within {self.timeout:g} s: {NOTHING}",
                                 RESTART)

    def _send(self, data: bytes) -> None:
        escpos = self._connection()
        if self.uri.scheme == "serial":
            # Long enough for the slip at the line's speed, so a stuck port cannot hang the kiosk.
            escpos.device.write_timeout = self.timeout + len(data) * 10 / self.uri.option("baudrate", 9600) * 2
        self._guard(lambda: escpos._raw(data), "could not be written to")

    def _guard(self, action: Callable[[], Any], problem: str) -> Any:
        """Run a transport call; a failure closes the transport (the next call reopens it)
        and becomes a PrinterError that names the device."""
        try:
            return action()
        except (OSError, ValueError) as e:
            self.close()
            if _is_timeout(e):
                raise PrinterTimeout(self.uri, f"stopped taking data ({e}): the slip may be incomplete",
                                     RESTART) from e
            raise PrinterUnavailable(self.uri, f"{problem} ({e})",
                                     CHECK_OPEN[self.uri.scheme].format(target=self.uri.target)) from e


def _drain(scheme: str, escpos: Escpos) -> None:
    """Drop replies that came too late for an earlier query, so they are not read as this one's."""
    if scheme == "serial":
        escpos.device.reset_input_buffer()
    elif scheme == "tcp":
        sock: socket.socket = escpos.device
        sock.setblocking(False)
        try:
            while sock.recv(64):
                pass
        except BlockingIOError:
            pass
        finally:
            sock.settimeout(escpos.timeout)


def _read_reply(scheme: str, escpos: Escpos) -> bytes:
    """One status byte, or b"" when none came within the timeout. (python-escpos' own
    _read asks a serial port for 16 bytes and so always waits the whole timeout.)"""
    try:
        if scheme == "serial":
            return bytes(escpos.device.read(1))  # bytes(): python-escpos is untyped
        if scheme == "tcp":
            return bytes(escpos.device.recv(1))
        return bytes(escpos._read())[:1]
    except OSError as e:
        if _is_timeout(e):
            return b""
        raise


def _close(escpos: Escpos) -> None:
    """Close without draining: tcdrain on a port nobody reads would never return."""
    device = escpos._device
    try:
        if isinstance(device, socket.socket) or not hasattr(device, "reset_output_buffer"):
            escpos.close()
        else:
            device.close()  # a serial port: close the descriptor, drop what is unsent
    except (OSError, ValueError) as e:
        log.warning("closing printer: %s", e)
    finally:
        escpos._device = False
