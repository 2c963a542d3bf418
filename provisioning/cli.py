"""The `kiosq` command: one entry point for the hall server, the kiosk and IT tooling.

Each command imports what it runs lazily, so `kiosq server` never loads Kivy. Exit codes:
0 success, 2 bad usage (click's own), 1 failure with one plain sentence on stderr.
"""

import json
import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import click

DEFAULT_DATA_DIR = Path("data")
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_DATA_DIR,
    show_default=True, help="Folder with the server's SQLite database (and hall.toml, if any).")
hall_option = click.option(
    "--hall", "hall_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Hall file (TOML). Default: DATA_DIR/hall.toml if present, else the built-in district hall.")


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _open(data_dir: Path, hall_file: Path | None):
    """The hall and store for a data folder, with every failure as one clear line."""
    from kiosq.queue.config import HallConfigError
    from kiosq.queue.server import ServerError, open_store, resolve_hall

    try:
        hall = resolve_hall(data_dir, hall_file)
        return open_store(data_dir, hall)
    except (HallConfigError, ServerError) as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="kiosq")
def main() -> None:
    """kiosq: self-service kiosks and queue tickets for government service halls.

    \b
    Example:
      kiosq server --data-dir data          # run the hall server
      kiosq server token --role terminal --name T01
    """


@main.group(invoke_without_command=True, context_settings=CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@data_dir_option
@hall_option
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="Log every request.")
@click.pass_context
def server(ctx: click.Context, host: str, port: int, data_dir: Path, hall_file: Path | None,
           access_log: bool) -> None:
    """Run the hall server: tickets, windows, displays and the event stream.

    \b
    Example:
      kiosq server --host 0.0.0.0 --port 8000 --data-dir /var/lib/kiosq --hall hall.toml
    """
    if ctx.invoked_subcommand is not None:
        given = [p.opts[0] for p in ctx.command.params
                 if ctx.get_parameter_source(p.name) is not click.core.ParameterSource.DEFAULT]
        if given:
            # `kiosq server --data-dir X token` would otherwise make a token in ./data.
            raise click.UsageError(f"{', '.join(given)} belongs after the subcommand: "
                                   f"kiosq server {ctx.invoked_subcommand} {given[0]} ...")
        return
    from kiosq.queue.server import ServerError, serve

    _setup_logging()
    store = _open(data_dir, hall_file)
    try:
        serve(store, host, port, access_log=access_log, **_server_notifications(host, port))
    except ServerError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


def _server_notifications(host: str, port: int) -> dict:
    """Under systemd (the server unit is Type=notify with WatchdogSec): READY=1 once the port
    listens, WATCHDOG=1 from the server's event loop every WatchdogSec/2. Nothing outside
    systemd. The sd_notify client is the kiosk's (queue imports nothing from kiosk)."""
    if not os.environ.get("NOTIFY_SOCKET"):
        return {}
    from kiosq.kiosk import sdnotify  # plain sockets: no Kivy

    hooks: dict = {"on_ready": lambda: sdnotify.notify_ready(f"hall server on {host}:{port}")}
    interval = sdnotify.watchdog_interval()
    if interval:
        hooks.update(on_tick=sdnotify.notify_watchdog, tick_interval=interval)
    return hooks


def _windows(_ctx, _param, value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        return tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter("give window numbers separated by commas, e.g. 1,2,5") from None


@server.command(context_settings=CONTEXT)
@click.option("--role", type=click.Choice(["terminal", "staff", "supervisor", "admin"]), required=True,
              help="terminal: issues tickets, files applications; staff: acts at its windows; supervisor: "
                   "acts at every window and approves rejections of applications; admin: everything.")
@click.option("--name", required=True, help="Who or what holds it, e.g. T01 or 张敏.")
@click.option("--windows", callback=_windows,
              help="Staff: the windows it may act at, e.g. 1,2; supervisor: its windows (default all).")
@data_dir_option
@hall_option
@click.option("--json", "as_json", is_flag=True, help="Print the token as JSON.")
def token(role: str, name: str, windows: tuple[int, ...], data_dir: Path, hall_file: Path | None,
          as_json: bool) -> None:
    """Create an access token and print it once (only its hash is kept).

    \b
    Example:
      kiosq server token --role staff --name 张敏 --windows 1,2
    """
    if windows and role not in ("staff", "supervisor"):
        raise click.UsageError("--windows is for staff tokens only (and supervisor tokens, to limit them to those windows)")
    if role == "staff" and not windows:
        raise click.UsageError("a staff token needs --windows, the windows it may act at, e.g. --windows 1,2")
    store = _open(data_dir, hall_file)
    try:
        secret = store.create_token(role, name, windows)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"token": secret, "role": role, "name": name, "windows": list(windows)}))
    else:
        click.echo(secret)


