"""Resident ID card (二代证) readers on a serial port: the SAM frame protocol, the card's
text fields, a `CardReader` for one command at a time and a `CardPoller` that turns
polling into one event per card placement and removal.

Wire format (PLATFORM.md; GA 467 "SAM" modules, 115200 8N1):

    host -> reader   AA AA AA 96 69  LEN_HI LEN_LO  CMD PARA  DATA…  CHK
    reader -> host   AA AA AA 96 69  LEN_HI LEN_LO  SW1 SW2 SW3  DATA…  CHK

LEN counts every byte after itself (CMD/SW1 … CHK); CHK is the XOR of the two length
bytes and everything after them up to the checksum. Commands: `11 FF` status, `20 01`
find, `20 02` select, `30 01` read base info (a 256-byte UCS-2LE text block, then a
1,024-byte WLT photo kept as bytes).

SW3 is the reader's own status; `STATUS_TEXT` gives the meaning of the codes of GA 467
SAM modules. Acted on: 90 ok and 9F card found; 80 (no card) makes `find()` False and 81
(select failed) makes `select()` False; every other code — 10 checksum and 11 length
errors in our command, 21 bad command, 41 read failed, 31-33 authentication, 40 not an
ID card, 60/66 SAM broken or unauthorised, … — raises ReaderStatusError, which the
poller reports and retries.

Personal data is handled with care: nothing in this module logs a name, an ID number,
an address or a birth date, error messages name fields but never their values, and
`Identity`'s repr masks what it shows (`王*`, `110***********1234`).
"""

from __future__ import annotations

import base64
import logging
import termios
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date

import serial
from kiosq.base.privacy import mask_id_number, mask_name
from kiosq.devices.uri import DeviceURI, backoff_delays, serial_uri

log = logging.getLogger(__name__)

PREAMBLE = b"\xaa\xaa\xaa\x96\x69"
DEFAULT_BAUDRATE = 115200
# The longest reply of a SAM module (base info + fingerprint, 30 10) is 2,314 bytes after
# the length field; anything claiming more than this is noise, not a frame.
MAX_LENGTH = 4096
MIN_LENGTH = 3  # CMD PARA CHK (a reply needs 4: SW1 SW2 SW3 CHK)

# Commands (CMD, PARA).
STATUS = (0x11, 0xFF)
FIND = (0x20, 0x01)
SELECT = (0x20, 0x02)
READ_BASE = (0x30, 0x01)

# SW3: the reader's status byte.
OK = 0x90
NO_CONTENT = 0x91
CARD_FOUND = 0x9F
BAD_CHECKSUM = 0x10
BAD_LENGTH = 0x11
BAD_COMMAND = 0x21
READ_FAILED = 0x41
NO_CARD = 0x80
SELECT_FAILED = 0x81
STATUS_TEXT: dict[int, str] = {
    OK: "ok",
    NO_CONTENT: "the card holds nothing for this item",
    CARD_FOUND: "card found",
    BAD_CHECKSUM: "the reader received a command with a bad checksum",
    BAD_LENGTH: "the reader received a command with a bad length",
    BAD_COMMAND: "the reader did not understand the command",
    0x23: "the reader refused the operation",
    0x24: "the reader had an unidentified error",
    0x31: "the card did not accept the reader's SAM",
    0x32: "the reader's SAM did not accept the card",
    0x33: "the card's data did not verify",
    0x40: "not a resident ID card",
    READ_FAILED: "reading the card failed (moved during the read?)",
    0x47: "the reader could not get a random number from the card",
    0x60: "the reader's self-test failed",
    0x66: "the reader's SAM is not authorised",
    NO_CARD: "no card on the reader",
    SELECT_FAILED: "selecting the card failed",
}

# The 256-byte text block of "read base info": (field, bytes), UCS-2 little-endian,
# padded with spaces.
TEXT_LAYOUT: tuple[tuple[str, int], ...] = (
    ("name", 30), ("sex", 2), ("nation", 4), ("birth", 16), ("address", 70), ("id_number", 36),
    ("authority", 30), ("valid_from", 16), ("valid_to", 16), ("reserved", 36),
)
TEXT_SIZE = 256
PHOTO_SIZE = 1024
LONG_TERM = "长期"

