"""`kiosq server`: run the hall server, and its token, enroll-code and publish subcommands.

Each command imports the server lazily, so `import kiosq.provisioning.cli` loads no FastAPI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from kiosq.provisioning.options import (
    CONTEXT,
    data_dir_option,
    database_option,
    hall_option,
    open_hall_store,
    setup_logging,
)


@click.group(invoke_without_command=True, context_settings=CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@data_dir_option
@hall_option
@database_option
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="Log every request.")
@click.option("--max-connections", default=2000, show_default=True, type=click.IntRange(4, 60000),
              help="Open connections (event streams included) past which a request is answered 503.")
@click.option("--head-timeout", default=10.0, show_default=True, type=click.FloatRange(0.1, 300),
              help="Seconds a connection has to send a whole request head before it is closed.")
@click.option("--insecure-http", is_flag=True,
              help="Serve plain HTTP on a non-loopback --host (only when TLS ends at the hall's own reverse proxy).")
@click.pass_context
def server(ctx: click.Context, host: str, port: int, data_dir: Path, hall_file: Path | None,
           database_url: str | None, access_log: bool, max_connections: int, head_timeout: float,
           insecure_http: bool) -> None:
    """Run the hall server: tickets, windows, displays and the event stream.

    Serves HTTPS when DATA_DIR/tls has the hall's certificate (`kiosq server tls init`);
    without it, plain HTTP on 127.0.0.1 only (or --insecure-http behind a TLS proxy).

    \b
    Example:
      kiosq server tls init --data-dir /var/lib/kiosq --host hall.district.lan
      kiosq server --host 0.0.0.0 --port 8000 --data-dir /var/lib/kiosq --hall hall.toml
      kiosq server --data-dir /var/lib/kiosq --database postgresql://kiosq@db.hall.lan:5432/kiosq
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

    setup_logging()
    store = open_hall_store(data_dir, hall_file, database_url)
    try:
        serve(store, host, port, access_log=access_log, insecure_http=insecure_http, max_connections=max_connections,
              head_seconds=head_timeout,
              **_server_notifications(host, port))
    except ServerError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


def _server_notifications(host: str, port: int) -> dict[str, Any]:
    """Under systemd (the server unit is Type=notify with WatchdogSec): READY=1 once the port
    listens, WATCHDOG=1 from the server's event loop every WatchdogSec/2. Nothing outside
    systemd. The sd_notify client is the kiosk's (queue imports nothing from kiosk)."""
    if not os.environ.get("NOTIFY_SOCKET"):
        return {}
    from kiosq.kiosk import sdnotify  # plain sockets: no Kivy

    hooks: dict[str, Any] = {"on_ready": lambda: sdnotify.notify_ready(f"hall server on {host}:{port}")}
    interval = sdnotify.watchdog_interval()
    if interval:
        hooks.update(on_tick=sdnotify.notify_watchdog, tick_interval=interval)
    return hooks