@server.command("enroll-code", context_settings=CONTEXT)
@click.option("--terminal", required=True, help="The terminal's id, e.g. T03 (letters, digits, - and _).")
@click.option("--ttl", default="1h", show_default=True, help="How long the code works: 30m, 1h, 2d (1 minute to 7 days).")
@data_dir_option
@hall_option
@click.option("--json", "as_json", is_flag=True, help="Print {code, terminal, expires_at} as JSON.")
def enroll_code(terminal: str, ttl: str, data_dir: Path, hall_file: Path | None, as_json: bool) -> None:
    """Make a one-time enrollment code for a terminal and print it.

    On the terminal, `kiosq enroll CODE --server URL` trades it for the terminal's token. The
    code works once; a newer code for the same terminal replaces it. Enrolling a terminal again
    revokes its old token.

    \b
    Example:
      kiosq server enroll-code --terminal T03 --ttl 1h --data-dir /var/lib/kiosq
    """
    import re
    from datetime import timedelta

    from kiosq.queue import fleet

    if not re.match(fleet.TERMINAL_ID, terminal):
        raise click.BadParameter("1-32 letters, digits, - or _, starting with a letter or digit, e.g. T03",
                                 param_hint="--terminal")
    try:
        lifetime: timedelta = fleet.parse_ttl(ttl)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ttl") from None
    store = _open(data_dir, hall_file)
    try:
        code = fleet.new_enroll_code()
        expires = store.clock() + lifetime
        store.add_enroll_code(terminal, fleet.hash_code(code), expires, "kiosq server enroll-code")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    expires_at = expires.astimezone(store.hall.tz).isoformat(timespec="seconds")
    if as_json:
        click.echo(json.dumps({"code": code, "terminal": terminal, "expires_at": expires_at}))
    else:
        click.echo(code)
        click.echo(f"for terminal {terminal}, works once until {expires_at}", err=True)


@server.command("publish", context_settings=CONTEXT)
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@data_dir_option
@hall_option
@click.option("--json", "as_json", is_flag=True, help="Print the published manifest as JSON.")
def publish(manifest: Path, data_dir: Path, hall_file: Path | None, as_json: bool) -> None:
    """Publish a content bundle to the hall's terminals.

    MANIFEST is the .json file written by `kiosq content build`. Its database is checked
    against the sha256, copied into DATA_DIR/content and made the published bundle; the
    server's own catalog (/api/items, application forms) follows within seconds, and
    terminals see it in their next heartbeat. The previous bundle stays for rollback.

    \b
    Example:
      kiosq content build --out build/bundle
      kiosq server publish build/bundle/catalog-20261123.101500-1a2b3c4d.json --data-dir /var/lib/kiosq
    """
    from kiosq.content.bundle import BundleError
    from kiosq.queue.rollout import Rollout

    store = _open(data_dir, hall_file)
    try:
        try:
            published = Rollout(data_dir).publish_manifest(manifest)
        except BundleError as exc:
            raise click.ClickException(str(exc)) from None
        store.record_event("content.published", {"content": {"version": published.version, "action": "published",
                                                             "by": "kiosq server publish"}})
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"version": published.version, "sha256": published.sha256, "items": published.items,
                               "created": published.created}))
    else:
        click.echo(f"published {published.version} ({published.items} items); terminals take it at their next "
                   "heartbeat")


