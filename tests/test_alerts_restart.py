"""Exactly-once across crashes and processes: a restart between poll and send re-sends (never drops), two pollers
sharing one store alert once per detection, the lease expires after a crash, seen ids outlive the query window."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest

from adapters.storage import MemoryStorage
from dialogs.alerts import state as st
from dialogs.alerts.poller import Poller
from tests.support.graph_standin.alerts_world import alerts_world


class Crash(BaseException):
    """The process dies here (not an Exception: nothing in Cordon may swallow it)."""


class CrashingMessenger:
    async def send(self, conversation_id, reply):
        raise Crash("killed between poll and send")

    async def update(self, conversation_id, message_id, reply):
        raise Crash("killed between poll and send")


async def test_a_crash_between_poll_and_send_resends_after_restart_never_drops(
    tmp_path, monkeypatch, shared_store
) -> None:
    first_store = shared_store.open()
    async with alerts_world(tmp_path, storage=first_store) as w:
        await w.say("alerts on --tenant T0")
        alert = w.detect(0, 1, minutes_ago=1)
        doomed = Poller(dataclasses.replace(w.services, messenger=CrashingMessenger()), w.source, owner="process-a")
        with monkeypatch.context() as m:
            m.setattr(st.Lease, "release", lambda self: asyncio.sleep(0))  # a dead process releases nothing
            with pytest.raises(Crash):
                await doomed.cycle(force=True)
        assert w.cards() == []
        state, _ = await st.tenant_state(w.services.storage, w.tenant_ids[0])
        assert alert["id"] in state["seen"]  # polled and de-duplicated...
        assert [p["id"] for p in state["pending"][w.channel.id]] == [alert["id"]]  # ...but still owed
        # "restart": a new process, its own connection to the same store
        restarted = shared_store.open()
        try:
            services = dataclasses.replace(w.services, storage=restarted)
            second = Poller(services, w.source, owner="process-b")
            outcome = (await second.cycle(force=True))[0]
            assert outcome.skipped == "busy"  # process A's lease has not expired yet
            w.clock.advance(seconds=w.services.config.alerts.lease_seconds + 1)
            results = (await second.cycle(force=True))[0].results
            assert [(r.detection_id, r.status) for r in results] == [(alert["id"], "sent")]
            assert len(w.cards()) == 1
            assert (await second.cycle(force=True))[0].results == []
            assert len(w.cards()) == 1
        finally:
            await restarted.close()
    await first_store.close()


async def test_two_pollers_on_one_store_send_one_alert_per_detection(tmp_path, shared_store) -> None:
    first_store = shared_store.open()
    async with alerts_world(tmp_path, tenants=3, alerts={"max_cards_per_10_minutes": 100}, storage=first_store) as w:
        w.graph.latency = 0.02  # so the two pollers really overlap
        for t in range(3):
            await w.say(f"alerts on low --tenant T{t}")
        other = shared_store.open()
        try:
            first = w.poller()
            second = Poller(dataclasses.replace(w.services, storage=other), w.source, sleep=w.sleep)
            expected = set()
            for round_ in range(3):
                for t in range(3):
                    for n in range(4):
                        expected.add(w.detect(t, n + 10 * round_, minutes_ago=2, level="medium")["id"])
                await asyncio.gather(first.cycle(force=True), second.cycle(force=True))
                await asyncio.gather(first.cycle(force=True), second.cycle(force=True))  # anything left over
                w.clock.advance(minutes=3)
            cards = w.cards()
            shown = [c["body"][2]["facts"][0]["value"] for c in cards]  # the "User" fact, one card per user
            assert len(cards) == len(expected) == 36
            assert len(set(shown)) == 36
            for t in range(3):
                state, _ = await st.tenant_state(w.services.storage, w.tenant_ids[t])
                assert state["pending"] == {} and st.sent_in_24h(state, w.clock.now) == 12
        finally:
            await other.close()
    await first_store.close()


async def test_seen_ids_outlive_48_hours_while_the_query_window_can_still_return_them(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        await w.say("alerts on --tenant T0")
        alert = w.detect(0, 1, minutes_ago=1)
        assert len(await w.poll()) == 1
        w.clock.advance(hours=49)  # nothing newer arrived: the old detection is still inside the window
        assert await w.poll() == []
        state, _ = await st.tenant_state(w.services.storage, w.tenant_ids[0])
        assert alert["id"] in state["seen"]
        newer = w.detect(0, 2, minutes_ago=0)
        assert [r.detection_id for r in await w.poll()] == [newer["id"]]
        state, _ = await st.tenant_state(w.services.storage, w.tenant_ids[0])
        assert alert["id"] not in state["seen"] and newer["id"] in state["seen"]  # now it cannot come back


def test_prune_keeps_young_ids_and_reachable_ids_and_drops_the_rest() -> None:
    now = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
    iso = st.iso
    state = st.empty_tenant_state()
    state["watermark"] = iso(now - dt.timedelta(hours=1))
    state["seen"] = {
        "young": [iso(now - dt.timedelta(hours=2)), iso(now - dt.timedelta(days=5))],
        "old-reachable": [iso(now - dt.timedelta(hours=50)), iso(now - dt.timedelta(minutes=70))],
        "old-gone": [iso(now - dt.timedelta(hours=50)), iso(now - dt.timedelta(hours=3))],
    }
    st.prune_seen(state, now, dt.timedelta(hours=48), dt.timedelta(minutes=30))
    assert set(state["seen"]) == {"young", "old-reachable"}


async def test_lease_is_exclusive_expires_and_is_renewed_only_by_its_owner() -> None:
    store = MemoryStorage()
    now = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
    a = st.Lease(store, "t", "a", 60)
    b = st.Lease(store, "t", "b", 60)
    assert await a.acquire(now) and not await b.acquire(now)
    assert await a.renew(now + dt.timedelta(seconds=50))
    assert not await b.acquire(now + dt.timedelta(seconds=100))  # renewed until 110 s
    assert await b.acquire(now + dt.timedelta(seconds=111))
    assert not await a.renew(now + dt.timedelta(seconds=112))  # lost to b
    results = await asyncio.gather(*(st.Lease(store, "u", f"p{i}", 60).acquire(now) for i in range(20)))
    assert sum(results) == 1


async def test_a_lease_is_kept_while_a_slow_poll_runs_and_freed_after_it() -> None:
    """A throttled tenant's poll (429 backoff, many pages) can outlast `lease_seconds`: the lease is renewed in the
    background meanwhile, so a second process never polls the same tenant at the same time."""
    store = MemoryStorage()
    now = [dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)]  # the injected clock, moved by the test

    def clock() -> dt.datetime:
        return now[0]

    async def renewed(lease: st.Lease, since: int | None) -> None:
        """Until the background renewal (every third of the lease, in real time) has written."""
        for _ in range(1000):
            if lease.version != since:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the lease was never renewed")

    slow = st.Lease(store, "t", "slow", 3)
    assert await slow.acquire(clock())
    async with slow.kept(clock):
        now[0] += dt.timedelta(seconds=2.5)  # most of the lease has passed
        await renewed(slow, slow.version)  # about one second of real time
        now[0] += dt.timedelta(seconds=1.7)  # 4.2 s since it was taken: longer than the lease
        assert not await st.Lease(store, "t", "other", 3).acquire(clock())
    await slow.release()
    assert await st.Lease(store, "t", "other", 3).acquire(clock())


def _digest_counts(cards: list[dict]) -> list[int]:
    import re

    counts = []
    for card in cards:
        text = " ".join(str(e.get("text", "")) for e in card.get("body", []))
        found = re.search(r"(\d+) more risky sign-in alert", text)
        if found:
            counts.append(int(found.group(1)))
    return counts


async def test_two_instances_folding_into_one_conversation_keep_one_digest(tmp_path, shared_store) -> None:
    """Pollers of different tenants in different instances post to the same channel: past the storm budget both
    fold into its digest, one writer at a time (a lease in the store), so one digest card counts every alert."""
    first_store = shared_store.open()
    async with alerts_world(tmp_path, tenants=2, alerts={"max_cards_per_10_minutes": 1}, storage=first_store) as w:
        w.graph.latency = 0.02
        for t in range(2):
            await w.say(f"alerts on low --tenant T{t}")
        other = shared_store.open()
        try:
            first = w.poller()
            second = Poller(dataclasses.replace(w.services, storage=other), w.source, sleep=w.sleep)
            for t in range(2):
                for n in range(6):
                    w.detect(t, n, minutes_ago=2, level="medium")
            outcomes = await asyncio.gather(
                first.cycle([w.tenant_ids[0]], force=True), second.cycle([w.tenant_ids[1]], force=True)
            )
            statuses = [r.status for batch in outcomes for o in batch for r in o.results or []]
            assert statuses.count("sent") == 1 and statuses.count("digest") + statuses.count("pending") == 11
            for _ in range(3):  # anything a busy digest left pending goes out next cycle
                await asyncio.gather(
                    first.cycle([w.tenant_ids[0]], force=True), second.cycle([w.tenant_ids[1]], force=True)
                )
            posted = w.cards()
            updated = [c for call in w.bot.connector.updates(w.channel.id) for c in call.cards]
            assert len(_digest_counts(posted)) == 1  # one digest message, updated in place
            assert max(_digest_counts(posted + updated)) == 11
        finally:
            await other.close()
    await first_store.close()
