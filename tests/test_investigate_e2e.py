"""The phished-user story end to end, through the real aiohttp app with real JWT validation, the Bot Connector
stand-in and the Graph stand-in: investigate the victim, act on what was found (every change approved by another
person), hunt from her IPs, find the second victim, and lock both down."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.storage import MemoryStorage
from dialogs.lockdown import runner, state
from dialogs.lockdown.runtime import runtime
from tests.support.botapp import APPROVER, FOREIGN, NOBODY, TECH, BotApp, channel_chat
from tests.support.cards import assert_valid_card
from tests.support.graph_standin import GraphStandin
from tests.support.graph_standin.fixtures import CONTOSO, make_gateway
from tests.support.graph_standin.incident_routes import register
from tests.support.graph_standin.incident_world import NOW, VPN_IP, World, build
from tests.support.graph_standin.lockdown_world import Clock

CHANNEL = channel_chat("19:soc@thread.tacv2")
CARD = "application/vnd.microsoft.card.adaptive"
MESSAGE = "application/vnd.microsoft.activity.message"


@dataclass
class Story:
    bot: BotApp
    standin: GraphStandin
    world: World

    def cards(self) -> list[dict[str, Any]]:
        return [card for call in self.bot.replies(CHANNEL.id) for card in call.cards]

    def last_card(self, title: str) -> dict[str, Any]:
        return next(c for c in reversed(self.cards()) if title in json.dumps(c["body"][0], ensure_ascii=False))

    async def press(self, button: dict[str, Any], actor: Any = TECH) -> Any:
        return await self.bot.invoke_action(button["verb"], button["data"], actor=actor, conversation=CHANNEL)

    async def requests(self) -> list[dict[str, Any]]:
        return await runner.store(self.bot.services).all()

    async def approve(self, request: dict[str, Any], **inputs: Any) -> Any:
        result = await self.bot.invoke_action(
            "lockdown.approve",
            {"request_id": request["id"], "nonce": request["nonce"], **inputs},
            actor=APPROVER,
            conversation=CHANNEL,
        )
        await runtime(self.bot.services).drain()
        return result


def buttons(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Action.Execute on the card, in the body's ActionSets and the card's actions."""
    found: list[dict[str, Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("type") == "Action.Execute":
                found.append(value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(card)
    return found


def button(card: dict[str, Any], verb: str, index: int = 0) -> dict[str, Any]:
    return [b for b in buttons(card) if b["verb"] == verb][index]


@pytest.fixture
async def story(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Story]:
    async with GraphStandin(home_tenant=CONTOSO, extensions=[register]) as standin:
        for key, value in standin.environ().items():
            monkeypatch.setenv(key, value)
        world = build(standin)
        cfg = BotApp.config(
            roles={"technicians": [TECH.aad_id, APPROVER.aad_id], "approvers": [APPROVER.aad_id, TECH.aad_id]},
            graph={"endpoint": standin.url},
            tenants=[
                {"name": "Contoso", "tenant_id": CONTOSO, "domains": ["contoso.com"], "credential": "managed_identity"}
            ],
        )
        async with BotApp.started(config=cfg, storage=MemoryStorage(), clock=Clock(NOW)) as bot:
            gateway = make_gateway(cfg)
            bot.services.graph = gateway
            await bot.install(CHANNEL)
            yield Story(bot, standin, world)
            await runtime(bot.services).drain()
            await gateway.close()


async def test_the_phished_user_story(story: Story) -> None:
    alice, bob = story.world.people["alice"], story.world.people["bob"]
    result = await story.bot.send_message("investigate alice@contoso.com 7", actor=TECH, conversation=CHANNEL)
    assert result.status in (200, 201)
    card = story.last_card("Investigation")
    assert_valid_card(card)
    text = json.dumps(card, ensure_ascii=False)
    assert "likely compromised: new country SE" in text and "collect@evil-mail.example" in text
    assert alice["id"] not in json.dumps([b["data"] for b in buttons(card)])  # buttons name a stored reference only

    # Disable this rule: an approval request, not a change; another approver approves; the rule is off
    pressed = await story.press(button(card, "investigate.disable_rule"))
    assert pressed.body["type"] == MESSAGE and "Asked an approver" in pressed.body["value"]
    (remediation,) = await story.requests()
    assert remediation["kind"] == "remediate" and remediation["offered"] == {"disable_rule": True}
    assert remediation["params"]["rule_id"] == story.world.rule_id and story.world.lockdown.writes == []
    refused = await story.bot.invoke_action(
        "lockdown.approve",
        {"request_id": remediation["id"], "nonce": remediation["nonce"]},
        actor=TECH,
        conversation=CHANNEL,
    )
    assert "another approver must decide" in refused.body["value"]
    await story.approve(remediation)
    (done,) = await story.requests()
    assert done["state"] == state.DONE
    rule = next(r for r in story.world.lockdown.rules[alice["id"]] if r["id"] == story.world.rule_id)
    assert rule["isEnabled"] is False and len(story.world.lockdown.writes) == 1

    # Revoke this consent, the same way
    await story.press(button(card, "investigate.revoke"))
    consent = next(r for r in await story.requests() if r["state"] == state.PENDING)
    assert consent["offered"] == {"revoke_consent": True}
    await story.approve(consent)
    assert story.world.incident.revoked == [story.world.grant_id]

    # Hunt from here: Bob signed in from the attacker's IP; Dave was only sprayed; Carol is clean
    hunted = await story.press(button(card, "investigate.hunt"))
    assert hunted.body["type"] == MESSAGE and "2 account(s)" in hunted.body["value"]
    hunt_card = story.last_card("Hunt in Contoso")
    assert_valid_card(hunt_card)
    hunt_text = json.dumps(hunt_card, ensure_ascii=False)
    assert "bob@contoso.com" in hunt_text and f"signed in from {VPN_IP}" in hunt_text
    assert "carol@contoso.com" not in hunt_text and "3 account(s) checked" in hunt_text  # Alice, Bob, Dave

    # Lock down both: Bob from the hunt card, Alice from her investigation (the device scan is offered and on)
    await story.press(button(hunt_card, "investigate.lockdown", 0))
    await story.press(button(card, "investigate.lockdown"))
    pending = {r["target"]["upn"]: r for r in await story.requests() if r["state"] == state.PENDING}
    assert set(pending) == {"alice@contoso.com", "bob@contoso.com"}
    assert pending["alice@contoso.com"]["offered"].get("scan_devices") is True
    assert "scan_devices" not in pending["bob@contoso.com"]["offered"]  # Bob has no managed device
    for request in pending.values():
        approval = next(c for c in story.cards() if request["id"] in json.dumps(c))
        assert_valid_card(approval)
        await story.approve(request)
    final = {r["target"]["upn"]: r for r in await story.requests() if r["kind"] == "lockdown"}
    assert {upn: r["state"] for upn, r in final.items()} == {
        "alice@contoso.com": state.DONE,
        "bob@contoso.com": state.DONE,
    }
    assert story.standin.state.users[alice["id"]]["accountEnabled"] is False
    assert story.standin.state.users[bob["id"]]["accountEnabled"] is False
    assert story.world.incident.scans == [story.world.laptop_id]  # the iPhone is not scanned
    assert "LAPTOP-ALICE: quick scan started" in final["alice@contoso.com"]["results"]["scan_devices"]["detail"]
    for update in story.bot.connector.updates(CHANNEL.id):
        for each in update.cards:
            assert_valid_card(each)
    audit = [(e.command, e.outcome) for e in await story.bot.services.storage.audit_tail(200)]
    assert ("action:investigate.disable_rule", "ok") in audit and ("action:investigate.hunt", "ok") in audit


async def test_buttons_refuse_outsiders_and_altered_cards(story: Story) -> None:
    await story.bot.send_message("investigate alice@contoso.com", actor=TECH, conversation=CHANNEL)
    card = story.last_card("Investigation")
    lock = button(card, "investigate.lockdown")
    nobody = await story.press(lock, actor=NOBODY)
    assert nobody.body["type"] == MESSAGE and "only Cordon technicians may press" in nobody.body["value"]
    foreign = await story.bot.invoke_action(lock["verb"], lock["data"], actor=FOREIGN, conversation=CHANNEL)
    assert foreign.status == 403
    altered = await story.press({**lock, "data": {**lock["data"], "nonce": "guessed"}})
    assert "no longer stored" in altered.body["value"]
    other_rule = await story.press(
        {
            **button(card, "investigate.disable_rule"),
            "data": {**button(card, "investigate.disable_rule")["data"], "item": "rule:9"},
        }
    )
    assert "no longer stored" in other_rule.body["value"]
    assert await story.requests() == [] and story.world.lockdown.writes == []


async def test_bad_input_gets_a_clear_message(story: Story) -> None:
    for text, says in (
        ("investigate", "Name the user"),
        ("investigate alice@contoso.com 90", "from 1 to 30"),
        ("investigate not-a-user", "neither a sign-in name"),
        ("investigate nobody@contoso.com", "No such user"),
        ("hunt 999.1.1.1", "neither a sign-in"),
    ):
        await story.bot.send_message(text, actor=TECH, conversation=CHANNEL)
        reply = story.bot.replies(CHANNEL.id)[-1]
        assert says in (reply.text or ""), (text, reply.text)
    await story.bot.send_message("investigate alice@contoso.com", actor=NOBODY, conversation=CHANNEL)
    assert "only Cordon technicians" in (story.bot.replies(CHANNEL.id)[-1].text or "")


async def test_a_refused_device_scan_is_reported_like_any_step(story: Story) -> None:
    from tests.support.graph_standin import Fault

    story.standin.add_fault(Fault.permission("/windowsDefenderScan"))
    await story.bot.send_message("lockdown alice@contoso.com phished", actor=TECH, conversation=CHANNEL)
    (request,) = await story.requests()
    assert request["offered"]["scan_devices"] is True
    await story.approve(request)
    (done,) = await story.requests()
    result = done["results"]["scan_devices"]
    assert done["state"] == state.PARTIAL and result["status"] == "failed"
    assert "LAPTOP-ALICE: failed" in result["detail"]
    assert "DeviceManagementManagedDevices.PrivilegedOperations.All" in result["detail"]
    assert story.world.incident.scans == []
    final = story.bot.connector.updates(CHANNEL.id)[-1].cards[0]
    assert_valid_card(final)
    assert "Scan the user's managed devices" in json.dumps(final, ensure_ascii=False)


async def test_without_intune_the_scan_is_not_offered(story: Story) -> None:
    story.world.incident.intune = False
    await story.bot.send_message("lockdown alice@contoso.com phished", actor=TECH, conversation=CHANNEL)
    (request,) = await story.requests()
    assert "scan_devices" not in request["offered"] and request["offered"]["block_sign_in"] is True
