"""Proactive sends reuse one Bot Connector client per service URL: counted at the SDK's own construction, with the
token still asked of the credentials for every request, no status retried, and --dev still loopback-only."""

from __future__ import annotations

import asyncio
import logging

import pytest

from dialogs.contract import DeliveryError, Reply
from tests.support.botapp import APP_ID, TECH, BotApp, channel_chat, personal_chat
from tests.support.openid import OpenIdServer


@pytest.fixture
def constructions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ConnectorClient the SDK's connector factory builds (its base URL)."""
    from botframework.connector.auth import _connector_factory_impl as impl

    made: list[str] = []

    class Counted(impl.ConnectorClient):  # type: ignore[misc, valid-type]
        def __init__(self, credentials, base_url=None, **kwargs):  # noqa: ANN001
            made.append(base_url)
            super().__init__(credentials, base_url=base_url, **kwargs)

    monkeypatch.setattr(impl, "ConnectorClient", Counted)
    return made


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every outbound token the bot's credentials asked for."""
    asked: list[str] = []
    mint = OpenIdServer.outbound_token

    def counted(self: OpenIdServer, app_id: str, scope: str = "https://api.botframework.com") -> str:
        token = mint(self, app_id, scope)
        asked.append(token)
        return token

    monkeypatch.setattr(OpenIdServer, "outbound_token", counted)
    return asked


async def test_sends_and_updates_share_one_client_and_ask_for_the_token_every_time(constructions, tokens):
    async with BotApp.started() as bot:
        channel = channel_chat("19:alerts@thread.tacv2")
        await bot.install(channel)
        await bot.send_message("help", conversation=personal_chat(TECH))  # the turn's own client (inbound path)
        turn_clients = len(constructions)
        asked_before = len(tokens)
        ids = await asyncio.gather(*(bot.messenger.send(channel.id, Reply(text=f"alert {n}")) for n in range(20)))
        await asyncio.gather(*(bot.messenger.update(channel.id, i, Reply(text="handled")) for i in ids[:5]))
        await bot.messenger.send(personal_chat(TECH).id, Reply(text="same service URL, same client"))
        assert len(constructions) - turn_clients == 1 and bot.messenger.connectors.created == 1
        assert constructions[-1] == bot.connector.url
        posted = bot.replies(channel.id)
        assert len(posted) == 20 and len(set(ids)) == 20 and len(bot.connector.updates(channel.id)) == 5
        sent = [c for c in bot.connector.calls if c.kind in ("send", "update")]
        assert len(tokens) - asked_before == len(sent) == 26  # the credentials are asked for each request
        for call in sent:
            assert bot.openid.verify_outbound(call.authorization.split(" ", 1)[1], APP_ID)


@pytest.mark.parametrize("status", [429, 502])
async def test_a_reused_client_still_retries_no_status(constructions, status):
    async with BotApp.started() as bot:
        channel = channel_chat("19:alerts@thread.tacv2")
        await bot.install(channel)
        await bot.messenger.send(channel.id, Reply(text="first"))
        bot.connector.fail(channel.id, status, retry_after=30 if status == 429 else None, times=1)
        with pytest.raises(DeliveryError) as caught:
            await bot.messenger.send(channel.id, Reply(text="second"))
        assert caught.value.status == status and (caught.value.retry_after == 30.0) is (status == 429)
        assert [c.status for c in bot.connector.calls if c.kind == "send"] == [200, status]  # asked once
        await bot.messenger.send(channel.id, Reply(text="third"))
        assert bot.replies(channel.id)[-1].text == "third" and bot.messenger.connectors.created == 1


async def test_dev_still_refuses_a_non_loopback_service_url_once_a_loopback_client_is_pooled(caplog):
    from botbuilder.schema import ChannelAccount, ConversationAccount, ConversationReference

    async with BotApp.started(dev=True, app_id="") as bot:
        near = channel_chat("19:near@thread.tacv2")
        await bot.install(near, tenant=None)
        await bot.messenger.send(near.id, Reply(text="loopback is fine"))
        reference = ConversationReference(
            channel_id="msteams",
            service_url="https://smba.trafficmanager.net/amer/",
            conversation=ConversationAccount(id="19:far@thread.tacv2", conversation_type="channel"),
            bot=ChannelAccount(id="28:x"),
        )
        await bot.storage.put(
            "convref/19:far@thread.tacv2",
            {"reference": reference.serialize(), "tenant_id": None, "kind": "channel"},
            None,
        )
        for _ in range(2):  # refused every time, not only when first asked
            with caplog.at_level(logging.WARNING), pytest.raises(DeliveryError):
                await bot.messenger.send("19:far@thread.tacv2", Reply(text="hello"))
        assert caplog.text.count("non-loopback") == 2
        assert [c.conversation_id for c in bot.connector.calls] == [near.id]
        assert bot.messenger.connectors.created == 1


async def test_the_pool_keeps_the_most_recently_used_clients_up_to_its_bound(constructions):
    from bot.connectors import ConnectorPool

    async with BotApp.started() as bot:
        pool = ConnectorPool(bot.messenger.adapter, APP_ID, max_clients=2)
        port = bot.connector.port
        urls = [f"http://127.0.0.1:{port}/", f"http://localhost:{port}/", f"http://127.0.0.1:{port}/emea/"]
        first = await pool.client(urls[0])
        assert await pool.client(urls[0]) is first
        await pool.client(urls[1])
        await pool.client(urls[0])  # used again: the least recently used is now urls[1]
        await pool.client(urls[2])
        assert pool.created == 3 and await pool.client(urls[0]) is first
        await pool.client(urls[1])  # dropped, so made again
        assert pool.created == 4 and constructions == urls[:3] + [urls[1]]
        clients = await asyncio.gather(*(pool.client(urls[2]) for _ in range(10)))  # concurrent first use: one
        assert len({id(c) for c in clients}) == 1 and pool.created == 5
        pool.close()
