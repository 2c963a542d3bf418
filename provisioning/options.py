"""What every `kiosq` command group shares: click's context settings, the server's
--data-dir and --hall options, logging, and opening a hall's store with a clear error."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from kiosq.queue.store import Store

CONTEXT: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
DEFAULT_DATA_DIR = Path("data")

data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_DATA_DIR,
    show_default=True, help="Folder with the server's SQLite database, keys and content (and hall.toml, if any).")
hall_option = click.option(
    "--hall", "hall_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Hall file (TOML). Default: DATA_DIR/hall.toml if present, else the built-in district hall.")

database_option = click.option(
    "--database", "database_url", metavar="URL", default=None,
    help="postgresql://USER@HOST:PORT/DB for a database several server processes share (the password in "
         "PGPASSFILE or [database] password_file, never in the URL). Also KIOSQ_DATABASE_URL or the hall "
         "file's [database] url. Default: SQLite in DATA_DIR.")


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def open_hall_store(data_dir: Path, hall_file: Path | None, database_url: str | None = None) -> Store:
    """The hall and store for a data folder (its database there, or the one chosen by
    --database, KIOSQ_DATABASE_URL or the hall file), with every failure as one clear line."""
    from kiosq.queue.config import HallConfigError
    from kiosq.queue.server import ServerError, open_store, resolve_hall

    try:
        hall = resolve_hall(data_dir, hall_file)
        return open_store(data_dir, hall, database_url)
    except (HallConfigError, ServerError) as exc:
        raise click.ClickException(str(exc)) from None
