"""The alert card's Lock down… opens the request in the alert's own tenant, whatever cordon.toml lists as that
tenant's domains (through the real endpoint, the Graph stand-in with two tenants and SQLite state)."""

from __future__ import annotations

import json

from dialogs.lockdown.model import LockdownRequest
from tests.support.botapp import TECH
from tests.support.cards import assert_valid_card
from tests.support.graph_standin.alerts_world import alerts_world

CARD = "application/vnd.microsoft.card.adaptive"


async def _alert_in_t1(w) -> tuple[dict, str, str]:
    await w.say("alerts on --tenant T1")
    detection = w.detect(1, 1, minutes_ago=1)
    await w.poll()
    call = w.bot.replies(w.channel.id)[-1]
    return detection, call.cards[0]["actions"][0]["data"]["card"], call.activity_id


async def _press_lockdown(w, card_id: str, message_id: str) -> dict:
    result = await w.bot.invoke_action(
        "alerts.lockdown", {"card": card_id}, actor=TECH, conversation=w.channel, card_message_id=message_id
    )
    assert result.status == 200 and result.body["type"] == CARD, result.body
    assert_valid_card(result.body["value"])
    return result.body["value"]


async def _request_for(w, tenant: int, user_id: str) -> LockdownRequest | None:
    from dialogs.lockdown.runtime import store

    return await store(w.services).live_for(w.tenant_ids[tenant], user_id)


async def test_an_alert_from_a_tenant_without_listed_domains_locks_down_in_that_tenant(tmp_path) -> None:
    async with alerts_world(tmp_path, tenants=2, domains={1: []}) as w:
        detection, card_id, message_id = await _alert_in_t1(w)
        card = await _press_lockdown(w, card_id, message_id)
        assert "Lock-down requested — tess.tech@contoso.com" in json.dumps(card, ensure_ascii=False)
        request = await _request_for(w, 1, detection["userId"])
        assert request is not None and request.state == "pending"
        assert (request.tenant_id, request.tenant_name) == (w.tenant_ids[1], "T1")
        assert request.target.upn == "user1@t1.example"
        approval = [c for c in w.cards() if "lockdown.approve" in json.dumps(c)]
        assert approval and "user1@t1.example" in json.dumps(approval[-1], ensure_ascii=False)
        asked = w.graph.graph_requests("user1@t1.example")
        assert asked and {r.tenant for r in asked} == {w.tenant_ids[1]}


async def test_a_parent_domain_listed_for_another_tenant_does_not_pull_the_lockdown_there(tmp_path) -> None:
    # T0 lists the parent domain `example`; T1's user user1@t1.example would resolve to T0 by domain, where a
    # namesake exists: the alert's tenant decides, so T0's namesake is never looked up or touched
    async with alerts_world(tmp_path, tenants=2, domains={0: ["t0.example", "example"], 1: []}) as w:
        namesake = w.graph.tenant(w.tenant_ids[0]).add_user("user1@t1.example", display_name="Namesake in T0")
        detection, card_id, message_id = await _alert_in_t1(w)
        await _press_lockdown(w, card_id, message_id)
        request = await _request_for(w, 1, detection["userId"])
        assert request is not None and request.tenant_id == w.tenant_ids[1]
        assert request.target.id == detection["userId"] != namesake["id"]
        assert await _request_for(w, 0, namesake["id"]) is None
        assert {r.tenant for r in w.graph.graph_requests("user1@t1.example")} == {w.tenant_ids[1]}


async def test_a_typed_lockdown_still_picks_the_tenant_from_the_domain(tmp_path) -> None:
    async with alerts_world(tmp_path, tenants=2) as w:
        user = w.user(1, 2)
        await w.say("lockdown user2@t1.example phished")
        request = await _request_for(w, 1, user["id"])
        assert request is not None and request.tenant_name == "T1"
        await w.say("lockdown nobody@unlisted.example phished")
        texts = [call.text or "" for call in w.bot.replies(w.channel.id)]
        assert any("No configured tenant owns the domain unlisted.example" in t for t in texts), texts
