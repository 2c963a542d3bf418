"""Scanners: serial codes cut at their suffix (over a real pty with the simulator), and a
keyboard-wedge scanner told apart from typing by synthetic key times."""

import io
import logging
import queue
import threading
import time

import pytest

from kiosq.devices.scanner import (
    CodeSplitter,
    Scanned,
    ScannerBack,
    ScannerError,
    ScannerLost,
    ScannerUnavailable,
    SerialScanner,
    Typed,
    WedgeDecoder,
    clean_code,
    suffix_bytes,
)
from kiosq.devices.sim import scanner as sim_module
from kiosq.devices.sim.scanner import SimulatedScanner, pieces
from kiosq.devices.uri import DeviceURIError

WAIT = 10.0  # bound for what a thread should do soon; never a timed assertion
CODES = ["6901234567892", "SQ20261123000042", "https://zwfw.example.gov.cn/t/8f3a2c", "申请编号：琼2026-0042"]


# --- cutting a byte stream into codes (pure) --------------------------------------------------------

@pytest.mark.parametrize("suffix, end", [("CR", b"\r"), ("CRLF", b"\r\n"), ("ETX", b"\x03"), ("crlf", b"\r\n")])
def test_codes_end_with_the_configured_suffix(suffix, end):
    assert suffix_bytes(suffix) == end
    splitter = CodeSplitter(suffix)
    stream = b"".join(code.encode() + end for code in CODES)
    assert splitter.feed(stream, 0.0) == [Scanned(code) for code in CODES]


@pytest.mark.parametrize("suffix", ["CR", "CRLF", "ETX"])
def test_a_code_in_pieces_is_joined(suffix):
    splitter = CodeSplitter(suffix)
    stream = "申请编号：琼2026-0042".encode() + suffix_bytes(suffix) + b"ABC" + suffix_bytes(suffix)
    got = []
    for i, byte in enumerate(stream):  # one byte at a time, a UTF-8 character and a CRLF split too
        got += splitter.feed(bytes([byte]), i * 0.001)
    assert got == [Scanned("申请编号：琼2026-0042"), Scanned("ABC")]


def test_an_unknown_suffix_names_the_choices():
    with pytest.raises(ScannerError, match="unknown scanner suffix 'TAB'; use one of CR, CRLF, ETX"):
        CodeSplitter("TAB")


@pytest.mark.parametrize("raw, code, reason", [
    (b"ABC123", "ABC123", ""),
    (b"\nABC123", "ABC123", ""),                      # the LF of a CRLF scanner read as CR
    (b"\x00 ABC123 \x00", "ABC123", ""),
    (b"]d2010690123456789\x1d10ABC", "]d2010690123456789\x1d10ABC", ""),  # GS1 separator kept
    (b"", None, "empty code"),
    (b"\n\x00 ", None, "empty code"),
    (b"\xff\xfe\x00", None, "not utf-8 text"),
    (b"AB\x07CD", None, "control characters inside the code"),
    (b"AB\x1b[2JCD", None, "control characters inside the code"),
])
def test_clean_code(raw, code, reason):
    assert clean_code(raw) == (code, reason)


def test_garbage_and_empty_codes_are_skipped_and_logged_without_their_content(caplog):
    splitter = CodeSplitter("CR", device="scanner on /dev/ttyTEST")
    with caplog.at_level(logging.WARNING, logger="kiosq.devices.scanner"):
        got = splitter.feed(b"\r\xff\xfeSECRET\r\r\nOK-1\rAB\x07SECRET\rOK-2\r", 0.0)
    assert got == [Scanned("OK-1"), Scanned("OK-2")]
    assert "scanner on /dev/ttyTEST: skipped 0 bytes: empty code" in caplog.text
    assert "skipped 8 bytes: not utf-8 text" in caplog.text
    assert "skipped 9 bytes: control characters inside the code" in caplog.text
    assert "SECRET" not in caplog.text and "OK-1" not in caplog.text


def test_a_code_without_its_suffix_goes_stale(caplog):
    splitter = CodeSplitter("CR", stale_after=1.0)
    assert splitter.feed(b"\xff\x00noise", 10.0) == []
    with caplog.at_level(logging.WARNING):
        assert splitter.feed(b"REAL\r", 12.0) == [Scanned("REAL")]
    assert "skipped 7 bytes: no suffix within 1 s" in caplog.text
    assert splitter.feed(b"RE", 13.0) + splitter.feed(b"AL\r", 13.5) == [Scanned("REAL")]


def test_a_scanner_set_to_another_suffix_does_not_grow_the_buffer(caplog):
    splitter = CodeSplitter("ETX", max_length=64)
    with caplog.at_level(logging.WARNING):
        for i in range(10):
            assert splitter.feed(b"0123456789\r\n", i * 0.01) == []
    assert "no suffix within 64 bytes; is the scanner set to end codes with ETX?" in caplog.text


