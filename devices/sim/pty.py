"""A serial device served on the master side of a pty by a thread of its own: the base of
the simulators. The slave's path (or a stable symlink to it, like udev's
/dev/serial/by-id/…) is the device path in a `serial:` URI.
"""

from __future__ import annotations

import os
import queue
import select
import threading
import tty
from collections.abc import Callable, Iterable
from typing import Any, Protocol, Self, TextIO


class PtyDevice:
    """A serial device served on the master side of a pty by a thread of its own.

    All pty work happens on that thread; other threads ask for it through `_call`, so an
    unplug never closes a descriptor another thread is reading. With `link`, the device's
    path is a symlink that follows it across unplug/replug (the pty's own name changes).
    Subclasses implement `_received(data)` and answer with `_send(data)`.
    (The scanner simulator builds on this too.)
    """

    baudrate = 115200
    _TICK = 0.01

    def __init__(self, link: str | os.PathLike[str] | None = None) -> None:
        self.link = os.fspath(link) if link is not None else None
        self._master: int | None = None
        self._slave: int | None = None  # held open so the master never sees a hang-up between clients
        self._slave_path = ""
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], threading.Event, list[Any]]] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> str:
        return self.link or self._slave_path

    @property
    def uri(self) -> str:
        return f"serial:{self.path}?baudrate={self.baudrate}"

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def start(self) -> Self:
        if self._thread is None:
            self._plug()
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name=f"{type(self).__name__}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            thread.join(timeout=5)
        self._unplug()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def plug_command(self, verb: str) -> str | None:
        """The text commands every simulated device takes (unplug, replug); None for others."""
        if verb == "unplug":
            self.unplug()
            return "unplugged"
        if verb == "replug":
            self.replug()
            return f"plugged in at {self.path}"
        return None

    def unplug(self) -> None:
        """Pull the cable: the pty goes away and the host's port fails."""
        self._call(self._unplug)

    def replug(self) -> None:
        """Plug it back in: a new pty (at the same symlink, if there is one)."""
        self._call(self._plug)

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the device thread (or here, if it is not running) and return its result."""
        if self._thread is None or threading.current_thread() is self._thread:
            return fn()
        done = threading.Event()
        result: list[Any] = []
        self._calls.put((fn, done, result))
        if not done.wait(timeout=5):
            raise RuntimeError(f"the simulated device on {self.path} is not responding")
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]

    def _post(self, fn: Callable[[], Any]) -> None:
        """Run `fn` on the device thread without waiting for it."""
        if self._thread is None:
            fn()
        else:
            self._calls.put((fn, threading.Event(), []))

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._run_calls()
            master = self._master
            if master is None:
                self._stopping.wait(self._TICK)
                continue
            readable, _, _ = select.select([master], [], [], self._TICK)
            if readable:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    data = b""
                if data:
                    self._received(data)

    def _run_calls(self) -> None:
        while True:
            try:
                fn, done, result = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                result.append(fn())
            except Exception as e:  # handed to the caller, who raises it
                result.append(e)
            done.set()

    def _received(self, data: bytes) -> None:
        """Bytes the host wrote. Subclasses answer them."""

    def _send(self, data: bytes) -> None:
        """Write to the host (device thread only); lost, like on a real wire, when unplugged."""
        view = memoryview(data)
        while view and self._master is not None:
            try:
                view = view[os.write(self._master, view):]
            except OSError:
                return

    def _plug(self) -> None:
        if self._master is not None:
            return
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        self._master, self._slave, self._slave_path = master, slave, os.ttyname(slave)
        if self.link:
            temporary = f"{self.link}.new"
            if os.path.lexists(temporary):
                os.unlink(temporary)
            os.symlink(self._slave_path, temporary)
            os.replace(temporary, self.link)

    def _unplug(self) -> None:
        fds = (self._master, self._slave)
        self._master = self._slave = None  # before closing: `plugged` is False once the host can notice
        if self.link and os.path.islink(self.link):
            os.unlink(self.link)
        for fd in fds:
            if fd is not None:
                os.close(fd)


class _Commanded(Protocol):
    def command(self, line: str) -> str: ...


def run_console(device: _Commanded, lines: Iterable[str], out: TextIO) -> None:
    """Feed text commands to a simulator until the lines end or one says quit (the way a
    simulator run as `python -m …` is driven from stdin)."""
    for line in lines:
        if line.strip() in ("quit", "exit"):
            return
        print(device.command(line), file=out, flush=True)
