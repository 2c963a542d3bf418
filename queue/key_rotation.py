"""`kiosq server rotate-key`: a new applicant seal key, and every sealed record sealed again
under it, in batches of one transaction each; resumable (a record already under the new
key is passed over by its key id), then `--finish` drops the keys nothing is sealed under.

A rotation is in progress while records are under another key than the key file's newest:
running the command again continues it. Once none is left, a new rotation starts only
after `--finish`. The hash key stays (see queue/personal.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosq.queue.personal import KEY_FILE, Personal, add_key
from kiosq.queue.store import Store

BATCH = 500


class RotationRefused(Exception):
    """The rotation cannot go on as asked; the message says what to do."""


@dataclass(frozen=True)
class Rotated:
    key_id: str  # the newest key, which seals
    started: bool  # this run made the key
    resealed: int  # records sealed again by this run
    left: int  # records still under an older key
    keys: tuple[str, ...]  # the key file's keys, oldest first


def rotate(store: Store, personal: Personal, batch: int = BATCH, batches: int | None = None) -> Rotated:
    """Start a rotation (a new newest key) or continue one; re-seal at most `batches`
    batches of `batch` records (None: until none is left)."""
    started = False
    if store.sealed_not_under(personal.key_id) == 0:
        if len(personal.keys) > 1:
            older = ", ".join(personal.key_ids[:-1])
            raise RotationRefused(f"every sealed record is under key {personal.key_id} already; drop the older "
                                  f"key ({older}) with `kiosq server rotate-key --finish` before a new rotation")
        add_key(personal, store.clock())
        started = True
    resealed, done = 0, 0
    while batches is None or done < batches:
        n = store.reseal_batch(personal.key_id, personal.reseal, batch)
        if n == 0:
            break
        resealed, done = resealed + n, done + 1
    return Rotated(personal.key_id, started, resealed, store.sealed_not_under(personal.key_id), personal.key_ids)


def finish(store: Store, personal: Personal) -> tuple[str, ...]:
    """Drop every key but the newest from the key file, once no record is under one; the ids dropped."""
    older = store.sealed_key_ids() - {personal.key_id}
    if older:
        raise RotationRefused(f"{store.sealed_not_under(personal.key_id)} sealed records are still under key "
                              f"{', '.join(sorted(older))}: run `kiosq server rotate-key` again to re-seal them "
                              f"(a server whose {KEY_FILE} was not updated seals under the old key), then --finish")
    dropped = personal.key_ids[:-1]
    if dropped:
        # Retired first: a process of the hall whose key file is an old copy (another data
        # folder) seals nothing more under them, and does not start again with that file.
        store.retire_keys(dropped)
        personal.write([personal.keys[-1]])
    return dropped
