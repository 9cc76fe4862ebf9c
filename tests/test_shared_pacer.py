"""The Identity Protection pacer across instances: slots >= the interval apart for every instance sharing a store
(SQLite file or Azurite), a 429's back-off in one instance holds the others too."""

from __future__ import annotations

import asyncio
import time

from adapters.shared_pacer import SharedPacer

INTERVAL = 0.2


async def test_two_instances_never_get_slots_closer_than_the_interval(shared_store) -> None:
    stores = [shared_store.open(), shared_store.open()]
    try:
        pacers = [SharedPacer(store, INTERVAL) for store in stores]
        taken: list[tuple[float, float]] = []  # (slot, time the request could go)

        async def request(pacer: SharedPacer, tenant: str) -> None:
            slot = await pacer.acquire(tenant)
            taken.append((slot, time.time()))

        await asyncio.gather(
            *(request(pacers[i % 2], "tenant-a") for i in range(8)),
            *(request(pacers[i % 2], "tenant-b") for i in range(2)),
        )
        assert len(taken) == 10
        assert all(sent >= slot for slot, sent in taken)  # nobody went before its slot
        doc = await stores[0].get("pacer/tenant-a")
        assert doc is not None and doc.version >= 8  # every request of tenant a booked its slot in the store
    finally:
        for store in stores:
            await store.close()


async def test_slots_of_one_tenant_are_spaced_across_instances(shared_store) -> None:
    stores = [shared_store.open(), shared_store.open()]
    try:
        pacers = [SharedPacer(store, INTERVAL) for store in stores]
        *slots, other = await asyncio.gather(
            *(pacers[i % 2].acquire("t") for i in range(6)), pacers[1].acquire("another-tenant")
        )
        ordered = sorted(slots)
        assert all(b - a >= INTERVAL - 1e-6 for a, b in zip(ordered, ordered[1:], strict=False)), ordered
        assert other < ordered[-1]  # tenants do not wait for each other
    finally:
        for store in stores:
            await store.close()


async def test_a_back_off_in_one_instance_holds_the_other(shared_store) -> None:
    stores = [shared_store.open(), shared_store.open()]
    try:
        first, second = SharedPacer(stores[0], INTERVAL), SharedPacer(stores[1], INTERVAL)
        await first.acquire("t")
        first.hold_off("t", 0.6)  # a 429 here
        held = time.time() + 0.6
        retried = await first.acquire("t")
        assert retried >= held - 0.05
        assert await second.acquire("t") >= retried + INTERVAL - 1e-6
    finally:
        for store in stores:
            await store.close()


async def test_a_request_woken_late_moves_the_next_slot(shared_store) -> None:
    """A busy event loop wakes a request after its slot: the next one still goes an interval after it was sent."""
    store = shared_store.open()
    try:
        now = [1000.0]
        overshoots = iter([0.3, 0.0] * 4)

        async def late_sleep(seconds: float) -> None:
            now[0] += seconds + next(overshoots)  # every other sleep overshoots by 300 ms

        pacer = SharedPacer(store, 1.0, clock=lambda: now[0], sleep=late_sleep)
        sent = []
        for _ in range(5):
            await pacer.acquire("t")
            sent.append(now[0])
        assert all(b - a >= 1.0 for a, b in zip(sent, sent[1:], strict=False)), sent
    finally:
        await store.close()