def test_encodings_other_than_utf8():
    splitter = CodeSplitter("CR", encoding="gb18030")
    assert splitter.feed("办件编号0042".encode("gb18030") + b"\r", 0.0) == [Scanned("办件编号0042")]


# --- keyboard wedge: bursts versus typing (pure, synthetic times) ------------------------------------

def keys(decoder: WedgeDecoder, text: str, start: float, gap: float) -> list:
    events = []
    for i, char in enumerate(text):
        events += decoder.feed(char, start + i * gap)
    return events


def test_a_fast_burst_ending_in_enter_is_a_scan():
    wedge = WedgeDecoder()
    assert keys(wedge, "6901234567892\r", 100.0, 0.004) == [Scanned("6901234567892")]
    assert keys(wedge, "ABCD\n", 101.0, 0.029) == [Scanned("ABCD")]


def test_a_fast_burst_ended_by_a_pause_is_a_scan():
    wedge = WedgeDecoder()
    assert keys(wedge, "SQ2026", 5.0, 0.005) == []
    assert wedge.flush(5.02) == []                    # not yet a pause
    assert wedge.flush(5.1) == [Scanned("SQ2026")]
    assert wedge.flush(5.2) == []


def test_slow_typing_passes_through_as_typing():
    wedge = WedgeDecoder()
    events = keys(wedge, "1234", 0.0, 0.15) + wedge.flush(1.0)
    assert events == [Typed("1"), Typed("2"), Typed("3"), Typed("4")]
    assert keys(wedge, "56\r", 2.0, 0.2) == [Typed("5"), Typed("6"), Typed("\n")]


def test_a_short_fast_run_is_typing():
    wedge = WedgeDecoder()  # two keys rolled over quickly, then Enter: a person
    assert keys(wedge, "ab\r", 0.0, 0.01) == [Typed("ab\n")]
    assert keys(wedge, "abc", 1.0, 0.01) + wedge.flush(2.0) == [Typed("abc")]


def test_typing_then_a_scan_then_typing():
    wedge = WedgeDecoder()
    events = keys(wedge, "ab", 0.0, 0.2)                        # a person starts typing
    events += keys(wedge, "QR-0001\r", 0.5, 0.003)             # a scan
    events += keys(wedge, "c", 1.0, 0.2) + wedge.flush(2.0)     # the person again
    assert events == [Typed("a"), Typed("b"), Scanned("QR-0001"), Typed("c")]


def test_a_burst_whose_enter_comes_late_is_a_scan_then_an_enter():
    wedge = WedgeDecoder(min_length=4, max_gap=0.03)
    assert keys(wedge, "WXYZ", 0.0, 0.01) + wedge.feed("\r", 0.5) == [Scanned("WXYZ"), Typed("\n")]


def test_wedge_thresholds_are_settings():
    wedge = WedgeDecoder(max_gap=0.08, min_length=8)
    assert keys(wedge, "1234567\r", 0.0, 0.05) == [Typed("1234567\n")]
    assert keys(wedge, "12345678\r", 1.0, 0.05) == [Scanned("12345678")]


# --- a serial scanner over a real pty -----------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["CR", "CRLF", "ETX"])
def test_codes_arrive_over_a_pty_with_each_suffix(suffix):
    with SimulatedScanner(suffix=suffix) as sim, SerialScanner(sim.uri) as scanner:
        assert scanner.splitter.suffix == suffix_bytes(suffix) and scanner.baudrate == 9600
        got = []
        for code in CODES:
            sim.scan(code)
        while len(got) < len(CODES):
            got += scanner.read(WAIT)
        assert got == [Scanned(code) for code in CODES]


@pytest.mark.parametrize("suffix", ["CR", "CRLF", "ETX"])
def test_a_code_sent_in_pieces_is_read_as_one(suffix):
    with SimulatedScanner(suffix=suffix) as sim, SerialScanner(sim.uri) as scanner:
        code = "https://zwfw.example.gov.cn/t/8f3a2c"
        sim.scan(code, chunks=6, gap=0.02, wait=False)  # the suffix itself may be split (CRLF)
        got = []
        while not got:
            got = scanner.read(WAIT)
        assert got == [Scanned(code)]


def test_noise_on_the_line_is_skipped(caplog):
    with SimulatedScanner() as sim, SerialScanner(sim.uri) as scanner, caplog.at_level(logging.WARNING):
        sim.send_raw(b"\xff\xfe\r\r")
        sim.scan("6901234567892")
        got = []
        while not got:
            got = scanner.read(WAIT)
        assert got == [Scanned("6901234567892")]
    assert "not utf-8 text" in caplog.text and "empty code" in caplog.text