def _windows(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        return tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter("give window numbers separated by commas, e.g. 1,2,5") from None


@server.group(invoke_without_command=True, context_settings=CONTEXT)
@click.option("--role", type=click.Choice(["terminal", "staff", "supervisor", "admin"]),
              help="terminal: issues tickets, files applications; staff: acts at its windows; supervisor: "
                   "acts at every window and approves rejections of applications; admin: everything.")
@click.option("--name", help="Who or what holds it, e.g. T01 or 张敏.")
@click.option("--windows", callback=_windows,
              help="Staff: the windows it may act at, e.g. 1,2; supervisor: its windows (default all).")
@click.option("--ttl", metavar="DURATION", default=None,
              help="How long a staff, supervisor or admin token works: 12h, 30d (1 hour to 3650 days). "
                   "Default: the hall's [sessions] token_ttl_days, 90. Terminal tokens live until revoked.")
@data_dir_option
@hall_option
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print the token as JSON.")
@click.pass_context
def token(ctx: click.Context, role: str | None, name: str | None, windows: tuple[int, ...], ttl: str | None,
          data_dir: Path, hall_file: Path | None, database_url: str | None, as_json: bool) -> None:
    """Create an access token and print it once (only its hash is kept); list and revoke tokens.

    Tokens are for scripts and devices; people sign in with an account (`kiosq server user`).

    \b
    Example:
      kiosq server token --role staff --name 张敏 --windows 1,2 --ttl 30d
      kiosq server token list
      kiosq server token revoke 张敏
    """
    if ctx.invoked_subcommand is not None:
        return
    from kiosq.provisioning.people_cli import cli_who, local_times, parse_token_ttl

    if role is None or name is None:
        raise click.UsageError("give --role and --name to make a token (or a subcommand: list, revoke)")
    if windows and role not in ("staff", "supervisor"):
        raise click.UsageError("--windows is for staff tokens only "
                               "(and supervisor tokens, to limit them to those windows)")
    if role == "staff" and not windows:
        raise click.UsageError("a staff token needs --windows, the windows it may act at, e.g. --windows 1,2")
    if ttl is not None and role == "terminal":
        raise click.UsageError("--ttl is for staff, supervisor and admin tokens; a terminal's lives until revoked "
                               "(`kiosq server token revoke NAME`)")
    lifetime = None if ttl is None else parse_token_ttl(ttl)
    store = open_hall_store(data_dir, hall_file, database_url)
    try:
        secret = store.create_token(role, name, windows, ttl=lifetime, who=cli_who())
        made = local_times(store, next(t for t in store.tokens() if t["name"] == name and t["role"] == role))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    expires = made["expires_at"]
    if as_json:
        click.echo(json.dumps({"token": secret, "role": role, "name": name, "windows": list(windows),
                               "expires_at": expires}))
    else:
        click.echo(secret)
        click.echo(f"{role} token for {name}: " + (f"expires {expires}" if expires else "works until revoked"),
                   err=True)


@server.command("enroll-code", context_settings=CONTEXT)
@click.option("--terminal", required=True, help="The terminal's id, e.g. T03 (letters, digits, - and _).")
@click.option("--ttl", default="1h", show_default=True,
              help="How long the code works: 30m, 1h, 2d (1 minute to 7 days).")
@data_dir_option
@hall_option
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print {code, terminal, expires_at} as JSON.")
def enroll_code(terminal: str, ttl: str, data_dir: Path, hall_file: Path | None, database_url: str | None,
                as_json: bool) -> None:
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
    store = open_hall_store(data_dir, hall_file, database_url)
    try:
        code = fleet.new_enroll_code()
        expires = store.clock() + lifetime
        from kiosq.provisioning.people_cli import cli_who

        store.add_enroll_code(terminal, fleet.hash_code(code), expires, "kiosq server enroll-code", cli_who())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    expires_at = expires.astimezone(store.hall.tz).isoformat(timespec="seconds")
    pin = _ca_fingerprint(data_dir)
    if as_json:
        click.echo(json.dumps({"code": code, "terminal": terminal, "expires_at": expires_at, "ca_fingerprint": pin}))
    else:
        click.echo(code)
        click.echo(f"for terminal {terminal}, works once until {expires_at}"
                   + (f"; the terminal enrolls with --ca-fingerprint {pin}" if pin else ""), err=True)


def _ca_fingerprint(data_dir: Path) -> str | None:
    """The hall CA's fingerprint, for IT staff to type at the terminal beside the code."""
    from kiosq.queue.tls import TlsError, TlsFiles, fingerprint

    ca = TlsFiles.of(data_dir).ca
    try:
        return fingerprint(ca.read_bytes()) if ca.is_file() else None
    except (OSError, TlsError):
        return None


@server.command("publish", context_settings=CONTEXT)
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@data_dir_option
@hall_option
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print the published manifest as JSON.")
def publish(manifest: Path, data_dir: Path, hall_file: Path | None, database_url: str | None,
            as_json: bool) -> None:
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

    store = open_hall_store(data_dir, hall_file, database_url)
    try:
        try:
            published = Rollout(data_dir).publish_manifest(manifest)
        except BundleError as exc:
            raise click.ClickException(str(exc)) from None
        store.record_event("content.published", {"content": {"version": published.version, "action": "published",
                                                             "by": "kiosq server publish"}})
    finally:
        store.close()
    # The signature beside the manifest too, for a bundle carried to a terminal by hand
    # (`kiosq content install MANIFEST --signing-key …` checks it).
    signature = Rollout(data_dir).signature_of(published.version)
    sig_file = manifest.with_suffix(".sig")
    try:
        sig_file.write_text(f"{signature}\n", "ascii")
    except OSError as exc:
        click.echo(f"note: cannot write the signature beside the manifest ({sig_file}: {exc.strerror}); a terminal "
                   "that takes the bundle by hand needs it", err=True)
    if as_json:
        click.echo(json.dumps({"version": published.version, "sha256": published.sha256, "items": published.items,
                               "created": published.created, "signature": signature}))
    else:
        click.echo(f"published {published.version} ({published.items} items); terminals take it at their next "
                   "heartbeat")


@server.command("migrate-db", context_settings=CONTEXT)
@click.option("--from", "from_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The hall's data folder, with its SQLite kiosq.db.")
@click.option("--to", "to_url", metavar="URL", required=True,
              help="postgresql://USER@HOST:PORT/DB: an empty database (the password in PGPASSFILE or the hall "
                   "file's [database] password_file).")
@hall_option
def migrate_db(from_dir: Path, to_url: str, hall_file: Path | None) -> None:
    """Copy a hall from SQLite to PostgreSQL.

    Stop the server first (a running one would wait, then fail to write, for the length
    of the copy). The target must be empty; the copy is one transaction. Afterwards the data
    folder goes with the PostgreSQL database (DATA_DIR/database.url): `kiosq server
    --data-dir DATA_DIR` and its subcommands use it; kiosq.db stays as it was, as a backup.

    \b
    Example:
      createdb -O kiosq kiosq
      kiosq server migrate-db --from /var/lib/kiosq --to postgresql://kiosq@db.hall.lan:5432/kiosq
    """
    from datetime import UTC, datetime

    from kiosq.queue.config import HallConfigError
    from kiosq.queue.server import ServerError, resolve_hall
    from kiosq.queue.store import DB_FILE, StoreError
    from kiosq.queue.store.database import DatabaseChoice, DatabaseUrlError, check_password_file, check_url, remember
    from kiosq.queue.store.migrate import copy_to_postgresql

    try:
        hall = resolve_hall(from_dir, hall_file)
        target = DatabaseChoice(check_url(to_url, "--to"), check_password_file(hall.database.password_file), "--to")
        copied = copy_to_postgresql(from_dir / DB_FILE, target, datetime.now(UTC))
        remember(from_dir, target)
    except (HallConfigError, ServerError, DatabaseUrlError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    figures = ", ".join(f"{n} {table}" for table, n in copied.rows.items() if n)
    click.echo(f"copied {copied.total} rows ({figures or 'an empty hall'}) into {to_url}")
    click.echo(f"{from_dir} now goes with that database ({from_dir / 'database.url'}); {from_dir / DB_FILE} is "
               "kept as it was, as a backup")


@server.command("retention", context_settings=CONTEXT)
@click.option("--dry-run", is_flag=True, help="Only count what a run would erase and delete; change nothing.")
@data_dir_option
@hall_option
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print the run (or the dry run's counts) as JSON.")
def retention(dry_run: bool, data_dir: Path, hall_file: Path | None, database_url: str | None,
              as_json: bool) -> None:
    """Run the retention now: erase the personal data of applications closed longer ago
    than the hall's [retention] personal_days, delete events older than events_days.

    The server does this once a business day by itself (after the rollover hour, and at
    start-up); this runs it now, even if today's run is done, and counts as today's run.
    Figures and the anonymous history of erased applications stay.

    \b
    Example:
      kiosq server retention --data-dir /var/lib/kiosq --dry-run
      kiosq server retention --data-dir /var/lib/kiosq
    """
    from kiosq.provisioning.people_cli import cli_who
    from kiosq.queue import retention as rules

    store = open_hall_store(data_dir, hall_file, database_url)
    try:
        days = store.hall.retention
        result: dict[str, Any] = rules.dry_run(store) if dry_run else (rules.run_now(store, who=cli_who()) or {})
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "personal_days": days.personal_days,
                               "events_days": days.events_days, **result}))
        return
    verb = "would erase" if dry_run else "erased"
    click.echo(f"{verb} the personal data of {result.get('applications_erased', 0)} application(s) closed over "
               f"{days.personal_days} days ago; {'would delete' if dry_run else 'deleted'} "
               f"{result.get('events_deleted', 0)} event(s) older than {days.events_days} days and "
               f"{result.get('sessions_deleted', 0)} old sign-in session(s)")


