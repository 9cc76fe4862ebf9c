"""At most one request per interval per key (tenant) across every Cordon instance that shares the store.

Identity Protection allows about one request per second per tenant, for all callers together. One instance's
poller holds the tenant's lease, but the alert buttons (confirm compromised, dismiss) and lock-down steps run in
whichever instance Teams reached. So each request reserves its slot in a document `pacer/<tenant>` with a
compare-and-set write: slot = max(now, the stored next free time, any back-off asked for), stored next = slot +
interval, then it waits until its slot; one that wakes late (a busy event loop) moves the next slot to its own
send time + interval, as an in-process pacer would. A 429 (`hold_off`) moves the next slot of every instance.

Times are wall-clock seconds (instances on different machines share no monotonic clock): spacing holds to within
the instances' clock skew (NTP keeps App Service instances within milliseconds).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from adapters.storage import Conflict, Storage

PREFIX = "pacer/"
ATTEMPTS = 50
LATE = 0.02  # seconds past its slot after which a request moves the next slot (one more write)


class SharedPacer:
    """The `Pacer` interface (`acquire`, `hold_off`) with its schedule kept in the store."""

    def __init__(
        self,
        storage: Storage,
        interval: float = 1.0,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.storage = storage
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        self._locks: dict[str, asyncio.Lock] = {}
        self._hold: dict[str, float] = {}  # back-off asked for here, written with the next reservation
        self._sent: dict[str, float] = {}  # when this process's last request for the key was let go

    async def acquire(self, key: str) -> float:
        """Wait for this key's next slot and return it; this process's own requests take turns without contending."""
        async with self._locks.setdefault(key, asyncio.Lock()):
            slot = await self._reserve(key)
            # also an interval after this process's previous request actually left (the store writes take time)
            wait = max(slot, self._sent.get(key, 0.0) + self.interval) - self.clock()
            if wait > 0:
                await self.sleep(wait)
            woke = self.clock()
            if woke - slot > LATE:  # woken late (a busy loop): the next slot counts from now, not from our slot
                await self._push(key, woke + self.interval)
            self._sent[key] = self.clock()
            return slot

    def hold_off(self, key: str, seconds: float) -> None:
        self._hold[key] = max(self._hold.get(key, 0.0), self.clock() + seconds)

    async def _push(self, key: str, next_at: float) -> None:
        doc_key = PREFIX + key
        for attempt in range(ATTEMPTS):
            doc = await self.storage.get(doc_key)
            booked = float(doc.value.get("next_at", 0.0)) if doc else 0.0
            if booked >= next_at:
                return
            try:
                await self.storage.put(doc_key, {"next_at": next_at}, None if doc is None else doc.version)
                return
            except Conflict:
                await asyncio.sleep(random.uniform(0, min(0.1, 0.002 * 2**attempt)))

    async def _reserve(self, key: str) -> float:
        doc_key = PREFIX + key
        for attempt in range(ATTEMPTS):
            doc = await self.storage.get(doc_key)
            booked = float(doc.value.get("next_at", 0.0)) if doc else 0.0
            slot = max(self.clock(), booked, self._hold.get(key, 0.0))
            try:
                await self.storage.put(doc_key, {"next_at": slot + self.interval}, None if doc is None else doc.version)
            except Conflict:
                await asyncio.sleep(random.uniform(0, min(0.1, 0.002 * 2**attempt)))
                continue
            if self._hold.get(key, 0.0) <= slot:
                self._hold.pop(key, None)
            return slot
        raise Conflict(f"{doc_key}: too many instances reserving at once")
