"""Retention by day: state filed under a day in its key is purged one whole day at a time, oldest first.

A sweep walks the days after the last one done up to the last one due, and stops at the first day it could not
finish (something changed under it: that day again next sweep). Lock-down requests and alert cards both use it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

MAX_DAYS_PER_SWEEP = 366  # after a long stop, catch up (an empty day costs one key-range listing)


async def sweep_days(
    done_through: dt.date,
    last_due: dt.date,
    purge_day: Callable[[dt.date], Awaitable[bool]],
    *,
    max_days: int = MAX_DAYS_PER_SWEEP,
) -> dt.date:
    """Call `purge_day(day)` for each day after `done_through` up to `last_due`; it returns whether the day is
    finished. Returns the last day finished."""
    done = done_through
    for _ in range(max_days):
        day = done + dt.timedelta(days=1)
        if day > last_due or not await purge_day(day):
            break
        done = day
    return done