@server.command("rotate-key", context_settings=CONTEXT)
@data_dir_option
@hall_option
@database_option
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100000),
              help="Records sealed again per transaction.")
@click.option("--batches", type=click.IntRange(0), default=None,
              help="Stop after this many batches (0: only add the new key); run again to continue. Default: all.")
@click.option("--finish", is_flag=True, help="Drop the older keys from applicant.key, once no record is under one.")
@click.option("--json", "as_json", is_flag=True, help="Print {key_id, resealed, left, keys} (or {dropped}) as JSON.")
def rotate_key(data_dir: Path, hall_file: Path | None, database_url: str | None, batch_size: int,
               batches: int | None, finish: bool, as_json: bool) -> None:
    """Make a new applicant key and seal every record again under it.

    The new key goes into DATA_DIR/applicant.key beside the old ones (the newest seals,
    every one opens), then the sealed records are re-sealed in batches, one transaction
    each. Stopped or crashed, it continues where it was when run again. Servers on the data
    folder may keep running: they re-read applicant.key when it changes. Several server
    processes with data folders of their own: run it with --batches 0 first, copy
    applicant.key (0600) to every folder, then run it again. When every record is under
    the new key, --finish drops the old ones (back up applicant.key first, then again after).

    \b
    Example:
      kiosq server rotate-key --data-dir /var/lib/kiosq
      kiosq server rotate-key --data-dir /var/lib/kiosq --finish
    """
    from kiosq.queue import key_rotation
    from kiosq.queue.personal import KeyFileError
    from kiosq.queue.server import ServerError, open_keys

    store = open_hall_store(data_dir, hall_file, database_url)
    try:
        personal = open_keys(data_dir, store)
        if finish:
            dropped = key_rotation.finish(store, personal)
        else:
            rotated = key_rotation.rotate(store, personal, batch_size, batches)
    except (ServerError, KeyFileError, key_rotation.RotationRefused) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    key_file = data_dir / "applicant.key"
    if finish:
        if as_json:
            click.echo(json.dumps({"dropped": list(dropped), "key_id": personal.key_id}))
        else:
            click.echo(f"dropped {', '.join(dropped)} from {key_file}; back it up again" if dropped else
                       f"{key_file} holds only key {personal.key_id}: nothing to drop")
        return
    if as_json:
        click.echo(json.dumps({"key_id": rotated.key_id, "started": rotated.started, "resealed": rotated.resealed,
                               "left": rotated.left, "keys": list(rotated.keys)}))
        return
    if rotated.started:
        click.echo(f"new key {rotated.key_id} in {key_file}; back it up", err=True)
    click.echo(f"sealed {rotated.resealed} records again under key {rotated.key_id}; " + (
        f"{rotated.left} are left: run it again to continue" if rotated.left else
        "none is left: `kiosq server rotate-key --finish` drops the old key"))


