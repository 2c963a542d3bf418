"""The printer over real ptys: the simulator answers DLE EOT from a state changed while it
runs; a pty nobody answers gives "unknown" and a refusal; file: and tcp: transports; the
simulator as a process. No mocks: every byte crosses a real pty or socket."""

import importlib.util
import os
import select
import socket
import subprocess
import sys
import threading
import tty
from datetime import datetime
from pathlib import Path

import pytest

from kiosq.devices.escpos_decode import Image, decode, text_lines
from kiosq.devices.escpos_tokens import tokenize
from kiosq.devices.printer import (
    UNKNOWN,
    CoverOpen,
    PaperOut,
    Printer,
    PrinterError,
    PrinterOffline,
    PrinterStatus,
    PrinterTimeout,
    PrinterUnavailable,
    parse_status,
)
from kiosq.devices.receipts import PAPER_80, QueueTicket, ticket_slip
from kiosq.devices.sim.printer import PrinterSimulator

TICKET = QueueTicket(hall="杭州市民中心", number="A001", service="户籍业务", ahead=3, eta_minutes=9,
                     issued_at=datetime(2026, 11, 23, 10, 2), follow_url="https://hall.example/t/a001")
SLIP = ticket_slip(TICKET)
OK = PrinterStatus(online=True, paper="ok", cover_open=False)
BOUND = 10  # seconds: far beyond any timeout used here; only a hang reaches it


@pytest.fixture
def sim(tmp_path):
    simulator = PrinterSimulator(preview=tmp_path / "last-slip.png").start()
    yield simulator
    simulator.stop()


@pytest.fixture
def printer(sim):
    p = Printer(sim.uri, timeout=0.5)
    yield p
    p.close()


@pytest.fixture
def silent_pty():
    """A serial port whose other end nobody reads or answers."""
    master, slave = os.openpty()
    tty.setraw(master)
    yield os.ttyname(slave)
    os.close(master)
    os.close(slave)


