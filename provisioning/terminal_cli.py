"""`kiosq provision init|install` and `kiosq doctor`: set a terminal (or the hall machine) up
and check it. The config file is docs/terminal-config.md; the units are provisioning/units.py;
the checks are provisioning/doctor.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click
from click.core import ParameterSource

from kiosq.provisioning.options import CONTEXT, data_dir_option, database_option, hall_option

DEPLOYED_DATA = Path("/var/lib/kiosq")


def _uri(_ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> str | None:
    if value is None:
        return None
    from kiosq.devices.uri import DeviceURIError, parse_uri

    try:
        uri = parse_uri(value)
    except DeviceURIError as exc:
        raise click.BadParameter(str(exc)) from None
    if param is not None and param.name in ("card_reader", "scanner") and uri.scheme != "serial":
        raise click.BadParameter(f"{value!r}: this device is on a serial port, e.g. serial:/dev/ttyUSB1")
    return value


def _url(_ctx: click.Context | None, _param: click.Parameter | None, value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise click.BadParameter(f"starts with http:// or https://, e.g. http://10.0.0.2:8000, not {value!r}")
    return value.rstrip("/") if value else value


def _pin(value: str) -> str:
    from kiosq.kiosk.maintenance import pin_problem

    value = value.strip()
    problem = pin_problem(value)
    if problem is not None:
        raise click.BadParameter(problem)
    return value


@click.group(context_settings=CONTEXT)
def provision() -> None:
    """Set a terminal or the hall machine up: its config file, and the user and systemd units
    that lock it down as a kiosk.

    \b
    Example:
      echo 24681357 | kiosq provision init --terminal-id T03 --server http://10.0.0.2:8000 \\
          --printer serial:/dev/ttyUSB0 --pin-stdin
      kiosq provision install --root /tmp/terminal-root
    """


@provision.command(context_settings=CONTEXT)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write. Default: ROOT/etc/kiosq/terminal.toml.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/"), show_default=True,
              help="Install into this folder instead of / (the file's own paths stay as on the terminal).")
@click.option("--terminal-id", help="This terminal's name, e.g. T03.")
@click.option("--server", "server_url", callback=_url, help="The hall server, e.g. http://10.0.0.2:8000.")
@click.option("--token-file", default="terminal.token", show_default=True,
              help="Where `kiosq enroll` keeps the terminal token (relative: beside the config file).")
@click.option("--printer", callback=_uri, help="Receipt printer URI, e.g. serial:/dev/ttyUSB0?baudrate=115200.")
@click.option("--paper", type=click.Choice(["58", "80"]), default="58", show_default=True, help="Paper width in mm.")
@click.option("--card-reader", callback=_uri, help="ID card reader URI, e.g. serial:/dev/ttyUSB1.")
@click.option("--scanner", callback=_uri, help="Scanner URI, e.g. serial:/dev/ttyACM0.")
@click.option("--a4-printer", callback=_uri, help="A4 printer URI, e.g. cups:HALL_A4.")
@click.option("--content-dir", default=str(DEPLOYED_DATA / "content"), show_default=True,
              help="The terminal's content folder (bundles).")
@click.option("--catalog", default=None, help="A catalog database to show instead of a content folder (development).")
@click.option("--data-dir", default=str(DEPLOYED_DATA), show_default=True, help="The kiosk's working folder.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("--elder/--no-elder", default=False, show_default=True, help="Start in 长辈模式.")
@click.option("--speech/--no-speech", default=True, show_default=True, help="Spoken prompts in 长辈模式.")
@click.option("--idle", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds without a touch before '还在吗？'.")
@click.option("--pin-stdin", is_flag=True,
              help="Read the maintenance PIN (6 to 12 digits) from standard input (one line).")
@click.option("--no-pin", is_flag=True, help="No maintenance PIN: the maintenance screen cannot be opened.")
@click.option("--force", is_flag=True, help="Replace an existing file.")
def init(out: Path | None, root: Path, terminal_id: str | None, server_url: str | None, token_file: str,
         printer: str | None, paper: str, card_reader: str | None, scanner: str | None, a4_printer: str | None,
         content_dir: str, catalog: str | None, data_dir: str, lang: str, elder: bool, speech: bool, idle: float,
         pin_stdin: bool, no_pin: bool, force: bool) -> None:
    """Write a terminal config file (mode 0600: it holds the maintenance PIN's hash, never the PIN).

    Settings come from the options; on a terminal (stdin a TTY), those not given are asked
    for. Devices left empty are absent. The terminal token is not in this file: `kiosq
    enroll` writes it to --token-file.

    \b
    Example:
      kiosq provision init                       # asks for each setting
      echo 24681357 | kiosq provision init --out terminal.toml --terminal-id T03 \\
          --server http://10.0.0.2:8000 --printer serial:/dev/ttyUSB0 --pin-stdin
    """
    from kiosq.kiosk.maintenance import hash_pin
    from kiosq.kiosk.terminal_config import TerminalConfig, write_terminal_config

    out = out or root / "etc/kiosq/terminal.toml"
    if out.exists() and not force:
        raise click.ClickException(f"{out} exists; pass --force to replace it")
    if pin_stdin and no_pin:
        raise click.UsageError("give --pin-stdin or --no-pin, not both")
    ask = sys.stdin.isatty() and not pin_stdin
    if terminal_id is None:
        if not ask:
            raise click.UsageError("give --terminal-id, e.g. --terminal-id T03 (or run on a terminal to be asked)")
        terminal_id = click.prompt("Terminal id (e.g. T03)", value_proc=str.strip)
    if ask:
        server_url = server_url or _ask("Hall server URL (empty: none)", lambda v: _url(None, None, v))
        printer = printer or _ask("Receipt printer URI (empty: none)", lambda v: _uri(None, None, v))
        card_reader = card_reader or _ask("ID card reader URI (empty: none)", lambda v: _serial(v))
        scanner = scanner or _ask("Scanner URI (empty: none)", lambda v: _serial(v))
        a4_printer = a4_printer or _ask("A4 printer URI (empty: none)", lambda v: _uri(None, None, v))
    if pin_stdin:
        pin: str | None = _pin(sys.stdin.readline())
    elif no_pin:
        pin = None
    elif ask:
        pin = click.prompt("Maintenance PIN (6 to 12 digits)", hide_input=True, confirmation_prompt=True,
                           value_proc=_pin)
    else:
        raise click.UsageError("give the maintenance PIN with --pin-stdin (e.g. echo 24681357 | kiosq provision init "
                               "... --pin-stdin), or --no-pin")
    config = TerminalConfig(  # paths as given: relative ones are read from the file's folder
        terminal_id=terminal_id, data_dir=Path(data_dir), server_url=server_url,
        token_file=Path(token_file) if server_url else None,
        printer=printer, paper_width=int(paper), card_reader=card_reader, scanner=scanner, a4_printer=a4_printer,
        content_dir=None if catalog else Path(content_dir), catalog=Path(catalog) if catalog else None,
        language=lang, elder_mode=elder, speech=speech, idle_timeout=idle,
        pin_hash=hash_pin(pin) if pin else None)
    try:
        write_terminal_config(out, config, force=force)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror}; run as root or choose --out") from None
    click.echo(f"wrote {out} (mode 0600): terminal {terminal_id}"
               + (f", server {server_url}; next: kiosq enroll CODE --server {server_url} --config {out}"
                  if server_url else ", no server (guides only)"))


def _serial(value: str) -> str | None:
    uri = _uri(None, None, value)
    if uri and not uri.startswith("serial:"):
        raise click.BadParameter(f"{uri!r}: this device is on a serial port, e.g. serial:/dev/ttyUSB1")
    return uri


def _ask(text: str, check: Callable[[str], str | None]) -> str | None:
    answer: str | None = click.prompt(text, default="", show_default=False,
                                      value_proc=lambda v: check(v.strip()) if v.strip() else None)
    return answer


SERVER_OPTIONS = ("data_dir", "hall_file", "database_url", "server_url")


@click.command(context_settings=CONTEXT)
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("/etc/kiosq/terminal.toml"), show_default=True, envvar="KIOSQ_CONFIG", show_envvar=True,
              help="The terminal config file.")
@click.option("--server", "server_mode", is_flag=True,
              help="Check the hall server on this machine instead: --data-dir, --hall, --database, --url.")
@data_dir_option
@hall_option
@database_option
@click.option("--url", "server_url", default="http://127.0.0.1:8000", show_default=True, callback=_url,
              help="With --server: where the hall server answers.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON: [{status, name, detail, advice}].")
@click.pass_context
def doctor(ctx: click.Context, config_file: Path, server_mode: bool, data_dir: Path, hall_file: Path | None,
           database_url: str | None, server_url: str, as_json: bool) -> None:
    """Check this terminal: config, token, server and clock, content bundle, each device
    (printer paper), disk space, the CJK font. With --server, check the hall server's
    machine: hall file, database, applicant keys, the running server, disk space. One line
    per check, OK, WARN or FAIL with what to do; exits 1 if any check FAILs.

    \b
    Example:
      sudo kiosq doctor
      kiosq doctor --config terminal.toml --json
      sudo kiosq doctor --server --data-dir /var/lib/kiosq
    """
    from kiosq.provisioning.doctor import FAIL, run_checks
    from kiosq.provisioning.doctor import as_json as to_json
    from kiosq.provisioning.server_doctor import run_server_checks

    _one_mode(ctx, server_mode)
    checks = (run_server_checks(data_dir, hall_file, database_url, server_url) if server_mode
              else run_checks(config_file))
    if as_json:
        click.echo(to_json(checks))
    else:
        for check in checks:
            click.echo(check.line())
    if any(c.status == FAIL for c in checks):
        sys.exit(1)


def _one_mode(ctx: click.Context, server_mode: bool) -> None:
    """--config is the terminal's, the rest the server's: mixing them is a mistake to name."""
    given = {name for name in ("config_file", *SERVER_OPTIONS)
             if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE}
    if server_mode and "config_file" in given:
        raise click.UsageError("--config is a terminal's; --server checks the hall server from --data-dir, "
                               "--hall and --database")
    if not server_mode and given - {"config_file"}:
        raise click.UsageError("--data-dir, --hall, --database and --url go with --server")


@provision.command("install", context_settings=CONTEXT)
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/"), show_default=True,
              help="Install into this folder instead of / (for tests and images).")
@click.option("--role", type=click.Choice(["terminal", "server"]), default="terminal", show_default=True,
              help="terminal: the kiosk under cage; server: the hall server.")
@click.option("--user", default="kiosq", show_default=True, help="The system user the service runs as.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Server role: its port.")
def install_units(root: Path, role: str, user: str, port: int) -> None:
    """Lock this machine down: the kiosq system user, the systemd unit (the kiosk under cage,
    or the hall server; Restart=always, a watchdog), console blanking off, journald limits.

    Idempotent: a file that already says the same is left alone, and a second run says
    nothing changed. Into the real / it also creates the user and reloads systemd, then
    says how to start the unit.

    \b
    Example:
      kiosq provision install --root /tmp/terminal-root
      sudo kiosq provision install --role server
    """
    from kiosq.provisioning.units import apply_on_this_machine, files_for, install_files, kiosq_command

    try:
        done = install_files(root, files_for(role, user, kiosq_command(), port))
    except OSError as exc:
        raise click.ClickException(f"cannot write {exc.filename}: {exc.strerror}; run as root or pass --root") \
            from None
    for path, written in done:
        click.echo(f"{'wrote    ' if written else 'unchanged'} {path}")
    changed = sum(written for _, written in done)
    if not changed:
        click.echo(f"nothing to change: all {len(done)} files are already as wanted")
        return
    click.echo(f"{changed} of {len(done)} files written")
    unit = "kiosq-kiosk.service" if role == "terminal" else "kiosq-server.service"
    if root.resolve() == Path("/"):
        for command in apply_on_this_machine():
            click.echo(f"ran: {command}")
        click.echo(f"next: systemctl enable --now {unit}"
                   + ("   (after `kiosq provision init` and `kiosq enroll`)" if role == "terminal" else ""))


# --- enrollment ----------------------------------------------------------------------------

ENROLL_TIMEOUT = 10.0  # seconds: enrollment is run by hand, over a hall network


@click.command(context_settings=CONTEXT)
@click.argument("code")
@click.option("--server", "server_url", required=True, callback=_url,
              help="The hall server, e.g. http://10.0.0.2:8000 (the config's [server] url).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("/etc/kiosq/terminal.toml"), show_default=True, envvar="KIOSQ_CONFIG", show_envvar=True,
              help="The terminal config file; the token goes to its [server] token_file.")
@click.option("--ca-fingerprint", metavar="SHA256:HEX", default=None,
              help="An https server: the hall CA's fingerprint, as `kiosq server tls init` and `kiosq server "
                   "enroll-code` print it; the CA is pinned in the config's [server] ca_file.")
def enroll(code: str, server_url: str, config_file: Path, ca_fingerprint: str | None) -> None:
    """Trade a one-time enrollment code for this terminal's token.

    CODE comes from `kiosq server enroll-code --terminal T03` (or /admin) on the hall server.
    The token is written to the config's [server] token_file with mode 0600 (replacing an
    older one); codes work once and expire. --server must be the config's [server] url: if it
    is not, nothing is sent and the code stays unused. For an https server the hall CA is
    fetched, refused unless its fingerprint is --ca-fingerprint, and kept in [server] ca_file:
    from then on the kiosk, the doctor, the heartbeat, the updater and the outbox trust that
    CA and no other.

    \b
    Example:
      sudo kiosq enroll K7QF-2M9X --server https://hall.district.lan:8000 --ca-fingerprint SHA256:3f2a…
      kiosq enroll K7QF-2M9X --server http://127.0.0.1:8000 --config terminal.toml
    """
    from kiosq.kiosk.terminal_config import TerminalConfigError, read_terminal_config

    try:
        config = read_terminal_config(config_file)
    except TerminalConfigError as exc:
        for line in exc.problems[:-1]:
            click.echo(line, err=True)
        raise click.ClickException(exc.problems[-1]) from None
    if config.server_url != server_url:
        # A token for another server is of no use to this kiosk; refuse before the code is spent.
        said = f"says [server] url = \"{config.server_url}\"" if config.server_url else "has no [server] url"
        raise click.ClickException(
            f"{config_file} {said}, not {server_url}: set [server] url = \"{server_url}\" there (or rerun "
            f"`kiosq provision init --force ... --server {server_url}`), then enroll again; the code was not used")
    verify: str | bool = True
    if server_url.startswith("https://"):
        assert config.ca_file is not None  # a config with a [server] url always has a ca file
        verify = str(_pin_ca(server_url, ca_fingerprint, config.ca_file))
    elif ca_fingerprint:
        raise click.UsageError("--ca-fingerprint is for an https:// server; this one is plain http")
    terminal, token, signing_key = _enroll(server_url, code, verify)
    assert config.token_file is not None  # a config with a [server] url always has a token file
    try:
        write_secret(config.token_file, token)
    except OSError as exc:
        raise click.ClickException(
            f"enrolled as {terminal!r}, but cannot write {config.token_file} ({exc.strerror}); run as root (or as "
            "the config's owner) and enroll again with a new code: this one is used") from None
    if signing_key and config.signing_key is not None:
        try:
            config.signing_key.parent.mkdir(parents=True, exist_ok=True)
            config.signing_key.write_text(signing_key + "\n", "ascii")
        except OSError as exc:
            raise click.ClickException(f"enrolled as {terminal!r}, but cannot write the hall's signing key to "
                                       f"{config.signing_key} ({exc.strerror}); enroll again as root") from None
    click.echo(f"enrolled as {terminal!r} at {server_url}; token written to {config.token_file} (mode 0600)")
    if terminal != config.terminal_id:
        click.echo(f"note: the server knows this terminal as {terminal!r}, the config says [terminal] id = "
                   f"\"{config.terminal_id}\"; make them agree (the maintenance screen shows the config's)", err=True)
    click.echo(f"next: kiosq doctor --config {config_file}, then start the kiosk "
               "(systemctl enable --now kiosq-kiosk.service)")


def _pin_ca(server_url: str, typed: str | None, ca_file: Path) -> Path:
    """Fetch the hall CA from the server, refuse it unless its fingerprint is the one typed,
    and keep it in `ca_file`. The fetch itself cannot verify the server (this is how the
    terminal learns whom to trust): the fingerprint IT staff read off the server is the trust,
    and every request after it is verified against the CA it names."""
    import http.client
    import ssl
    import urllib.parse

    from kiosq.queue.tls import TlsError, fingerprint

    if not typed:
        raise click.UsageError("an https server needs --ca-fingerprint SHA256:… (printed by `kiosq server tls init` "
                               "and beside the code by `kiosq server enroll-code`)")
    want = "SHA256:" + typed.strip().removeprefix("SHA256:").removeprefix("sha256:").replace(":", "").lower()
    parts = urllib.parse.urlsplit(server_url)
    bootstrap = ssl.create_default_context()
    bootstrap.check_hostname = False
    bootstrap.verify_mode = ssl.CERT_NONE  # only for this public file, checked by its fingerprint below
    conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=ENROLL_TIMEOUT, context=bootstrap)
    try:
        conn.request("GET", "/api/tls/ca.pem")
        resp = conn.getresponse()
        pem = resp.read(65536)
    except (OSError, http.client.HTTPException) as exc:
        raise click.ClickException(f"cannot fetch the hall CA from {server_url} ({exc}); check the address and that "
                                   "`kiosq server` runs there with TLS") from None
    finally:
        conn.close()
    try:
        got = fingerprint(pem) if resp.status == 200 else None
    except TlsError:
        got = None
    if got is None:
        raise click.ClickException(f"{server_url}/api/tls/ca.pem answered HTTP {resp.status} without a certificate: "
                                   "is it a kiosq server made with `kiosq server tls init`? Nothing was sent")
    if got != want:
        raise click.ClickException(f"refused {server_url}: its CA is {got}, not {want} as typed; either it is not "
                                   "the hall's server or the fingerprint was mistyped. Nothing was sent; the code "
                                   "is unused")
    ca_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = ca_file.with_name(f".{ca_file.name}.tmp")
    tmp.write_bytes(pem)
    tmp.replace(ca_file)
    return ca_file


def _enroll(server_url: str, code: str, verify: str | bool = True) -> tuple[str, str, str | None]:
    """POST /api/terminals/enroll (over TLS verified against `verify`, the pinned CA);
    (terminal, token, the hall's bundle signing key), or a ClickException in plain words."""
    import requests

    url = f"{server_url}/api/terminals/enroll"
    try:
        resp = requests.post(url, json={"code": code}, timeout=ENROLL_TIMEOUT, verify=verify)
    except requests.exceptions.SSLError:
        raise click.ClickException(f"refused {server_url}: its certificate is not signed by the hall CA pinned in "
                                   "the config; nothing was sent") from None
    except requests.RequestException as exc:
        raise click.ClickException(f"cannot reach the hall server at {server_url} ({type(exc).__name__}); check "
                                   "the address, the network cable, and that `kiosq server` runs there") from None
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise click.ClickException(f"{url} answered HTTP {resp.status_code} without JSON: is {server_url} a kiosq "
                                   "server?")
    if resp.status_code == 201 and isinstance(body.get("token"), str) and isinstance(body.get("terminal"), str):
        key = body.get("signing_key")
        return body["terminal"], body["token"], key if isinstance(key, str) else None
    if resp.status_code == 422:
        raise click.ClickException(f"{code!r} is not an enrollment code (they look like K7QF-2M9X); check what "
                                   "was typed")
    detail = body.get("detail") or body.get("error") or f"HTTP {resp.status_code}"
    raise click.ClickException(f"the server refused the code: {detail}")


def write_secret(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 from the first byte, atomically."""
    from kiosq.base.privacy import replace_secret_file

    replace_secret_file(path, (text + "\n").encode("utf-8"))
