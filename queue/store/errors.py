"""What the store refuses, in its own words: callers never see a database driver's errors."""

from datetime import datetime


class StoreError(Exception):
    """The base of the store's errors."""


class Unusable(StoreError):
    """The database cannot be opened or is not a kiosq database; the message says which file."""


class NotFound(StoreError):
    """No such ticket, window or token."""


class AlreadyExists(StoreError):
    """A user's login that is taken already."""


class IdempotencyConflict(StoreError):
    """An Idempotency-Key was reused for a different request."""


class RateLimited(StoreError):
    """A scope had its limit of tries in its window already (a terminal's tickets or lookups
    per minute); `until`: when it has room again. Nothing was counted or issued."""

    def __init__(self, scope: str, limit: int, until: datetime) -> None:
        super().__init__(f"{scope}: {limit} tries in the window already")
        self.scope, self.limit, self.until = scope, limit, until


class EnrollmentRefused(StoreError):
    """An enrollment code that cannot be used: unknown, used, replaced, expired, or its
    terminal's name is held by a token of another role (name_taken)."""

    def __init__(self, reason: str, terminal: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.terminal = reason, terminal


class KeyRetired(StoreError):
    """A value sealed under a key that `rotate-key --finish` retired: this process's key file
    is an old copy (the API answers 503 key_retired; nothing is written)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"this server's applicant.key seals under key {key_id}, which `kiosq server rotate-key "
                         "--finish` retired: copy the hall's newest applicant.key (mode 0600) into this server's "
                         "data folder and restart it; nothing was saved")
        self.key_id = key_id


class Unavailable(StoreError):
    """The database cannot be reached just now (PostgreSQL down, the network, too many
    conflicts in a row); the message says where it was looked for. The API answers 503."""
