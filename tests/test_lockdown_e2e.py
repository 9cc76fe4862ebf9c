"""The lock-down end to end: the real aiohttp app with real JWT validation, the Bot Connector stand-in, and the
Graph stand-in. Who may press what, once, until when, and where the temporary password may go."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.storage import MemoryStorage
from dialogs.lockdown import runner, state
from dialogs.lockdown.model import LockdownRequest, Runner
from dialogs.lockdown.runtime import runtime
from tests.support.botapp import APPROVER, FOREIGN, NOBODY, TECH, BotApp, User, channel_chat
from tests.support.cards import assert_valid_card
from tests.support.graph_standin import GraphStandin
from tests.support.graph_standin.fixtures import CONTOSO, make_gateway
from tests.support.graph_standin.lockdown_routes import LockdownData, register
from tests.support.graph_standin.lockdown_world import Clock, populate

OTHER_TECH = User("55555555-5555-4555-8555-555555555555", "otto.tech@contoso.com", "Otto Tech")
CHANNEL = channel_chat("19:soc@thread.tacv2")
CARD = "application/vnd.microsoft.card.adaptive"
MESSAGE = "application/vnd.microsoft.activity.message"


@dataclass
class E2E:
    bot: BotApp
    standin: GraphStandin
    data: LockdownData
    people: dict[str, Any]
    clock: Clock

    async def ask(self, text: str = "lockdown alice@contoso.com phished", actor: User = TECH) -> dict[str, Any]:
        result = await self.bot.send_message(text, actor=actor, conversation=CHANNEL)
        assert result.status in (200, 201), result
        (request,) = await runner.store(self.bot.services).all()
        return request

    async def press(self, request: dict[str, Any], actor: User, verb: str = "lockdown.approve", **data: Any) -> Any:
        payload = {"request_id": request["id"], "nonce": request["nonce"], **data}
        return await self.bot.invoke_action(
            verb, payload, actor=actor, conversation=CHANNEL, card_message_id=request["card"]["message_id"]
        )

    async def finished(self) -> dict[str, Any]:
        await runtime(self.bot.services).drain()
        (request,) = await runner.store(self.bot.services).all()
        return request

    def cards(self) -> list[dict[str, Any]]:
        return [card for call in self.bot.connector.calls for card in call.cards]


def config(url: str, **lockdown: Any) -> Any:
    return BotApp.config(
        roles={
            "technicians": [TECH.aad_id, APPROVER.aad_id, OTHER_TECH.aad_id],
            "approvers": [APPROVER.aad_id, TECH.aad_id],
        },
        graph={"endpoint": url},
        lockdown=lockdown,
        tenants=[
            {
                "name": "Contoso",
                "tenant_id": CONTOSO,
                "domains": ["contoso.com"],
                "credential": "managed_identity",
                "break_glass": ["breakglass@contoso.com"],
            }
        ],
    )


@pytest.fixture
async def e2e(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> AsyncIterator[E2E]:
    lockdown = getattr(request, "param", {})
    async with GraphStandin(home_tenant=CONTOSO, extensions=[register]) as standin:
        for key, value in standin.environ().items():
            monkeypatch.setenv(key, value)
        data, people = populate(standin)
        clock = Clock()
        cfg = config(standin.url, **lockdown)
        async with BotApp.started(config=cfg, storage=MemoryStorage(), clock=clock) as bot:
            bot.connector.add_member(OTHER_TECH.aad_id, OTHER_TECH.upn, OTHER_TECH.name, tenant_id=OTHER_TECH.tenant)
            gateway = make_gateway(cfg)
            bot.services.graph = gateway
            await bot.install(CHANNEL)
            yield E2E(bot, standin, data, people, clock)
            await runtime(bot.services).drain()
            await gateway.close()


def card_text(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False)


async def test_authorisation_matrix_and_one_run(e2e: E2E) -> None:
    request = await e2e.ask()
    posted = [c for c in e2e.bot.replies(CHANNEL.id) if c.cards]
    assert len(posted) == 1
    card = posted[0].cards[0]
    assert_valid_card(card)
    assert [a["data"] for a in card["actions"]] == [{"request_id": request["id"], "nonce": request["nonce"]}] * 2

    foreign = await e2e.press(request, FOREIGN)
    assert foreign.status == 403
    for outsider, says in (
        (NOBODY, "only Cordon approvers may press"),
        (OTHER_TECH, "only Cordon approvers may"),
        (TECH, "another approver must decide"),
    ):
        refused = await e2e.press(request, outsider)
        assert refused.status == 200 and refused.body["type"] == MESSAGE and says in refused.body["value"], outsider
    assert (await runner.store(e2e.bot.services).get(request["id"])).request.state == state.PENDING
    assert e2e.data.writes == []

    bob = e2e.people["bob"]
    edited = await e2e.press(
        request, APPROVER, target={"id": bob["id"]}, step_enable_sign_in="true", requester=APPROVER.aad_id
    )
    assert edited.status == 200 and edited.body["type"] == CARD
    assert_valid_card(edited.body["value"])
    again = await e2e.press(request, APPROVER)
    assert again.body["type"] == MESSAGE and again.body["value"].startswith("Already approved by Avery Approver")
    done = await e2e.finished()
    assert done["state"] == state.DONE and done["target"]["upn"] == "alice@contoso.com"
    assert e2e.standin.state.users[bob["id"]]["accountEnabled"] is True
    assert e2e.standin.state.users[e2e.people["alice"]["id"]]["accountEnabled"] is False

    updates = e2e.bot.connector.updates(CHANNEL.id)
    assert updates and {u.activity_id for u in updates} == {request["card"]["message_id"]}
    for each in e2e.cards():
        assert_valid_card(each)
    final = updates[-1].cards[0]
    assert "Done — every step succeeded" in card_text(final) and "actions" not in final
    audit = [(e.command, e.outcome) for e in await e2e.bot.services.storage.audit_tail(100)]
    assert audit.count(("action:lockdown.approve", "refused")) == 2  # the gate: outsider, other technician
    assert audit.count(("lockdown:approve", "refused")) == 2  # the handler: self-approval, already approved


async def test_fifty_presses_over_http_make_one_run(e2e: E2E) -> None:
    request = await e2e.ask()
    results = await asyncio.gather(*(e2e.press(request, APPROVER) for _ in range(50)))
    assert [r.status for r in results] == [200] * 50
    assert sum(1 for r in results if r.body["type"] == CARD) == 1
    assert (await e2e.finished())["state"] == state.DONE
    assert sum(1 for _, _, body in e2e.data.writes if body == {"accountEnabled": False}) == 1
    assert len(e2e.data.revoked) == 1 and len(e2e.data.compromised) == 1


async def test_an_expired_card_refuses_and_loses_its_buttons(e2e: E2E) -> None:
    request = await e2e.ask()
    e2e.clock.advance(minutes=31)
    refused = await e2e.press(request, APPROVER)
    assert refused.body["type"] == MESSAGE and "expired" in refused.body["value"]
    (update,) = e2e.bot.connector.updates(CHANNEL.id)
    assert_valid_card(update.cards[0])
    assert "actions" not in update.cards[0] and "Expired" in card_text(update.cards[0])
    assert e2e.data.writes == []


async def test_cancel_by_the_requester_over_http(e2e: E2E) -> None:
    request = await e2e.ask()
    await e2e.bot.send_message(f"lockdown cancel {request['id']}", actor=APPROVER, conversation=CHANNEL)
    await e2e.bot.send_message(f"lockdown cancel {request['id']}", actor=TECH, conversation=CHANNEL)
    texts = [c.text or "" for c in e2e.bot.replies(CHANNEL.id)]
    assert any("Only the requester" in t for t in texts) and any("Cancelled request" in t for t in texts)
    (update,) = e2e.bot.connector.updates(CHANNEL.id)
    assert "actions" not in update.cards[0] and "Cancelled" in card_text(update.cards[0])


@pytest.mark.parametrize("e2e", [{"password_delivery": "approver_chat"}, {"password_delivery": "none"}], indirect=True)
async def test_the_password_goes_only_to_the_approvers_1to1_chat_and_never_to_a_log(
    e2e: E2E, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    e2e.bot.connector.teams_ids_only = True  # as the Agents Playground: a chat opens with the `29:` id only
    e2e.bot.connector.roster_status = 500  # so the approver's Teams id can only come from their button press
    request = await e2e.ask()
    pressed = await e2e.press(request, APPROVER, step_reset_password="true")
    done = await e2e.finished()
    assert done["state"] == state.DONE and done["results"]["reset_password"]["status"] == "ok"
    (password,) = e2e.data.passwords()
    carrying = [c for c in e2e.bot.connector.calls if password in json.dumps(c.body or {})]
    if e2e.bot.services.config.lockdown.password_delivery == "approver_chat":
        private = e2e.bot.connector.private_chats[APPROVER.teams_id]
        assert [c.conversation_id for c in carrying] == [private] and private != CHANNEL.id
        assert "1:1 chat" in card_text(e2e.bot.connector.updates(CHANNEL.id)[-1].cards[0])
    else:
        assert carrying == []
    assert password not in json.dumps(pressed.body)
    assert password not in json.dumps([vars(e) for e in await e2e.bot.services.storage.audit_tail(500)])
    assert password not in json.dumps(await runner.store(e2e.bot.services).all())
    assert caplog.records and not any(password in record.getMessage() for record in caplog.records)
    assert not any(password in (logging.Formatter().format(record)) for record in caplog.records)


async def test_the_server_background_resumes_a_crashed_run_and_expires_old_requests(e2e: E2E) -> None:
    alice = await e2e.ask()
    await e2e.bot.send_message("lockdown bob@contoso.com", actor=TECH, conversation=CHANNEL)
    store = runner.store(e2e.bot.services)
    bob = next(r for r in await store.all() if r["target"]["upn"] == "bob@contoso.com")
    decided = await e2e.press(alice, APPROVER)
    assert decided.body["type"] == CARD
    for task in list(runtime(e2e.bot.services).tasks):  # the process dies before its runner gets far
        task.cancel()
    await runtime(e2e.bot.services).drain()

    def crashed_after_step_one(r: LockdownRequest) -> None:
        r.state = state.RUNNING
        r.runner = Runner(owner="dead-process", lease_until=state.iso(e2e.clock()))
        r.results = {
            "block_sign_in": {"status": "ok", "detail": "Sign-in blocked."},
            "revoke_sessions": {"status": "started"},
        }

    await store.annotate(alice["id"], crashed_after_step_one)
    e2e.clock.advance(minutes=31)  # bob's request is now past its expiry too
    cfg = e2e.bot.services.config.model_copy(
        update={"lockdown": e2e.bot.services.config.lockdown.model_copy(update={"sweep_seconds": 0.05})}
    )
    async with BotApp.started(
        config=cfg, storage=e2e.bot.storage, clock=e2e.clock, background=["dialogs.lockdown:start"]
    ) as restarted:
        for _ in range(400):
            states = {r["id"]: r["state"] for r in await store.all()}
            if states[alice["id"]] == state.DONE and states[bob["id"]] == state.EXPIRED:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"background work did not finish: {states}")
        await runtime(restarted.services).drain()
    assert not any(body == {"accountEnabled": False} for _, _, body in e2e.data.writes)  # step 1 not repeated
    assert len(e2e.data.revoked) == 1 and len(e2e.data.compromised) == 1
    audit = [(e.command, e.outcome) for e in await e2e.bot.services.storage.audit_tail(200)]
    assert ("lockdown:resume", "ok") in audit and ("lockdown:expire", "expired") in audit
    expired_card = next(
        c for u in reversed(e2e.bot.connector.updates(CHANNEL.id)) for c in u.cards if bob["id"] in card_text(c)
    )
    assert "actions" not in expired_card and "Expired" in card_text(expired_card)


APPROVALS = "19:approvals@thread.tacv2"


@pytest.mark.parametrize("e2e", [{"approvals_conversation": f"{APPROVALS};messageid=1700000000077"}], indirect=True)
async def test_the_approval_card_is_a_new_post_in_the_approvals_channel_even_when_a_thread_is_configured(
    e2e: E2E,
) -> None:
    said_in = channel_chat(APPROVALS, message_id="1700000000077")
    assert (await e2e.bot.send_message("help", actor=APPROVER, conversation=said_in)).status == 201
    request = await e2e.ask()
    [posted] = [c for c in e2e.bot.replies(APPROVALS) if c.cards]
    assert posted.kind == "send" and posted.reply_to_id is None and posted.body["conversation"]["id"] == APPROVALS
    assert_valid_card(posted.cards[0])
    assert request["card"] == {"conversation_id": APPROVALS, "message_id": posted.activity_id}
    assert [c.kind for c in e2e.bot.replies(said_in.id)] == ["reply"]  # nothing landed in the configured thread
    assert any("approvals channel" in (c.text or "") for c in e2e.bot.replies(CHANNEL.id))

    card_thread = channel_chat(APPROVALS, message_id=posted.activity_id)  # the approver presses in the card's thread
    pressed = await e2e.bot.invoke_action(
        "lockdown.approve",
        {"request_id": request["id"], "nonce": request["nonce"]},
        actor=APPROVER,
        conversation=card_thread,
        card_message_id=posted.activity_id,
    )
    assert pressed.status == 200 and pressed.body["type"] == CARD
    assert (await e2e.finished())["state"] == state.DONE
    updates = e2e.bot.connector.updates(APPROVALS)
    assert updates and {u.activity_id for u in updates} == {posted.activity_id}
    assert "Done — every step succeeded" in card_text(updates[-1].cards[0])
