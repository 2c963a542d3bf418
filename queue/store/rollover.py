"""The business day's rollover on a timer: the server closes the day that ended at each
rollover hour (and at start-up), so that no read has to write. A write that comes first
rolls the day over itself, inside its own transaction; then the timer finds nothing to do."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, time, timedelta

from kiosq.queue import engine
from kiosq.queue.store.facade import Store

# The longest sleep between two looks at the clock: a clock set forward (or a store's
# clock in a test) still rolls the day over within a minute.
CHECK_SECONDS = 60.0
log = logging.getLogger("kiosq.store")


def next_rollover(now: datetime, store: Store) -> datetime:
    """When the business day of `now` ends: the next rollover hour, in the hall's zone."""
    hall = store.hall
    day = engine.business_day(now, hall)
    return datetime.combine(day + timedelta(days=1), time(hall.info.rollover_hour), tzinfo=hall.tz)


async def roll_over_daily(store: Store, check_seconds: float = CHECK_SECONDS) -> None:
    """Roll the day over at each rollover hour, until cancelled. Run it on the event loop
    that serves the requests (the app's lifespan), like every other write to the store;
    call `store.roll_over_if_due()` once at start-up first."""
    while True:
        now = store.clock()
        wait = (next_rollover(now, store) - now).total_seconds()
        await asyncio.sleep(min(max(wait, 0.0) + 0.01, check_seconds))
        try:
            store.roll_over_if_due()
        except Exception:  # the database is busy or away: the next write or look rolls it over
            log.exception("the business day's rollover failed; trying again within %g s", check_seconds)
