"""Opening the maintenance screen: five taps in the home screen's top-left corner within
three seconds, then the PIN on a numeric keypad. The configuration keeps only a salted
scrypt hash of the PIN (`hash_pin`); five wrong PINs lock the keypad for a minute."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Callable

SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # ~16 MB, a few tens of ms: fine for a keypad
CORNER_TAPS, CORNER_SECONDS = 5, 3.0
MAX_TRIES, LOCKOUT_SECONDS = 5, 60.0


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_pin(pin: str) -> str:
    """`scrypt$n$r$p$salt$hash` (base64) of the PIN with a fresh random salt."""
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


class PinGuard:
    """Checks PINs against the stored hash; after MAX_TRIES wrong ones, every try is
    refused for LOCKOUT_SECONDS. `attempt()` is "ok", "wrong", "locked" or "no_pin"."""

    def __init__(self, stored: str | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.stored, self.clock = stored, clock
        self.wrong = 0
        self.locked_until = 0.0

    def locked_for(self) -> float:
        """Seconds left of the lockout (0: not locked)."""
        return max(0.0, self.locked_until - self.clock())

    def attempt(self, pin: str) -> str:
        if not self.stored:
            return "no_pin"
        if self.locked_for() > 0:
            return "locked"
        if check_pin(pin, self.stored):
            self.wrong = 0
            return "ok"
        self.wrong += 1
        if self.wrong >= MAX_TRIES:
            self.wrong = 0
            self.locked_until = self.clock() + LOCKOUT_SECONDS
            return "locked"
        return "wrong"


def main() -> None:
    """`python -m kiosq.kiosk.maintenance`: asks for a PIN twice and prints the value for
    KioskConfig.maintenance_pin_hash (the app's --maintenance-pin-hash-env variable)."""
    import getpass

    pin = getpass.getpass("Maintenance PIN (digits): ")
    if not pin.isdigit() or len(pin) < 4:
        raise SystemExit("the PIN is at least 4 digits")
    if getpass.getpass("Again: ") != pin:
        raise SystemExit("the two PINs differ")
    print(hash_pin(pin))


if __name__ == "__main__":
    main()
