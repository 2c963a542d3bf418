"""A simulated ID card reader speaking the real SAM protocol on a pty, with fictitious cards.

`PtyDevice` serves the master side of a pty in a thread; the slave's path (or a stable
symlink to it, like udev's /dev/serial/by-id/…) is the device path in a `serial:` URI.
`SimulatedCardReader` answers status, find, select and read commands, lets a test or the
CLI place and remove cards at run time, and can misbehave on purpose: corrupt a reply's
checksum, send half a reply, send noise before it, or be unplugged mid-reply.

Every identity here is made up and can be told from a real one at a glance: the names are
测试一/二/三 ("test one/two/three"), addresses are in 虚构省示例市 ("fictional province,
example city"), the authority is 示例市公安局, and the ID numbers start with the area codes
999901-999903, which GB/T 2260 does not use (no province is numbered 99). Their check
digits are valid, so they pass every check a real card passes.

Run `python -m kiosq.devices.sim.idcard` for a reader driven by commands on stdin.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections import Counter
from datetime import date

from kiosq.devices.idcard import (
    BAD_CHECKSUM,
    BAD_COMMAND,
    CARD_FOUND,
    FIND,
    LONG_TERM,
    NATIONS,
    NO_CARD,
    OK,
    PHOTO_SIZE,
    PREAMBLE,
    READ_BASE,
    READ_FAILED,
    SELECT,
    SELECT_FAILED,
    SEXES,
    STATUS,
    TEXT_LAYOUT,
    TEXT_SIZE,
    ChecksumError,
    Command,
    FrameDecoder,
    FrameError,
    Identity,
    build_reply,
    parse_command,
)
from kiosq.devices.sim.pty import PtyDevice, run_console

# --- fictitious cards -------------------------------------------------------------------------


def fictitious_photo(seed: str) -> bytes:
    """1,024 bytes standing in for a WLT photo: a marker, then bytes derived from `seed`."""
    data = bytearray(b"FICTITIOUS-WLT:" + seed.encode("ascii"))
    block = seed.encode("ascii")
    while len(data) < PHOTO_SIZE:
        block = hashlib.sha256(block).digest()
        data += block
    return bytes(data[:PHOTO_SIZE])


def _card(name: str, sex_code: str, nation_code: str, birth: date, address: str, id_number: str,
          authority: str, valid_from: date, valid_to: date | None) -> Identity:
    return Identity(name=name, sex=SEXES[sex_code], nation=NATIONS[nation_code], birth=birth, address=address,
                    id_number=id_number, authority=authority, valid_from=valid_from, valid_to=valid_to,
                    photo=fictitious_photo(id_number), sex_code=sex_code, nation_code=nation_code)


TEST_IDENTITIES: tuple[Identity, ...] = (
    _card("测试一", "1", "01", date(1990, 1, 1), "虚构省示例市演示区测试路1号", "999901199001010010",
          "示例市公安局演示分局", date(2020, 1, 1), date(2040, 1, 1)),
    _card("测试二", "2", "02", date(1985, 6, 15), "虚构省示例市样本县模拟镇测试村2组", "999902198506150029",
          "示例市公安局样本分局", date(2016, 6, 15), date(2036, 6, 15)),
    # The longest address a card holds (35 characters), an X check digit, and 长期.
    _card("测试三", "1", "03", date(1960, 12, 31),
          "虚构省示例市演示区测试大道一百二十三号虚构花园小区四号楼五单元六零一室",
          "99990319601231019X", "示例市公安局演示分局", date(2010, 12, 31), None),
)


def encode_text(identity: Identity) -> bytes:
    """The 256-byte text block a card with `identity` gives (the inverse of parse_identity)."""
    values = {
        "name": identity.name, "sex": identity.sex_code, "nation": identity.nation_code,
        "birth": identity.birth.strftime("%Y%m%d"), "address": identity.address,
        "id_number": identity.id_number, "authority": identity.authority,
        "valid_from": identity.valid_from.strftime("%Y%m%d"),
        "valid_to": LONG_TERM if identity.valid_to is None else identity.valid_to.strftime("%Y%m%d"),
        "reserved": "",
    }
    out = bytearray()
    for name, size in TEXT_LAYOUT:
        raw = values[name].encode("utf-16-le")
        if len(raw) > size:
            raise ValueError(f"{name} is longer than the card's {size // 2} characters")
        out += raw + " ".encode("utf-16-le") * ((size - len(raw)) // 2)
    assert len(out) == TEXT_SIZE
    return bytes(out)


def encode_base_info(identity: Identity) -> bytes:
    """The data of a `30 01` reply: text and photo lengths, text block, photo."""
    photo = identity.photo or fictitious_photo(identity.id_number)
    return TEXT_SIZE.to_bytes(2, "big") + len(photo).to_bytes(2, "big") + encode_text(identity) + photo


# --- the ID card reader -------------------------------------------------------------------------

COMMAND_NAMES = {"status": STATUS, "find": FIND, "select": SELECT, "read": READ_BASE}
FAULTS = ("corrupt", "short", "garble", "false-start", "unplug")
# Noise a flaky cable might add: stray bytes, a false preamble with a bad checksum, and
# the start of another preamble.
NOISE = b"\x00\xff\x13" + PREAMBLE + b"\x00\x03\x12\x34\x56" + b"\xaa\xaa"
# A false preamble whose length promises 1,024 bytes: the host must wait, then look behind it.
FALSE_START = PREAMBLE + b"\x04\x00"


def apply_fault(fault: str, reply: bytes) -> bytes:
    """What reaches the host when `fault` hits `reply` (for "unplug", what comes before the end)."""
    if fault == "corrupt":
        return reply[:-1] + bytes([reply[-1] ^ 0xFF])
    if fault in ("short", "unplug"):
        return reply[:max(len(PREAMBLE) + 2, len(reply) // 2)]
    if fault == "garble":
        return NOISE + reply
    if fault == "false-start":
        return FALSE_START + reply
    raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")


class SimulatedCardReader(PtyDevice):
    """A SAM ID card reader on a pty. Cards are placed and removed at run time; faults are
    armed for the next reply (optionally the next reply to one command) and fire once."""

    def __init__(self, link: str | os.PathLike[str] | None = None, *, miss_after_read: bool = False) -> None:
        super().__init__(link)
        self.miss_after_read = miss_after_read  # like readers that miss a card once right after reading it
        self.counts: Counter[tuple[int, int]] = Counter()  # commands answered, by (CMD, PARA)
        self._card: Identity | None = None
        self._selected = False
        self._miss_next = False
        self._faults: list[tuple[str, tuple[int, int] | None]] = []
        self._decoder = FrameDecoder()

    @property
    def card(self) -> Identity | None:
        return self._card

    def place(self, identity: Identity = TEST_IDENTITIES[0]) -> None:
        """Put a card on the reader (replacing any card there)."""
        self._call(lambda: self._set_card(identity))

    def remove(self) -> None:
        self._call(lambda: self._set_card(None))

    def count(self, command: tuple[int, int]) -> int:
        return self.counts[command]

    def corrupt_next_reply(self, command: tuple[int, int] | None = None) -> None:
        """Flip the checksum of the next reply (to `command`, if given)."""
        self._arm("corrupt", command)

    def short_next_reply(self, command: tuple[int, int] | None = None) -> None:
        """Send only the first half of the next reply, and nothing more."""
        self._arm("short", command)

    def garble_next_reply(self, command: tuple[int, int] | None = None) -> None:
        """Send noise (with a false preamble) before the next reply."""
        self._arm("garble", command)

    def false_start_next_reply(self, command: tuple[int, int] | None = None) -> None:
        """Send a false preamble claiming a long frame before the next reply."""
        self._arm("false-start", command)

    def unplug_mid_reply(self, command: tuple[int, int] | None = READ_BASE) -> None:
        """Send half of the next reply (by default to a read) and then vanish."""
        self._arm("unplug", command)

    def command(self, line: str) -> str:
        """Do one text command (the CLI's way in); returns what to tell the user."""
        words = line.split()
        if not words or words[0] == "help":
            return ("commands: place [1-3] | remove | unplug | replug | state | "
                    "corrupt|short|garble|false-start|unplug-mid [status|find|select|read]")
        verb, args = words[0], words[1:]
        try:
            return self._command(verb, args)
        except (ValueError, IndexError, KeyError):
            return f"cannot do {line.strip()!r}; try: help"

    def _command(self, verb: str, args: list[str]) -> str:
        if verb == "place":
            number = int(args[0]) if args else 1
            if not 1 <= number <= len(TEST_IDENTITIES):
                raise ValueError(number)
            self.place(TEST_IDENTITIES[number - 1])
            return f"placed test card {number}"
        if verb == "remove":
            self.remove()
            return "card removed"
        if verb in ("corrupt", "short", "garble", "false-start", "unplug-mid"):
            target = COMMAND_NAMES[args[0]] if args else None
            self._arm(verb.removesuffix("-mid"), target)
            which = f"{args[0]} " if args else ""
            return f"{verb} armed for the next {which}reply"
        if (done := self.plug_command(verb)) is not None:
            return done
        if verb == "state":
            where = f"at {self.path}" if self.plugged else "unplugged"
            return f"{where}; {'a card' if self._card else 'no card'} on the reader"
        raise ValueError(verb)

    def _set_card(self, identity: Identity | None) -> None:
        self._card, self._selected, self._miss_next = identity, False, False

    def _arm(self, fault: str, command: tuple[int, int] | None) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        self._call(lambda: self._faults.append((fault, command)))

    def _take_fault(self, command: tuple[int, int]) -> str | None:
        for i, (fault, target) in enumerate(self._faults):
            if target is None or target == command:
                del self._faults[i]
                return fault
        return None

    def _unplug(self) -> None:
        super()._unplug()
        self._decoder.clear()

    def _received(self, data: bytes) -> None:
        self._decoder.feed(data)
        while True:
            try:
                frame = self._decoder.pop()
            except ChecksumError:
                self._send(build_reply(BAD_CHECKSUM))
                continue
            except FrameError:
                continue  # noise on the line: a reader says nothing
            if frame is None:
                return
            self._reply(parse_command(frame))

    def _reply(self, command: Command) -> None:
        key = (command.cmd, command.para)
        self.counts[key] += 1
        reply = self._answer(key)
        fault = self._take_fault(key)
        if fault is None:
            self._send(reply)
            return
        self._send(apply_fault(fault, reply))
        if fault == "unplug":
            self._unplug()

    def _answer(self, key: tuple[int, int]) -> bytes:
        card = self._card
        if key == STATUS:
            return build_reply(OK)
        if key == FIND:
            if card is None or self._miss_next:
                self._miss_next = False
                return build_reply(NO_CARD)
            return build_reply(CARD_FOUND, bytes(4))
        if key == SELECT:
            self._selected = card is not None
            return build_reply(OK, bytes(8)) if card else build_reply(SELECT_FAILED)
        if key == READ_BASE:
            if card is None or not self._selected:
                return build_reply(READ_FAILED)
            self._selected, self._miss_next = False, self.miss_after_read
            return build_reply(OK, encode_base_info(card))
        return build_reply(BAD_COMMAND)



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosq.devices.sim.idcard",
                                     description="A simulated ID card reader on a pty, driven from stdin.")
    parser.add_argument("--link", help="keep a symlink to the device here (it survives unplug/replug)")
    args = parser.parse_args(argv)
    with SimulatedCardReader(args.link) as reader:
        print(f"ID card reader simulator at {reader.uri}; type help", flush=True)
        run_console(reader, sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
