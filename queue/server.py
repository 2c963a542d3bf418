"""Running the hall server: find the hall, open the store, serve the API with uvicorn."""

import errno
import logging
import socket
import sqlite3
from pathlib import Path
from types import FrameType
from typing import Callable

import uvicorn

from kiosq.content.bundle import BundleError
from kiosq.content.model import CatalogError
from kiosq.queue.api import create_app
from kiosq.queue.config import Hall, load_hall
from kiosq.queue.items import CONTENT_DIR, ItemCatalog
from kiosq.queue.personal import KeyFileError, Personal
from kiosq.queue.store import DB_FILE, Store
from kiosq.queue.voice import Voice, VoiceOptions

HALL_FILE = "hall.toml"
log = logging.getLogger("kiosq.server")


class ServerError(Exception):
    """The server cannot start; the message says what to do."""


def resolve_hall(data_dir: Path, hall_file: Path | None) -> Hall:
    """The hall named on the command line, else the data folder's hall.toml, else the
    default hall shipped with kiosq."""
    if hall_file is None and (data_dir / HALL_FILE).is_file():
        hall_file = data_dir / HALL_FILE
    return load_hall(hall_file)


def open_store(data_dir: Path, hall: Hall) -> Store:
    try:
        return Store.in_dir(data_dir, hall)
    except OSError as exc:
        raise ServerError(f"cannot use the data folder {data_dir} ({exc.strerror}); pass a writable --data-dir") from None
    except sqlite3.DatabaseError as exc:
        raise ServerError(f"{data_dir / DB_FILE} is not a usable kiosq database ({exc}); restore it from a backup "
                          "or pass another --data-dir") from None


def open_catalog(data_dir: Path) -> ItemCatalog:
    try:
        return ItemCatalog(data_dir)
    except (CatalogError, BundleError) as exc:
        raise ServerError(f"the item catalog in {data_dir / CONTENT_DIR} cannot be used ({exc}); install a "
                          "bundle again or remove the folder to use the sample catalog") from None
    except OSError as exc:
        raise ServerError(f"cannot write the catalog into {data_dir} ({exc.strerror}); pass a writable "
                          "--data-dir") from None


def open_keys(data_dir: Path) -> Personal:
    try:
        return Personal.in_dir(data_dir)
    except KeyFileError as exc:
        raise ServerError(str(exc)) from None


def check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServerError(f"port {port} on {host} is already in use; stop the other server or pass --port") from None
            raise ServerError(f"cannot listen on {host}:{port} ({exc.strerror}); check --host and --port") from None


class _Server(uvicorn.Server):
    """Ends the open event streams as soon as shutdown begins: displays reconnect (with
    Last-Event-ID) instead of holding the server until its grace period runs out."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.on_exit()
        super().handle_exit(sig, frame)


def serve(store: Store, host: str, port: int, access_log: bool = False) -> None:
    check_port(host, port)
    log.info("hall %r (%s), data in %s", store.hall.info.name, store.hall.source, store.path.parent)
    voice = Voice(store.path.parent / "voice", VoiceOptions(english=store.hall.info.announce_in_english))
    if not voice.available:
        log.warning("no voice announcements: %s", voice.reason)
    items = open_catalog(store.path.parent)
    log.info("catalog: %d items from %s", len(items.all()), items.source)
    app = create_app(store, voice=voice, items=items, personal=open_keys(store.path.parent))
    store.start_checkpointer()
    # Access logs are off by default: they cost throughput, and URLs may one day carry
    # lookups that count as personal data.
    config = uvicorn.Config(app, host=host, port=port, http="httptools", loop="uvloop", access_log=access_log,
                            timeout_graceful_shutdown=5, log_level="info", server_header=False)
    _Server(config, on_exit=app.state.notifier.close).run()
