"""This terminal as the status bar and the fleet see it: the printer's and the server's
state (kiosk/status.py's monitor), heartbeats (kiosk/heartbeat.py), the content rollout
(kiosk/updater.py) and the hall's opening hours, in Kivy properties the screens bind to
(`app.fleet.x`). The loops run on kiosk/worker.py threads; their results come back here."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kivy.clock import Clock, mainthread
from kivy.event import EventDispatcher
from kivy.properties import DictProperty, StringProperty

from kiosq.kiosk.guides import Guides

if TYPE_CHECKING:
    from kiosq.kiosk.app import KiosqApp
    from kiosq.kiosk.hall_client import HeartbeatReply, Hours, ServerRefused
    from kiosq.kiosk.heartbeat import Heartbeat
    from kiosq.kiosk.status import StatusMonitor
    from kiosq.kiosk.updater import Updater

log = logging.getLogger(__name__)

DAY = 24 * 3600.0
REDRAWN_ON_NEW_CATALOG = ("guide", "detail", "apply")  # the screens that list a catalog's items


class Fleet(EventDispatcher):
    """The printer (kiosk.status.PRINTER_STATES; "" until the first check) and the server
    ("" when none is configured or before the first check; "not_enrolled" when it refuses
    this terminal's token); the hall's opening hours as the server last told them ({open,
    opens_at, closes_at}; {} unknown: open) and what the 取号 tile and the ticket screen say
    while tickets are not issued ("" while they are); the version of the catalog shown."""

    printer_state = StringProperty("")
    server_state = StringProperty("")
    hours = DictProperty()
    tickets_closed_text = StringProperty("")
    content_version = StringProperty("")

    def __init__(self, app: KiosqApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.monitor: StatusMonitor | None = None
        self.heartbeat: Heartbeat | None = None  # with a server and a terminal token
        self.updater: Updater | None = None  # with a content folder too
        self.reader_state = "unknown" if app.kiosk_config.card_reader_uri else "none"
        self._started_at = time.monotonic()
        self._content_sha256: str | None = None
        self._pending_catalog: Path | None = None  # installed while a citizen was mid-session
        self._not_enrolled = False  # the server refused this terminal's token (revoked, or unknown)
        self.last_error: str | None = None
        app.bind(msg=lambda *_: self._say_hours())  # the language changed

    # --- start and stop

    def start_monitor(self) -> None:
        """The status bar's checks of the printer and the server."""
        from kiosq.kiosk.status import StatusMonitor

        app = self.app
        self.monitor = StatusMonitor(app.printer, app.server, app.kiosk_config.status_interval,
                                     self._status_checked).start()

    def start_heartbeat(self) -> None:
        """With a hall server and a terminal token: heartbeats, and the updater when this kiosk
        shows a content folder's bundles (settings.content_folder: the configured [content]
        folder, else DATA_DIR/content for a kiosk that started on the sample catalog)."""
        from kiosq.kiosk.heartbeat import Heartbeat
        from kiosq.kiosk.settings import content_folder

        app = self.app
        if app.server is None or not app.kiosk_config.terminal_token:
            return
        folder = content_folder(app.kiosk_config)
        if folder is not None:
            from kiosq.kiosk.updater import Updater

            self.updater = Updater(app.server, folder, self._content_installed,
                                   lambda why: self.note_error(f"content update: {why}"),
                                   signing_key=app.kiosk_config.content_signing_key).start()
        self.heartbeat = Heartbeat(app.server, self._heartbeat_body, app.kiosk_config.heartbeat_interval,
                                   self._heartbeat_answered, self._heartbeat_refused,
                                   lambda exc: self.note_error(f"server: {exc}")).start()

    def stop(self) -> None:
        Clock.unschedule(self._hours_due)
        for worker in (self.monitor, self.heartbeat, self.updater):
            if worker is not None:
                worker.stop()

    def check_status(self) -> None:
        """Ask for fresh device states now."""
        if self.monitor is not None:
            self.monitor.wake()

    def wake_heartbeat(self) -> None:
        """Tell the fleet view now, not at the next interval."""
        if self.heartbeat is not None:
            self.heartbeat.wake()

    # --- the status bar

    @mainthread  # called by the status monitor's thread
    def _status_checked(self, printer: str, server: str) -> None:
        # /api/health needs no token: a refused heartbeat is what says this terminal is out
        if printer != self.printer_state:
            self.wake_heartbeat()  # paper out (or back) reaches the fleet view at once
        self.printer_state = printer
        self.server_state = "not_enrolled" if self._not_enrolled and server == "ok" else server

    def printer_trouble(self) -> bool:
        """Whether a ticket taken now gets no slip (out of paper, not answering, none)."""
        from kiosq.kiosk.status import PRINTER_TROUBLE

        return self.printer_state in PRINTER_TROUBLE

    def note_error(self, text: str) -> None:
        """The last thing that went wrong, for the fleet view: device and server trouble in a
        few words, never anything a citizen typed or a card held."""
        self.last_error = f"{datetime.now():%Y-%m-%d %H:%M:%S} {text}"[:500]

    # --- heartbeats

    def _heartbeat_body(self) -> dict[str, Any]:
        """On the heartbeat's thread: this terminal's state, read from the properties."""
        from kiosq.kiosk.heartbeat import printer_for_server, software_version

        apply = self.app.apply
        return {"software_version": software_version(), "content_version": self.content_version or None,
                "content_sha256": self._content_sha256,
                "devices": {"printer": printer_for_server(self.printer_state), "card_reader": self.reader_state,
                            "scanner": scanner_state(self.app.kiosk_config.scanner_uri)},
                "last_error": self.last_error, "uptime_seconds": int(time.monotonic() - self._started_at),
                "outbox_waiting": int(apply.outbox_waiting), "outbox_refused": int(apply.outbox_refused),
                "maintenance": self.app.maintenance.pin_guard.report()}

    def _heartbeat_answered(self, reply: HeartbeatReply) -> None:
        """On the heartbeat's thread: the published content to the updater, the rest to the UI."""
        if self.updater is not None:
            self.updater.offer(reply.get("content"))
        self._heartbeat_told(reply.get("hours"))

    @mainthread
    def _heartbeat_told(self, hours: object) -> None:
        if self._not_enrolled:
            self._not_enrolled = False
            self.server_state = "ok"
        if isinstance(hours, dict):
            self.set_hours(hours)

    @mainthread
    def _heartbeat_refused(self, refused: ServerRefused) -> None:
        if refused.status == 401:  # revoked, or never known: say so on the status bar and maintenance
            self._not_enrolled = True
            self.server_state = "not_enrolled"
            self.note_error("heartbeat refused: this terminal's token is not accepted")

    # --- opening hours

    def set_hours(self, hours: Hours | dict[str, Any]) -> None:
        """The hall's opening hours as the server says them now; the 取号 tile follows, and
        comes back by itself at the time the server gave (a heartbeat then confirms it)."""
        from kiosq.kiosk.hours_text import is_closed, parse_time

        self.hours = dict(hours)
        self._say_hours()
        Clock.unschedule(self._hours_due)
        due = parse_time(hours.get("opens_at") if is_closed(dict(hours)) else hours.get("closes_at"))
        if due is not None:
            wait = (due - datetime.now(due.tzinfo)).total_seconds()
            Clock.schedule_once(self._hours_due, min(max(0.0, wait) + 0.5, DAY))

    def _say_hours(self) -> None:
        from kiosq.kiosk.hours_text import closed_text

        self.tickets_closed_text = closed_text(dict(self.hours), datetime.now().astimezone(), self.app.msg)

    def _hours_due(self, *_args: object) -> None:
        """The time the server gave has come: open the tile again (or, at closing, ask)."""
        from kiosq.kiosk.hours_text import is_closed, parse_time

        hours = dict(self.hours)
        due = parse_time(hours.get("opens_at") if is_closed(hours) else hours.get("closes_at"))
        if due is None or datetime.now(due.tzinfo) < due:
            if due is not None:
                self.set_hours(hours)  # woken early (the wait is capped at a day): wait again
            return
        if is_closed(hours):
            self.set_hours({"open": True, "opens_at": None, "closes_at": None})
        self.wake_heartbeat()  # the server says what holds now (and, at closing, when it opens)

    # --- the content rollout

    @mainthread  # called by the updater's thread
    def _content_installed(self, _manifest: object, catalog: Path) -> None:
        self._pending_catalog = Path(catalog)
        if not self.app.session.in_session():
            self.swap_pending_catalog()

    def swap_pending_catalog(self) -> None:
        """Show the catalog installed by the updater: a new Guides, the old one closed, the
        screens that list items redrawn; then a heartbeat reports the new version."""
        app = self.app
        catalog, self._pending_catalog = self._pending_catalog, None
        if catalog is None or (app.guides is not None and app.guides.path == catalog):
            return
        try:
            guides = Guides(catalog)
        except Exception as exc:  # the old catalog stays: a kiosk never goes blank
            log.exception("the new catalog %s cannot be opened", catalog)
            self.note_error(f"content: the new catalog cannot be opened ({type(exc).__name__})")
            return
        old, app.guides = app.guides, guides
        if old is not None:
            old.close()
        if app.item_code not in guides.items:  # an item the new catalog no longer has
            app.item_code = ""
        self.catalog_shown(catalog)
        for name in REDRAWN_ON_NEW_CATALOG:
            if app.manager.has_screen(name):
                app.manager.get_screen(name).refresh()
        self.wake_heartbeat()

    def catalog_shown(self, catalog: Path) -> None:
        from kiosq.kiosk.updater import content_identity

        cfg = self.app.kiosk_config
        self.content_version, self._content_sha256 = content_identity(catalog, cfg.catalog_db, cfg.content)


def scanner_state(uri: str | None) -> str:
    """For the heartbeat: "none" (no scanner), "ok" (its port is there) or "missing"."""
    if not uri:
        return "none"
    from kiosq.devices.uri import DeviceURIError, parse_uri

    try:
        return "ok" if Path(parse_uri(uri).target).exists() else "missing"
    except DeviceURIError:
        return "missing"