def test_suffix_and_encoding_from_the_uri_and_arguments(tmp_path):
    scanner = SerialScanner(f"serial:{tmp_path}/x?baudrate=115200&suffix=ETX&encoding=gb18030")
    assert (scanner.baudrate, scanner.splitter.suffix, scanner.splitter.encoding) == (115200, b"\x03", "gb18030")
    assert SerialScanner(f"serial:{tmp_path}/x?suffix=ETX", suffix="CRLF").splitter.suffix == b"\r\n"
    with pytest.raises(DeviceURIError, match="unknown scanner suffix 'TAB'"):
        SerialScanner(f"serial:{tmp_path}/x?suffix=TAB")
    with pytest.raises(DeviceURIError, match="unknown encoding"):
        SerialScanner(f"serial:{tmp_path}/x?encoding=klingon")
    with pytest.raises(DeviceURIError, match="a serial scanner must be on a serial port"):
        SerialScanner("usb:04b8:0e15")
    with pytest.raises(ScannerUnavailable, match=r"cannot open the scanner on .*/x: .*serial \(not keyboard\) mode"):
        scanner.open()


class Watch:
    """Runs SerialScanner.scans() in a thread and hands its events to the test."""

    def __init__(self, scanner: SerialScanner, **options) -> None:
        self.scanner = scanner
        self.events: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, kwargs=options, daemon=True)
        self.thread.start()

    def _run(self, **options) -> None:
        try:
            for event in self.scanner.scans(**options):
                self.events.put(event)
        except Exception as e:  # handed to the test
            self.events.put(e)

    def next(self):
        return self.events.get(timeout=WAIT)

    def stop(self) -> None:
        self.scanner.stop()
        self.thread.join(timeout=WAIT)
        assert not self.thread.is_alive()


def test_scans_survive_an_unplugged_scanner(tmp_path):
    with SimulatedScanner(tmp_path / "ttySCAN", suffix="CRLF") as sim:
        watch = Watch(SerialScanner(sim.uri), backoff=(0.01, 0.05))
        try:
            sim.scan("FIRST-1")
            assert watch.next() == Scanned("FIRST-1")
            sim.unplug()
            lost = watch.next()
            assert isinstance(lost, ScannerLost) and "ttySCAN went away" in lost.reason
            sim.replug()
            assert watch.next() == ScannerBack()
            sim.scan("SECOND-2")
            assert watch.next() == Scanned("SECOND-2")
        finally:
            watch.stop()
        assert not watch.scanner.is_open


def test_a_scanner_that_stays_away_is_a_clear_error(tmp_path):
    with SimulatedScanner(tmp_path / "ttySCAN") as sim:
        sim.unplug()
        watch = Watch(SerialScanner(sim.uri), backoff=(0.01, 0.05), give_up_after=0.1)
        assert isinstance(watch.next(), ScannerLost)
        error = watch.next()
        assert isinstance(error, ScannerUnavailable)
        assert "ttySCAN has been away for 0.1 s; check its cable" in str(error)
        watch.thread.join(timeout=WAIT)


def test_the_simulator_takes_text_commands():
    with SimulatedScanner(suffix="ETX") as sim, SerialScanner(sim.uri) as scanner:
        assert sim.uri.endswith("?baudrate=9600&suffix=ETX")
        assert sim.command("scan ABC-9") == "sent a code of 5 characters"
        assert sim.command("raw 00 ff 03") == "sent 3 bytes"
        assert sim.command("raw zz").startswith("raw takes hex bytes")
        got = []
        while len(got) < 1:
            got += scanner.read(WAIT)
        assert got == [Scanned("ABC-9")]
        assert sim.command("state").endswith("suffix ETX")
        assert sim.command("nonsense").startswith("commands:")
        scanner._port.write(b"\x16T\r")  # what a host may send to trigger a scan
        deadline = time.monotonic() + WAIT
        while bytes(sim.received) != b"\x16T\r" and time.monotonic() < deadline:
            time.sleep(0.005)
        assert bytes(sim.received) == b"\x16T\r"


def test_pieces():
    assert pieces(b"abcdefg", 3) == [b"abc", b"de", b"fg"]
    assert pieces(b"ab", 5) == [b"a", b"b"] and pieces(b"ab", 0) == [b"ab"]


def test_the_simulator_runs_from_the_command_line(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("scan 6901234567892\nstate\n"))
    assert sim_module.main(["--suffix", "CRLF"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("scanner simulator at serial:/dev/pts/")
    assert out[0].endswith("&suffix=CRLF; type scan CODE")
    path = out[0].split(" at serial:")[1].split("?")[0]
    assert out[1:] == ["sent a code of 13 characters", f"at {path}, suffix CRLF"]
