"""`kiosq devices`: simulators, and the checks IT staff run at a terminal.

Personal data read from a card is shown masked (王*明, 110***********1234) and never
written anywhere.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from kiosq.provisioning.options import CONTEXT

if TYPE_CHECKING:
    from kiosq.devices.sim.idcard import SimulatedCardReader
    from kiosq.devices.sim.printer import PaperLevel, PrinterSimulator
    from kiosq.devices.sim.scanner import SimulatedScanner

SIM_DIR = Path("data") / "devices"


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group(context_settings=CONTEXT)
def devices() -> None:
    """Printers, ID card readers and scanners: simulate, find, probe, test.

    \b
    Example:
      kiosq devices simulate                      # in one terminal
      kiosq devices test-print --printer serial:data/devices/printer
      kiosq devices read-card --reader serial:data/devices/idcard
    """


@devices.command(context_settings=CONTEXT)
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=SIM_DIR,
              show_default=True, help="Where the devices' links and the printer's preview go.")
@click.option("--paper", type=click.Choice(["58", "80"]), default="58", show_default=True, help="Paper width in mm.")
def simulate(folder: Path, paper: str) -> None:
    """Run a simulated receipt printer, ID card reader (a test card on it) and scanner.

    Each speaks the real protocol on a pseudo-terminal, linked from DIR; the printer
    decodes what it gets and writes a PNG preview of the last slip. Type commands to
    change them while they run: `printer paper out`, `printer cover open`,
    `card place 2`, `card remove`, `scanner scan 12345678`, `quit`.

    \b
    Example:
      kiosq devices simulate --dir data/devices
    """
    from kiosq.devices.receipts import PAPER_58, PAPER_80
    from kiosq.devices.sim.idcard import SimulatedCardReader
    from kiosq.devices.sim.printer import PrinterSimulator
    from kiosq.devices.sim.scanner import SimulatedScanner

    folder.mkdir(parents=True, exist_ok=True)
    paper_spec = PAPER_80 if paper == "80" else PAPER_58
    printer = PrinterSimulator(preview=folder / "last-slip.png", width_px=paper_spec.dots,
                               on_job=lambda job: click.echo(f"printer: job of {len(job.lines)} lines"
                                                             f"{'' if job.printed else ' (not printed)'}, "
                                                             f"preview {folder / 'last-slip.png'}"))
    reader = SimulatedCardReader(folder / "idcard")
    scanner = SimulatedScanner(folder / "scanner")
    with printer, reader, scanner:
        link = folder / "printer"
        link.unlink(missing_ok=True)
        link.symlink_to(printer.path)
        reader.command("place 1")
        click.echo(f"printer  serial:{link}   (paper {paper} mm, preview {folder / 'last-slip.png'})\n"
                   f"reader   serial:{folder / 'idcard'}   (test card 1 on it)\n"
                   f"scanner  serial:{folder / 'scanner'}\n"
                   "commands: printer paper ok|near_end|out · printer cover open|closed · card place 1-3 · "
                   "card remove · scanner scan CODE · quit\nStop with Ctrl-C.")
        sys.stdout.flush()
        _serve_commands(printer, reader, scanner)
        link.unlink(missing_ok=True)


def _serve_commands(printer: PrinterSimulator, reader: SimulatedCardReader, scanner: SimulatedScanner) -> None:
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        def read_stdin() -> None:
            for line in sys.stdin:
                if line.strip() == "quit":
                    break
                click.echo(_command(printer, reader, scanner, line.strip()))
            else:
                return  # no more input (e.g. started in the background): run until stopped
            stop.set()

        threading.Thread(target=read_stdin, daemon=True).start()
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _command(printer: PrinterSimulator, reader: SimulatedCardReader, scanner: SimulatedScanner,
             line: str) -> str:
    device, _, rest = line.partition(" ")
    if device == "card":
        return reader.command(rest)
    if device == "scanner":
        return scanner.command(rest)
    if device == "printer":
        what, _, value = rest.partition(" ")
        try:
            if what == "paper":
                printer.set_paper(cast("PaperLevel", value))  # set_paper refuses any other word
            elif what == "cover":
                printer.set_cover_open({"open": True, "closed": False}[value])
            else:
                raise KeyError(what)
        except (KeyError, ValueError):
            return f"cannot do {line!r}: printer paper ok|near_end|out, printer cover open|closed"
        return f"printer: {what} {value}"
    return f"unknown command {line!r}: start it with printer, card or scanner"


@devices.command(name="list", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def list_devices(as_json: bool) -> None:
    """List the serial ports and CUPS printer queues this machine has.

    \b
    Example:
      kiosq devices list --json
    """
    import shutil
    import subprocess

    from serial.tools import list_ports

    found = [{"uri": f"serial:{p.device}", "kind": "serial port", "description": p.description or ""}
             for p in list_ports.comports()]
    if shutil.which("lpstat"):
        done = subprocess.run(["lpstat", "-e"], capture_output=True, text=True, timeout=10)
        found += [{"uri": f"cups:{q}", "kind": "CUPS queue", "description": ""} for q in done.stdout.split()]
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False))
        return
    for d in found:
        click.echo(f"{d['uri']:<32} {d['kind']:<12} {d['description']}")
    if not found:
        click.echo("no serial ports or CUPS queues found (is the device plugged in? `kiosq devices simulate` "
                   "makes simulated ones)", err=True)


@devices.command(context_settings=CONTEXT)
@click.option("--printer", "printer_uri", help="Printer URI, e.g. serial:/dev/ttyUSB0?baudrate=115200")
@click.option("--reader", "reader_uri", help="ID card reader URI, e.g. serial:/dev/ttyUSB1")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def probe(printer_uri: str | None, reader_uri: str | None, as_json: bool) -> None:
    """Ask each device whether it is there and ready: printer status and paper, reader status.

    Exits 1 if a device named here is missing or not ready.

    \b
    Example:
      kiosq devices probe --printer serial:data/devices/printer --reader serial:data/devices/idcard
    """
    if not printer_uri and not reader_uri:
        raise click.UsageError("name at least one device: --printer URI and/or --reader URI")
    results = []
    if printer_uri:
        results.append(_probe_printer(printer_uri))
    if reader_uri:
        results.append(_probe_reader(reader_uri))
    if as_json:
        click.echo(json.dumps(results, ensure_ascii=False))
    else:
        for r in results:
            click.echo(f"{'OK  ' if r['ok'] else 'FAIL'} {r['device']:<8} {r['uri']}: {r['detail']}")
    if not all(r["ok"] for r in results):
        sys.exit(1)


def _probe_printer(uri: str) -> dict[str, Any]:
    from kiosq.devices.printer import Printer, PrinterError
    from kiosq.devices.uri import DeviceURIError

    try:
        with Printer(uri) as printer:
            s = printer.status()
    except (PrinterError, DeviceURIError) as exc:
        return {"device": "printer", "uri": uri, "ok": False, "detail": str(exc)}
    cover = "open" if s.cover_open else "closed" if s.cover_open is False else "unknown"
    detail = f"online {_yes_no(s.online)}, paper {s.paper}, cover {cover}"
    return {"device": "printer", "uri": uri, "ok": s.ready, "detail": detail, "paper": s.paper,
            "online": s.online, "cover_open": s.cover_open}


def _probe_reader(uri: str) -> dict[str, Any]:
    from kiosq.devices.idcard import CardReader, IdCardError
    from kiosq.devices.uri import DeviceURIError

    try:
        with CardReader(uri) as reader:
            reader.status()
            card = reader.find()
    except (IdCardError, DeviceURIError) as exc:
        return {"device": "reader", "uri": uri, "ok": False, "detail": str(exc)}
    return {"device": "reader", "uri": uri, "ok": True,
            "detail": "answers; " + ("a card is on it" if card else "no card on it"), "card": card}


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "no"


@devices.command("test-print", context_settings=CONTEXT)
@click.option("--printer", "printer_uri", required=True, help="Printer URI, e.g. serial:/dev/ttyUSB0")
@click.option("--paper", type=click.Choice(["58", "80"]), default="58", show_default=True, help="Paper width in mm.")
def test_print(printer_uri: str, paper: str) -> None:
    """Print a test ticket: Chinese text, a big number, a QR code and a cut.

    Refuses (exit 1) when the printer reports no paper or an open cover, as the kiosk would.

    \b
    Example:
      kiosq devices test-print --printer serial:data/devices/printer
    """
    from kiosq.devices.printer import Printer, PrinterError
    from kiosq.devices.receipts import PAPER_58, PAPER_80, QueueTicket, ticket_slip
    from kiosq.devices.uri import DeviceURIError

    spec = PAPER_80 if paper == "80" else PAPER_58
    slip = ticket_slip(QueueTicket(hall="打印测试 · kiosq", number="T001", service="测试业务 Test", ahead=0,
                                   eta_minutes=0, issued_at=datetime.now(),
                                   follow_url="http://127.0.0.1:8000/t/test",
                                   notice="若本页中文、二维码和切纸均正常，打印机工作正常。"), spec)
    try:
        with Printer(printer_uri, paper=spec) as printer:
            status = printer.print_slip(slip, allow_unknown=True)
        reports = printer.reports_status
    except (PrinterError, DeviceURIError) as exc:
        raise _fail(exc) from None
    if reports and not status.known:
        raise click.ClickException(f"{printer_uri} never answered a status query, so nothing confirms the ticket "
                                   "printed: check the cable and the baud rate, and that this is the printer's port")
    click.echo(f"printed a test ticket on {printer_uri} (paper {status.paper})")


@devices.command("read-card", context_settings=CONTEXT)
@click.option("--reader", "reader_uri", required=True, help="ID card reader URI, e.g. serial:/dev/ttyUSB1")
@click.option("--json", "as_json", is_flag=True, help="Print the (masked) card as JSON.")
def read_card(reader_uri: str, as_json: bool) -> None:
    """Read the card on the reader once and show it masked (name and ID number).

    \b
    Example:
      kiosq devices read-card --reader serial:data/devices/idcard --json
    """
    from kiosq.base.privacy import mask_id_number, mask_name
    from kiosq.devices.idcard import CardReader, IdCardError
    from kiosq.devices.uri import DeviceURIError

    try:
        with CardReader(reader_uri) as reader:
            identity = reader.read_card()
    except (IdCardError, DeviceURIError) as exc:
        raise _fail(exc) from None
    if identity is None:
        raise click.ClickException(f"no card on the reader at {reader_uri}: place one and try again")
    shown = {"name": mask_name(identity.name), "sex": identity.sex, "nation": identity.nation,
             "id_number": mask_id_number(identity.id_number), "authority": identity.authority,
             "valid_from": identity.valid_from.isoformat(),
             "valid_to": "长期" if identity.valid_to is None else identity.valid_to.isoformat()}
    if as_json:
        click.echo(json.dumps(shown, ensure_ascii=False))
    else:
        click.echo("\n".join(f"{k:<10} {v}" for k, v in shown.items()))
