"""`kiosq doctor`: checks a terminal from its config file, one line per check with OK, WARN
or FAIL and what to do: config, token, server and clock, content bundle, each device,
disk space, the CJK font. `kiosq doctor --server` checks the hall server's machine the
same way (provisioning/server_doctor.py).

Run it with the kiosk stopped when a device misbehaves: the kiosk's own status poll shares
the serial ports and could take a reply meant for the doctor.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import shutil
import ssl
import stat
import subprocess
import time
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kiosq.kiosk.terminal_config import TerminalConfig, TerminalConfigError, read_terminal_config

OK, WARN, FAIL = "OK", "WARN", "FAIL"
GiB, MiB = 1 << 30, 1 << 20
DISK_WARN, DISK_FAIL = 1 * GiB, 200 * MiB
SKEW_WARN, SKEW_FAIL = 5.0, 60.0  # seconds
TIMEOUT = 3.0


@dataclass(frozen=True)
class Check:
    status: str  # OK, WARN or FAIL
    name: str
    detail: str
    advice: str = ""

    def line(self) -> str:
        return f"{self.status:<4}  {self.name:<11}  {self.detail}" + (f" — {self.advice}" if self.advice else "")


def run_checks(config_path: Path) -> list[Check]:
    """Every check for the terminal that `config_path` describes, in the order they print."""
    try:
        config = read_terminal_config(config_path)
    except TerminalConfigError as exc:
        advice = ("pass --config FILE, or write one: kiosq provision init" if not Path(config_path).exists()
                  else "each problem says what to write; docs/terminal-config.md explains every key")
        return [Check(FAIL, "config", "; ".join(exc.problems), advice), check_font()]
    checks = [check_config_file(config_path, config)]
    checks += check_server(config)
    checks.append(check_content(config))
    checks += [check_printer(config), check_card_reader(config), check_scanner(config), check_a4_printer(config)]
    checks += [check_disk(config.data_dir), check_font()]
    return checks


# --- config and token --------------------------------------------------------------------

def readable_by_others(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o077)


def check_config_file(path: Path, config: TerminalConfig) -> Check:
    detail = f"{path}: terminal {config.terminal_id}"
    if config.pin_hash and readable_by_others(path):
        return Check(WARN, "config", f"{detail}; others may read it (it holds the PIN hash)", f"chmod 600 {path}")
    return Check(OK, "config", detail)


def check_token(config: TerminalConfig) -> tuple[Check, str | None]:
    path = config.token_file
    enroll = f"enroll this terminal: kiosq enroll CODE --server {config.server_url} --config {config.source}"
    if path is None or not path.is_file():
        return Check(FAIL, "token", f"no token file {path}", enroll), None
    if readable_by_others(path):
        return Check(FAIL, "token", f"{path} may be read by others (mode {stat.S_IMODE(path.stat().st_mode):o})",
                     f"chmod 600 {path}, and revoke and re-enroll if others could read it"), None
    try:
        token = config.read_token()
    except TerminalConfigError as exc:
        return Check(FAIL, "token", str(exc), "run kiosq doctor as root"), None
    if not token:
        return Check(FAIL, "token", f"{path} is empty", enroll), None
    return Check(OK, "token", f"{path} (mode 600)"), token


# --- server and clock --------------------------------------------------------------------

def get_json(url: str, path: str, token: str | None,
             ca_file: Path | None = None) -> tuple[int, dict[str, Any], str | None, float]:
    """GET url+path: (status, JSON body or {}, Date header, local time in the middle of the
    exchange). https is verified against `ca_file` (the pinned hall CA), else the system's CAs."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        raise OSError(f"{url} names no host")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=TIMEOUT, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        sent = time.time()
        conn.request("GET", parts.path.rstrip("/") + path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        got = time.time()
    finally:
        conn.close()
    try:
        data = json.loads(body)
    except ValueError:
        data = {}
    return resp.status, data if isinstance(data, dict) else {}, resp.getheader("Date"), (sent + got) / 2


def check_server(config: TerminalConfig) -> list[Check]:
    if not config.server_url:
        return [Check(WARN, "server", "none configured: guides only, no tickets",
                      "set [server] url in the config if this terminal issues tickets")]
    token_check, token = check_token(config)
    url = config.server_url
    pinned = config.ca_file if config.ca_file is not None and config.ca_file.is_file() else None
    if url.startswith("https://") and pinned is None:
        return [token_check, Check(FAIL, "server", f"no hall CA pinned for {url} ({config.ca_file} is missing)",
                                   f"enroll again: kiosq enroll CODE --server {url} --ca-fingerprint SHA256:… "
                                   f"--config {config.source}")]
    try:
        status, health, date, local = get_json(url, "/api/health", token, pinned)
    except ssl.SSLCertVerificationError as exc:
        return [token_check, Check(FAIL, "server", f"refused {url}: its certificate is not signed by the hall CA "
                                                   f"pinned in {pinned} ({exc.verify_message})",
                                   "an impostor, or the hall made a new CA: check with IT staff, then enroll again")]
    except (OSError, http.client.HTTPException) as exc:
        return [token_check, Check(FAIL, "server", f"cannot reach {url} ({exc})",
                                   "check the network cable and that `kiosq server` runs there "
                                   "(systemctl status kiosq-server)")]
    if status != 200 or health.get("ok") is not True:
        return [token_check, Check(FAIL, "server", f"{url}/api/health answered {status}, not a kiosq server's health",
                                   "check [server] url: it is the hall server's address and port")]
    return [token_check, _check_me(url, token, health, pinned), check_clock(date, local)]


def _check_me(url: str, token: str | None, health: dict[str, Any], ca_file: Path | None = None) -> Check:
    hall = f"hall {health.get('hall', '?')!r} at {url}"
    if token is None:
        return Check(WARN, "server", f"{hall} answers; no token to check", "see the token line")
    try:
        status, me, _, _ = get_json(url, "/api/me", token, ca_file)
    except (OSError, http.client.HTTPException) as exc:
        return Check(FAIL, "server", f"{hall} answered /api/health but not /api/me ({exc})", "try again; "
                     "if it persists, look at the server's log (journalctl -u kiosq-server)")
    if status == 401:
        return Check(FAIL, "server", f"{hall} refuses this terminal's token (unknown or revoked)",
                     "enroll the terminal again: kiosq enroll CODE --server URL --config FILE")
    if status != 200:
        return Check(FAIL, "server", f"{hall}: /api/me answered {status}", "look at the server's log")
    if me.get("role") != "terminal":
        return Check(WARN, "server", f"{hall} knows the token as {me.get('name')!r}, a {me.get('role')} token",
                     "a terminal should hold a terminal token: enroll it")
    return Check(OK, "server", f"{hall} knows this terminal as {me.get('name')!r}")


def check_clock(date_header: str | None, local: float) -> Check:
    if not date_header:
        return Check(WARN, "clock", "the server sent no Date header: skew unknown", "check NTP: timedatectl status")
    try:
        server = email.utils.parsedate_to_datetime(date_header).timestamp() + 0.5  # Date is whole seconds
    except (TypeError, ValueError):
        return Check(WARN, "clock", f"the server's Date {date_header!r} cannot be read", "check NTP: timedatectl")
    return classify_skew(server - local)


def classify_skew(skew: float) -> Check:
    """skew: the server's clock minus this terminal's, in seconds."""
    detail = f"this terminal's clock is {abs(skew):.0f} s {'behind' if skew > 0 else 'ahead of'} the server's"
    advice = "turn NTP on and check it reaches a time server: timedatectl set-ntp true; timedatectl status " \
             "(on both machines: one of them is wrong)"
    if abs(skew) > SKEW_FAIL:
        return Check(FAIL, "clock", detail + " (tickets and deadlines carry times)", advice)
    if abs(skew) > SKEW_WARN:
        return Check(WARN, "clock", detail, advice)
    return Check(OK, "clock", f"within {SKEW_WARN:g} s of the server's "
                              f"({skew:+.1f} s; its Date header counts whole seconds)")


# --- content -----------------------------------------------------------------------------

def check_content(config: TerminalConfig) -> Check:
    from kiosq.content.bundle import BundleError, active_state, verify

    if config.catalog is not None:
        if config.catalog.is_file():
            return Check(OK, "content", f"catalog database {config.catalog} (not a bundle: no version)")
        return Check(FAIL, "content", f"catalog database {config.catalog} does not exist",
                     "fix [content] catalog, or use [content] folder with an installed bundle")
    folder = config.content_dir or rollout_folder(config)
    if folder is None:
        return Check(WARN, "content", "no content configured: the kiosk shows the sample catalog",
                     "set [content] folder and install a bundle (kiosq content install)")
    install = f"install one: kiosq content install MANIFEST --content-dir {folder}"
    try:
        version = active_state(folder).get("version")
        if not version:
            return Check(FAIL, "content", f"no content bundle installed in {folder}", install)
        manifest = verify(folder / "bundles" / version / "manifest.json")
    except BundleError as exc:
        return Check(FAIL, "content", str(exc), f"{install}, or go back: kiosq content rollback --content-dir {folder}")
    detail = f"bundle {manifest.version}, {manifest.items} items, sha256 {manifest.sha256[:12]}… verified"
    published = _published_version(config)
    if published and published != manifest.version:
        return Check(WARN, "content", f"{detail}; the server publishes {published}",
                     "the kiosk takes it within a heartbeat or two while it runs (systemctl status kiosq-kiosk); "
                     "if it stays behind, look at the kiosk's log: journalctl -u kiosq-kiosk")
    return Check(OK, "content", detail + ("; the server publishes the same" if published else ""))


def rollout_folder(config: TerminalConfig) -> Path | None:
    """Where a kiosk without [content] folder keeps the bundles it takes from the server
    (kiosk/updater.py): DATA_DIR/content, once one is installed there."""
    from kiosq.content.bundle import ACTIVE

    if config.catalog is not None or config.data_dir is None or not config.server_url:
        return None
    folder = config.data_dir / "content"
    return folder if (folder / ACTIVE).is_file() else None


def _published_version(config: TerminalConfig) -> str | None:
    """The version the hall server publishes (GET /api/content/manifest); None when there is
    no server, no token, nothing published or no answer (the server line says why)."""
    if not config.server_url:
        return None
    try:
        token = config.read_token()
        pinned = config.ca_file if config.ca_file is not None and config.ca_file.is_file() else None
        status, manifest, _, _ = get_json(config.server_url, "/api/content/manifest", token, pinned)
    except (TerminalConfigError, OSError, http.client.HTTPException):
        return None
    version = manifest.get("version") if status == 200 else None
    return version if isinstance(version, str) else None


# --- devices -----------------------------------------------------------------------------

def check_printer(config: TerminalConfig) -> Check:
    from kiosq.devices.printer import Printer, PrinterError

    uri = config.printer
    if uri is None:
        return Check(WARN, "printer", "no receipt printer configured: nothing can be printed",
                     "set [devices] printer (kiosq devices list shows the ports)")
    try:
        with Printer(uri, timeout=1.0) as printer:
            s = printer.status()
            reports = printer.reports_status
    except PrinterError as exc:
        return Check(FAIL, "printer", str(exc), f"if the device is right, fix [devices] printer in {config.source} "
                                                 "(kiosq devices list shows the ports)")
    roll = f"{config.paper_width} mm"
    if reports and not s.known:
        return Check(FAIL, "printer", f"{uri} did not answer a status query",
                     "check the cable, the baud rate in the URI and that this is the printer's port; "
                     "switch the printer off and on")
    if s.cover_open:
        return Check(FAIL, "printer", f"{uri}: cover open", "close the cover firmly")
    if s.paper == "out":
        return Check(FAIL, "printer", f"{uri}: out of paper", f"load a new {roll} roll and close the cover")
    if s.online is False:
        return Check(FAIL, "printer", f"{uri}: offline", "look at its error light; switch it off and on")
    if s.paper == "near_end":
        return Check(WARN, "printer", f"{uri}: paper near its end", f"load a new {roll} roll soon")
    if not reports:
        return Check(OK, "printer", f"{uri}: {'online' if s.online else 'no status'} (this transport reports no paper)")
    return Check(OK, "printer", f"{uri}: online, paper ok, cover closed")


def check_card_reader(config: TerminalConfig) -> Check:
    from kiosq.devices.idcard import CardReader, IdCardError

    uri = config.card_reader
    if uri is None:
        return Check(OK, "card_reader", "none configured (ID numbers are typed)")
    try:
        with CardReader(uri, timeout=1.0) as reader:
            reader.status()
            card = reader.find()
    except IdCardError as exc:
        return Check(FAIL, "card_reader", str(exc), f"if the device is right, fix [devices] card_reader in "
                                                     f"{config.source}")
    return Check(OK, "card_reader", f"{uri}: answers; " + ("a card is on it" if card else "no card on it"))


def check_scanner(config: TerminalConfig) -> Check:
    from kiosq.devices.uri import parse_uri

    if config.scanner is None:
        return Check(OK, "scanner", "none configured")
    port = Path(parse_uri(config.scanner).target)
    if not port.exists():
        return Check(FAIL, "scanner", f"{config.scanner}: no port {port}",
                     "check the scanner's USB cable; `kiosq devices list` shows the ports there are")
    if not os.access(port, os.R_OK | os.W_OK):
        return Check(FAIL, "scanner", f"{config.scanner}: this user may not open {port}",
                     "add the kiosq user to the port's group (dialout)")
    return Check(OK, "scanner", f"{config.scanner}: port present")


def check_a4_printer(config: TerminalConfig) -> Check:
    from kiosq.devices.uri import parse_uri

    if config.a4_printer is None:
        return Check(OK, "a4_printer", "none configured (guides on receipt slips only)")
    uri = parse_uri(config.a4_printer)
    if uri.scheme == "file":
        folder = Path(uri.target).parent
        if folder.is_dir() and os.access(folder, os.W_OK):
            return Check(OK, "a4_printer", f"{uri}: folder writable")
        return Check(FAIL, "a4_printer", f"{uri}: cannot write into {folder}", "create the folder or fix the URI")
    if uri.scheme != "cups":
        return Check(FAIL, "a4_printer", f"{uri}: A4 pages go to a CUPS queue (cups:QUEUE) or a file",
                     "fix [devices] a4_printer")
    lpstat = shutil.which("lpstat")
    if lpstat is None:
        return Check(FAIL, "a4_printer", f"{uri}: CUPS is not installed (no lpstat)",
                     "apt-get install cups cups-client, then add the queue with lpadmin")
    done = subprocess.run([lpstat, "-p", uri.target], capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        return Check(FAIL, "a4_printer", f"{uri}: {(done.stderr or done.stdout).strip() or 'no such queue'}",
                     f"add the queue: lpadmin -p {uri.target} -E -v DEVICE_URI -m everywhere")
    return Check(OK, "a4_printer", done.stdout.strip().splitlines()[0])


# --- machine -----------------------------------------------------------------------------

def check_disk(data_dir: Path | None) -> Check:
    folder = Path(data_dir) if data_dir else Path.cwd()
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return classify_disk(folder, shutil.disk_usage(probe).free)


def classify_disk(folder: Path, free: int) -> Check:
    detail = f"{free / GiB:.1f} GiB free for {folder}"
    advice = "free space: journalctl --vacuum-size=100M, remove old files, or a larger disk"
    if free < DISK_FAIL:
        return Check(FAIL, "disk", detail, advice)
    if free < DISK_WARN:
        return Check(WARN, "disk", detail, advice)
    return Check(OK, "disk", detail)


def check_font() -> Check:
    from kiosq.kiosk.boot import CJK_FONT

    if CJK_FONT.is_file():
        return Check(OK, "font", f"CJK font {CJK_FONT}")
    return Check(FAIL, "font", f"no CJK font at {CJK_FONT}: Chinese shows as boxes",
                 "apt-get install fonts-wqy-microhei")


def as_json(checks: list[Check]) -> str:
    return json.dumps([asdict(c) for c in checks], ensure_ascii=False)