# GB/T 2261.1 sex codes.
SEXES: dict[str, str] = {"0": "未知", "1": "男", "2": "女", "9": "未说明"}

# GB 3304 nationality codes, as printed on the card (without 族).
NATIONS: dict[str, str] = {
    "01": "汉", "02": "蒙古", "03": "回", "04": "藏", "05": "维吾尔", "06": "苗", "07": "彝", "08": "壮",
    "09": "布依", "10": "朝鲜", "11": "满", "12": "侗", "13": "瑶", "14": "白", "15": "土家", "16": "哈尼",
    "17": "哈萨克", "18": "傣", "19": "黎", "20": "傈僳", "21": "佤", "22": "畲", "23": "高山", "24": "拉祜",
    "25": "水", "26": "东乡", "27": "纳西", "28": "景颇", "29": "柯尔克孜", "30": "土", "31": "达斡尔",
    "32": "仫佬", "33": "羌", "34": "布朗", "35": "撒拉", "36": "毛南", "37": "仡佬", "38": "锡伯",
    "39": "阿昌", "40": "普米", "41": "塔吉克", "42": "怒", "43": "乌孜别克", "44": "俄罗斯", "45": "鄂温克",
    "46": "德昂", "47": "保安", "48": "裕固", "49": "京", "50": "塔塔尔", "51": "独龙", "52": "鄂伦春",
    "53": "赫哲", "54": "门巴", "55": "珞巴", "56": "基诺", "97": "其他", "98": "外国血统中国籍人士",
}

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


# --- errors -------------------------------------------------------------------------------

class IdCardError(Exception):
    """Base of everything this module raises. Messages never hold personal data."""


class FrameError(IdCardError):
    """Bytes that are not a well-formed frame: bad preamble, length or checksum, or short."""


class ChecksumError(FrameError):
    """A frame whose checksum does not match its bytes."""


class ReaderStatusError(IdCardError):
    """The reader answered with a status that means the command failed."""

    def __init__(self, device: str, command: str, status: int) -> None:
        meaning = STATUS_TEXT.get(status, "unknown status")
        super().__init__(f"ID card reader on {device}: {command} failed with status 0x{status:02X} ({meaning})")
        self.status = status


class CardDataError(IdCardError):
    """The card's text block holds a field that is not valid; the message names the field only."""


class ReaderTimeout(IdCardError):
    """The reader did not answer in time."""


class ReaderUnavailable(IdCardError):
    """The port cannot be opened or has gone away (unplugged, powered off)."""


# --- frames (pure) --------------------------------------------------------------------------

def checksum(data: bytes) -> int:
    """XOR of every byte: the frame checksum over the length field and the body."""
    result = 0
    for byte in data:
        result ^= byte
    return result


def build_frame(body: bytes) -> bytes:
    """Wrap `body` (CMD PARA DATA, or SW1 SW2 SW3 DATA) in preamble, length and checksum."""
    length = len(body) + 1
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise FrameError(f"a frame body of {len(body)} bytes cannot be sent (at most {MAX_LENGTH - 1})")
    head = length.to_bytes(2, "big")
    return PREAMBLE + head + body + bytes([checksum(head + body)])


def build_command(command: tuple[int, int], data: bytes = b"") -> bytes:
    """A host-to-reader frame: `build_command(FIND)` is AA AA AA 96 69 00 03 20 01 22."""
    return build_frame(bytes(command) + data)


def build_reply(status: int, data: bytes = b"", sw1: int = 0, sw2: int = 0) -> bytes:
    """A reader-to-host frame (what a reader, or the simulator, sends)."""
    return build_frame(bytes([sw1, sw2, status]) + data)


def frame_size(length: int) -> int:
    """Bytes in a whole frame whose length field says `length`."""
    return len(PREAMBLE) + 2 + length


