"""Alert state stays bounded: old card documents and idle storm-control documents go, within the poller's cycle,
without weakening de-duplication, re-sending after a crash, or storm control. Real endpoint, SQLite, stand-in."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest

from adapters.storage import update
from dialogs.alerts import pruning
from dialogs.alerts import state as st
from dialogs.alerts.delivery import CARD_PREFIX, CONV_PREFIX, card_key
from dialogs.alerts.poller import Poller
from tests.support.botapp import APPROVER
from tests.support.graph_standin.alerts_world import alerts_world
from tests.test_alerts_restart import Crash, CrashingMessenger


async def card_ids(w) -> list[str]:
    return [key[len(CARD_PREFIX) :] for key, _ in await w.services.storage.list(CARD_PREFIX)]


async def test_cards_older_than_the_retention_are_deleted_by_the_poller_and_younger_ones_kept(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        await w.say("alerts on --tenant T0")
        w.detect(0, 1, minutes_ago=1)
        await w.poller().cycle()  # the scheduled cycle (it also prunes: nothing is old yet)
        (old,) = await card_ids(w)
        assert old.startswith("20261127") and len(old) == 32  # the posting day leads the id
        w.clock.advance(days=29)
        w.detect(0, 2, minutes_ago=1)
        await w.poller().cycle()
        assert len(await card_ids(w)) == 2
        w.clock.advance(days=2)  # `old` is 31 days old, the other 2 days (retention: 30 days)
        await w.poller().cycle()
        (young,) = await card_ids(w)
        assert young != old
        press = await w.bot.invoke_action("alerts.confirm", {"card": old}, actor=APPROVER, conversation=w.channel)
        assert "no longer knows" in press.body["value"] and "30 days" in press.body["value"]
        assert w.risk(0).actions == []  # nothing was done for a forgotten card
        kept = await w.bot.invoke_action("alerts.dismiss", {"card": young}, actor=APPROVER, conversation=w.channel)
        assert kept.body["type"] == "application/vnd.microsoft.card.adaptive"  # a younger card's buttons work


async def test_pruning_runs_at_most_hourly_and_only_lists_one_day_of_cards(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        storage = w.services.storage
        now = w.clock()
        assert await pruning.prune(storage, now, dt_days(30)) == 0
        listed = []
        real_list = storage.list

        async def counting_list(prefix):
            listed.append(prefix)
            return await real_list(prefix)

        storage.list = counting_list
        try:
            assert await pruning.prune(storage, now, dt_days(30)) == 0 and listed == []  # not due: one read
            w.clock.advance(hours=1)
            await pruning.prune(storage, w.clock(), dt_days(30))
            assert listed == [CONV_PREFIX]  # no day became due: no card is listed
            listed.clear()
            w.clock.advance(days=1)
            await pruning.prune(storage, w.clock(), dt_days(30))
            due = (w.clock() - dt_days(30)).date() - dt_days(1)
            assert listed == [f"{CARD_PREFIX}{due:%Y%m%d}", CONV_PREFIX]  # exactly the day that became due
        finally:
            storage.list = real_list


def dt_days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


async def test_a_card_pressed_while_it_is_pruned_is_kept(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        await w.say("alerts on --tenant T0")
        w.detect(0, 1, minutes_ago=1)
        await w.poll()
        (card,) = await card_ids(w)
        w.clock.advance(days=32)
        storage = w.services.storage
        real_list = storage.list

        async def list_then_press(prefix):
            found = await real_list(prefix)
            if prefix.startswith(CARD_PREFIX) and card_key(card).startswith(prefix):
                # between the pruner's read and its delete, someone writes the card
                await update(storage, card_key(card), lambda v: {**v, "events": [{"what": "a press"}]})
            return found

        storage.list = list_then_press
        try:
            await pruning.prune(storage, w.clock(), dt_days(30), force=True)
        finally:
            storage.list = real_list
        assert card in await card_ids(w)  # the compare-and-set delete lost: the write is not lost with it
        await pruning.prune(storage, w.clock(), dt_days(30), force=True)
        assert await card_ids(w) == []  # the day was left open: the next pass deletes it


async def test_pruning_keeps_storm_control_de_duplication_and_resending(tmp_path, monkeypatch) -> None:
    async with alerts_world(tmp_path, alerts={"max_cards_per_10_minutes": 2}) as w:
        await w.say("alerts on --tenant T0")
        first = [w.detect(0, n, minutes_ago=1) for n in range(2)]
        assert len(await w.poll()) == 2
        await w.poller().prune()  # storm state of the last 10 minutes is still in use: kept
        assert await w.services.storage.get(CONV_PREFIX + w.channel.id) is not None
        w.detect(0, 5, minutes_ago=0)
        assert [r.status for r in await w.poll()] == ["digest"]  # the budget of two cards still holds
        # a crash between poll and send, then a pruning pass: the alert is still owed and is sent after restart
        owed = w.detect(0, 6, minutes_ago=0)
        w.clock.advance(hours=2)
        doomed = Poller(dataclasses.replace(w.services, messenger=CrashingMessenger()), w.source)
        with monkeypatch.context() as m:
            m.setattr(st.Lease, "release", lambda self: asyncio.sleep(0))
            with pytest.raises(Crash):
                await doomed.cycle(force=True)
        assert await pruning.prune(w.services.storage, w.clock(), dt_days(30), force=True) == 1  # the idle conv doc
        assert await w.services.storage.get(CONV_PREFIX + w.channel.id) is None
        w.clock.advance(seconds=w.services.config.alerts.lease_seconds + 1)
        assert [(r.detection_id, r.status) for r in await w.poll()] == [(owed["id"], "sent")]
        # de-duplication survives the pruning: the same detections returned again are not alerted again
        await pruning.prune(w.services.storage, w.clock(), dt_days(30), force=True)
        assert await w.poll() == []
        state, _ = await st.tenant_state(w.services.storage, w.tenant_ids[0])
        assert {d["id"] for d in first} <= set(state["seen"])
