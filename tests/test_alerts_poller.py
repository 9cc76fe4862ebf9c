"""The poller end to end: the real app (JWT, Bot Connector stand-in), the Graph stand-in, SQLite state.

Detections arrive over time, with duplicates and late arrivals inside the overlap window; each alerts once, in a
valid card, only where the subscription's threshold allows.
"""

from __future__ import annotations

import datetime as dt

from dialogs.alerts import state as st
from tests.support.botapp import TECH, group_chat
from tests.support.cards import assert_valid_card
from tests.support.graph_standin import Fault
from tests.support.graph_standin.alerts_world import alerts_world


def _minus_30(detection: dict) -> str:
    detected = dt.datetime.fromisoformat(detection["detectedDateTime"].replace("Z", "+00:00"))
    return (detected - dt.timedelta(minutes=30)).strftime("detectedDateTime ge %Y-%m-%dT%H:%M:%SZ")


def _text(card: dict) -> str:
    import json

    return json.dumps(card, ensure_ascii=False)


async def test_alerts_on_then_a_cycle_posts_one_valid_enriched_card_and_status_tells_it(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        await w.say("alerts on --tenant T0")
        assert "T0" in w.bot.replies(w.channel.id)[-1].text and "medium" in w.bot.replies(w.channel.id)[-1].text
        alice = w.detect(0, 1, minutes_ago=3, event="anonymizedIPAddress", level="high")
        w.detect(0, 2, minutes_ago=2, level="low")  # below the channel's threshold
        results = await w.poll()
        assert [(r.detection_id, r.status, r.conversation) for r in results] == [(alice["id"], "sent", w.channel.id)]
        cards = w.cards()
        assert len(cards) == 1
        card = cards[0]
        assert_valid_card(card)
        text = _text(card)
        for expected in (
            "user1@t0.example",
            "User 1 of T0",
            "sign-in from an anonymous IP address",
            "Stockholm, SE",
            "185.220.101.4",
            "Office 365 Exchange Online",
            "High (atRisk)",
            f"entra.microsoft.com/{w.tenant_ids[0]}#view/",
            alice["userId"],
        ):
            assert expected in text, expected
        verbs = [a.get("verb") for a in card["actions"]]
        assert verbs[:3] == ["alerts.lockdown", "alerts.confirm", "alerts.dismiss"]
        assert all(a.get("data", {}).keys() <= {"card"} for a in card["actions"])  # only the card id travels

        w.clock.advance(minutes=5)
        assert await w.poll() == []  # the same detections come back (overlap): nothing is sent twice
        assert len(w.cards()) == 1

        await w.say("alerts status")
        status = w.cards()[-1]
        assert_valid_card(status)
        text = _text(status)
        assert "Entra ID P2" in text and "this conversation — medium and above" in text
        assert '"Alerts sent (24 h)", "value": "1"' in text.replace("'", '"') or "Alerts sent (24 h)" in text
        state, _ = await st.tenant_state(w.services.storage, w.tenant_ids[0])
        assert state["watermark"] == alice["detectedDateTime"].replace(".000000", "")[:19] + "Z" or state["watermark"]
        assert st.sent_in_24h(state, w.clock.now) == 1


async def test_late_arrivals_inside_the_overlap_window_alert_once_and_the_watermark_is_the_newest_seen(
    tmp_path,
) -> None:
    async with alerts_world(tmp_path) as w:
        await w.say("alerts on low --tenant T0")
        first = w.detect(0, 1, minutes_ago=1)
        assert [r.detection_id for r in await w.poll()] == [first["id"]]
        state, _ = await st.tenant_state(w.services.storage, w.tenant_ids[0])
        mark = dt.datetime.fromisoformat(state["watermark"].replace("Z", "+00:00"))
        assert (
            abs((mark - dt.datetime.fromisoformat(first["detectedDateTime"].replace("Z", "+00:00"))).total_seconds())
            < 1
        )
        # detected 20 minutes before the watermark, but Identity Protection only reports it 5 minutes from now
        late = w.detect(0, 2, minutes_ago=21, arrives_in=5, event="unfamiliarFeatures", level="medium")
        w.clock.advance(minutes=1)
        assert await w.poll() == []
        w.clock.advance(minutes=5)
        newest = w.detect(0, 3, minutes_ago=0, event="leakedCredentials")
        sent = {r.detection_id: r.status for r in await w.poll()}
        assert sent == {late["id"]: "sent", newest["id"]: "sent"}
        assert "unfamiliar sign-in properties" in _text(w.cards()[-2]) + _text(w.cards()[-1])
        # that cycle asked from 30 minutes under the first watermark; the next asks under the newest detection
        query = w.graph.graph_requests("/identityProtection/riskDetections")[-1].query
        assert _minus_30(first) in query
        assert await w.poll() == []
        assert _minus_30(newest) in w.graph.graph_requests("/identityProtection/riskDetections")[-1].query


async def test_thresholds_per_subscription_and_several_pages(tmp_path) -> None:
    async with alerts_world(tmp_path, alerts={"max_cards_per_10_minutes": 1000}) as w:
        lows = group_chat("19:lows@thread.v2")
        await w.bot.install(lows)
        await w.say("alerts on high --tenant T0")
        await w.say("alerts on low --tenant T0", conversation=lows)
        for n in range(510):  # more than one page of 500
            w.detect(0, n % 7, minutes_ago=5 - n / 200, level=("low", "medium", "high")[n % 3])
        results = await w.poll()
        pages = w.graph.graph_requests("/identityProtection/riskDetections")
        assert len(pages) == 2
        to_high = [r for r in results if r.conversation == w.channel.id]
        to_low = [r for r in results if r.conversation == lows.id]
        assert len(to_low) == 510 and len(to_high) == 170
        assert {r.risk_level for r in to_high} == {"high"}
        assert len({r.detection_id for r in results}) == 510
        # one card per user per hour: 7 users -> 7 cards in the low chat, updated in place
        assert len(w.cards(lows)) == 7 and len(w.cards()) == len({r.user for r in to_high})
        for card in w.cards(lows):
            assert_valid_card(card)


async def test_storm_control_updates_a_users_card_and_folds_the_rest_into_a_digest(tmp_path) -> None:
    async with alerts_world(tmp_path, alerts={"max_cards_per_10_minutes": 3}) as w:
        await w.say("alerts on low --tenant T0")
        for n in range(6):
            w.detect(0, n, minutes_ago=10 - n)
        results = await w.poll()
        statuses = [r.status for r in results]
        assert statuses.count("sent") == 3 and statuses.count("digest") == 3
        cards = w.cards()
        assert len(cards) == 4  # 3 alert cards + 1 digest
        digest = cards[-1]
        assert_valid_card(digest)
        assert "3 more risky sign-in alert(s)" in _text(digest)
        # the same user again within the hour: the card is updated (count, latest), no new message
        w.clock.advance(minutes=20)
        again = w.detect(0, 0, minutes_ago=0, event="impossibleTravel", ip="203.0.113.9", city="Oslo", country="NO")
        results = await w.poll()
        assert [(r.detection_id, r.status) for r in results] == [(again["id"], "updated")]
        assert len(w.cards()) == 4
        updated = w.bot.connector.updates(w.channel.id)[-1].cards[0]
        assert_valid_card(updated)
        text = _text(updated)
        assert "impossible travel" in text and "Oslo, NO" in text and "2 for this user" in text
        # after the hour, a new card
        w.clock.advance(minutes=61)
        later = w.detect(0, 0, minutes_ago=0)
        assert [(r.detection_id, r.status) for r in await w.poll()] == [(later["id"], "sent")]


async def test_a_removed_bot_breaks_the_subscription_and_status_says_so(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        await w.say("alerts on --tenant T0")
        w.bot.connector.fail(w.channel.id, 403)
        lost = w.detect(0, 1, minutes_ago=1)
        assert [(r.detection_id, r.status) for r in await w.poll()] == [(lost["id"], "undeliverable")]
        subs = await st.subscriptions(w.services.storage)
        assert subs[0].broken_at and "removed" in subs[0].broken_reason
        w.bot.connector.clear_failures()
        other = group_chat("19:other@thread.v2")
        await w.bot.install(other)
        await w.say("alerts status", conversation=other)
        status = w.cards(other)[-1]
        assert_valid_card(status)
        assert "NOT WORKING" in _text(status)
        # re-adding and `alerts on` again repairs it; what was kept is delivered then
        await w.say("alerts on --tenant T0")
        assert "works again" in w.bot.replies(w.channel.id)[-1].text
        results = await w.poll()
        assert [(r.detection_id, r.status) for r in results] == [(lost["id"], "sent")]


async def test_connector_throttling_is_retried_with_backoff_and_counts_only_once_accepted(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        await w.say("alerts on --tenant T0")
        w.bot.connector.fail(w.channel.id, 429, retry_after=2, times=2)
        alert = w.detect(0, 1, minutes_ago=1)
        assert [(r.detection_id, r.status) for r in await w.poll()] == [(alert["id"], "sent")]
        assert 2 in w.sleep.waits or 2.0 in w.sleep.waits
        # throttled beyond the attempts: stays pending, sent on the next cycle
        w.bot.connector.fail(w.channel.id, 429, retry_after=1)
        second = w.detect(0, 2, minutes_ago=0)
        assert [(r.detection_id, r.status) for r in await w.poll()] == [(second["id"], "pending")]
        state, _ = await st.tenant_state(w.services.storage, w.tenant_ids[0])
        assert [p["id"] for p in state["pending"][w.channel.id]] == [second["id"]]
        assert st.sent_in_24h(state, w.clock.now) == 1
        w.bot.connector.clear_failures()
        assert [(r.detection_id, r.status) for r in await w.poll()] == [(second["id"], "sent")]


async def test_an_unlicensed_tenant_is_not_licensed_not_an_error_and_not_polled_every_cycle(tmp_path) -> None:
    async with alerts_world(tmp_path, tenants=2, levels=("P2", "P1")) as w:
        await w.say("alerts on --tenant T0")
        await w.say("alerts on --tenant T1")
        assert "no Entra ID P2" not in w.bot.replies(w.channel.id)[-1].text  # not known yet
        w.detect(0, 1)
        outcomes = await w.poller().cycle()
        by_tenant = {o.tenant_id: o for o in outcomes}
        assert by_tenant[w.tenant_ids[1]].skipped == "not licensed" and by_tenant[w.tenant_ids[1]].error is None
        risk_calls = [r for r in w.graph.graph_requests("/identityProtection/") if r.tenant == w.tenant_ids[1]]
        assert risk_calls == []  # the licence (subscribedSkus) said no: Identity Protection was not asked
        w.clock.advance(minutes=10)
        outcomes = await w.poller().cycle()
        by_tenant = {o.tenant_id: o for o in outcomes}
        assert by_tenant[w.tenant_ids[1]].skipped == "not due" and by_tenant[w.tenant_ids[0]].polled
        await w.say("alerts status")
        text = _text(w.cards()[-1])
        assert "risk detections need P2: not polled" in text and "Last error" in text
        state, _ = await st.tenant_state(w.services.storage, w.tenant_ids[1])
        assert state["licence"] == "P1" and state["last_error"] is None


async def test_a_403_licence_answer_marks_the_tenant_not_licensed_and_other_errors_are_shown(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        await w.say("alerts on --tenant T0")
        w.graph.add_fault(Fault.licence("/identityProtection/riskDetections", times=1))
        outcome = (await w.poller().cycle(force=True))[0]
        assert outcome.skipped == "not licensed" and outcome.error is None
        w.graph.add_fault(Fault.permission("/identityProtection/riskDetections", times=1))
        outcome = (await w.poller().cycle(force=True))[0]
        assert "IdentityRiskEvent.Read.All" in outcome.error
        await w.say("alerts status")
        assert "IdentityRiskEvent.Read.All" in _text(w.cards()[-1])


async def test_threshold_and_command_errors_are_explained(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        await w.say("alerts on extreme --tenant T0")
        assert "one of low, medium, high" in w.bot.replies(w.channel.id)[-1].text
        await w.say("alerts on --tenant Nowhere")
        assert "not a tenant Cordon acts in" in w.bot.replies(w.channel.id)[-1].text
        await w.say("alerts off")
        assert "was not receiving" in w.bot.replies(w.channel.id)[-1].text
        await w.say("alerts sometimes")
        assert "I don't know `alerts sometimes`" in w.bot.replies(w.channel.id)[-1].text
        await w.say("alerts on high --tenant T0")
        await w.say("alerts off")
        assert "T0 will no longer be posted here" in w.bot.replies(w.channel.id)[-1].text
        assert await st.subscriptions(w.services.storage) == []
        entries = await w.services.storage.audit_tail(20)
        assert any(e.command == "alerts" and e.actor == TECH.aad_id for e in entries)


async def test_the_background_hook_polls_and_stops_cleanly(tmp_path) -> None:
    from dialogs.alerts.runtime import start, stop

    async with alerts_world(tmp_path) as w:
        await w.say("alerts on --tenant T0")
        w.detect(0, 1, minutes_ago=1)
        task = await start(None, w.services)
        assert task is not None and await start(None, w.services) is task  # one poller per process
        calls = await w.bot.connector.wait_for(
            lambda calls: any(
                c.cards
                and c.conversation_id == w.channel.id
                and c.kind in ("send", "reply")
                and "user1@t0.example" in _text(c.cards[0])
                for c in calls
            )
        )
        assert calls
        await stop(w.services)
        assert task.done() and not task.cancelled()


async def test_identity_protection_429s_without_retry_after_are_waited_out_and_the_connector_5xx_retried(
    tmp_path,
) -> None:
    async with alerts_world(tmp_path) as w:
        await w.say("alerts on --tenant T0")
        alert = w.detect(0, 1, minutes_ago=1)
        w.graph.add_fault(Fault.throttle("/identityProtection/riskDetections", times=2))  # no Retry-After
        w.bot.connector.fail(w.channel.id, 502, times=1)
        before = len(w.sleep.waits)
        assert [(r.detection_id, r.status) for r in await w.poll()] == [(alert["id"], "sent")]
        waits = w.sleep.waits[before:]
        assert len(w.graph.graph_requests("/identityProtection/riskDetections")) == 3
        assert any(1.0 <= x <= 2.0 for x in waits) and any(2.0 <= x <= 4.0 for x in waits)  # 2 s, 4 s with jitter
        assert len(w.cards()) == 1
        state, _ = await st.tenant_state(w.services.storage, w.tenant_ids[0])
        assert state["last_error"] is None and state["pending"] == {}


async def test_each_tenant_is_next_due_after_the_interval_with_jitter(tmp_path) -> None:
    async with alerts_world(tmp_path, tenants=4) as w:
        for t in range(4):
            await w.say(f"alerts on --tenant T{t}")
        await w.poller().cycle()
        gaps = []
        for tid in w.tenant_ids:
            state, _ = await st.tenant_state(w.services.storage, tid)
            gaps.append(
                (dt.datetime.fromisoformat(state["next_poll_at"].replace("Z", "+00:00")) - w.clock.now).total_seconds()
            )
        assert all(54 <= g <= 66 for g in gaps) and len(set(gaps)) > 1  # 60 s ± 10 %, not in lockstep
        outcomes = await w.poller().cycle()
        assert {o.skipped for o in outcomes} == {"not due"}
        w.clock.advance(seconds=67)
        assert all(o.polled for o in await w.poller().cycle())


async def test_a_failed_cycle_moves_neither_the_watermark_nor_the_seen_ids(tmp_path) -> None:
    """The risky-user query fails after the detections were read: nothing of that cycle is stored, so the next one
    reads the same window again and alerts what the failed one had found."""
    async with alerts_world(tmp_path) as w:
        await w.say("alerts on --tenant T0")
        first = w.detect(0, 1, minutes_ago=10)
        assert [r.detection_id for r in await w.poll()] == [first["id"]]
        before, _ = await st.tenant_state(w.services.storage, w.tenant_ids[0])
        w.clock.advance(minutes=5)
        second = w.detect(0, 2, minutes_ago=1)
        w.graph.add_fault(Fault.permission("/identityProtection/riskyUsers", times=1))
        outcome = (await w.poller().cycle(force=True))[0]
        assert outcome.error and "IdentityRiskyUser.ReadWrite.All" in outcome.error and outcome.results == []
        after, _ = await st.tenant_state(w.services.storage, w.tenant_ids[0])
        assert after["watermark"] == before["watermark"] and second["id"] not in after["seen"]
        assert after["last_success"] == before["last_success"] and after["last_error"]
        assert [r.detection_id for r in await w.poll()] == [second["id"]]
        done, _ = await st.tenant_state(w.services.storage, w.tenant_ids[0])
        assert done["watermark"] == second["detectedDateTime"][:19] + "Z" and done["last_error"] is None