def parse_frame(frame: bytes) -> bytes:
    """The body of one whole frame (between the length field and the checksum).

    Raises FrameError for a bad preamble, a length that does not match, or a bad checksum.
    """
    if frame[:len(PREAMBLE)] != PREAMBLE:
        raise FrameError("frame does not start with the preamble AA AA AA 96 69")
    if len(frame) < frame_size(0):
        raise FrameError(f"short frame: {len(frame)} bytes, not even a length field")
    length = int.from_bytes(frame[5:7], "big")
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise FrameError(f"bad frame length {length} (a frame has {MIN_LENGTH} to {MAX_LENGTH})")
    if len(frame) != frame_size(length):
        raise FrameError(f"frame length says {frame_size(length)} bytes, got {len(frame)}")
    expected = checksum(frame[5:-1])
    if frame[-1] != expected:
        raise ChecksumError(f"bad checksum: frame says 0x{frame[-1]:02X}, its bytes give 0x{expected:02X}")
    return frame[7:-1]


@dataclass(frozen=True)
class Reply:
    """A reader's answer: SW1 SW2, the status SW3 and the data that follows."""

    sw1: int
    sw2: int
    status: int
    data: bytes = field(repr=False)

    @property
    def meaning(self) -> str:
        return STATUS_TEXT.get(self.status, f"unknown status 0x{self.status:02X}")


def parse_reply(frame: bytes) -> Reply:
    """Parse a reader-to-host frame. Raises FrameError."""
    body = parse_frame(frame)
    if len(body) < 3:
        raise FrameError(f"reply of {len(body)} bytes has no SW1 SW2 SW3")
    return Reply(body[0], body[1], body[2], bytes(body[3:]))


@dataclass(frozen=True)
class Command:
    """A host's command as a reader sees it."""

    cmd: int
    para: int
    data: bytes = b""


def parse_command(frame: bytes) -> Command:
    """Parse a host-to-reader frame (the simulator's side). Raises FrameError."""
    body = parse_frame(frame)
    return Command(body[0], body[1], bytes(body[2:]))


class FrameDecoder:
    """Finds whole frames in a stream of bytes, resynchronising on the preamble.

    Feed it what the port gives; `pop()` returns the next whole frame, or None when more
    bytes are needed. A candidate with a bad length or checksum is dropped (only its first
    byte, so that a real frame hidden inside it is still found) and reported by raising
    FrameError; call `pop()` again to go on. Noise before a preamble is counted in `skipped`.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.skipped = 0

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def pending(self) -> int:
        """Bytes held that are not yet a whole frame."""
        return len(self._buffer)

    def expected(self) -> int | None:
        """The size of the frame being received, once its length field is in."""
        if len(self._buffer) < 7 or not self._buffer.startswith(PREAMBLE):
            return None
        return frame_size(int.from_bytes(self._buffer[5:7], "big"))

    def pop(self) -> bytes | None:
        self._skip_to_preamble()
        if len(self._buffer) < 7:
            return None
        length = int.from_bytes(self._buffer[5:7], "big")
        if not MIN_LENGTH <= length <= MAX_LENGTH:
            self._drop(1)
            raise FrameError(f"bad frame length {length}; resynchronising on the next preamble")
        size = frame_size(length)
        if len(self._buffer) < size:
            return None
        frame = bytes(self._buffer[:size])
        try:
            parse_frame(frame)
        except FrameError:
            self._drop(1)
            raise
        del self._buffer[:size]
        return frame

    def clear(self) -> None:
        self._buffer.clear()

    def salvage(self) -> bytes | None:
        """Give up on the frame being received and look for a whole frame behind it (for
        noise that looked like the start of a long frame)."""
        while self._buffer:
            self._drop(1)
            try:
                frame = self.pop()
            except FrameError:
                continue
            if frame is not None:
                return frame
        return None

    def _skip_to_preamble(self) -> None:
        at = self._buffer.find(PREAMBLE)
        if at < 0:
            # Keep a tail that may be the start of a preamble split across reads.
            at = max(0, len(self._buffer) - (len(PREAMBLE) - 1))
            while at < len(self._buffer) and not PREAMBLE.startswith(self._buffer[at:]):
                at += 1
        self._drop(at)

    def _drop(self, count: int) -> None:
        self.skipped += count
        del self._buffer[:count]


# --- the card's fields (pure) ---------------------------------------------------------------

def id_check_digit(first17: str) -> str:
    """The GB 11643 (ISO 7064 MOD 11-2) check character for the first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("an ID number's check digit is computed from exactly 17 digits")
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS)) % 11]


