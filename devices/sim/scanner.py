"""A simulated serial barcode/QR scanner on a pty: sends codes ending in its suffix (CR, CRLF
or ETX) when told, whole or in pieces, and raw noise on demand.

Run `python -m kiosq.devices.sim.scanner --suffix CRLF` for one driven by commands on stdin.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from kiosq.devices.scanner import suffix_bytes
from kiosq.devices.sim.pty import PtyDevice, run_console


def pieces(data: bytes, count: int) -> list[bytes]:
    """`data` cut into `count` nearly equal, non-empty pieces (fewer if it is shorter)."""
    count = max(1, min(count, len(data)))
    size, extra = divmod(len(data), count)
    out, at = [], 0
    for i in range(count):
        end = at + size + (1 if i < extra else 0)
        out.append(data[at:end])
        at = end
    return out


class SimulatedScanner(PtyDevice):
    """A serial scanner at 9600 baud. What the host writes to it is kept in `received`."""

    baudrate = 9600

    def __init__(self, link: str | os.PathLike[str] | None = None, *, suffix: str = "CR",
                 encoding: str = "utf-8") -> None:
        super().__init__(link)
        self.suffix_name = suffix.upper()
        self.suffix = suffix_bytes(suffix)
        self.encoding = encoding
        self.received = bytearray()

    @property
    def uri(self) -> str:
        return f"{super().uri}&suffix={self.suffix_name}"

    def scan(self, code: str, *, chunks: int = 1, gap: float = 0.0, wait: bool = True) -> None:
        """Send `code` and the suffix, in `chunks` pieces `gap` seconds apart; with
        `wait=False`, return at once and let the device thread send it."""
        self.send_raw(code.encode(self.encoding) + self.suffix, chunks=chunks, gap=gap, wait=wait)

    def send_raw(self, data: bytes, *, chunks: int = 1, gap: float = 0.0, wait: bool = True) -> None:
        """Send bytes as they are (noise, a code with another suffix, …)."""
        def send() -> None:
            for i, piece in enumerate(pieces(data, chunks)):
                if i and gap:
                    time.sleep(gap)
                self._send(piece)
        if wait:
            self._call(send)
        else:
            self._post(send)

    def command(self, line: str) -> str:
        """Do one text command: `scan CODE`, `raw HEX`, `unplug`, `replug`, `state`."""
        verb, _, rest = line.strip().partition(" ")
        if verb == "scan" and rest:
            self.scan(rest)
            return f"sent a code of {len(rest)} characters"
        if verb == "raw" and rest:
            try:
                data = bytes.fromhex(rest)
            except ValueError:
                return "raw takes hex bytes, for example: raw 00 ff 0d"
            self.send_raw(data)
            return f"sent {len(data)} bytes"
        if (done := self.plug_command(verb)) is not None:
            return done
        if verb == "state":
            return f"at {self.path}, suffix {self.suffix_name}" if self.plugged else "unplugged"
        return "commands: scan CODE | raw HEX | unplug | replug | state"

    def _received(self, data: bytes) -> None:
        self.received += data



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosq.devices.sim.scanner",
                                     description="A simulated serial scanner on a pty, driven from stdin.")
    parser.add_argument("--suffix", default="CR", choices=("CR", "CRLF", "ETX"))
    parser.add_argument("--link", help="keep a symlink to the device here (it survives unplug/replug)")
    args = parser.parse_args(argv)
    with SimulatedScanner(args.link, suffix=args.suffix) as scanner:
        print(f"scanner simulator at {scanner.uri}; type scan CODE", flush=True)
        run_console(scanner, sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
