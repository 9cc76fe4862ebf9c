"""The alert card's buttons through the real endpoint: the role gate, state from storage (not the card), each
press audited and shown on the card, one Graph call for concurrent presses, Lock down… opening the approval."""

from __future__ import annotations

import asyncio
import json

from tests.support.botapp import APPROVER, NOBODY, TECH, group_chat
from tests.support.cards import assert_valid_card
from tests.support.graph_standin import Fault
from tests.support.graph_standin.alerts_world import alerts_world

CARD = "application/vnd.microsoft.card.adaptive"
MESSAGE = "application/vnd.microsoft.activity.message"


async def _alert(w) -> tuple[dict, str, str]:
    """Subscribe, detect, poll: (detection, card id, message id)."""
    await w.say("alerts on --tenant T0")
    detection = w.detect(0, 1, minutes_ago=1)
    await w.poll()
    call = w.bot.replies(w.channel.id)[-1]
    card = call.cards[0]
    return detection, card["actions"][0]["data"]["card"], call.activity_id


async def _press(w, verb: str, card_id: str, actor, message_id: str | None = None, conversation=None):
    return await w.bot.invoke_action(
        verb, {"card": card_id}, actor=actor, conversation=conversation or w.channel, card_message_id=message_id
    )


async def test_confirm_and_dismiss_are_for_approvers_only_and_refusals_are_audited(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        _, card_id, message_id = await _alert(w)
        for verb in ("alerts.confirm", "alerts.dismiss"):
            for actor in (NOBODY, TECH):
                result = await _press(w, verb, card_id, actor, message_id)
                assert result.status == 200 and result.body["type"] == MESSAGE
                assert "only Cordon approvers" in result.body["value"]
        assert w.risk(0).actions == []
        refusals = [e for e in await w.services.storage.audit_tail(50) if e.outcome == "refused"]
        assert len(refusals) == 4
        assert {e.command for e in refusals} == {"action:alerts.confirm", "action:alerts.dismiss"}


async def test_an_approver_confirms_compromised_once_and_the_card_shows_it_for_everyone(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        detection, card_id, message_id = await _alert(w)
        result = await _press(w, "alerts.confirm", card_id, APPROVER, message_id)
        assert result.status == 200 and result.body["type"] == CARD
        card = result.body["value"]
        assert_valid_card(card)
        text = json.dumps(card, ensure_ascii=False)
        assert "Confirmed compromised — avery.approver@contoso.com" in text
        assert [a.get("verb") for a in card["actions"] if a.get("verb")] == ["alerts.lockdown"]
        assert w.risk(0).actions == [("confirmCompromised", [detection["userId"]])]
        update = w.bot.connector.updates(w.channel.id)[-1]
        assert update.activity_id == message_id and "Confirmed compromised" in json.dumps(update.cards[0])
        again = await _press(w, "alerts.dismiss", card_id, APPROVER, message_id)
        assert again.body["type"] == MESSAGE and "Already confirmed compromised" in again.body["value"]
        assert len(w.risk(0).actions) == 1
        entries = [e for e in await w.services.storage.audit_tail(50) if e.command == "action:alerts.confirm"]
        assert [(e.outcome, e.target, e.tenant) for e in entries] == [("ok", "user1@t0.example", w.tenant_ids[0])]


async def test_concurrent_presses_call_graph_once(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        detection, card_id, message_id = await _alert(w)
        w.graph.latency = 0.05
        results = await asyncio.gather(*(_press(w, "alerts.dismiss", card_id, APPROVER, message_id) for _ in range(10)))
        assert all(r.status == 200 for r in results)
        assert w.risk(0).actions == [("dismiss", [detection["userId"]])]
        assert sum(1 for r in results if r.body["type"] == CARD) == 1


async def test_a_graph_refusal_is_shown_on_the_card_and_the_button_stays(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        _, card_id, message_id = await _alert(w)
        w.graph.add_fault(Fault.permission("/riskyUsers/dismiss", times=1))
        result = await _press(w, "alerts.dismiss", card_id, APPROVER, message_id)
        card = result.body["value"]
        assert_valid_card(card)
        text = json.dumps(card, ensure_ascii=False)
        assert "IdentityRiskyUser.ReadWrite.All" in text and "❌ Dismissed risk" in text
        assert "alerts.dismiss" in [a.get("verb") for a in card["actions"]]  # may be pressed again
        ok = await _press(w, "alerts.dismiss", card_id, APPROVER, message_id)
        assert "✅ Dismissed risk" in json.dumps(ok.body["value"], ensure_ascii=False)


async def test_the_card_id_is_only_a_key_forged_or_foreign_cards_are_refused(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        _, card_id, message_id = await _alert(w)
        elsewhere = group_chat("19:elsewhere@thread.v2")
        await w.bot.install(elsewhere)
        foreign = await _press(w, "alerts.confirm", card_id, APPROVER, conversation=elsewhere)
        assert foreign.body["type"] == MESSAGE and "another conversation" in foreign.body["value"]
        forged = await w.bot.invoke_action(
            "alerts.confirm", {"card": "../../lockdown/x", "user_id": "victim"}, actor=APPROVER, conversation=w.channel
        )
        assert forged.body["type"] == MESSAGE and "not one Cordon posted" in forged.body["value"]
        unknown = await _press(w, "alerts.confirm", "0" * 32, APPROVER)
        assert "no longer knows" in unknown.body["value"]
        assert w.risk(0).actions == []


async def test_lock_down_is_for_technicians_and_opens_the_approval_request_asked_by_the_presser(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        detection, card_id, message_id = await _alert(w)
        refused = await _press(w, "alerts.lockdown", card_id, APPROVER, message_id)
        assert "only Cordon technicians" in refused.body["value"]
        result = await _press(w, "alerts.lockdown", card_id, TECH, message_id)
        assert result.status == 200
        card = result.body["value"] if result.body["type"] == CARD else None
        assert card is not None, result.body
        assert_valid_card(card)
        text = json.dumps(card, ensure_ascii=False)
        assert "Lock-down requested — tess.tech@contoso.com" in text and "request " in text
        approval = [
            c for call in w.bot.replies(w.channel.id) for c in call.cards if "lockdown.approve" in json.dumps(c)
        ]
        assert approval, "the lock-down approval card was posted"
        approval_text = json.dumps(approval[-1], ensure_ascii=False)
        assert "user1@t0.example" in approval_text and "risk alert" in approval_text
        from dialogs.lockdown.runtime import store

        request = await store(w.services).live_for(w.tenant_ids[0], detection["userId"])
        assert request.requester.aad_id == TECH.aad_id and request.state == "pending"


async def test_a_press_from_a_thread_of_the_same_channel_is_the_same_conversation(tmp_path) -> None:
    from tests.support.botapp import channel_chat

    async with alerts_world(tmp_path) as w:
        _, card_id, message_id = await _alert(w)
        thread = channel_chat(w.channel.team_id, w.channel.channel_id, message_id=message_id)
        result = await _press(w, "alerts.confirm", card_id, APPROVER, message_id, conversation=thread)
        assert result.body["type"] == CARD and "Confirmed compromised" in json.dumps(result.body["value"])


async def test_a_claim_left_by_a_crashed_process_goes_stale_and_a_new_detection_does_not_block_a_press(
    tmp_path,
) -> None:
    from dialogs.alerts.delivery import card_key

    async with alerts_world(tmp_path) as w:
        detection, card_id, message_id = await _alert(w)
        doc = await w.services.storage.get(card_key(card_id))
        claim = {"by": "crashed@contoso.com", "at": w.clock.now.isoformat(), "state": "running"}
        await w.services.storage.put(card_key(card_id), {**doc.value, "confirmed": claim}, doc.version)
        busy = await _press(w, "alerts.dismiss", card_id, APPROVER, message_id)
        assert "acting on this alert right now" in busy.body["value"] and w.risk(0).actions == []
        w.clock.advance(minutes=6)
        ok = await _press(w, "alerts.dismiss", card_id, APPROVER, message_id)
        assert ok.body["type"] == CARD and w.risk(0).actions == [("dismiss", [detection["userId"]])]


async def test_the_buttons_wait_their_turn_in_the_pollers_pacer_for_the_tenant(tmp_path) -> None:
    """Identity Protection allows about one request per second per tenant, shared by every app: a press right after
    a poll waits for the tenant's next second in the same pacer as the poller (one per process)."""
    from dialogs.alerts.runtime import risk_source

    async with alerts_world(tmp_path) as w:
        detection, card_id, message_id = await _alert(w)
        source = risk_source(w.services)
        assert source is w.source  # the poller's and the buttons' Identity Protection are one object
        before = len(w.sleep.waits)
        result = await _press(w, "alerts.dismiss", card_id, APPROVER, message_id)
        assert result.body["type"] == CARD and w.risk(0).actions == [("dismiss", [detection["userId"]])]
        assert w.sleep.waits[before:] == [1.0]  # the risky-users page just before it took this second


async def test_pressing_lock_down_twice_opens_one_request_and_the_card_says_it_was_already_asked(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        detection, card_id, message_id = await _alert(w)
        first = await _press(w, "alerts.lockdown", card_id, TECH, message_id)
        again = await _press(w, "alerts.lockdown", card_id, TECH, message_id)
        approvals = [
            c for call in w.bot.replies(w.channel.id) for c in call.cards if "lockdown.approve" in json.dumps(c)
        ]
        assert len(approvals) == 1
        from dialogs.lockdown.runtime import store

        request = await store(w.services).live_for(w.tenant_ids[0], detection["userId"])
        assert f"request {request.id}" in json.dumps(first.body["value"], ensure_ascii=False)
        card = again.body["value"]
        assert_valid_card(card)
        text = json.dumps(card, ensure_ascii=False)
        assert text.count("✅ Lock-down requested") == 1 and "Lock-down already requested" in text
        presses = [e for e in await w.services.storage.audit_tail(50) if e.command == "action:alerts.lockdown"]
        assert len(presses) == 2  # each press audited


async def test_a_detection_after_the_risk_was_dismissed_posts_a_new_card_with_the_buttons(tmp_path) -> None:
    """Within the hour a user's detections update one card; but once an approver dismissed the risk as a false alarm,
    a new detection is news: it gets its own card, with Confirm/Dismiss, instead of a silent edit. (After Confirm
    compromised, later detections, such as the adminConfirmedUserCompromised one it causes, update the card.)"""
    async with alerts_world(tmp_path) as w:
        detection, card_id, message_id = await _alert(w)
        dismissed = await _press(w, "alerts.dismiss", card_id, APPROVER, message_id)
        assert dismissed.body["type"] == CARD
        w.clock.advance(minutes=10)
        again = w.detect(0, 1, minutes_ago=0, event="impossibleTravel", level="high")
        assert [(r.detection_id, r.status) for r in await w.poll()] == [(again["id"], "sent")]
        card = w.cards()[-1]
        assert_valid_card(card)
        assert "impossible travel" in json.dumps(card) and "Dismissed risk" not in json.dumps(card)
        assert [a.get("verb") for a in card["actions"] if a.get("verb")] == [
            "alerts.lockdown",
            "alerts.confirm",
            "alerts.dismiss",
        ]