def id_number_problem(id_number: str) -> str | None:
    """Why `id_number` is not a valid 18-character resident ID number, or None if it is.

    Checks the form (17 digits and a digit or X), the birth date inside it, and the check
    digit. The reason never repeats the number.
    """
    if len(id_number) != 18 or not id_number.isascii() or not id_number[:17].isdigit() \
            or id_number[17] not in "0123456789X":
        return "ID number is not 17 digits followed by a digit or X"
    if _parse_date(id_number[6:14]) is None:
        return "ID number does not hold a valid birth date"
    if id_check_digit(id_number[:17]) != id_number[17]:
        return "ID number's check digit is wrong (GB 11643 mod 11-2)"
    return None


def id_number_valid(id_number: str) -> bool:
    return id_number_problem(id_number) is None




@dataclass(frozen=True, repr=False)
class Identity:
    """What a resident ID card says. `valid_to` None means 长期 (valid for life).

    repr() and str() mask the name and ID number and leave out everything else personal,
    so an Identity can be printed or logged by mistake without leaking it.
    """

    name: str
    sex: str            # 男, 女, 未知 or 未说明
    nation: str         # 汉, 蒙古, …, as printed on the card
    birth: date
    address: str
    id_number: str
    authority: str      # the issuing public security bureau
    valid_from: date
    valid_to: date | None
    photo: bytes = b""  # the 1,024-byte WLT image exactly as read (a licensed decoder turns it into a picture)
    sex_code: str = ""
    nation_code: str = ""

    @property
    def long_term(self) -> bool:
        return self.valid_to is None

    def __repr__(self) -> str:
        return f"Identity(name={mask_name(self.name)!r}, id_number={mask_id_number(self.id_number)!r}, …)"

    __str__ = __repr__

    def as_dict(self, include_photo: bool = False) -> dict[str, str]:
        """Plain strings for forms and JSON (`birth` as YYYY-MM-DD, `valid_to` may be 长期)."""
        data = {
            "name": self.name, "sex": self.sex, "nation": self.nation, "birth": self.birth.isoformat(),
            "address": self.address, "id_number": self.id_number, "authority": self.authority,
            "valid_from": self.valid_from.isoformat(),
            "valid_to": LONG_TERM if self.valid_to is None else self.valid_to.isoformat(),
        }
        if include_photo:
            data["photo_wlt_base64"] = base64.b64encode(self.photo).decode("ascii")
        return data


def split_text(text: bytes) -> dict[str, str]:
    """The 256-byte text block as field -> string, padding removed. Raises CardDataError."""
    if len(text) != TEXT_SIZE:
        raise CardDataError(f"the card's text block is {len(text)} bytes, not {TEXT_SIZE}")
    fields, at = {}, 0
    for name, size in TEXT_LAYOUT:
        raw = text[at:at + size]
        at += size
        try:
            fields[name] = raw.decode("utf-16-le").rstrip(" \x00")
        except UnicodeDecodeError:
            raise CardDataError(f"the card's {name} field is not UCS-2 text") from None
    return fields


def _parse_date(text: str) -> date | None:
    if len(text) != 8 or not text.isascii() or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def _required_date(fields: dict[str, str], name: str) -> date:
    value = _parse_date(fields[name])
    if value is None:
        raise CardDataError(f"the card's {name} field is not a date (YYYYMMDD)")
    return value


def _required_text(fields: dict[str, str], name: str) -> str:
    value = fields[name].strip()
    if not value:
        raise CardDataError(f"the card's {name} field is empty")
    return value


