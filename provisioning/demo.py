"""`kiosq demo`: the hall server, simulated devices and the kiosk on one machine.

The kiosk runs as a `kiosq kiosk` child process once the server answers: in a window where
there is a display, else its screens drawn offscreen to DATA_DIR/tour/.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from kiosq.provisioning.options import CONTEXT, data_dir_option, open_hall_store, setup_logging

if TYPE_CHECKING:
    from kiosq.devices.sim.idcard import SimulatedCardReader
    from kiosq.devices.sim.printer import PaperLevel, PrinterSimulator
    from kiosq.queue.store import Store


@click.command(context_settings=CONTEXT)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@data_dir_option
def demo(port: int, data_dir: Path) -> None:
    """Run the hall server on 127.0.0.1 with the built-in hall, fresh demo tokens, simulated
    devices (receipt printer, ID card reader with a test card, scanner) and the kiosk (a
    window where there is a display, else its screens drawn to DATA_DIR/tour/).

    \b
    Example:
      kiosq demo --port 8000
    """
    from kiosq.devices.sim.idcard import SimulatedCardReader
    from kiosq.devices.sim.printer import PrinterSimulator
    from kiosq.devices.sim.scanner import SimulatedScanner
    from kiosq.queue.server import ServerError, serve

    setup_logging()
    store = open_hall_store(data_dir, None)
    tokens = _demo_tokens(store)
    accounts = _demo_accounts(store)
    rate_code = _demo_rating_device_code(store)
    base = f"http://127.0.0.1:{port}"
    env_file = _write_demo_env(data_dir, base, tokens, accounts)
    devices = data_dir / "devices"
    devices.mkdir(parents=True, exist_ok=True)
    with PrinterSimulator(preview=devices / "last-slip.png") as printer, \
            SimulatedCardReader(devices / "idcard") as reader, SimulatedScanner(devices / "scanner"):
        printer_link = devices / "printer"
        printer_link.unlink(missing_ok=True)
        printer_link.symlink_to(printer.path)
        reader.place()
        click.echo(_banner(store.hall.info.name, data_dir, base, tokens, accounts, env_file, rate_code))
        sys.stdout.flush()
        if sys.stdin.isatty():
            threading.Thread(target=_demo_console, args=(reader, printer), name="demo-console", daemon=True).start()
        kiosk = _DemoKiosk(base, tokens["terminal"], f"serial:{printer_link}", data_dir,
                           card_reader=f"serial:{devices / 'idcard'}")
        try:
            kiosk.start()
            serve(store, "127.0.0.1", port, use_tls=False)  # the demo's kiosk and pages speak plain http
        except ServerError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            kiosk.stop()
            store.close()
            printer_link.unlink(missing_ok=True)


def _demo_tokens(store: Store) -> dict[str, str]:
    """A fresh terminal, staff (every window) and admin token; each run revokes the last
    run's, so old demo tokens stop working."""
    tokens = {}
    for role, windows in (("terminal", ()), ("staff", tuple(store.hall.windows)), ("admin", ())):
        store.revoke_tokens(f"demo-{role}")
        tokens[role] = store.create_token(role, f"demo-{role}", windows)
    return tokens


# The demo's people: a clerk at windows 1 and 2, the duty supervisor, the IT admin.
DEMO_ACCOUNTS = (("demo-clerk", "演示窗口员", "staff", (1, 2)), ("demo-chief", "演示负责人", "supervisor", ()),
                 ("demo-admin", "演示管理员", "admin", ()))


def _demo_accounts(store: Store) -> dict[str, str]:
    """The demo's accounts with fresh passwords each run (earlier runs' stop working):
    login -> password."""
    from kiosq.queue.people import hash_password

    passwords = {}
    for login, name, role, windows in DEMO_ACCOUNTS:
        password = "demo-" + secrets.token_urlsafe(9)
        if store.user(login) is None:
            store.create_user(login, name, role, windows, password)
        else:
            store.set_user_password(login, hash_password(password))
            store.set_user_disabled(login, False)
        passwords[login] = password
    return passwords


def _demo_rating_device_code(store: Store) -> str:
    """A one-time enrollment code for window 1's rating device (/rate/window/1), new each
    run: the page asks for it once and keeps the terminal token it gets."""
    from datetime import timedelta

    from kiosq.queue import fleet

    code = fleet.new_enroll_code()
    store.add_enroll_code(RATING_DEVICE, fleet.hash_code(code), store.clock() + timedelta(hours=12), "demo")
    return code


RATING_DEVICE = "demo-rate-w1"


