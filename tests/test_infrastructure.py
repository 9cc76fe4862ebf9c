"""The shared helpers: one retry policy, one bounded TTL cache, one day-bucket sweep, CAS updates that say when
they give up."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from adapters.day_buckets import sweep_days
from adapters.retry import RetryPolicy, retrying
from adapters.storage import Conflict, MemoryStorage, delete_if_present, update
from adapters.ttl_cache import TTLCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


async def test_retrying_stops_at_max_attempts_and_reraises_the_last_error() -> None:
    clock = Clock()
    policy = RetryPolicy(
        max_attempts=4, base_delay=1.0, rng=random.Random(1), sleep=clock.sleep, monotonic=clock.monotonic
    )
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        raise Conflict(f"attempt {calls}")

    with pytest.raises(Conflict, match="attempt 4"):
        await retrying(failing, Conflict, policy)
    assert calls == 4 and len(clock.waits) == 3
    assert [0.5 <= clock.waits[0] <= 1, 1 <= clock.waits[1] <= 2, 2 <= clock.waits[2] <= 4] == [True] * 3


async def test_retrying_respects_the_time_budget_and_returns_once_it_works() -> None:
    clock = Clock()
    policy = RetryPolicy(
        budget_seconds=2.5, max_attempts=100, base_delay=1.0, sleep=clock.sleep, monotonic=clock.monotonic
    )
    with pytest.raises(ValueError):
        await retrying(lambda: _raise(ValueError()), ValueError, policy)
    assert clock.now <= 2.5
    results = iter([ValueError(), 7])

    async def flaky() -> int:
        value = next(results)
        if isinstance(value, Exception):
            raise value
        return value

    assert await retrying(flaky, ValueError, RetryPolicy(sleep=clock.sleep, monotonic=clock.monotonic)) == 7


async def _raise(exc: Exception) -> None:
    raise exc


def test_full_jitter_stays_under_the_ceiling() -> None:
    policy = RetryPolicy(base_delay=0.002, max_delay=0.2, full_jitter=True, rng=random.Random(3))
    assert all(0 <= policy.backoff(n) <= min(0.2, 0.002 * 2 ** (n - 1)) for n in range(1, 30))


def test_ttl_cache_expires_and_is_bounded() -> None:
    clock = Clock()
    cache: TTLCache[str, int] = TTLCache(10, 3, monotonic=clock.monotonic)
    for n, key in enumerate("abcd"):
        cache.put(key, n)
    assert len(cache) == 3 and cache.get("a") is None  # the least recently used went
    assert cache.get("b") == 1
    cache.put("e", 4)  # "c" is now the least recently used
    assert cache.get("c") is None and cache.get("b") == 1
    clock.now = 10
    assert cache.get("b") is None


async def test_sweep_days_stops_at_the_first_unfinished_day() -> None:
    seen: list[dt.date] = []
    start = dt.date(2026, 1, 1)

    async def purge(day: dt.date) -> bool:
        seen.append(day)
        return day != dt.date(2026, 1, 4)

    done = await sweep_days(start, dt.date(2026, 1, 10), purge)
    assert done == dt.date(2026, 1, 3) and seen[-1] == dt.date(2026, 1, 4) and len(seen) == 3
    assert await sweep_days(start, start, purge) == start


async def test_update_raises_conflict_when_writers_keep_colliding_and_delete_if_present() -> None:
    storage = MemoryStorage()
    await storage.put("k", {"n": 0}, None)

    def meddle(value: dict | None) -> dict:
        storage._docs["k"] = type(storage._docs["k"])({"n": -1}, storage._docs["k"].version + 1)  # another writer
        return {"n": 1}

    with pytest.raises(Conflict):
        await update(storage, "k", meddle, policy=RetryPolicy(max_attempts=3, base_delay=0))
    value, version = await update(storage, "k", lambda v: {"n": (v or {})["n"] + 10})
    assert value == {"n": 9}
    await delete_if_present(storage, "k")
    await delete_if_present(storage, "k")
    assert await storage.get("k") is None