@main.command(context_settings=CONTEXT)
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

    _setup_logging()
    store = _open(data_dir, None)
    tokens = {}
    for role, windows in (("terminal", ()), ("staff", tuple(store.hall.windows)), ("admin", ())):
        store.revoke_tokens(f"demo-{role}")  # each run hands out new ones; old demo tokens stop working
        tokens[role] = store.create_token(role, f"demo-{role}", windows)
    base = f"http://127.0.0.1:{port}"
    env_file = _write_demo_env(data_dir, base, tokens)
    devices = data_dir / "devices"
    devices.mkdir(parents=True, exist_ok=True)
    with PrinterSimulator(preview=devices / "last-slip.png") as printer, \
            SimulatedCardReader(devices / "idcard") as reader, SimulatedScanner(devices / "scanner") as scanner:
        printer_link = devices / "printer"
        printer_link.unlink(missing_ok=True)
        printer_link.symlink_to(printer.path)
        reader.place()
        click.echo(f"\nkiosq demo: hall {store.hall.info.name!r}, data in {data_dir.resolve()}\n"
                   f"  hall display {base}/display/hall\n"
                   f"  staff console {base}/window/1   dashboard {base}/admin\n"
                   f"  API          {base}/api/services   (OpenAPI: {base}/openapi.json)\n"
                   f"  events (SSE) {base}/api/events\n"
                   f"  terminal token  {tokens['terminal']}\n"
                   f"  staff token     {tokens['staff']}   (all windows)\n"
                   f"  admin token     {tokens['admin']}\n"
                   f"The same, for a shell: . {env_file}\n"
                   f"  printer  serial:{printer_link}   (slip preview {devices / 'last-slip.png'})\n"
                   f"  reader   serial:{devices / 'idcard'}   (test card 1 on it)\n"
                   f"  scanner  serial:{devices / 'scanner'}\n"
                   f"Type here to drive the simulated devices: place 1|2|3 (a test ID card on the reader), "
                   f"remove, paper out|near_end|ok.\n"
                   f"Stop with Ctrl-C.\n")
        sys.stdout.flush()
        if sys.stdin.isatty():
            threading.Thread(target=_demo_console, args=(reader, printer), name="demo-console", daemon=True).start()
        kiosk = _DemoKiosk(base, tokens["terminal"], f"serial:{printer_link}", data_dir,
                           card_reader=f"serial:{devices / 'idcard'}")
        try:
            kiosk.start()
            serve(store, "127.0.0.1", port)
        except ServerError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            kiosk.stop()
            store.close()
            printer_link.unlink(missing_ok=True)


def _demo_console(reader, printer) -> None:
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
            printer.set_paper(level)
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
        self.proc: subprocess.Popen | None = None
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


DEFAULT_CATALOG = DEFAULT_DATA_DIR / "catalog.sqlite"
db_option = click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_CATALOG,
                         show_default=True, help="The catalog database.")


