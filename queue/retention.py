"""Retention: how long the hall keeps personal data and events ([retention] in the hall
file), and the run that erases and deletes what is older, once a business day.

What a run does: the personal data of applications closed (completed or rejected) more
than `personal_days` ago is erased, their figures and anonymous history kept; events older
than `events_days` are deleted (never today's: the displays replay them); sign-in sessions
that ended that long ago and throttle rows older than any throttle looks back go too. It
works in batches, each its own short transaction, so tickets go on being issued meanwhile.

Several server processes on one database: each looks every minute (and at start-up)
whether the business day's run is done, and the one that claims it in the store (a row in
meta, under the write lock every process takes) does it; the others find it taken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from kiosq.queue import engine
from kiosq.queue.config import Hall
from kiosq.queue.store import Store, Who
from kiosq.queue.throttle import LONGEST as THROTTLE_LONGEST

CHECK_SECONDS = 60.0  # the longest sleep between two looks at the clock
STALE_RUN = timedelta(hours=1)  # a run claimed this long ago and not finished: its process died
APPLICATION_BATCH = 200
EVENT_BATCH = 2000
SYSTEM = Who("hall", "system")
log = logging.getLogger("kiosq.retention")


def erased_note(hall: Hall) -> str:
    """What an erased application says in place of its applicant."""
    return f"personal data erased after {hall.retention.personal_days} days"


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """What a run at `now` removes: what is older than each of these."""

    closed_before: datetime  # applications closed before it lose their personal data
    events_before: datetime
    sessions_before: datetime
    throttle_before: datetime


def cutoffs(now: datetime, hall: Hall) -> Cutoffs:
    days = hall.retention
    day_start = datetime.combine(engine.business_day(now, hall), time(hall.info.rollover_hour), tzinfo=hall.tz)
    events_before = min(now - timedelta(days=days.events_days), day_start)  # today's events stay
    return Cutoffs(now - timedelta(days=days.personal_days), events_before, now - timedelta(days=days.events_days),
                   now - THROTTLE_LONGEST)


def next_run(now: datetime, hall: Hall, last: dict[str, Any] | None) -> datetime:
    """Now, if the business day's run is not done yet; else at the next rollover hour."""
    day = engine.business_day(now, hall)
    if last is None or last.get("day") != day.isoformat() or last.get("state") != "done":
        return now
    return datetime.combine(day + timedelta(days=1), time(hall.info.rollover_hour), tzinfo=hall.tz)


def is_due(store: Store) -> bool:
    now = store.clock()
    return next_run(now, store.hall, store.retention_run()) <= now


def steps(store: Store, *, force: bool = False, who: Who = SYSTEM) -> Iterator[None]:
    """One run, a transaction per step (yielding between them); nothing when another process
    has the day's run (unless `force`). The result and its audit line are written last."""
    started = store.claim_retention(force, STALE_RUN)
    if started is None:
        return
    cut, settings = cutoffs(started, store.hall), store.hall.retention
    erased = deleted = 0
    while n := store.erase_personal_data(cut.closed_before, APPLICATION_BATCH):
        erased += n
        yield
    rating_texts = store.erase_rating_texts(cut.closed_before.astimezone(store.hall.tz).date())
    while n := store.delete_events(cut.events_before, EVENT_BATCH):
        deleted += n
        yield
    sessions, throttle_rows = store.delete_leftovers(cut.sessions_before, cut.throttle_before)
    store.finish_retention({"day": engine.business_day(started, store.hall).isoformat(),
                            "started_at": started.isoformat(), "by": who.actor,
                            "personal_days": settings.personal_days, "events_days": settings.events_days,
                            "applications_erased": erased, "events_deleted": deleted,
                            "sessions_deleted": sessions, "throttle_deleted": throttle_rows,
                            "rating_texts_erased": rating_texts}, who)
    log.info("retention: %d applications' personal data erased, %d events deleted", erased, deleted)


def run_now(store: Store, *, force: bool = True, who: Who = SYSTEM) -> dict[str, Any] | None:
    """Run it to the end in this thread (`kiosq server retention`); the run as kept."""
    for _ in steps(store, force=force, who=who):
        pass
    return store.retention_run()


def dry_run(store: Store) -> dict[str, int]:
    """What a run now would erase and delete, changing nothing."""
    cut = cutoffs(store.clock(), store.hall)
    return store.retention_pending(cut.closed_before, cut.events_before, cut.sessions_before)


async def run_daily(store: Store, check_seconds: float = CHECK_SECONDS) -> None:
    """The server's background task, until cancelled: the day's run when it is due, handing
    the event loop back to the requests between its batches."""
    while True:
        try:
            if is_due(store):
                for _ in steps(store):
                    await asyncio.sleep(0)
        except Exception:  # the database is busy or away: the next look tries again
            log.exception("the retention run failed; trying again within %g s", check_seconds)
        now = store.clock()
        wait = (next_run(now, store.hall, store.retention_run()) - now).total_seconds()
        # Still due: another process has the run (or it failed); look again in a while.
        await asyncio.sleep(check_seconds if wait <= 0 else min(wait + 0.01, check_seconds))


def report(store: Store) -> dict[str, Any]:
    """GET /api/retention and /admin: the settings, the last run and the next."""
    hall, now = store.hall, store.clock()
    last = store.retention_run()

    def local(text: str | None) -> str | None:
        return None if text is None else datetime.fromisoformat(text).astimezone(hall.tz).isoformat(timespec="seconds")

    shown = None if last is None else {**last, "started_at": local(last.get("started_at")),
                                       "finished_at": local(last.get("finished_at"))}
    return {"personal_days": hall.retention.personal_days, "events_days": hall.retention.events_days,
            "last_run": shown,
            "next_run": next_run(now, hall, last).astimezone(hall.tz).isoformat(timespec="seconds")}
