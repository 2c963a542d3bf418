"""Running the hall server: find the hall, open the store, serve the API with uvicorn."""

import asyncio
import errno
import ipaddress
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn

from kiosq.content.bundle import BundleError
from kiosq.content.model import CatalogError
from kiosq.queue.api import create_app
from kiosq.queue.config import Hall, load_hall
from kiosq.queue.http_protocol import HEAD_SECONDS, with_head_deadline
from kiosq.queue.items import CONTENT_DIR, ItemCatalog
from kiosq.queue.personal import KEY_FILE, KeyFileError, Personal
from kiosq.queue.store import DB_FILE, Store, Unusable
from kiosq.queue.store.database import DatabaseChoice, DatabaseUrlError, choose, remember, safe_url
from kiosq.queue.store.errors import Unavailable
from kiosq.queue.tls import TlsError, TlsFiles, fingerprint
from kiosq.queue.voice import Voice, VoiceOptions

HALL_FILE = "hall.toml"
MAX_CONNECTIONS = 2000  # the server unit's LimitNOFILE leaves room above it (provisioning/units.py)
log = logging.getLogger("kiosq.server")


class ServerError(Exception):
    """The server cannot start; the message says what to do."""


def resolve_hall(data_dir: Path, hall_file: Path | None) -> Hall:
    """The hall named on the command line, else the data folder's hall.toml, else the
    default hall shipped with kiosq."""
    if hall_file is None and (data_dir / HALL_FILE).is_file():
        hall_file = data_dir / HALL_FILE
    return load_hall(hall_file)


def choose_database(data_dir: Path, hall: Hall, database_url: str | None = None) -> DatabaseChoice:
    """--database, else KIOSQ_DATABASE_URL, else the hall file's [database] url, else the
    PostgreSQL database the data folder was last used with, else SQLite in the data folder."""
    try:
        return choose(database_url, hall.database.url, hall.database.password_file, data_dir)
    except DatabaseUrlError as exc:
        raise ServerError(str(exc)) from None


def open_store(data_dir: Path, hall: Hall, database_url: str | None = None, *, note: bool = True) -> Store:
    """The hall's store; `note`: write down in the data folder which PostgreSQL database it
    goes with (DATA_DIR/database.url), as every command that works on the hall does (the
    doctor, which only looks, does not)."""
    choice = choose_database(data_dir, hall, database_url)
    try:
        store = Store.in_dir(data_dir, hall, database=choice)
        if note:
            remember(data_dir, choice)
        return store
    except OSError as exc:
        raise ServerError(f"cannot use the data folder {data_dir} ({exc.strerror}); "
                          "pass a writable --data-dir") from None
    except Unavailable as exc:
        raise ServerError(f"{exc}; check that PostgreSQL runs, the URL ({choice.source}) and the password "
                          "(PGPASSFILE or [database] password_file)") from None
    except Unusable as exc:
        if choice.url is not None:
            raise ServerError(f"the database {safe_url(choice.url)} ({choice.source}) cannot be used ({exc}); "
                              "check its owner and that it is a kiosq database") from None
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


def open_keys(data_dir: Path, store: Store | None = None) -> Personal:
    """The data folder's applicant keys; with `store`, checked against the keys the database
    goes with (every process of a hall must hold the same key file). A key file is made only
    for a database that holds nothing sealed: one made later would open none of its records."""
    path = data_dir / KEY_FILE
    if store is not None and not path.exists() and store.holds_sealed_data():
        raise ServerError(f"{path} is missing and the database ({store.describe_database()}) holds applicant records "
                          "sealed with it: restore applicant.key from the backup of this data folder (no new key is "
                          "made: it would open none of them)")
    try:
        personal = Personal.in_dir(data_dir)
    except KeyFileError as exc:
        raise ServerError(str(exc)) from None
    if store is not None and personal.key_id in store.retired_key_ids():
        raise ServerError(f"{path} is an old copy: its newest key {personal.key_id} was retired by `kiosq server "
                          "rotate-key --finish`; put the hall's current applicant.key (mode 0600) here, from the "
                          "backup made after the rotation or from the data folder the rotation ran on")
    missing = None if store is None else store.adopt_keys(personal)
    if missing:
        raise ServerError(f"{path} lacks the key {', '.join(missing)} that records of the database "
                          f"({store and store.describe_database()}) are sealed with: restore applicant.key from the "
                          "backup of this data folder, or copy the hall's newest one from its other server processes")
    if missing is not None:
        raise ServerError(f"{path} is not the applicant.key the database ({store and store.describe_database()}) was "
                          "sealed with: restore applicant.key from the backup of this data folder, or copy it "
                          "(mode 0600) from the data folder of the hall's other server processes")
    return personal


def check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServerError(f"port {port} on {host} is already in use; "
                                  "stop the other server or pass --port") from None
            raise ServerError(f"cannot listen on {host}:{port} ({exc.strerror}); check --host and --port") from None


