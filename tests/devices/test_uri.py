"""Device URIs: the five schemes of DESIGN.md, and a correct example in every error."""

import pytest

from kiosq.devices.uri import DeviceURIError, parse_uri


def test_the_five_schemes():
    serial = parse_uri("serial:/dev/ttyUSB0?baudrate=115200")
    assert (serial.scheme, serial.target, serial.option("baudrate", 9600)) == ("serial", "/dev/ttyUSB0", 115200)
    tcp = parse_uri("tcp:10.0.0.5:9100")
    assert (tcp.host, tcp.port) == ("10.0.0.5", 9100)
    assert parse_uri("usb:04b8:0e15").target == "04b8:0e15"
    assert parse_uri("cups:Hall_A4").target == "Hall_A4"
    assert parse_uri("file:/tmp/out.bin").target == "/tmp/out.bin"
    assert str(serial) == "serial:/dev/ttyUSB0?baudrate=115200"


@pytest.mark.parametrize("text, message", [
    ("/dev/ttyUSB0", "not a device URI; use one of: serial:"),
    ("lpt:1", "not a device URI"),
    ("tcp:10.0.0.5", "a tcp device is host:port"),
    ("tcp:printer:99999", "a tcp device is host:port"),
    ("usb:epson", "vendor:product in hex"),
    ("serial:", "names no device"),
    ("serial:/dev/ttyS0?baudrate=fast", "baudrate must be a whole number"),
])
def test_bad_uris_say_what_a_good_one_looks_like(text, message):
    with pytest.raises(DeviceURIError, match=message):
        parse_uri(text)