def parse_identity(text: bytes, photo: bytes = b"") -> Identity:
    """An Identity from the card's text block (and WLT photo). Raises CardDataError.

    The ID number's check digit is verified, and its birth date must match the card's.
    """
    fields = split_text(text)
    sex_code, nation_code = fields["sex"], fields["nation"]
    if sex_code not in SEXES:
        raise CardDataError("the card's sex field is not a GB/T 2261.1 code (0, 1, 2 or 9)")
    if nation_code not in NATIONS:
        raise CardDataError("the card's nation field is not a GB 3304 code (01-56, 97, 98)")
    birth = _required_date(fields, "birth")
    id_number = fields["id_number"]
    problem = id_number_problem(id_number)
    if problem:
        raise CardDataError(f"the card's {problem}")
    if id_number[6:14] != fields["birth"]:
        raise CardDataError("the card's ID number and birth field disagree on the birth date")
    valid_from = _required_date(fields, "valid_from")
    valid_to = None if fields["valid_to"] == LONG_TERM else _required_date(fields, "valid_to")
    if valid_to is not None and valid_to < valid_from:
        raise CardDataError("the card's validity ends before it begins")
    return Identity(
        name=_required_text(fields, "name"), sex=SEXES[sex_code], nation=NATIONS[nation_code], birth=birth,
        address=_required_text(fields, "address"), id_number=id_number,
        authority=_required_text(fields, "authority"), valid_from=valid_from, valid_to=valid_to,
        photo=bytes(photo), sex_code=sex_code, nation_code=nation_code,
    )


def parse_base_info(data: bytes) -> Identity:
    """The data of a `30 01` reply: text length, photo length (2 bytes each, big-endian),
    the text block and the photo. Raises CardDataError."""
    if len(data) < 4:
        raise CardDataError("the base-info reply has no text and photo lengths")
    text_len, photo_len = int.from_bytes(data[:2], "big"), int.from_bytes(data[2:4], "big")
    if text_len != TEXT_SIZE or len(data) != 4 + text_len + photo_len:
        raise CardDataError(f"the base-info reply's lengths do not add up (text {text_len}, photo {photo_len}, "
                            f"{len(data) - 4} bytes present)")
    return parse_identity(data[4:4 + text_len], data[4 + text_len:])


# --- the reader (I/O) -----------------------------------------------------------------------

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
            try:
                port.close()
            except _PORT_ERRORS:
                pass  # the device is already gone; the descriptor is released either way

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


# --- polling: one event per placement ---------------------------------------------------------

@dataclass(frozen=True)
class CardRead:
    """A card was placed and read."""

    identity: Identity


@dataclass(frozen=True)
class CardRemoved:
    """The card placed (read or not) has gone."""


@dataclass(frozen=True)
class CardUnreadable:
    """A card is on the reader but cannot be read; ask the citizen to place it again."""

    reason: str


@dataclass(frozen=True)
class ReaderProblem:
    """A command failed in a way that is retried (garbled or short reply, timeout, status)."""

    reason: str


@dataclass(frozen=True)
class ReaderLost:
    """The reader went away or cannot be opened; it is reopened with backoff."""

    reason: str


@dataclass(frozen=True)
class ReaderBack:
    """The reader can be used again after ReaderLost."""


CardEvent = CardRead | CardRemoved | CardUnreadable | ReaderProblem | ReaderLost | ReaderBack


class Placement:
    """Pure bookkeeping of what is on the reader, fed what polling observes.

    A card counts as removed only after `removed_after` "no card" answers in a row, since
    some readers miss a card that stays put once right after reading it. A card that fails
    to read is retried up to `max_attempts` times, then reported once as unreadable.
    After the reader comes back from being lost, a card still on it is read again and
    reported only if it is a different card.
    """

    def __init__(self, removed_after: int = 2, max_attempts: int = 3) -> None:
        self.removed_after = removed_after
        self.max_attempts = max_attempts
        self.present = False                 # CardRead or CardUnreadable was reported
        self.identity: Identity | None = None
        self.recheck = False                 # the reader was lost while a card was present
        self._misses = 0
        self._attempts = 0

    def wants_read(self) -> bool:
        return not self.present or self.recheck

    def found(self, on_reader: bool) -> list[CardEvent]:
        if on_reader:
            self._misses = 0
            return []
        self._attempts = 0
        if not self.present:
            return []
        self._misses += 1
        if self._misses < self.removed_after:
            return []
        return self._removed()

    def read(self, identity: Identity) -> list[CardEvent]:
        same = self.present and self.recheck and identity == self.identity
        events: list[CardEvent] = [] if same or not self.present else self._removed()
        self.present, self.identity, self.recheck, self._attempts = True, identity, False, 0
        return events if same else events + [CardRead(identity)]

    def failed(self, reason: str, retry: bool = True) -> list[CardEvent]:
        events: list[CardEvent] = [ReaderProblem(reason)]
        if self.recheck:
            self.recheck = False  # cannot tell; keep the card we knew
            return events
        self._attempts += 1
        if not retry or self._attempts >= self.max_attempts:
            self.present, self.identity, self._attempts = True, None, 0
            events.append(CardUnreadable(reason))
        return events

    def lost(self) -> None:
        self._attempts = self._misses = 0
        self.recheck = self.present

    def _removed(self) -> list[CardEvent]:
        self.present, self.identity, self.recheck, self._misses = False, None, False, 0
        return [CardRemoved()]