def within(seconds, action):
    """Run `action` in a thread; its result or exception, failing if it is still running."""
    outcome = {}

    def run():
        try:
            outcome["value"] = action()
        except BaseException as e:
            outcome["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def only_status_queries(data: bytes) -> bool:
    return all(t.name == "DLE EOT" for t in tokenize(data)[0])


# --- status ----------------------------------------------------------------------------

def test_status_follows_the_simulator_at_run_time(sim, printer):
    assert printer.status() == OK and printer.status().ready
    sim.set_paper("near_end")
    assert printer.status() == PrinterStatus(online=True, paper="near_end", cover_open=False)
    assert printer.status().ready
    sim.set_paper("out")
    assert printer.status() == PrinterStatus(online=False, paper="out", cover_open=False)
    sim.set_paper("ok")
    sim.set_cover_open(True)
    assert printer.status() == PrinterStatus(online=False, paper="ok", cover_open=True)
    sim.set_cover_open(False)
    sim.set_online(False)
    assert printer.status() == PrinterStatus(online=False, paper="ok", cover_open=False)
    sim.set_online(True)
    assert printer.status() == OK
    assert sim.status_queries == 3 * 8  # DLE EOT 1, 2 and 4 per status()


def test_status_bytes_that_are_not_status_bytes_are_unknown():
    assert parse_status(0x12, 0x12, 0x12) == OK
    assert parse_status(0x12, 0x12, 0x7E) == PrinterStatus(True, "out", False)
    assert parse_status(0xFF, None, 0x00) == UNKNOWN
    assert parse_status(0x1A, 0x32, None) == PrinterStatus(False, "out", False)  # stopped at paper end


def test_a_status_with_a_question_unanswered_is_not_complete():
    assert OK.complete and not UNKNOWN.complete
    assert not parse_status(0x12, 0x12, None).complete  # paper sensor did not answer


def test_the_printer_opens_lazily(sim):
    printer = Printer(sim.uri, timeout=0.5)
    assert sim.received == b""
    printer.close()  # closing what was never opened is fine


# --- printing --------------------------------------------------------------------------

def test_print_slip_reaches_the_printer_and_is_decoded(sim, printer):
    assert printer.print_slip(SLIP) == OK
    (job,) = sim.wait_for_jobs(1)
    assert job.data.endswith(SLIP) and job.printed
    assert job.lines == text_lines(decode(SLIP))
    assert "A001" in job.lines and job.qr_payloads == ["https://hall.example/t/a001"]
    assert sim.preview_path.read_bytes().startswith(b"\x89PNG")


def test_print_slip_returns_near_end_so_the_kiosk_can_report_it(sim, printer):
    sim.set_paper("near_end")
    assert printer.print_slip(SLIP).paper == "near_end"
    assert len(sim.wait_for_jobs(1)) == 1


def test_print_slip_is_refused_before_sending_when_the_paper_is_out(sim, printer):
    sim.set_paper("out")
    with pytest.raises(PaperOut, match="out of paper: nothing was printed") as refused:
        printer.print_slip(SLIP)
    assert sim.uri in str(refused.value) and refused.value.uri == sim.uri
    assert "Load a new 58 mm roll" in str(refused.value)
    assert only_status_queries(sim.received) and not sim.jobs
    sim.set_paper("ok")
    printer.print_slip(SLIP)
    assert len(sim.wait_for_jobs(1)) == 1


def test_print_slip_is_refused_with_the_cover_open_or_offline(sim, printer):
    sim.set_cover_open(True)
    with pytest.raises(CoverOpen, match="cover open.*Close the cover"):
        printer.print_slip(SLIP)
    sim.set_cover_open(False)
    sim.set_online(False)
    with pytest.raises(PrinterOffline, match=f"Printer {sim.uri} is offline"):
        printer.print_slip(SLIP)
    assert only_status_queries(sim.received)


def test_the_error_tree():
    for error in (PaperOut, CoverOpen, PrinterOffline, PrinterTimeout, PrinterUnavailable):
        assert issubclass(error, PrinterError)


def test_text_qr_and_cut_send_chinese_as_gb18030(sim, tmp_path):
    with Printer(sim.uri, paper=PAPER_80, timeout=0.5) as printer:
        printer.text("请到 3 号窗口办理", align="center", bold=True)
        printer.text("王𠮷")  # beyond two-byte GB18030: drawn
        printer.qr("https://hall.example/t/1")
        printer.cut()
    (job,) = sim.wait_for_jobs(1)
    assert b"\x1c&" + "请到 3 号窗口办理".encode("gb18030") + b"\x1c." in job.data
    assert job.lines[0] == "请到 3 号窗口办理"
    assert [e.width for e in job.elements if isinstance(e, Image)] == [4 * 12]
    assert job.qr_payloads == ["https://hall.example/t/1"]


# --- no reply --------------------------------------------------------------------------

def test_a_port_nobody_answers_is_unknown_and_refused_in_bounded_time(silent_pty):
    printer = Printer(f"serial:{silent_pty}", timeout=0.3)
    try:
        assert within(BOUND, printer.status) == UNKNOWN
        with pytest.raises(PrinterTimeout, match=f"serial:{silent_pty} did not answer a status query within 0.3 s"):
            within(BOUND, lambda: printer.print_slip(SLIP))
    finally:
        within(BOUND, printer.close)


def test_a_printer_that_stops_answering_is_unknown_not_fine(sim, printer):
    assert printer.status() == OK
    sim.set_answering(False)
    assert within(BOUND, printer.status) == UNKNOWN
    with pytest.raises(PrinterTimeout):
        printer.print_slip(SLIP)
    assert not sim.jobs
    printer.print_slip(SLIP, allow_unknown=True)  # a technician's explicit test print
    assert len(sim.wait_for_jobs(1)) == 1
    sim.set_answering(True)
    assert printer.status() == OK


# --- transports ------------------------------------------------------------------------

def test_file_uri_writes_the_bytes(tmp_path):
    out = tmp_path / "out.bin"
    with Printer(f"file:{out}") as printer:
        assert printer.status() == UNKNOWN and not printer.reports_status
        assert printer.print_slip(SLIP) == UNKNOWN
        printer.print_slip(SLIP)
    assert out.read_bytes() == SLIP + SLIP


def test_file_uri_in_a_missing_folder_names_the_path(tmp_path):
    target = tmp_path / "nowhere" / "out.bin"
    with pytest.raises(PrinterUnavailable, match=f"Printer file:{target} cannot be opened.*folder of {target}"):
        Printer(f"file:{target}").print_slip(SLIP)


def test_a_missing_serial_port_says_what_to_check(tmp_path):
    port = tmp_path / "ttyUSB9"
    with pytest.raises(PrinterUnavailable, match=f"serial:{port}.*cannot be opened.*group dialout"):
        Printer(f"serial:{port}", timeout=0.2).status()


@pytest.mark.skipif(importlib.util.find_spec("usb") is not None, reason="pyusb is installed here")
def test_usb_without_pyusb_says_so():
    with pytest.raises(PrinterUnavailable, match="usb:04b8:0e15 cannot be used on this machine"):
        Printer("usb:04b8:0e15").status()


class StatusServer:
    """A network printer on 127.0.0.1 that answers DLE EOT with `replies` (or stays silent)."""

    def __init__(self, replies: dict[int, int] | None) -> None:
        self.replies, self.received = replies, bytearray()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            while data := conn.recv(4096):
                self.received += data
                for token in tokenize(data)[0]:
                    reply = (self.replies or {}).get(token.args[0]) if token.name == "DLE EOT" else None
                    if reply is not None:
                        conn.sendall(bytes([reply]))

    def close(self) -> None:
        self.server.close()
        self.thread.join(BOUND)


@pytest.mark.parametrize("replies, status, last_sent", [
    ({1: 0x12, 2: 0x12, 4: 0x1E}, PrinterStatus(True, "near_end", False), SLIP),
    ({1: 0x12, 2: 0x12}, PrinterStatus(True, "unknown", False), b"\x10\x04\x04"),  # no paper sensor reply
    (None, UNKNOWN, b"\x10\x04\x01"),
])
def test_tcp_printer_prints_only_with_a_complete_status(replies, status, last_sent):
    server = StatusServer(replies)
    try:
        with Printer(f"tcp:127.0.0.1:{server.port}", timeout=0.3) as printer:
            assert within(BOUND, printer.status) == status
            if status.complete:
                printer.print_slip(SLIP)
            else:
                with pytest.raises(PrinterTimeout, match=f"tcp:127.0.0.1:{server.port} did not answer"):
                    within(BOUND, lambda: printer.print_slip(SLIP))
    finally:
        server.close()
    assert server.received.endswith(last_sent)


# --- the simulator as a process ----------------------------------------------------------

def read_line(stream, seconds: float = BOUND) -> str:
    ready, _, _ = select.select([stream], [], [], seconds)
    assert ready, f"no output within {seconds} s"
    return stream.readline().strip()


def test_the_simulator_runs_as_a_process(tmp_path):
    preview = tmp_path / "slip.png"
    command = [sys.executable, "-m", "kiosq.devices.sim.printer", "--preview", str(preview)]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, cwd=Path(__file__).parent) as process:
        try:
            talk_to_the_simulator(process, preview)
        finally:
            if process.poll() is None:
                process.kill()


def talk_to_the_simulator(process: subprocess.Popen, preview: Path) -> None:
    uri = read_line(process.stdout)
    assert uri.startswith("serial:/dev/")
    with Printer(uri, timeout=0.5) as printer:
        printer.print_slip(SLIP)
        assert read_line(process.stdout).startswith("job: 13 lines, QR https://hall.example/t/a001, preview")
        assert preview.read_bytes().startswith(b"\x89PNG")
        process.stdin.write("paper out\n")
        process.stdin.flush()
        assert read_line(process.stdout) == "ok: paper out"
        assert printer.status().paper == "out"
    process.stdin.write("quit\n")
    process.stdin.flush()
    assert process.wait(BOUND) == 0