@server.group("tls", context_settings=CONTEXT)
def tls() -> None:
    """The hall's certificates: its own CA and the server's certificate (HTTPS).

    \b
    Example:
      kiosq server tls init --data-dir /var/lib/kiosq --host hall.district.lan --ip 192.168.1.10
    """


@tls.command("init", context_settings=CONTEXT)
@click.option("--host", "hosts", multiple=True, metavar="NAME",
              help="A name the server is reached by (repeat for several); localhost is always in.")
@click.option("--ip", "ips", multiple=True, metavar="ADDR",
              help="An address the server is reached at (repeat for several); 127.0.0.1 is always in.")
@click.option("--cert", "cert_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The hall's own certificate (PEM, its chain after it), instead of making one.")
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --cert: its private key (PEM, unencrypted).")
@click.option("--ca", "ca_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --cert: the CA that signed it, for terminals to pin.")
@data_dir_option
@hall_option
def tls_init(hosts: tuple[str, ...], ips: tuple[str, ...], cert_file: Path | None, key_file: Path | None,
             ca_file: Path | None, data_dir: Path, hall_file: Path | None) -> None:
    """Make the hall CA (once) and the server's certificate; print the CA's fingerprint.

    Writes DATA_DIR/tls/ca.pem, ca.key (0600), server.pem and server.key (0600), and the
    hall's bundle signing key DATA_DIR/signing.key (0600) if there is none yet. Run
    again, it keeps the CA and renews the server certificate (say every name again). The
    server serves HTTPS from its next start. Terminals enroll with the fingerprint printed
    (`kiosq enroll CODE --server https://… --ca-fingerprint SHA256:…`); staff browsers
    trust DATA_DIR/tls/ca.pem (also served at /api/tls/ca.pem).

    \b
    Example:
      kiosq server tls init --data-dir /var/lib/kiosq --host hall.district.lan --ip 192.168.1.10
      kiosq server tls init --data-dir /var/lib/kiosq --cert hall.pem --key hall.key --ca district-ca.pem
    """
    from kiosq.queue import tls as hall_tls
    from kiosq.queue.config import HallConfigError
    from kiosq.queue.server import resolve_hall

    if (cert_file is None) != (key_file is None):
        raise click.UsageError("--cert and --key go together")
    if cert_file is None and ca_file is not None:
        raise click.UsageError("--ca goes with --cert and --key (without them kiosq makes the hall's own CA)")
    if cert_file is not None and (hosts or ips):
        raise click.UsageError("--host and --ip are for the certificate kiosq makes; yours names its own")
    try:
        hall = resolve_hall(data_dir, hall_file)
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if cert_file is not None and key_file is not None:
            made = hall_tls.bring_own(data_dir, cert_file, key_file, ca_file)
        else:
            made = hall_tls.init(data_dir, hall.info.name, hosts, ips)
        from kiosq.content import signing

        signing.hall_key(data_dir)  # the bundle signing key too (kept if there is one): publish signs with it
    except (HallConfigError, hall_tls.TlsError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write into {data_dir / hall_tls.TLS_DIR} ({exc.strerror}); "
                                   "pass a writable --data-dir") from None
    files = hall_tls.TlsFiles.of(data_dir)
    if made.ca_fingerprint:
        click.echo(made.ca_fingerprint)
    click.echo(("made the hall CA " if made.ca_created else "kept the hall CA ") + str(files.ca)
               if made.ca_fingerprint else "no CA given: terminals cannot pin this server by a fingerprint", err=True)
    click.echo(f"server certificate {files.cert} for {', '.join((*made.names, *made.ips))}, valid until "
               f"{made.not_after:%Y-%m-%d}; the server serves HTTPS from its next start", err=True)


def _attach() -> None:
    from kiosq.provisioning.people_cli import token_list, token_revoke, user

    token.add_command(token_list)
    token.add_command(token_revoke)
    server.add_command(user)


_attach()