class CardPoller:
    """Polls a CardReader and yields CardEvents: one CardRead per placement, one CardRemoved
    when the card goes, and reports of trouble, from which it recovers by itself.

    Run `poll()` in a worker thread; `stop()` (from any thread) ends it promptly, and a
    stopped poller stays stopped. The poller opens the reader and closes it when `poll()`
    ends. If `give_up_after` is set and the reader stays away that long, `poll()` raises
    ReaderUnavailable.
    """

    def __init__(self, reader: CardReader, *, interval: float = 0.3, removed_after: int = 2,
                 max_attempts: int = 3, backoff: tuple[float, float] = (0.2, 5.0),
                 give_up_after: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.reader = reader
        self.interval = interval
        self.backoff = backoff
        self.give_up_after = give_up_after
        self.placement = Placement(removed_after, max_attempts)
        self._clock = clock
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def poll(self) -> Iterator[CardEvent]:
        try:
            problem = self._open_first()
            if problem is not None:
                yield ReaderLost(problem)
                yield from self._reconnect()
            while not self._stop.is_set():
                try:
                    events = self._step()
                except ReaderUnavailable as e:
                    log.warning("%s", e)
                    self.placement.lost()
                    yield ReaderLost(str(e))
                    yield from self._reconnect()
                    continue
                yield from events
                self._stop.wait(self.interval)
        finally:
            self.reader.close()

    def _open_first(self) -> str | None:
        """Open the reader; the reason it cannot be opened, or None."""
        try:
            self.reader.open()
        except ReaderUnavailable as e:
            log.warning("%s", e)
            return str(e)
        return None

    def _step(self) -> list[CardEvent]:
        """One poll: find, and read if the placement wants it. ReaderUnavailable escapes."""
        try:
            on_reader = self.reader.find()
        except (FrameError, ReaderTimeout, ReaderStatusError) as e:
            events: list[CardEvent] = [ReaderProblem(str(e))]
        else:
            events = self.placement.found(on_reader)
            if on_reader and self.placement.wants_read():
                events += self._read()
        for event in events:
            self._log(event)
        return events

    def _read(self) -> list[CardEvent]:
        try:
            if not self.reader.select():
                return []  # gone between find and select: the next find will tell
            identity = self.reader.read()
        except CardDataError as e:
            return self.placement.failed(str(e), retry=False)
        except (FrameError, ReaderTimeout, ReaderStatusError) as e:
            return self.placement.failed(str(e))
        return self.placement.read(identity)

    def _reconnect(self) -> Iterator[CardEvent]:
        lost_at = self._clock()
        for delay in backoff_delays(*self.backoff):
            if self._stop.wait(delay):
                return
            try:
                self.reader.open()
            except ReaderUnavailable as e:
                if self.give_up_after is not None and self._clock() - lost_at >= self.give_up_after:
                    raise ReaderUnavailable(f"the ID card reader on {self.reader.device} has been away for "
                                            f"{self.give_up_after:g} s; check its cable and power ({e})") from None
                log.debug("ID card reader on %s still away; next try in %.1f s", self.reader.device, delay)
                continue
            log.warning("ID card reader on %s is back", self.reader.device)
            yield ReaderBack()
            return

    def _log(self, event: CardEvent) -> None:
        # Never the identity: only that something happened.
        if isinstance(event, CardRead):
            log.info("ID card reader on %s: card read", self.reader.device)
        elif isinstance(event, CardRemoved):
            log.info("ID card reader on %s: card removed", self.reader.device)
        elif isinstance(event, CardUnreadable):
            log.warning("ID card reader on %s: giving up on this card until it is placed again", self.reader.device)
        elif isinstance(event, ReaderProblem):
            log.warning("%s", event.reason)  # each reason names the device
