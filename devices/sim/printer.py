"""A simulated ESC/POS receipt printer on a pseudo-terminal, for tests, `kiosq demo` and
the maintenance screen: its device path is a real serial port for `serial:` URIs.

It answers DLE EOT status queries from a state you change while it runs (paper ok,
near end or out; cover open; online), records every byte, decodes each job (a cut ends
one) and keeps a PNG preview of the last slip. Runs in a thread, or as a process:

    python -m kiosq.devices.sim.printer --preview build/last-slip.png
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import shutil
import signal
import sys
import tempfile
import threading
import tty
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kiosq.devices.escpos_decode import Element, decode, qr_payloads, text_lines
from kiosq.devices.escpos_preview import preview_png
from kiosq.devices.escpos_tokens import tokenize
from kiosq.devices.receipts import PAPER_58, PAPER_80
from kiosq.devices.slip_text import FontMissing

log = logging.getLogger(__name__)

PaperLevel = Literal["ok", "near_end", "out"]
PAPER_LEVELS: tuple[PaperLevel, ...] = ("ok", "near_end", "out")

# DLE EOT replies as the Epson ESC/POS reference gives them: bits 1 and 4 are always set.
STATUS_BASE = 0x12
REPLY_OFFLINE = 0x08  # n=1, bit 3
REPLY_COVER_OPEN, REPLY_PAPER_STOP, REPLY_ERROR = 0x04, 0x20, 0x40  # n=2, bits 2, 5, 6
REPLY_NEAR_END, REPLY_PAPER_END = 0x0C, 0x60  # n=4, bits 2-3 and 5-6


@dataclass(frozen=True)
class Job:
    """One slip as the printer received it, up to and including its cut (and the status
    queries that came before it)."""

    data: bytes
    elements: list[Element] = field(repr=False)
    printed: bool  # False when it arrived with the paper out, the cover open or offline

    @property
    def lines(self) -> list[str]:
        return text_lines(self.elements)

    @property
    def qr_payloads(self) -> list[str]:
        return qr_payloads(self.elements)


class PrinterSimulator:
    """A receipt printer behind a pty. Use as a context manager, or start() and stop().

    `preview`: where the PNG of the last slip goes (written atomically after each cut);
    by default a file in a temporary folder that stop() removes. `width_px` is the
    paper's printable width in dots (384 for 58 mm, 576 for 80 mm).
    """

    def __init__(self, *, paper: PaperLevel = "ok", cover_open: bool = False, online: bool = True,
                 preview: str | Path | None = None, width_px: int = PAPER_58.dots,
                 on_job: Callable[[Job], None] | None = None) -> None:
        self._state_lock = threading.Lock()
        self._jobs_changed = threading.Condition(self._state_lock)
        self._paper: PaperLevel = "ok"
        self.set_paper(paper)
        self._cover_open, self._online, self._answering = cover_open, online, True
        self._received = bytearray()
        self._jobs: list[Job] = []
        self._pending = bytearray()  # bytes since the last cut
        self._parsed = 0  # how far into _pending the tokens are complete
        self._chosen_preview = Path(preview) if preview else None
        self._temp_dir: str | None = None
        self.preview_path = self._chosen_preview or Path("last-slip.png")  # set by start()
        self.width_px = width_px
        self.on_job = on_job
        self.status_queries = 0
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._master = self._slave = -1
        self._wake_r = self._wake_w = -1
        self.path = ""

    # --- the state, settable while running

    def set_paper(self, level: PaperLevel) -> None:
        if level not in PAPER_LEVELS:
            raise ValueError(f"paper is one of {', '.join(PAPER_LEVELS)}, not {level!r}")
        with self._state_lock:
            self._paper = level

    def set_cover_open(self, cover_open: bool) -> None:
        with self._state_lock:
            self._cover_open = cover_open

    def set_online(self, online: bool) -> None:
        with self._state_lock:
            self._online = online

    def set_answering(self, answering: bool) -> None:
        """False: ignore status queries, like a printer whose reply line is broken."""
        with self._state_lock:
            self._answering = answering

    @property
    def uri(self) -> str:
        return f"serial:{self.path}"

    @property
    def received(self) -> bytes:
        with self._state_lock:
            return bytes(self._received)

    @property
    def jobs(self) -> list[Job]:
        with self._state_lock:
            return list(self._jobs)

    def wait_for_jobs(self, count: int, timeout: float = 5.0) -> list[Job]:
        """The jobs once there are at least `count`; TimeoutError naming what arrived if not."""
        with self._jobs_changed:
            if not self._jobs_changed.wait_for(lambda: len(self._jobs) >= count, timeout):
                raise TimeoutError(f"printer simulator at {self.path}: {len(self._jobs)} of {count} job(s) "
                                   f"after {timeout} s; {len(self._received)} bytes received, none cut since "
                                   f"the last job: {len(self._pending)}")
            return list(self._jobs)

    # --- running

    def start(self) -> PrinterSimulator:
        if self._chosen_preview is None:
            self._temp_dir = tempfile.mkdtemp(prefix="kiosq-printer-")
            self.preview_path = Path(self._temp_dir) / "last-slip.png"
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)  # no echo, no line editing: bytes pass through as they are
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)  # we keep the slave open: reads never see EIO between clients
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=f"printer-sim {self.path}", daemon=True)
        self._thread.start()
        log.info("printer simulator on %s", self.path)
        return self

    def stop(self) -> None:
        """Stop the thread, close the pty and remove the temporary preview folder. Re-raises
        an error that ended the thread early."""
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join(timeout=10)
            self._thread = None
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = self._wake_r = self._wake_w = -1
        if self._temp_dir:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None
        if self.error is not None:
            raise RuntimeError(f"printer simulator at {self.path} failed") from self.error

    def __enter__(self) -> PrinterSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            while True:
                ready, _, _ = select.select([self._master, self._wake_r], [], [])
                if self._wake_r in ready:
                    return
                self._receive(os.read(self._master, 65536))
        except BaseException as e:  # kept for stop() to raise in the test's thread
            self.error = e
            log.exception("printer simulator at %s stopped", self.path)

    def _receive(self, chunk: bytes) -> None:
        """Record a chunk, answer status queries at once, and finish the jobs it cuts."""
        finished: list[Job] = []
        with self._state_lock:
            self._received += chunk
            self._pending += chunk
            data = bytes(self._pending)
            tokens, parsed = tokenize(data, self._parsed)
            job_start = 0
            for token in tokens:
                if token.name == "DLE EOT":
                    self._answer(token.args[0])
                elif token.name == "GS V":
                    finished.append(self._job(data[job_start:token.end]))
                    job_start = token.end
            self._pending = bytearray(data[job_start:])
            self._parsed = parsed - job_start
        for job in finished:
            self._finish(job)

    def _answer(self, n: int) -> None:
        self.status_queries += 1
        reply = self._status_byte(n)
        if reply is not None and self._answering:
            os.write(self._master, bytes([reply]))

    def _status_byte(self, n: int) -> int | None:
        out = self._paper == "out"
        if n == 1:
            offline = self._cover_open or out or not self._online
            return STATUS_BASE | (REPLY_OFFLINE if offline else 0)
        if n == 2:
            return (STATUS_BASE | (REPLY_COVER_OPEN if self._cover_open else 0) | (REPLY_PAPER_STOP if out else 0)
                    | (REPLY_ERROR if not self._online else 0))
        if n == 3:
            return STATUS_BASE  # no cutter or mechanical errors
        if n == 4:
            return STATUS_BASE | (REPLY_NEAR_END if self._paper != "ok" else 0) | (REPLY_PAPER_END if out else 0)
        return None

    def _job(self, data: bytes) -> Job:
        printed = self._online and not self._cover_open and self._paper != "out"
        return Job(data, decode(data), printed)

    def _finish(self, job: Job) -> None:
        """Preview first, so that whoever waits for the job finds its PNG."""
        if job.printed:
            self._write_preview(job)
        with self._jobs_changed:
            self._jobs.append(job)
            self._jobs_changed.notify_all()
        if self.on_job is not None:
            self.on_job(job)

    def _write_preview(self, job: Job) -> None:
        partial = self.preview_path.with_name(self.preview_path.name + ".partial")
        try:
            preview_png(job.elements, partial, self.width_px)
            os.replace(partial, self.preview_path)  # a reader never sees half a PNG
        except (OSError, FontMissing) as e:
            log.warning("printer simulator: no preview at %s: %s", self.preview_path, e)


# --- as a process ----------------------------------------------------------------------

COMMANDS = "paper ok|near_end|out · cover open|closed · online on|off · answer on|off · quit"


def _apply(sim: PrinterSimulator, line: str) -> bool:
    """Apply one control line from stdin; False for quit."""
    words = line.split()
    if not words:
        return True
    if words == ["quit"]:
        return False
    name, value = words[0], words[1] if len(words) > 1 else ""
    setters: dict[str, Callable[[], None]] = {
        "paper": lambda: sim.set_paper(value),  # type: ignore[arg-type]
        "cover": lambda: sim.set_cover_open({"open": True, "closed": False}[value]),
        "online": lambda: sim.set_online({"on": True, "off": False}[value]),
        "answer": lambda: sim.set_answering({"on": True, "off": False}[value]),
    }
    try:
        setters[name]()
        print(f"ok: {name} {value}", flush=True)
    except (KeyError, ValueError):
        print(f"unknown command {line.strip()!r}; use: {COMMANDS}", flush=True)
    return True


def _describe(job: Job, preview: Path) -> str:
    qr = [f"QR {p}" for p in job.qr_payloads]
    shown = f", preview {preview}" if job.printed else " (not printed: the printer was not ready)"
    return f"job: {len(job.lines)} lines" + "".join(f", {q}" for q in qr) + shown


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosq.devices.sim.printer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preview", type=Path, default=Path("last-slip.png"), help="PNG of the last slip")
    parser.add_argument("--paper", choices=PAPER_LEVELS, default="ok")
    parser.add_argument("--width", type=int, choices=(58, 80), default=58, help="paper width in mm")
    args = parser.parse_args(argv)
    width_px = PAPER_80.dots if args.width == 80 else PAPER_58.dots
    sim = PrinterSimulator(paper=args.paper, preview=args.preview, width_px=width_px,
                           on_job=lambda job: print(_describe(job, args.preview), flush=True))
    signal.signal(signal.SIGTERM, _interrupt)
    # The simulator's thread inherits this mask: SIGTERM and Ctrl-C then always reach the main
    # thread, interrupting its wait on stdin, instead of landing unseen in the pty thread.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        sim.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    try:
        print(sim.uri, flush=True)
        print(f"commands on stdin: {COMMANDS}", file=sys.stderr, flush=True)
        for line in sys.stdin:
            if not _apply(sim, line):
                return 0
        signal.pause()  # stdin closed: run until SIGTERM or Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops like Ctrl-C: the pty is closed on the way out


if __name__ == "__main__":
    sys.exit(main())
