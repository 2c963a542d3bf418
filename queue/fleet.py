"""The terminals of a hall as IT staff see them: enrollment codes, and from each terminal's
last heartbeat whether it is online, out of paper, on old content, with alerts. Pure: no
clock, no I/O (the store keeps the rows, routers/fleet.py serves them).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

# Codes are typed on a touchscreen from a sheet or a phone: no 0/O, 1/I/L, and two groups of 4.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
TERMINAL_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
TTL_MIN = timedelta(minutes=1)
TTL_MAX = timedelta(days=7)
_TTL = re.compile(r"^\s*(\d{1,6})\s*([smhd]?)\s*$")

PRINTER_STATES = ("ok", "near_end", "out", "cover_open", "offline", "none", "unknown")
READER_STATES = ("ok", "missing", "none", "unknown")
PAPER = {"ok": "ok", "near_end": "low", "out": "out", "none": "none"}  # the rest: unknown
DEVICE_FAULTS = {"printer": ("cover_open", "offline"), "card_reader": ("missing",), "scanner": ("missing",)}
ALERT_KINDS = ("offline", "paper_out", "paper_low", "outdated", "device", "outbox_refused", "pin_lockout", "throttled")
PIN_ALERT_HOURS = 24  # a maintenance PIN lockout stays an alert this long after it began


def new_enroll_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def normalize_code(text: str) -> str:
    """What was typed -> the code's canonical form: case, spaces and dashes do not matter."""
    return re.sub(r"[\s-]", "", text).upper()


def hash_code(text: str) -> str:
    # A code lives an hour at most and is tried through a throttled endpoint: a plain hash
    # keeps it out of a copied database long enough.
    return hashlib.sha256(("kiosq-enroll:" + normalize_code(text)).encode()).hexdigest()


def parse_ttl(text: str) -> timedelta:
    """'1h', '30m', '2d', '90s', '45' (minutes) -> a timedelta between 1 minute and 7 days."""
    m = _TTL.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration; write e.g. 30m, 1h or 2d")
    n, unit = int(m.group(1)), m.group(2) or "m"
    unit_name = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]
    ttl = timedelta(**{unit_name: n})
    if not TTL_MIN <= ttl <= TTL_MAX:
        raise ValueError(f"{text!r}: a code lives from 1 minute to 7 days")
    return ttl


@dataclass(frozen=True)
class TerminalRecord:
    """What the store knows of one terminal."""

    name: str
    enrolled_at: datetime | None
    revoked: bool
    last_seen: datetime | None
    heartbeat: dict | None  # the last heartbeat's body, as checked by the API


@dataclass(frozen=True)
class Throttled:
    """How often a terminal was refused (429) in the last hour, for tickets and for lookups."""

    tickets: int = 0
    lookups: int = 0
    last_at: datetime | None = None

    def add(self, what: str, n: int, last: datetime) -> Throttled:
        return Throttled(self.tickets + (n if what == "tickets" else 0), self.lookups + (n if what == "lookups" else 0),
                         last if self.last_at is None else max(last, self.last_at))


def terminal_view(rec: TerminalRecord, now: datetime, online_seconds: float, published: str | None,
                  local, throttled: Throttled = Throttled()) -> dict:
    """One terminal for GET /api/terminals; `local` turns a datetime into hall-local ISO text;
    `throttled`: its refusals in the last hour (queue/throttle.py)."""
    hb = rec.heartbeat or {}
    devices = hb.get("devices") or {}
    online = (not rec.revoked and rec.last_seen is not None
              and now - rec.last_seen <= timedelta(seconds=online_seconds))
    content = hb.get("content_version")
    pin = hb.get("maintenance") or {}
    locked_until, last_lockout = _moment(pin.get("locked_until")), _moment(pin.get("last_lockout_at"))
    return {"terminal": rec.name, "online": online, "last_seen": local(rec.last_seen),
            "software_version": hb.get("software_version"), "content_version": content,
            "content_sha256": hb.get("content_sha256"),
            "outdated": bool(rec.heartbeat is not None and published is not None and content != published),
            "paper": PAPER.get(devices.get("printer", "unknown"), "unknown") if rec.heartbeat else "unknown",
            "devices": devices, "last_error": hb.get("last_error"), "uptime_seconds": hb.get("uptime_seconds"),
            "outbox_waiting": hb.get("outbox_waiting"), "outbox_refused": hb.get("outbox_refused"),
            "pin_lockouts": int(pin.get("lockouts") or 0),
            "pin_locked_until": local(locked_until) if locked_until is not None and locked_until > now else None,
            "pin_last_lockout_at": local(last_lockout),
            "pin_recent_lockout": bool(last_lockout is not None
                                       and now - last_lockout <= timedelta(hours=PIN_ALERT_HOURS)),
            "throttled": throttled.tickets + throttled.lookups, "throttled_tickets": throttled.tickets,
            "throttled_lookups": throttled.lookups, "throttled_last_at": local(throttled.last_at),
            "revoked": rec.revoked, "enrolled_at": local(rec.enrolled_at)}


def _moment(text: str | None) -> datetime | None:
    """An ISO time with its zone from a stored heartbeat (the API checked it); None stays None."""
    return None if not text else datetime.fromisoformat(text)


def alerts_of(view: dict, published: str | None, since: str | None) -> list[dict]:
    """What needs someone's attention on one terminal (a revoked one needs none)."""
    if view["revoked"]:
        return []
    name, out = view["terminal"], []

    def alert(kind: str, detail: str) -> None:
        out.append({"terminal": name, "kind": kind, "detail": detail})

    if not view["online"]:
        alert("offline", f"no heartbeat since {since}" if since else "never seen since it was enrolled")
    if view["paper"] == "out":
        alert("paper_out", "the receipt printer is out of paper")
    elif view["paper"] == "low":
        alert("paper_low", "the receipt paper is running low")
    if view["outdated"]:
        alert("outdated", f"content {view['content_version'] or '(none)'}, published {published}")
    for device, faults in DEVICE_FAULTS.items():
        state = view["devices"].get(device)
        if state in faults:
            alert("device", f"{device}: {state}")
    if view["outbox_refused"]:
        alert("outbox_refused", f"{view['outbox_refused']} application(s) refused by the server wait in the outbox")
    if view["pin_locked_until"] or view["pin_recent_lockout"]:
        detail = f"wrong maintenance PINs locked the keypad; the last lockout began {view['pin_last_lockout_at']}"
        if view["pin_locked_until"]:
            detail += f", the keypad is locked until {view['pin_locked_until']}"
        alert("pin_lockout", f"{detail} ({view['pin_lockouts']} lockout(s) since install)")
    if view.get("throttled"):
        alert("throttled", f"refused {view['throttled_tickets']} ticket(s) and {view['throttled_lookups']} lookup(s) "
              f"over its per-minute limits in the last hour, the last at {view['throttled_last_at']}")
    return out


def state_of(view: dict) -> dict:
    """What /admin is told by an event when it changes: no personal data, no free text."""
    return {"terminal": view["terminal"], "paper": view["paper"], "outdated": view["outdated"],
            "content_version": view["content_version"],
            "faults": sorted(d for d, f in DEVICE_FAULTS.items() if view["devices"].get(d) in f),
            "outbox_refused": bool(view["outbox_refused"]), "pin_lockouts": view["pin_lockouts"],
            "pin_locked": view["pin_locked_until"] is not None}
