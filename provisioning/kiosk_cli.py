"""`kiosq kiosk`: the touchscreen app, its settings taken from the terminal config file
and the command line. Kivy is imported only once the kiosk runs (it takes over stderr)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kiosq.provisioning.options import CONTEXT, data_dir_option

if TYPE_CHECKING:
    from kiosq.kiosk.settings import KioskConfig


@click.group(invoke_without_command=True, context_settings=CONTEXT)
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="KIOSQ_CONFIG", show_envvar=True,
              help="Terminal config file (docs/terminal-config.md); the options given here override it. "
                   "Without it nothing is read implicitly (the systemd unit passes /etc/kiosq/terminal.toml).")
@click.option("--catalog", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Catalog database to show (default: the config's content, else the sample catalog).")
@click.option("--printer", default=None, help="Receipt printer URI, e.g. serial:/dev/ttyUSB0.")
@click.option("--card-reader", default=None,
              help="ID card reader URI, e.g. serial:/dev/ttyUSB1 (for 申报 and 进度查询).")
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
    if ctx.invoked_subcommand is not None:
        if given:
            raise click.UsageError(f"options belong after the subcommand: kiosq kiosk {ctx.invoked_subcommand} ...")
        return
    config = kiosk_config(config_file, {
        "catalog_db": catalog, "printer_uri": printer, "card_reader_uri": card_reader, "a4_printer_uri": a4_printer,
        "lang": lang, "elder": elder, "idle_timeout": idle,
        "server_url": server_url, "data_dir": data_dir}, given, token_env)
    _check_content(config)
    if tour is not None:
        from kiosq.kiosk.tour import render_tour

        written = render_tour(tour, config)
        print(f"{len(written)} screens written to {tour}", file=sys.__stdout__)  # Kivy holds sys.stdout
        return
    from kiosq.kiosk.app import run_kiosk

    _feed_systemd(config.terminal_id)
    run_kiosk(config)


def _check_content(config: KioskConfig) -> None:
    """A terminal whose content folder holds no bundle yet: one line, before Kivy starts."""
    if config.catalog_db is not None or config.content_dir is None:
        return
    from kiosq.content.bundle import active_catalog
    from kiosq.content.model import CatalogError

    try:
        active_catalog(Path(config.content_dir))
    except CatalogError as exc:
        raise click.ClickException(f"{'; '.join(exc.problems)} (a bundle made by `kiosq content build`, or let "
                                   "`kiosq doctor` say what the terminal lacks)") from None


# `kiosq kiosk` options -> KioskConfig fields
KIOSK_OPTIONS = {"catalog": "catalog_db", "printer": "printer_uri", "card_reader": "card_reader_uri",
                 "a4_printer": "a4_printer_uri", "lang": "lang", "elder": "elder",
                 "idle": "idle_timeout", "server_url": "server_url", "data_dir": "data_dir"}


def kiosk_config(config_file: Path | None, options: dict[str, Any], given: set[str], token_env: str) -> KioskConfig:
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


@kiosk.command("rotate-outbox-key", context_settings=CONTEXT)
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="KIOSQ_CONFIG", show_envvar=True,
              help="Terminal config file: its [terminal] data_dir holds the outbox (else --data-dir).")
@data_dir_option
@click.option("--batch-size", default=100, show_default=True, type=click.IntRange(1, 100000),
              help="Applications sealed again per transaction.")
@click.option("--batches", type=click.IntRange(0), default=None,
              help="Stop after this many batches (0: only add the new key); run again to continue. Default: all.")
@click.option("--finish", is_flag=True, help="Drop the older keys from outbox.key, once no application is under one.")
def rotate_outbox_key(config_file: Path | None, data_dir: Path, batch_size: int, batches: int | None,
                      finish: bool) -> None:
    """Make a new outbox key and seal the applications waiting in the outbox again under it.

    The new key goes into DATA_DIR/outbox.key beside the old one (the newest seals, every
    one opens); the kiosk may keep running (it re-reads the file when it changes). Stopped,
    it continues when run again. When no waiting application is under the old key,
    --finish drops it.

    \b
    Example:
      kiosq kiosk rotate-outbox-key --config /etc/kiosq/terminal.toml
      kiosq kiosk rotate-outbox-key --config /etc/kiosq/terminal.toml --finish
    """
    from kiosq.kiosk.outbox import Outbox, OutboxError

    folder, terminal = data_dir, "T"
    if config_file is not None:
        from kiosq.kiosk.terminal_config import TerminalConfigError, read_terminal_config

        try:
            config = read_terminal_config(config_file).kiosk_config()
        except TerminalConfigError as exc:
            raise click.ClickException(exc.problems[-1]) from None
        if config.data_dir is None:
            raise click.ClickException(f"{config_file} names no [terminal] data_dir: pass --data-dir")
        folder, terminal = Path(config.data_dir), config.terminal_id
    try:
        outbox = Outbox(folder, terminal)
        try:
            if finish:
                dropped = outbox.finish_rotation()
                click.echo(f"dropped {', '.join(dropped)} from {outbox.key_path}" if dropped else
                           f"{outbox.key_path} holds only key {outbox.key_ids[-1]}: nothing to drop")
                return
            started, resealed, left = outbox.rotate_key(batch_size, batches)
        finally:
            outbox.close()
    except OutboxError as exc:
        raise click.ClickException(str(exc)) from None
    if started:
        click.echo(f"new key {outbox.key_ids[-1]} in {outbox.key_path}", err=True)
    click.echo(f"sealed {resealed} waiting applications again under key {outbox.key_ids[-1]}; " + (
        f"{left} are left: run it again to continue" if left else
        "none is left: `kiosq kiosk rotate-outbox-key --finish` drops the old key"))
