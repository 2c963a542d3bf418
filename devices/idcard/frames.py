"""SAM frames (pure): building and parsing host and reader frames, and a decoder that finds
whole frames in a byte stream, resynchronising on the preamble after noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kiosq.devices.idcard.protocol import MAX_LENGTH, MIN_LENGTH, PREAMBLE, STATUS_TEXT, ChecksumError, FrameError


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
