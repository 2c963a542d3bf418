"""The kiosk's configuration and the catalog it shows: a catalog database given as is, the
active bundle of a terminal's content folder, a folder of catalog files built into a
database, or the sample catalog when none is configured."""

from __future__ import annotations

import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kiosq.content.bundle import ACTIVE, active_catalog
from kiosq.content.catalog import SAMPLE, load_files, write_catalog

LANGUAGES = ("zh", "en")
PAPER_WIDTHS = (58, 80)


@dataclass(frozen=True)
class KioskConfig:
    """How one kiosk runs.

    catalog_db: a catalog database (kiosq.content.catalog) to show as is.
    content: a folder of catalog JSON files, built into `data_dir/catalog.db` at start.
    printer_uri: the receipt printer (`serial:/dev/ttyUSB0`); None: this kiosk has none.
    idle_timeout: seconds without a touch before the "still there?" prompt;
    idle_countdown: seconds that prompt counts down before the session is wiped.
    server_url: the hall server (`http://10.0.0.2:8080`); None: no tickets at this kiosk.
    terminal_token: this terminal's bearer token for the hall server.
    paper_mm: the receipt paper's width, 58 or 80.
    ticket_done_seconds: how long the issued ticket stays on screen before home.
    status_interval: seconds between the status bar's printer and server checks.
    maintenance_pin_hash: the maintenance PIN as kiosk.maintenance.hash_pin made it (never
    the PIN itself); None: the maintenance screen cannot be opened.
    terminal_id: this kiosk's name on the maintenance screen (default: the host name).
    card_reader_uri: the resident ID card reader (`serial:/dev/ttyUSB1`); None: typed ID
    numbers only.
    scanner_uri: the QR/barcode scanner; None: none.
    a4_printer_uri: the A4 printer (`cups:QUEUE` or `file:/path/out.pdf`); None: guide slips only.
    speech: spoken prompts in 长辈模式 (espeak-ng); False switches them off.
    content_dir: a terminal's content folder (`bundles/` and `active.json`, as `kiosq content
    install` and the rollout write it): the active bundle's catalog is shown.
    heartbeat_interval: seconds between heartbeats to the hall server until its first answer
    (then the hall's own `heartbeat_seconds`, which its fleet view counts on).
    """

    catalog_db: Path | None = None
    content: Path | None = None
    printer_uri: str | None = None
    lang: str = "zh"
    elder: bool = False
    idle_timeout: float = 60.0
    idle_countdown: float = 10.0
    data_dir: Path | None = None
    server_url: str | None = None
    server_ca_file: Path | None = None  # the hall CA an https server_url is verified against
    content_signing_key: Path | None = None  # the hall's key: bundles from the server must carry its signature
    terminal_token: str | None = None
    paper_mm: int = 58
    ticket_done_seconds: float = 20.0
    status_interval: float = 10.0
    maintenance_pin_hash: str | None = None
    terminal_id: str = field(default_factory=socket.gethostname)
    card_reader_uri: str | None = None
    scanner_uri: str | None = None
    a4_printer_uri: str | None = None
    speech: bool = True
    content_dir: Path | None = None
    heartbeat_interval: float = 30.0

    def __post_init__(self) -> None:
        if self.lang not in LANGUAGES:
            raise ValueError(f"lang is one of {', '.join(LANGUAGES)}, not {self.lang!r}")
        if self.idle_timeout <= 0 or self.idle_countdown <= 0:
            raise ValueError("idle_timeout and idle_countdown are positive numbers of seconds")
        if self.paper_mm not in PAPER_WIDTHS:
            raise ValueError(f"paper_mm is one of {', '.join(map(str, PAPER_WIDTHS))}, not {self.paper_mm!r}")
        if self.ticket_done_seconds <= 0:
            raise ValueError("ticket_done_seconds is a positive number of seconds")
        if self.heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval is a positive number of seconds")
        if self.status_interval <= 0:
            raise ValueError("status_interval is a positive number of seconds")
        if self.server_url is not None and not self.server_url.startswith(("http://", "https://")):
            raise ValueError(f"server_url starts with http:// or https://, not {self.server_url!r}")


def content_folder(config: KioskConfig) -> Path | None:
    """The content folder the rollout installs into: the configured one, else DATA_DIR/content
    for a kiosk with a server that shows the sample catalog; None when the catalog was given
    as a database or a folder of files (a developer's choice, not replaced)."""
    return Path(config.content_dir) if config.content_dir is not None else rollout_dir(config)


def rollout_dir(config: KioskConfig) -> Path | None:
    if config.catalog_db is not None or config.content is not None or config.content_dir is not None:
        return None
    if config.server_url is None or config.data_dir is None:
        return None
    return Path(config.data_dir) / "content"


def catalog_path(config: KioskConfig) -> Path:
    """The catalog database to open, building it from the content folder (or the sample
    catalog) into the data folder when no database is configured."""
    if config.catalog_db is not None:
        if not Path(config.catalog_db).is_file():
            raise FileNotFoundError(f"catalog database {config.catalog_db} does not exist")
        return Path(config.catalog_db)
    if config.content_dir is not None:
        return active_catalog(Path(config.content_dir))  # CatalogError when no bundle is installed
    taken = rollout_dir(config)
    if taken is not None and (taken / ACTIVE).is_file():
        return active_catalog(taken)  # a bundle taken from the hall server on an earlier run
    folder = Path(config.data_dir) if config.data_dir else Path(tempfile.mkdtemp(prefix="kiosq-kiosk-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "catalog.db"
    if db.exists():
        db.unlink()  # rebuilt from the files at every start: the files are the truth
    write_catalog(db, load_files(Path(config.content) if config.content else SAMPLE))
    return db
