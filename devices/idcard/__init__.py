"""Resident ID card (二代证) readers on a serial port: the SAM frame protocol, the card's
text fields, a `CardReader` for one command at a time and a `CardPoller` that turns
polling into one event per card placement and removal.

The package: `protocol` (commands, status codes, errors), `frames` (building, parsing and
finding frames), `identity` (the card's text block and `Identity`), `reader` (CardReader)
and `poller` (Placement, CardPoller and the events); every public name is importable from
here.

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

Personal data is handled with care: nothing in this package logs a name, an ID number,
an address or a birth date, error messages name fields but never their values, and
`Identity`'s repr masks what it shows (`王*`, `110***********1234`).
"""

from __future__ import annotations

from kiosq.devices.idcard.frames import (
    Command,
    FrameDecoder,
    Reply,
    build_command,
    build_frame,
    build_reply,
    checksum,
    frame_size,
    parse_command,
    parse_frame,
    parse_reply,
)
from kiosq.devices.idcard.identity import (
    LONG_TERM,
    NATIONS,
    PHOTO_SIZE,
    SEXES,
    TEXT_LAYOUT,
    TEXT_SIZE,
    Identity,
    parse_base_info,
    parse_identity,
    split_text,
)
from kiosq.devices.idcard.poller import (
    CardEvent,
    CardPoller,
    CardRead,
    CardRemoved,
    CardUnreadable,
    Placement,
    ReaderBack,
    ReaderLost,
    ReaderProblem,
)
from kiosq.devices.idcard.protocol import (
    BAD_CHECKSUM,
    BAD_COMMAND,
    BAD_LENGTH,
    CARD_FOUND,
    DEFAULT_BAUDRATE,
    FIND,
    MAX_LENGTH,
    MIN_LENGTH,
    NO_CARD,
    NO_CONTENT,
    OK,
    PREAMBLE,
    READ_BASE,
    READ_FAILED,
    SELECT,
    SELECT_FAILED,
    STATUS,
    STATUS_TEXT,
    CardDataError,
    ChecksumError,
    FrameError,
    IdCardError,
    ReaderStatusError,
    ReaderTimeout,
    ReaderUnavailable,
)
from kiosq.devices.idcard.reader import (
    CardReader,
)

__all__ = [
    "PREAMBLE", "DEFAULT_BAUDRATE", "MAX_LENGTH", "MIN_LENGTH", "STATUS", "FIND", "SELECT", "READ_BASE",
    "OK", "NO_CONTENT", "CARD_FOUND", "BAD_CHECKSUM", "BAD_LENGTH", "BAD_COMMAND", "READ_FAILED",
    "NO_CARD", "SELECT_FAILED", "STATUS_TEXT", "IdCardError", "FrameError", "ChecksumError",
    "ReaderStatusError", "CardDataError", "ReaderTimeout", "ReaderUnavailable", "checksum",
    "build_frame", "build_command", "build_reply", "frame_size", "parse_frame", "Reply", "parse_reply",
    "Command", "parse_command", "FrameDecoder", "TEXT_LAYOUT", "TEXT_SIZE", "PHOTO_SIZE", "LONG_TERM",
    "SEXES", "NATIONS", "Identity", "split_text", "parse_identity", "parse_base_info", "CardReader",
    "CardRead", "CardRemoved", "CardUnreadable", "ReaderProblem", "ReaderLost", "ReaderBack",
    "CardEvent", "Placement", "CardPoller",
]
