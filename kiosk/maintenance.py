"""Opening the maintenance screen: five taps in the home screen's top-left corner within
three seconds, then the PIN on a numeric keypad.

The configuration keeps only a salted scrypt hash of the PIN (`hash_pin`); a PIN is 6 to 12
digits (`pin_problem`, which every place that sets one asks). Every 5 wrong PINs in a row
lock the keypad, longer each time (LOCKOUTS: 1 min, 5 min, 30 min, then 2 h); a right PIN
starts the count again, but the number of lockouts and the last one's time stay for the
fleet view (`PinGuard.report()`, sent with the heartbeat). The state lives in a small JSON
file in the kiosk's data folder (STATE_FILE, mode 0600, replaced atomically), on the wall
clock, so a restart does not lift a lockout."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kiosq.base.privacy import replace_secret_file

log = logging.getLogger(__name__)

SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # ~16 MB, a few tens of ms: fine for a keypad
CORNER_TAPS, CORNER_SECONDS = 5, 3.0
MAX_TRIES = 5  # wrong PINs in a row that lock the keypad
# how long the n-th lockout in a row lasts; every one after the last: the last
LOCKOUTS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2))
CLOCK_SLACK = timedelta(minutes=1)  # a wall clock further behind the last failure than this was set back
PIN_MIN, PIN_MAX = 6, 12  # digits; PIN_MAX is what the keypad takes
STATE_FILE = "maintenance-pin.json"  # in the kiosk's data folder


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def pin_problem(pin: str) -> str | None:
    """Why `pin` cannot be a maintenance PIN, in words that say what to do; None: it can."""
    if not pin:
        return f"the maintenance PIN is empty; choose {PIN_MIN} to {PIN_MAX} digits"
    if not pin.isdecimal() or not pin.isascii():
        return "the maintenance PIN is digits only (0-9: the kiosk's keypad has nothing else); choose another"
    if len(pin) < PIN_MIN:
        return (f"the maintenance PIN is at least {PIN_MIN} digits (this one has {len(pin)}); "
                "choose a longer one")
    if len(pin) > PIN_MAX:
        return f"the maintenance PIN is at most {PIN_MAX} digits (the keypad takes no more); choose a shorter one"
    return None


def hash_pin(pin: str) -> str:
    """`scrypt$n$r$p$salt$hash` (base64) of the PIN with a fresh random salt; ValueError
    (pin_problem's words) for a PIN the kiosk refuses."""
    problem = pin_problem(pin)
    if problem is not None:
        raise ValueError(problem)
    salt = os.urandom(16)
    digest = hashlib.scrypt(pin.encode("utf-8"), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${_b64(salt)}${_b64(digest)}"


def check_pin(pin: str, stored: str | None) -> bool:
    """Whether `pin` is the PIN `stored` (from hash_pin) was made from; False for an
    empty or malformed stored value."""
    if not stored or not pin:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(pin.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


class CornerTaps:
    """Counts taps; True from `tap()` on the fifth within three seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.times: list[float] = []

    def tap(self) -> bool:
        now = self.clock()
        self.times = [t for t in self.times if now - t <= CORNER_SECONDS] + [now]
        if len(self.times) >= CORNER_TAPS:
            self.times = []
            return True
        return False


def lockout_length(n: int) -> timedelta:
    """How long the n-th lockout in a row (1, 2, ...) keeps the keypad locked."""
    return LOCKOUTS[min(max(n, 1), len(LOCKOUTS)) - 1]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def _moment(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"not an ISO time: {value!r}")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"a time without its zone: {value!r}")
    return moment.astimezone(UTC)


@dataclass
class PinState:
    """What the state file holds. failures: wrong PINs since the last right one or the last
    lockout; lockouts: every lockout since the file was made (the fleet view's count);
    lockouts_in_a_row: those since the last right PIN (the next lockout's length counts
    these); locked_until, last_lockout_at, last_failure_at: UTC wall-clock times."""

    failures: int = 0
    lockouts: int = 0
    lockouts_in_a_row: int = 0
    locked_until: datetime | None = None
    last_lockout_at: datetime | None = None
    last_failure_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: _iso(v) if isinstance(v, datetime) or v is None else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: object) -> PinState:
        """ValueError for anything but what as_json writes (unknown keys are ignored)."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = data.get(f.name)
            if f.name in ("failures", "lockouts", "lockouts_in_a_row"):
                value = 0 if value is None else value
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"{f.name} is not a count: {value!r}")
                values[f.name] = value
            else:
                values[f.name] = _moment(value)
        return cls(**values)


def load_state(path: Path | None) -> PinState:
    """The state in `path`; a clean one (and a warning in the log) when the file is missing,
    unreadable or not what `save_state` writes: the kiosk starts whatever the file says."""
    if path is None:
        return PinState()
    try:
        return PinState.from_json(json.loads(path.read_bytes()))
    except FileNotFoundError:
        log.warning("no maintenance PIN state in %s (a first start, or the file was removed): "
                    "starting with no wrong PINs and no lockouts", path)
    except OSError as exc:
        log.warning("cannot read the maintenance PIN state in %s (%s): starting with no wrong PINs and "
                    "no lockouts", path, exc.strerror)
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        log.warning("the maintenance PIN state in %s is damaged (%s): starting with no wrong PINs and "
                    "no lockouts; it is rewritten at the next PIN", path, exc)
    return PinState()


def save_state(path: Path, state: PinState) -> None:
    """Write the state file: mode 0600, a temporary file fsynced and renamed over the old one."""
    data = json.dumps(state.as_json(), indent=1, sort_keys=True) + "\n"
    replace_secret_file(path, data.encode("utf-8"))


class PinGuard:
    """Checks PINs against the stored hash, with the growing lockout kept in `state_file`
    (None: in memory only). `attempt()` is "ok", "wrong", "locked" or "no_pin"; `clock`
    gives the wall-clock time (aware), a fake one in tests.

    The lockout runs on the wall clock, since the monotonic one starts again at every boot.
    A clock found more than CLOCK_SLACK behind the last recorded failure was set back: an
    unfinished lockout is kept (its whole length again from now) rather than lifted or
    stretched by the clock's jump. Methods may be called from any thread."""

    def __init__(self, stored: str | None, state_file: Path | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.stored, self.state_file, self.clock = stored, state_file, clock
        self.state = load_state(state_file)
        self._lock = threading.Lock()

    def _save(self) -> None:
        if self.state_file is None:
            return
        try:
            save_state(self.state_file, self.state)
        except OSError as exc:  # the kiosk goes on: the lockout holds in memory until a restart
            log.error("cannot write the maintenance PIN state to %s (%s): the lockout is not kept across a "
                      "restart until it can be", self.state_file, exc.strerror)

    def _locked_until(self, now: datetime) -> datetime | None:
        """The end of the lockout in force at `now` (None: not locked); under self._lock."""
        s = self.state
        if s.locked_until is None:
            return None
        if s.last_failure_at is not None and now < s.last_failure_at - CLOCK_SLACK:
            # the clock went back: how much of the lockout has passed is unknown, so all of it is left
            s.locked_until = now + lockout_length(s.lockouts_in_a_row)
            s.last_failure_at = now  # the clock is measured from here on
            log.warning("the wall clock is behind the last wrong maintenance PIN: the keypad stays locked "
                        "until %s", _iso(s.locked_until))
            self._save()
        if now < s.locked_until:
            return s.locked_until
        s.locked_until = None  # served: a clock set back later does not bring it back
        self._save()
        return None

    def locked_for(self) -> float:
        """Seconds left of the lockout (0: not locked)."""
        with self._lock:
            now = self.clock()
            until = self._locked_until(now)
            return 0.0 if until is None else (until - now).total_seconds()

    def tries_left(self) -> int:
        """Wrong PINs still allowed before the next lockout."""
        return max(0, MAX_TRIES - self.state.failures)

    def attempt(self, pin: str) -> str:
        if not self.stored:
            return "no_pin"
        with self._lock:
            now = self.clock()
            if self._locked_until(now) is not None:
                return "locked"
            s = self.state
            if check_pin(pin, self.stored):
                if s.failures or s.lockouts_in_a_row or s.locked_until is not None:
                    s.failures, s.lockouts_in_a_row, s.locked_until = 0, 0, None
                    self._save()
                return "ok"
            s.failures += 1
            s.last_failure_at = now
            if s.failures < MAX_TRIES:
                self._save()
                return "wrong"
            s.failures = 0
            s.lockouts += 1
            s.lockouts_in_a_row += 1
            s.locked_until = now + lockout_length(s.lockouts_in_a_row)
            s.last_lockout_at = now
            self._save()
            log.warning("maintenance PIN: %d wrong in a row, the keypad is locked until %s (lockout %d)",
                        MAX_TRIES, _iso(s.locked_until), s.lockouts)
            return "locked"

    def report(self) -> dict[str, Any]:
        """For the heartbeat: lockouts since the state file was made, the end of the one in
        force (None: not locked) and when the last one began, as ISO 8601 UTC text."""
        with self._lock:
            until = self._locked_until(self.clock())
            return {"lockouts": self.state.lockouts, "locked_until": _iso(until),
                    "last_lockout_at": _iso(self.state.last_lockout_at)}


def main() -> None:
    """`python -m kiosq.kiosk.maintenance`: asks for a PIN twice and prints the value for
    KioskConfig.maintenance_pin_hash (the app's --maintenance-pin-hash-env variable)."""
    import getpass

    pin = getpass.getpass(f"Maintenance PIN ({PIN_MIN} to {PIN_MAX} digits): ")
    problem = pin_problem(pin)
    if problem is not None:
        raise SystemExit(problem)
    if getpass.getpass("Again: ") != pin:
        raise SystemExit("the two PINs differ")
    print(hash_pin(pin))


if __name__ == "__main__":
    main()
