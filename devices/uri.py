"""Device URIs, as DESIGN.md names them: `serial:/dev/ttyUSB0?baudrate=115200`,
`tcp:10.0.0.5:9100`, `usb:04b8:0e15`, `cups:QUEUE`, `file:/path/out.bin`.

Parsing is pure; opening a device is the driver's business (printer.py, idcard.py …).
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

SCHEMES = ("serial", "tcp", "usb", "cups", "file")


class DeviceURIError(ValueError):
    """A device URI that cannot be used; the message shows a correct one."""


@dataclass(frozen=True)
class DeviceURI:
    scheme: str
    target: str  # the port, host:port, vendor:product, queue or path
    options: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return self.target.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.target.rpartition(":")[2])

    def option(self, name: str, default: int) -> int:
        value = self.options.get(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise DeviceURIError(f"{self}: {name} must be a whole number, not {value!r}") from None

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.scheme}:{self.target}" + (f"?{query}" if query else "")


EXAMPLES = {"serial": "serial:/dev/ttyUSB0?baudrate=115200", "tcp": "tcp:10.0.0.5:9100", "usb": "usb:04b8:0e15",
            "cups": "cups:QUEUE", "file": "file:/path/out.bin"}


def parse_uri(text: str) -> DeviceURI:
    scheme, sep, rest = text.strip().partition(":")
    if not sep or scheme not in SCHEMES:
        raise DeviceURIError(f"{text!r} is not a device URI; use one of: {', '.join(EXAMPLES.values())}")
    target, _, query = rest.partition("?")
    if not target:
        raise DeviceURIError(f"{text!r} names no device; for example {EXAMPLES[scheme]}")
    uri = DeviceURI(scheme, target, dict(parse_qsl(query)))
    if scheme == "tcp":
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise DeviceURIError(f"{text!r}: a tcp device is host:port, for example {EXAMPLES['tcp']}")
    if scheme == "usb":
        parts = target.split(":")
        if len(parts) != 2 or not all(len(p) == 4 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts):
            raise DeviceURIError(f"{text!r}: a usb device is vendor:product in hex, for example {EXAMPLES['usb']}")
    if scheme == "serial":
        uri.option("baudrate", 9600)
    return uri


def serial_uri(uri: "str | DeviceURI", kind: str, baudrate: int = 115200) -> DeviceURI:
    """`uri` parsed, or DeviceURIError (naming the kind of device) if it is not a `serial:` one."""
    parsed = uri if isinstance(uri, DeviceURI) else parse_uri(uri)
    if parsed.scheme != "serial":
        raise DeviceURIError(f"{kind} must be on a serial port, not {parsed}; "
                             f"for example serial:/dev/ttyUSB0?baudrate={baudrate}")
    return parsed


def backoff_delays(initial: float, maximum: float) -> Iterator[float]:
    """initial, 2×initial, 4×initial, … capped at maximum: waits between attempts to reopen a device."""
    delay = initial
    while True:
        yield delay
        delay = min(delay * 2, maximum)
