"""`mfa <user>` and `mfa report` end to end: a signed activity to the real /api/messages (real JWT validation), the
app's own GraphGateway (managed identity) against the Graph stand-in, and what reaches the Bot Connector stand-in."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.botapp import NOBODY, TECH, BotApp, channel_chat
from tests.support.cards import assert_valid_card
from tests.support.connector import Call
from tests.support.graph_standin import GraphStandin
from tests.support.graph_standin.fixtures import CONTOSO
from tests.test_mfa import NOW
from tests.test_mfa import populate as populate_people
from tests.test_mfa_report import synthetic

CHANNEL = channel_chat("19:secops@thread.tacv2")


@dataclass
class World:
    bot: BotApp
    standin: GraphStandin
    people: dict[str, dict[str, Any]]

    def calls(self) -> list[Call]:
        """What the bot posted or updated in the channel (sends, replies, updates; not roster look-ups), in order."""
        return [
            c
            for c in self.bot.connector.calls
            if c.conversation_id == CHANNEL.id and c.status < 300 and c.kind in ("send", "reply", "update")
        ]

    async def say(self, text: str, actor: Any = TECH) -> None:
        result = await self.bot.send_message(text, actor=actor, conversation=CHANNEL)
        assert result.status in (200, 201), result


@pytest.fixture
async def world(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    async with GraphStandin(home_tenant=CONTOSO) as standin:
        for key, value in standin.environ().items():  # the app's gateway gets its token from this endpoint
            monkeypatch.setenv(key, value)
        people = populate_people(standin)
        config = BotApp.config(
            graph={"endpoint": standin.url},
            tenants=[
                {"name": "Contoso", "tenant_id": CONTOSO, "domains": ["contoso.com"], "credential": "managed_identity"}
            ],
        )
        async with BotApp.started(config=config, clock=lambda: NOW) as bot:
            await bot.install(CHANNEL)
            yield World(bot, standin, people)


def card_text(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False)


async def test_a_technician_gets_the_mfa_card_in_the_channel(world: World) -> None:
    await world.say("mfa alice@contoso.com")
    await world.bot.connector.wait_for(lambda _: any(c.cards for c in world.calls()))
    mine = world.calls()
    cards = [card for call in mine for card in call.cards]
    assert len(cards) == 1
    card = cards[0]
    assert_valid_card(card)
    assert "Registered — phishing-resistant — enforced by CA 'Require MFA for admins'" in card["body"][0]["text"]
    text = card_text(card)
    assert "alice@contoso.com" in text and "FIDO2" in text and "Pixel 8" in text and "3 h ago" in text
    assert mine[0].body["type"] == "typing"  # shown while Graph is asked
    asked = world.standin.graph_requests("alice@contoso.com")
    assert asked and all(r.authorized and r.tenant == CONTOSO for r in asked)
    assert world.standin.identity_requests == 1  # one managed-identity token, reused for every Graph call


async def test_a_non_technician_is_refused_before_graph_is_asked(world: World) -> None:
    await world.say("mfa alice@contoso.com", actor=NOBODY)
    await world.bot.connector.wait_for(lambda _: any(c.text for c in world.calls()))
    [refusal] = [c for c in world.calls() if c.text]
    assert "only Cordon technicians" in refusal.text
    assert not any(c.cards for c in world.calls())
    assert world.standin.graph_requests() == []  # not even a look-up
    audit = [e for e in await world.bot.services.storage.audit_tail(20) if e.outcome == "refused"]
    assert [(e.actor, e.command) for e in audit] == [(NOBODY.aad_id, "mfa")]


async def test_mfa_report_shows_typing_then_one_card_updated_in_place(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dialogs.mfa

    monkeypatch.setattr(dialogs.mfa, "PROGRESS_EVERY_SECONDS", 0.0)  # a progress update after every page
    world.standin.state.synthetic_registration = (2_500, synthetic)
    world.standin.state.security_defaults = True
    await world.say("mfa report")
    await world.bot.connector.wait_for(
        lambda _: any(
            c.kind == "update" and "users registered for MFA" in card_text(c.body or {}) for c in world.calls()
        )
    )
    calls = world.calls()
    assert calls[0].body["type"] == "typing"
    posted = [c for c in calls if c.kind in ("send", "reply") and c.cards]
    assert len(posted) == 1  # one card, never a second one for the result
    progress = posted[0]
    assert_valid_card(progress.cards[0])
    assert "Working" in card_text(progress.cards[0])
    assert calls.index(progress) > 0  # typing came first
    updates = [c for c in calls if c.kind == "update"]
    assert len(updates) == 4  # after each of the 3 pages, then the result
    assert progress.new_id and all(u.activity_id == progress.new_id for u in updates)  # the card it posted
    for update in updates:
        assert_valid_card(update.cards[0])
    assert [u.cards[0]["body"][2]["text"] for u in updates[:3]] == [
        f"Read {n:,} users so far ({p} page(s))." for p, n in ((1, 999), (2, 1998), (3, 2500))
    ]
    final = updates[-1].cards[0]["body"][0]["text"]
    assert "of 2,500 users registered for MFA" in final and "security defaults" in card_text(updates[-1].cards[0])
    assert len(world.standin.graph_requests("userRegistrationDetails")) == 3
