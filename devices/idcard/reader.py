"""`CardReader`: one ID card reader on a serial port, one command at a time, each with a
timeout; port trouble, silence and garbled replies each raise their own error.
"""

from __future__ import annotations

import contextlib
import logging
import termios
import time
from collections.abc import Callable

import serial

from kiosq.devices.idcard.frames import FrameDecoder, Reply, build_command, parse_reply
from kiosq.devices.idcard.identity import Identity, parse_base_info
from kiosq.devices.idcard.protocol import (
    CARD_FOUND,
    DEFAULT_BAUDRATE,
    FIND,
    NO_CARD,
    OK,
    READ_BASE,
    SELECT,
    SELECT_FAILED,
    STATUS,
    CardDataError,
    FrameError,
    IdCardError,
    ReaderStatusError,
    ReaderTimeout,
    ReaderUnavailable,
)
from kiosq.devices.uri import DeviceURI, serial_uri

log = logging.getLogger(__name__)

_PORT_ERRORS = (OSError, termios.error)  # serial.SerialException is an OSError
_SETTLE = 0.1  # after a bad frame, how long to wait for a good one behind it


class CardReader:
    """One ID card reader on a serial port; one command at a time, each with a timeout.

    `find()`, `select()` and `read()` are the three steps of reading a card; `read_card()`
    does all three. Port trouble raises ReaderUnavailable (and closes the port, so
    `open()` can be tried again); a reply that never comes raises ReaderTimeout, a
    garbled or short one FrameError.
    """

    def __init__(self, uri: str | DeviceURI, *, timeout: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        parsed = serial_uri(uri, "an ID card reader")
        self.device, self.baudrate = parsed.target, parsed.option("baudrate", DEFAULT_BAUDRATE)
        self.timeout = timeout
        self._clock = clock
        self._port: serial.Serial | None = None

    def __repr__(self) -> str:
        return f"CardReader({self.device!r}, {'open' if self.is_open else 'closed'})"

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def open(self) -> None:
        if self._port is not None:
            return
        try:
            self._port = serial.Serial(self.device, self.baudrate, bytesize=8, parity="N", stopbits=1,
                                       timeout=0.02, write_timeout=self.timeout)
        except _PORT_ERRORS as e:
            raise ReaderUnavailable(f"cannot open the ID card reader on {self.device}: {e}; check that it is "
                                    "plugged in and that this user may use the port (group dialout)") from None

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(*_PORT_ERRORS):  # the device may be gone; the descriptor is released either way
                port.close()

    def __enter__(self) -> CardReader:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self) -> None:
        """Ask the reader whether it is working (`11 FF`); ReaderStatusError if not."""
        self._expect(self.transact(STATUS), "status check", OK)

    def find(self) -> bool:
        """Is there a card on the reader (`20 01`)?"""
        reply = self.transact(FIND)
        if reply.status == NO_CARD:
            return False
        self._expect(reply, "find card", CARD_FOUND)
        return True

    def select(self) -> bool:
        """Select the card found (`20 02`); False if it went away in between."""
        reply = self.transact(SELECT)
        if reply.status == SELECT_FAILED:
            return False
        self._expect(reply, "select card", OK)
        return True

    def read(self) -> Identity:
        """Read the selected card's base information (`30 01`): text fields and WLT photo."""
        reply = self._expect(self.transact(READ_BASE), "read card", OK)
        try:
            return parse_base_info(reply.data)
        except CardDataError as e:
            raise CardDataError(f"ID card reader on {self.device}: {e}") from None

    def read_card(self) -> Identity | None:
        """Find, select and read: the Identity, or None if there is no card."""
        if not self.find() or not self.select():
            return None
        return self.read()

    def transact(self, command: tuple[int, int], data: bytes = b"") -> Reply:
        """Send one command and return the reader's reply."""
        port = self._port
        if port is None:
            raise ReaderUnavailable(f"the ID card reader on {self.device} is not open (it went away, or open() "
                                    "was not called); open it again once it is plugged in")
        try:
            port.reset_input_buffer()  # a late answer to an earlier command is not this one's reply
            port.write(build_command(command, data))
            frame = self._receive(port)
        except _PORT_ERRORS as e:
            self.close()
            raise ReaderUnavailable(f"the ID card reader on {self.device} went away ({e}); "
                                    "check its cable; open it again once it is back") from None
        try:
            return parse_reply(frame)
        except FrameError as e:
            raise FrameError(f"bad reply from the ID card reader on {self.device}: {e}") from None

    def _receive(self, port: serial.Serial) -> bytes:
        decoder = FrameDecoder()
        deadline = self._clock() + self.timeout
        error: FrameError | None = None
        last_byte = self._clock()
        while True:
            try:
                frame = decoder.pop()
            except FrameError as e:
                log.info("ID card reader on %s: %s", self.device, e)  # reported when it is not recovered
                error = e
                continue
            if frame is not None:
                if decoder.skipped:
                    log.warning("ID card reader on %s: skipped %d stray bytes before the reply",
                                self.device, decoder.skipped)
                return frame
            now = self._clock()
            if now >= (deadline if error is None else min(deadline, last_byte + _SETTLE)):
                problem = self._no_frame(decoder, error)
                frame = decoder.salvage()
                if frame is None:
                    raise problem
                log.warning("ID card reader on %s: skipped %d stray bytes that looked like a frame",
                            self.device, decoder.skipped)
                return frame
            chunk = port.read(max(1, port.in_waiting))
            if chunk:
                decoder.feed(chunk)
                last_byte = self._clock()

    def _no_frame(self, decoder: FrameDecoder, error: FrameError | None) -> IdCardError:
        expected = decoder.expected()
        if expected is not None:
            return FrameError(f"short frame from the ID card reader on {self.device}: "
                              f"{decoder.pending} of {expected} bytes came within {self.timeout:g} s")
        if error is not None:
            return FrameError(f"garbled reply from the ID card reader on {self.device}: {error}")
        return ReaderTimeout(f"the ID card reader on {self.device} did not answer within {self.timeout:g} s; "
                             "check that it is powered and set to 115200 8N1")

    def _expect(self, reply: Reply, command: str, status: int) -> Reply:
        if reply.status != status:
            raise ReaderStatusError(self.device, command, reply.status)
        return reply
