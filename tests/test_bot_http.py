"""/api/messages as an HTTP endpoint: content checks, tenant gate, expectReplies, probes, --dev confinement."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from adapters.config import parse_config
from adapters.storage import MemoryStorage
from bot.server import MAX_BODY
from tests.support.botapp import FOREIGN, OTHER_TENANT, TECH, BotApp, channel_chat, personal_chat
from tests.support.cards import assert_valid_card


async def test_help_in_a_channel_reaches_the_connector_as_a_threaded_reply_with_a_valid_card():
    async with BotApp.started() as bot:
        chat = channel_chat(message_id="1700000000000")
        result = await bot.send_message("help", conversation=chat)
        assert result.status == 201
        replies = bot.replies(chat.id)
        assert len(replies) == 1
        assert replies[0].kind == "reply" and replies[0].activity_id  # threaded under the user's message
        assert replies[0].body["from"]["id"].startswith("28:")
        [card] = replies[0].cards
        assert_valid_card(card)
        assert "what I can do" in card["body"][0]["text"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_non_json_content_type_is_415(content_type):
    async with BotApp.started() as bot:
        headers = {"Content-Type": content_type} if content_type else {"Content-Type": ""}
        result = await bot.post(bot.activity("message", text="help"), headers=headers)
        assert result.status == 415
        assert bot.connector.calls == []


async def test_body_over_256_kib_is_413_by_content_length():
    async with BotApp.started() as bot:
        activity = bot.activity("message", text="x" * (MAX_BODY + 10))
        result = await bot.post(activity)
        assert result.status == 413
        assert bot.connector.calls == []


async def test_body_over_256_kib_is_413_when_streamed_without_content_length():
    async with BotApp.started() as bot:

        async def chunks():
            yield b'{"type": "message", "text": "'
            for _ in range(40):
                yield b"y" * 8192
            yield b'"}'

        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {bot.token()}"}
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{bot.base_url}/api/messages", data=chunks(), headers=headers) as response:
                assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
                assert response.status == 413


@pytest.mark.parametrize(
    "raw, why",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2, 3]", "not a Bot Framework activity"),
        (b'{"text": "help"}', "not a Bot Framework activity"),
        (b'{"type": "message", "text": "help"}', "lacks serviceUrl"),
        (b"\xff\xfe\x00", "not valid JSON"),
    ],
)
async def test_malformed_bodies_are_400(raw, why):
    async with BotApp.started() as bot:
        result = await bot.post(raw=raw)
        assert result.status == 400
        assert why in result.body["error"]


async def test_foreign_tenant_message_is_dropped_and_logged(caplog):
    async with BotApp.started() as bot:
        with caplog.at_level(logging.WARNING):
            result = await bot.send_message("help", actor=FOREIGN)
        assert result.status == 202
        assert bot.connector.calls == []
        assert f"from tenant {OTHER_TENANT}" in caplog.text
        # a valid token does not let someone claim our tenant while sitting in another one
        assert await bot.storage.list("convref/") == []


async def test_foreign_tenant_invoke_is_403():
    async with BotApp.started() as bot:
        result = await bot.invoke_action("anything", {"x": 1}, actor=FOREIGN)
        assert result.status == 403
        assert bot.connector.calls == []


@pytest.mark.parametrize(
    "kind, fields",
    [
        ("conversationUpdate", {"membersAdded": [{"id": "28:bot", "name": "Cordon"}]}),
        ("installationUpdate", {"action": "add"}),
        ("messageReaction", {"reactionsAdded": [{"type": "like"}]}),
    ],
)
async def test_foreign_tenant_install_and_other_activities_are_dropped(kind, fields):
    async with BotApp.started() as bot:
        activity = bot.activity(kind, actor=FOREIGN, conversation=channel_chat(), **fields)
        activity["recipient"]["id"] = "28:bot"
        assert (await bot.post(activity)).status == 202
        assert bot.connector.calls == []
        assert await bot.storage.list("convref/") == []  # no foothold for proactive sends into that tenant


async def test_activity_without_tenant_is_refused_outside_dev():
    async with BotApp.started() as bot:
        activity = bot.activity("message", text="help")
        del activity["channelData"]
        del activity["conversation"]["tenantId"]
        assert (await bot.post(activity)).status == 202
        assert bot.connector.calls == []


async def test_expect_replies_returns_the_replies_in_the_body():
    async with BotApp.started() as bot:
        result = await bot.send_message("help", deliveryMode="expectReplies")
        assert result.status == 200
        activities = result.body["activities"]
        assert len(activities) == 1 and activities[0]["type"] == "message"
        assert_valid_card(activities[0]["attachments"][0]["content"])
        assert bot.replies() == [], "expectReplies answers in the body, not through the connector"


async def test_healthz_and_readyz():
    async with BotApp.started() as bot, aiohttp.ClientSession() as session:
        async with session.get(f"{bot.base_url}/healthz") as response:
            assert response.status == 200 and (await response.json())["status"] == "alive"
        async with session.get(f"{bot.base_url}/readyz") as response:
            assert response.status == 200 and (await response.json())["status"] == "ready"


class UnreachableStorage(MemoryStorage):
    """Fault injection: the store is down (readiness must say so)."""

    async def ping(self) -> None:
        raise ConnectionError("database is unreachable")


async def test_readyz_is_503_when_storage_is_unreachable():
    async with BotApp.started(storage=UnreachableStorage()) as bot, aiohttp.ClientSession() as session:
        async with session.get(f"{bot.base_url}/readyz") as response:
            assert response.status == 503
        async with session.get(f"{bot.base_url}/healthz") as response:
            assert response.status == 200


async def test_readyz_with_sqlite(tmp_path):
    from adapters.storage import SQLiteStorage

    storage = SQLiteStorage(tmp_path / "cordon.db")
    async with BotApp.started(storage=storage) as bot, aiohttp.ClientSession() as session:
        async with session.get(f"{bot.base_url}/readyz") as response:
            assert response.status == 200
    await storage.close()


async def test_dev_mode_accepts_unauthenticated_requests_and_replies_on_loopback():
    async with BotApp.started(dev=True, app_id="") as bot:
        result = await bot.send_message("help", token=None)
        assert result.status == 201
        [reply] = bot.replies()
        assert reply.authorization is None  # anonymous in --dev without an app id
        assert reply.cards


async def test_dev_mode_refuses_a_non_loopback_service_url(caplog):
    async with BotApp.started(dev=True, app_id="") as bot:
        activity = bot.activity("message", text="help", serviceUrl="https://smba.trafficmanager.net/amer/")
        with caplog.at_level(logging.WARNING):
            result = await bot.post(activity, token=None)
        assert result.status == 403
        assert "not on loopback" in caplog.text
        assert bot.connector.calls == []


async def test_dev_mode_messenger_refuses_a_stored_non_loopback_reference(caplog):
    from botbuilder.schema import ChannelAccount, ConversationAccount, ConversationReference

    from dialogs.contract import DeliveryError, Reply

    async with BotApp.started(dev=True, app_id="") as bot:
        reference = ConversationReference(
            channel_id="msteams",
            service_url="https://smba.trafficmanager.net/amer/",
            conversation=ConversationAccount(id="19:far-away@thread.tacv2"),
            bot=ChannelAccount(id="28:x"),
        )
        await bot.storage.put(
            "convref/19:far-away@thread.tacv2",
            {"reference": reference.serialize(), "tenant_id": None, "kind": "channel"},
            None,
        )
        with caplog.at_level(logging.WARNING), pytest.raises(DeliveryError):
            await bot.messenger.send("19:far-away@thread.tacv2", Reply(text="hello"))
        assert "non-loopback" in caplog.text
        assert bot.connector.calls == []


async def test_replies_do_not_follow_a_redirect_from_the_service_url():
    """A 307 from the service URL would re-send the reply (and, outside --dev, knock on another host with it):
    the connector client follows no redirect, so --dev cannot be talked into posting off loopback this way."""
    from aiohttp import web

    async with BotApp.started(dev=True, app_id="") as bot:

        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(bot.connector.url.rstrip("/") + request.path_qs)

        redirector = web.Application()
        redirector.router.add_route("*", "/{tail:.*}", redirect)
        runner = web.AppRunner(redirector, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
            activity = bot.activity("message", text="help", serviceUrl=url)
            await bot.post(activity, token=None)
            assert bot.connector.calls == [], "the reply followed the redirect"
        finally:
            await runner.cleanup()


async def test_dev_mode_with_no_tenant_configured_accepts_any_tenant():
    async with BotApp.started(dev=True, app_id="", tenant="", config=parse_config({})) as bot:
        result = await bot.send_message("help", actor=FOREIGN, token=None)
        assert result.status == 201
        assert bot.replies(personal_chat(FOREIGN).id)


async def test_dev_mode_still_enforces_configured_tenants():
    async with BotApp.started(dev=True, app_id="") as bot:
        assert (await bot.send_message("help", actor=FOREIGN, token=None)).status == 202
        assert (await bot.send_message("help", actor=TECH, token=None)).status == 201