def _banner(hall_name: str, data_dir: Path, base: str, tokens: dict[str, str], accounts: dict[str, str],
            env_file: Path, rate_code: str = "") -> str:
    """What the demo prints once its devices are up: the pages, the accounts, the tokens, the devices."""
    devices, printer_link = data_dir / "devices", data_dir / "devices" / "printer"
    return (f"\nkiosq demo: hall {hall_name!r}, data in {data_dir.resolve()}\n"
            f"  hall display {base}/display/hall\n"
            f"  staff console {base}/window/1   dashboard {base}/admin\n"
            f"  rating device {base}/rate/window/1   (enrollment code {rate_code}, once)   "
            f"complaints {base}/complain\n"
            f"  API          {base}/api/services   (OpenAPI: {base}/openapi.json)\n"
            f"  events (SSE) {base}/api/events\n"
            f"Sign in as (login / password, new each run):\n"
            f"  clerk at windows 1-2  demo-clerk / {accounts['demo-clerk']}\n"
            f"  supervisor            demo-chief / {accounts['demo-chief']}\n"
            f"  admin (/admin)        demo-admin / {accounts['demo-admin']}\n"
            f"Tokens, for scripts and devices:\n"
            f"  terminal token  {tokens['terminal']}\n"
            f"  staff token     {tokens['staff']}   (all windows)\n"
            f"  admin token     {tokens['admin']}\n"
            f"The same, for a shell: . {env_file}\n"
            f"  printer  serial:{printer_link}   (slip preview {devices / 'last-slip.png'})\n"
            f"  reader   serial:{devices / 'idcard'}   (test card 1 on it)\n"
            f"  scanner  serial:{devices / 'scanner'}\n"
            f"Type here to drive the simulated devices: place 1|2|3 (a test ID card on the reader), "
            f"remove, paper out|near_end|ok.\n"
            f"This demo serves plain HTTP on 127.0.0.1 only. The same hall on the network, over HTTPS "
            f"with its own CA: kiosq server tls init --data-dir {data_dir} --host NAME, then kiosq server "
            f"--data-dir {data_dir} --host 0.0.0.0 (README, \"Running a real hall server\").\n"
            f"Stop with Ctrl-C.\n")


def _demo_console(reader: SimulatedCardReader, printer: PrinterSimulator) -> None:
    """The demo's devices driven from its terminal: card lines go to the card reader
    simulator (place N, remove), `paper LEVEL` to the printer's paper sensor."""
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "paper":
            level = words[1] if len(words) > 1 else ""
            if level not in ("ok", "near_end", "out"):
                click.echo("paper ok|near_end|out")
                continue
            printer.set_paper(cast("PaperLevel", level))
            click.echo(f"printer paper: {level}")
        else:
            click.echo(reader.command(line))


def _die_with_parent() -> None:
    """In the child: end with the demo even if it is killed outright (Linux's PR_SET_PDEATHSIG)."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class _DemoKiosk:
    """The demo's kiosk, once the server answers: a window where there is a display;
    otherwise every kiosk screen rendered offscreen to DATA_DIR/tour/ (see README)."""

    def __init__(self, base: str, token: str, printer: str, data_dir: Path, card_reader: str) -> None:
        self.base, self.printer, self.data_dir, self.card_reader = base, printer, data_dir, card_reader
        self.env = {**os.environ, "KIOSQ_TERMINAL_TOKEN": token}
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()  # no kiosk may start once stop() has begun

    def start(self) -> None:
        threading.Thread(target=self._run, name="demo-kiosk", daemon=True).start()

    def _run(self) -> None:
        if not self._server_up():
            return
        cli = [sys.executable, "-m", "kiosq.provisioning.cli", "kiosk", "--server", self.base,
               "--printer", self.printer, "--card-reader", self.card_reader, "--data-dir", str(self.data_dir)]
        windowed = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        tour = self.data_dir / "tour"
        with self.lock:
            if self.stopping.is_set():
                return
            self.proc = subprocess.Popen(cli if windowed else cli + ["--tour", str(tour)], env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        if windowed:
            click.echo("kiosk: the window is open (touch or click it)")
        elif self.proc.wait() == 0 and not self.stopping.is_set():
            click.echo(f"kiosk: no display here, so every kiosk screen is drawn offscreen to {tour}/ "
                       f"(it took its own tickets and filed an application per variant, with test card 1, "
                       f"to show those screens); the hall display is at {self.base}/display/hall")

    def _server_up(self) -> bool:
        import urllib.request

        while not self.stopping.wait(0.2):
            try:
                with urllib.request.urlopen(f"{self.base}/api/health", timeout=1):
                    return True
            except OSError:
                continue
        return False

    def stop(self) -> None:
        with self.lock:
            self.stopping.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _write_demo_env(data_dir: Path, base: str, tokens: dict[str, str], accounts: dict[str, str]) -> Path:
    """KIOSQ_URL, the demo tokens and the demo accounts' passwords as shell variables (mode
    0600: they are secrets)."""
    path = data_dir / "demo-tokens.env"
    lines = [f"KIOSQ_URL={base}"] + [f"KIOSQ_{role.upper()}_TOKEN={secret}" for role, secret in tokens.items()]
    lines += [f"KIOSQ_{login.upper().replace('-', '_')}_PASSWORD={password}" for login, password in accounts.items()]
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text("".join(f"export {line}\n" for line in lines), encoding="utf-8")
    return path
