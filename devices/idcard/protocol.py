"""The SAM protocol's vocabulary (GA 467): the preamble, the commands, the reader's status
codes and what each means, and the errors of kiosq.devices.idcard.
"""

from __future__ import annotations

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


# --- errors -------------------------------------------------------------------------------

class IdCardError(Exception):
    """Base of everything kiosq.devices.idcard raises. Messages never hold personal data."""


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