class _Server(uvicorn.Server):
    """Ends the open event streams as soon as shutdown begins: displays reconnect (with
    Last-Event-ID) instead of holding the server until its grace period runs out. Calls
    `on_ready` once it listens, and `on_tick` every `tick_interval` seconds from its event
    loop (a service manager's watchdog: a loop that hangs stops the ticks)."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None], on_ready: Callable[[], None] | None = None,
                 on_tick: Callable[[], None] | None = None, tick_interval: float | None = None) -> None:
        super().__init__(config)
        # not self.on_tick: uvicorn.Server has a method of that name
        self.on_exit, self.ready_hook, self.tick_hook, self.tick_interval = on_exit, on_ready, on_tick, tick_interval
        self._ticker: asyncio.Task | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started:
            return
        if self.ready_hook is not None:
            _quietly(self.ready_hook)
        if self.tick_hook is not None and self.tick_interval:
            self._ticker = asyncio.get_running_loop().create_task(self._tick(self.tick_hook, self.tick_interval))

    async def _tick(self, hook: Callable[[], None], interval: float) -> None:
        while not self.should_exit:
            _quietly(hook)
            await asyncio.sleep(interval)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.on_exit()
        if self._ticker is not None:
            self._ticker.cancel()
        super().handle_exit(sig, frame)


def _quietly(hook: Callable[[], object]) -> None:
    try:
        hook()
    except Exception:  # a notification that fails must not take the server down
        log.exception("server hook %r failed", hook)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def tls_options(data_dir: Path, host: str, insecure_http: bool, use_tls: bool = True) -> dict[str, str]:
    """uvicorn's TLS options when DATA_DIR/tls/server.pem exists (and `use_tls`); without it,
    plain HTTP on loopback only (tokens and personal data must not cross a LAN in clear),
    unless `insecure_http` (TLS ends at the hall's own reverse proxy)."""
    files = TlsFiles.of(data_dir)
    if files.serving and use_tls:
        if not files.key.is_file():
            raise ServerError(f"{files.cert} has no key beside it ({files.key}); run `kiosq server tls init "
                              f"--data-dir {data_dir}` again")
        return {"ssl_certfile": str(files.cert), "ssl_keyfile": str(files.key)}
    if not is_loopback(host) and not insecure_http:
        raise ServerError(f"refusing to serve plain HTTP on {host}: tokens and personal data would cross the network "
                          f"in clear; run `kiosq server tls init --data-dir {data_dir} --host NAME --ip ADDR` first "
                          "(or pass --insecure-http if TLS ends at the hall's own reverse proxy)")
    return {}


def serve(store: Store, host: str, port: int, access_log: bool = False, *, on_ready: Callable[[], None] | None = None,
          on_tick: Callable[[], None] | None = None, tick_interval: float | None = None,
          insecure_http: bool = False, max_connections: int = MAX_CONNECTIONS, use_tls: bool = True,
          head_seconds: float = HEAD_SECONDS) -> None:
    """Serve until SIGTERM or SIGINT, over HTTPS when the data folder has the hall's
    certificate (`kiosq server tls init`). `on_ready()` once the port listens; `on_tick()`
    every `tick_interval` seconds from the event loop (the caller passes sd_notify's READY
    and WATCHDOG: queue imports nothing from kiosk). Past `max_connections` open
    connections (event streams included) a new request is answered 503 at once, before the
    process runs out of file descriptors; a connection that sends no whole request head
    within `head_seconds` is closed. `use_tls` False: plain HTTP (loopback only) even with a
    certificate in the data folder (`kiosq demo`)."""
    tls = tls_options(store.data_dir, host, insecure_http, use_tls)
    check_port(host, port)
    if tls:
        ca = TlsFiles.of(store.data_dir).ca
        try:
            pinned = fingerprint(ca.read_bytes()) if ca.is_file() else "no CA file: terminals cannot pin it"
        except (OSError, TlsError) as exc:
            raise ServerError(f"the hall CA {ca} cannot be read ({exc}); run `kiosq server tls init` again") from None
        log.info("serving HTTPS with %s; hall CA %s", tls["ssl_certfile"], pinned)
    elif insecure_http and not is_loopback(host):
        log.warning("serving plain HTTP on %s (--insecure-http): TLS must end at the hall's reverse proxy", host)
    log.info("hall %r (%s), data in %s, database: %s", store.hall.info.name, store.hall.source, store.data_dir,
             store.describe_database())
    voice = Voice(store.data_dir / "voice", VoiceOptions(english=store.hall.info.announce_in_english))
    if not voice.available:
        log.warning("no voice announcements: %s", voice.reason)
    items = open_catalog(store.data_dir)
    log.info("catalog: %d items from %s", len(items.all()), items.source)
    name = socket.getfqdn() if host in ("0.0.0.0", "::") else host
    own = f"{'https' if tls else 'http'}://{f'[{name}]' if ':' in name else name}:{port}"
    if store.hall.info.public_url is None and host in ("0.0.0.0", "::"):
        log.warning("absolute URLs (a ticket's follow_url) use %s; set [hall] public_url in the hall file to the "
                    "address phones and browsers reach", own)
    app = create_app(store, voice=voice, items=items, personal=open_keys(store.data_dir, store), own_url=own)
    # Access logs are off by default: they cost throughput, and URLs may one day carry
    # lookups that count as personal data.
    config = uvicorn.Config(app, host=host, port=port, http=with_head_deadline(head_seconds), loop="uvloop",
                            access_log=access_log,
                            timeout_graceful_shutdown=5, log_level="info", server_header=False,
                            limit_concurrency=max_connections + 1,  # uvicorn counts the refused one too
                            ssl_certfile=tls.get("ssl_certfile"), ssl_keyfile=tls.get("ssl_keyfile"))
    _Server(config, on_exit=app.state.notifier.close, on_ready=on_ready, on_tick=on_tick,
            tick_interval=tick_interval).run()