def _catalog_errors(fn):
    """Catalog and bundle problems as clear lines and exit code 1."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from kiosq.content.bundle import BundleError
        from kiosq.content.model import CatalogError

        try:
            return fn(*args, **kwargs)
        except CatalogError as exc:
            for line in exc.problems[:-1]:
                click.echo(line, err=True)
            raise click.ClickException(exc.problems[-1] + (f"  ({len(exc.problems)} problems)"
                                                           if len(exc.problems) > 1 else "")) from None
        except BundleError as exc:
            raise click.ClickException(str(exc)) from None
        except sqlite3.Error as exc:
            raise click.ClickException(f"the catalog database cannot be used ({exc}); pass another --db") from None
        except OSError as exc:
            raise click.ClickException(f"{exc.filename or 'a file'}: {exc.strerror or exc}; check the path") from None
    return wrapper


@main.group(context_settings=CONTEXT)
def content() -> None:
    """The item-guide catalog (办事指南): import, export, search, bundles for terminals.

    \b
    Example:
      kiosq content import content/data --db data/catalog.sqlite
      kiosq content search sfz
    """


@content.command("import", context_settings=CONTEXT)
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@db_option
@_catalog_errors
def content_import(path: Path, db: Path) -> None:
    """Check a catalog (a JSON file or a folder of them) and make it the catalog in DB.

    Every problem is reported with the item's code and field; a file with any problem
    imports nothing. The format is docs/catalog-format.md.

    \b
    Example:
      kiosq content import content/data --db data/catalog.sqlite
    """
    from kiosq.content.catalog import load_files, write_catalog

    items = load_files(path)
    write_catalog(db, items)
    click.echo(f"imported {len(items)} items from {path} into {db}")


@content.command("export", context_settings=CONTEXT)
@db_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default: standard output).")
@_catalog_errors
def content_export(db: Path, out: Path | None) -> None:
    """Write the catalog back in the import format (importing it again gives the same catalog).

    \b
    Example:
      kiosq content export --db data/catalog.sqlite --out catalog.json
    """
    from kiosq.content.catalog import export_catalog

    text = json.dumps(export_catalog(db), ensure_ascii=False, indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)


@content.command("search", context_settings=CONTEXT)
@click.argument("query")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The catalog database (default: data/catalog.sqlite, else the sample catalog).")
@click.option("--department", default=None, help="Only this department, e.g. 公安局.")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 200))
@click.option("--json", "as_json", is_flag=True, help="Print [{code, name, department, score}] as JSON.")
@_catalog_errors
def content_search(query: str, db: Path | None, department: str | None, limit: int, as_json: bool) -> None:
    """Search item guides by Chinese, pinyin, initials, English or everyday words.

    \b
    Example:
      kiosq content search sfz
      kiosq content search "shen fen zheng" --json
      kiosq content search 户口 --department 公安局
    """
    from kiosq.content.search import Searcher, normalise

    if not normalise(query)[0]:
        raise click.UsageError("give something to search for, e.g. sfz, 身份证 or passport")
    with _catalog_db(db) as path, Searcher(path) as searcher:
        hits = searcher.search(query, department=department, limit=limit)
    if as_json:
        click.echo(json.dumps([{"code": h.code, "name": h.name, "department": h.department, "score": h.score}
                               for h in hits], ensure_ascii=False))
        return
    if not hits:
        click.echo(f"nothing found for {query!r}", err=True)
    for h in hits:
        click.echo(f"{h.score:>3}  {h.code:<12} {h.name}  ({h.department})")


@content.command("build", context_settings=CONTEXT)
@click.option("--from", "source", type=click.Path(exists=True, path_type=Path), default=None,
              help="Catalog JSON file or folder (default: the catalog in --db, else the sample catalog).")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=None, help="A catalog database to bundle.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("bundles"), show_default=True,
              help="Folder for the bundle.")
@_catalog_errors
def content_build(source: Path | None, db: Path | None, out: Path) -> None:
    """Build a versioned content bundle: the catalog database and its manifest (sha256).

    \b
    Example:
      kiosq content build --from content/data --out bundles
    """
    from kiosq.content.bundle import build
    from kiosq.content.catalog import SAMPLE, load_files, read_items

    items = read_items(db) if db is not None and source is None else load_files(source or SAMPLE)
    manifest = build(items, out)
    click.echo(str(manifest))


@content.command("verify", context_settings=CONTEXT)
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_catalog_errors
def content_verify(manifest: Path) -> None:
    """Check a bundle: its database matches the manifest's sha256 and item count.

    \b
    Example:
      kiosq content verify bundles/catalog-20261122.101500-1a2b3c4d.json
    """
    from kiosq.content.bundle import verify

    m = verify(manifest)
    click.echo(f"ok: version {m.version}, {m.items} items, sha256 {m.sha256}")


@content.command("install", context_settings=CONTEXT)
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--content-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The terminal's content folder.")
@_catalog_errors
def content_install(manifest: Path, content_dir: Path) -> None:
    """Install a bundle into a terminal's content folder (atomic; the previous stays for rollback).

    \b
    Example:
      kiosq content install bundles/catalog-20261122.101500-1a2b3c4d.json --content-dir /var/lib/kiosq/content
    """
    from kiosq.content.bundle import install

    m = install(manifest, content_dir)
    click.echo(f"active: {m.version} ({m.items} items) in {content_dir}")


@content.command("rollback", context_settings=CONTEXT)
@click.option("--content-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The terminal's content folder.")
@_catalog_errors
def content_rollback(content_dir: Path) -> None:
    """Go back to the bundle that was active before the last install.

    \b
    Example:
      kiosq content rollback --content-dir /var/lib/kiosq/content
    """
    from kiosq.content.bundle import rollback

    click.echo(f"active: {rollback(content_dir)} in {content_dir}")


@contextmanager
def _catalog_db(db: Path | None):
    """The catalog to read: --db, else data/catalog.sqlite, else the sample catalog
    imported into a temporary file."""
    if db is not None or DEFAULT_CATALOG.is_file():
        yield db or DEFAULT_CATALOG
        return
    from kiosq.content.catalog import SAMPLE, load_files, write_catalog

    with tempfile.TemporaryDirectory(prefix="kiosq-catalog-") as tmp:
        path = Path(tmp) / "catalog.sqlite"
        write_catalog(path, load_files(SAMPLE))
        yield path


def _write_demo_env(data_dir: Path, base: str, tokens: dict[str, str]) -> Path:
    """KIOSQ_URL and the demo tokens as shell variables (mode 0600: they are secrets)."""
    path = data_dir / "demo-tokens.env"
    lines = [f"KIOSQ_URL={base}"] + [f"KIOSQ_{role.upper()}_TOKEN={secret}" for role, secret in tokens.items()]
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text("".join(f"export {line}\n" for line in lines), encoding="utf-8")
    return path


@main.command(context_settings=CONTEXT)
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="KIOSQ_CONFIG", show_envvar=True,
              help="Terminal config file (docs/terminal-config.md); the options given here override it. "
                   "Without it nothing is read implicitly (the systemd unit passes /etc/kiosq/terminal.toml).")
@click.option("--catalog", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Catalog database to show (default: the config's content, else the sample catalog).")
@click.option("--printer", default=None, help="Receipt printer URI, e.g. serial:/dev/ttyUSB0.")
@click.option("--card-reader", default=None, help="ID card reader URI, e.g. serial:/dev/ttyUSB1 (for 申报 and 进度查询).")
@click.option("--a4-printer", default=None, help="A4 printer: cups:QUEUE, or file:/path/out.pdf.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("--elder/--no-elder", default=False, help="Start in 长辈模式 (large text, large targets).")
@click.option("--idle", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds without a touch before '还在吗？'.")
@click.option("--server", "server_url", default=None, help="The hall server, e.g. http://127.0.0.1:8000 (for tickets).")
@click.option("--token-env", default="KIOSQ_TERMINAL_TOKEN", show_default=True,
              help="Environment variable holding the terminal token (kept out of the process list); "
                   "with --config, the config's token file is read unless this is given.")
@click.option("--tour", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Render every screen (zh, en, elder; landscape and portrait) to PNGs in DIR and exit.")
@data_dir_option
@click.pass_context
def kiosk(ctx: click.Context, config_file: Path | None, catalog: Path | None, printer: str | None,
          card_reader: str | None, a4_printer: str | None, lang: str, elder: bool, idle: float,
          server_url: str | None, token_env: str, tour: Path | None, data_dir: Path) -> None:
    """The touchscreen app: item guides (search by pinyin initials, printed slips) and, with
    a server, queue tickets printed on the receipt printer, applications filed with the ID
    card (kept in an outbox while the server is away) and their progress.

    With --config (or $KIOSQ_CONFIG) the terminal config file gives every setting, and an
    option given on the command line overrides it. Under systemd (Type=notify) the kiosk
    says READY=1 once its window runs and feeds the watchdog from Kivy's clock.

    \b
    Example:
      kiosq kiosk --config /etc/kiosq/terminal.toml
      . data/demo-tokens.env     # from `make demo`
      kiosq kiosk --server http://127.0.0.1:8000 --printer serial:data/devices/printer
      kiosq kiosk --tour build/tour      # every screen as PNGs
    """
    given = {p.name for p in ctx.command.params
             if ctx.get_parameter_source(p.name) is click.core.ParameterSource.COMMANDLINE}
    config = kiosk_config(config_file, {
        "catalog_db": catalog, "printer_uri": printer, "card_reader_uri": card_reader, "a4_printer_uri": a4_printer,
        "lang": lang, "elder": elder, "idle_timeout": idle,
        "server_url": server_url, "data_dir": data_dir}, given, token_env)
    if tour is not None:
        from kiosq.kiosk.tour import render_tour

        written = render_tour(tour, config)
        print(f"{len(written)} screens written to {tour}", file=sys.__stdout__)  # Kivy holds sys.stdout
        return
    from kiosq.kiosk.app import run_kiosk

    _feed_systemd(config.terminal_id)
    run_kiosk(config)


# `kiosq kiosk` options -> KioskConfig fields
KIOSK_OPTIONS = {"catalog": "catalog_db", "printer": "printer_uri", "card_reader": "card_reader_uri",
                 "a4_printer": "a4_printer_uri", "lang": "lang", "elder": "elder",
                 "idle": "idle_timeout", "server_url": "server_url", "data_dir": "data_dir"}


def kiosk_config(config_file: Path | None, options: dict[str, object], given: set[str], token_env: str):
    """The KioskConfig for `kiosq kiosk`: the config file (if any) with the options given on
    the command line (`given`: parameter names) on top, or the options alone. `options` is
    keyed by KioskConfig field."""
    from kiosq.kiosk.settings import KioskConfig  # no Kivy yet: it takes over stderr once imported
    from kiosq.kiosk.terminal_config import TerminalConfigError, read_terminal_config

    env_token = os.environ.get(token_env)
    try:
        if config_file is None:
            config = KioskConfig(**options, terminal_token=env_token)
        else:
            terminal = read_terminal_config(config_file)
            overrides = {field: options[field] for name, field in KIOSK_OPTIONS.items() if name in given}
            if "catalog_db" in overrides:
                overrides["content_dir"] = None  # --catalog replaces the config's content folder
            if "token_env" in given:
                overrides["terminal_token"] = env_token
            config = terminal.kiosk_config(**overrides)
    except TerminalConfigError as exc:
        for line in exc.problems[:-1]:
            click.echo(line, err=True)
        raise click.ClickException(exc.problems[-1]) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if config.server_url and not config.terminal_token:
        if config_file is not None and "token_env" not in given:
            raise click.ClickException(
                f"{config_file}: no terminal token in {terminal.token_file}: enroll this terminal with "
                f"`kiosq enroll CODE --server {config.server_url} --config {config_file}`")
        raise click.UsageError(f"--server needs a terminal token in ${token_env}: "
                               "create one with `kiosq server token --role terminal --name T01`")
    return config


def _feed_systemd(terminal_id: str) -> None:
    """Under systemd: READY=1 on the first turn of Kivy's loop (after the window and on_start),
    then WATCHDOG=1 from Kivy's clock, so a frozen UI stops the pings and systemd restarts
    the kiosk. Nothing outside systemd."""
    from kiosq.kiosk import sdnotify

    if not os.environ.get("NOTIFY_SOCKET"):
        return
    from kivy.clock import Clock

    Clock.schedule_once(lambda _dt: sdnotify.notify_ready(f"kiosk {terminal_id} running"), 0)
    interval = sdnotify.watchdog_interval()
    if interval:
        Clock.schedule_interval(lambda _dt: sdnotify.notify_watchdog(), interval)


def _add_devices() -> None:
    from kiosq.provisioning.devices_cli import devices

    main.add_command(devices)


_add_devices()


def _add_terminal() -> None:
    from kiosq.provisioning.terminal_cli import doctor, enroll, provision

    main.add_command(provision)
    main.add_command(doctor)
    main.add_command(enroll)


_add_terminal()


if __name__ == "__main__":
    main()
