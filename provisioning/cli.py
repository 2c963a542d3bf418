"""The `kiosq` command: one entry point for the hall server, the kiosk and IT tooling.

Each command imports what it runs lazily, so `kiosq server` never loads Kivy. Exit codes:
0 success, 2 bad usage (click's own), 1 failure with one plain sentence on stderr.
"""

import json
import logging
import sys
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
        serve(store, host, port, access_log=access_log)
    except ServerError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


def _windows(_ctx, _param, value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        return tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter("give window numbers separated by commas, e.g. 1,2,5") from None


@server.command(context_settings=CONTEXT)
@click.option("--role", type=click.Choice(["terminal", "staff", "admin"]), required=True,
              help="terminal: issues tickets; staff: acts at its windows; admin: everything.")
@click.option("--name", required=True, help="Who or what holds it, e.g. T01 or 张敏.")
@click.option("--windows", callback=_windows, help="Staff only: the windows it may act at, e.g. 1,2.")
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
    if windows and role != "staff":
        raise click.UsageError("--windows is for staff tokens only")
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


@main.command(context_settings=CONTEXT)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@data_dir_option
def demo(port: int, data_dir: Path) -> None:
    """Run the hall server on 127.0.0.1 with the built-in hall and print fresh demo tokens.

    \b
    Example:
      kiosq demo --port 8000
    """
    from kiosq.queue.server import ServerError, serve

    _setup_logging()
    store = _open(data_dir, None)
    tokens = {}
    for role, windows in (("terminal", ()), ("staff", tuple(store.hall.windows)), ("admin", ())):
        store.revoke_tokens(f"demo-{role}")  # each run hands out new ones; old demo tokens stop working
        tokens[role] = store.create_token(role, f"demo-{role}", windows)
    base = f"http://127.0.0.1:{port}"
    env_file = _write_demo_env(data_dir, base, tokens)
    click.echo(f"\nkiosq demo: hall {store.hall.info.name!r}, data in {data_dir.resolve()}\n"
               f"  API          {base}/api/services\n"
               f"  events (SSE) {base}/api/events\n"
               f"  OpenAPI      {base}/openapi.json\n"
               f"  terminal token  {tokens['terminal']}\n"
               f"  staff token     {tokens['staff']}   (all windows)\n"
               f"  admin token     {tokens['admin']}\n"
               f"The same, for a shell: . {env_file}\n"
               f"Stop with Ctrl-C.\n")
    sys.stdout.flush()
    try:
        serve(store, "127.0.0.1", port)
    except ServerError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


def _write_demo_env(data_dir: Path, base: str, tokens: dict[str, str]) -> Path:
    """KIOSQ_URL and the demo tokens as shell variables (mode 0600: they are secrets)."""
    path = data_dir / "demo-tokens.env"
    lines = [f"KIOSQ_URL={base}"] + [f"KIOSQ_{role.upper()}_TOKEN={secret}" for role, secret in tokens.items()]
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text("".join(f"export {line}\n" for line in lines), encoding="utf-8")
    return path


if __name__ == "__main__":
    main()
