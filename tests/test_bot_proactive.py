"""Proactive sends through the Messenger (stored references, continue_conversation) and failure mapping."""

from __future__ import annotations

import pytest

from dialogs.contract import DeliveryError, Reply
from tests.support.botapp import (
    APP_ID,
    APPROVER,
    NOBODY,
    OTHER_TENANT,
    TECH,
    TENANT,
    BotApp,
    User,
    channel_chat,
    personal_chat,
)
from tests.support.cards import assert_valid_card

CARD = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "alert", "wrap": True}]}


async def test_send_and_update_reach_an_installed_channel():
    async with BotApp.started() as bot:
        chat = channel_chat("19:alerts@thread.tacv2")
        await bot.install(chat)
        message_id = await bot.messenger.send(chat.id, Reply(text="risky sign-in", card=CARD))
        assert message_id
        [posted] = bot.replies(chat.id)
        assert posted.text == "risky sign-in"
        assert_valid_card(posted.cards[0])
        assert bot.openid.verify_outbound(posted.authorization.split(" ", 1)[1], APP_ID)
        new_card = {**CARD, "body": [{"type": "TextBlock", "text": "handled", "wrap": True}]}
        await bot.messenger.update(chat.id, message_id, Reply(card=new_card))
        [update] = bot.connector.updates(chat.id)
        assert update.activity_id == message_id and update.cards[0]["body"][0]["text"] == "handled"
        # Reply.replaces goes to update too
        assert await bot.messenger.send(chat.id, Reply(card=CARD, replaces=message_id)) == message_id
        assert len(bot.connector.updates(chat.id)) == 2


async def test_unknown_conversation_is_a_gone_delivery_error():
    async with BotApp.started() as bot:
        with pytest.raises(DeliveryError) as caught:
            await bot.messenger.send("19:never-installed@thread.tacv2", Reply(text="x"))
        assert caught.value.gone
        assert bot.connector.calls == []


@pytest.mark.parametrize(
    "status, gone, retry_after", [(403, True, None), (404, True, None), (429, False, 7.0), (502, False, None)]
)
async def test_connector_failures_map_to_delivery_error(status, gone, retry_after):
    async with BotApp.started() as bot:
        chat = channel_chat("19:alerts@thread.tacv2")
        await bot.install(chat)
        bot.connector.fail(chat.id, status, retry_after=7 if status == 429 else None)
        with pytest.raises(DeliveryError) as caught:
            await bot.messenger.send(chat.id, Reply(text="x"))
        assert caught.value.status == status
        assert caught.value.gone is gone
        assert caught.value.retry_after == retry_after
        with pytest.raises(DeliveryError) as caught:
            await bot.messenger.update(chat.id, "act-1", Reply(text="x"))
        assert caught.value.status == status


async def test_send_private_opens_a_chat_then_reuses_it_and_reopens_when_gone():
    async with BotApp.started() as bot:
        await bot.install(channel_chat())
        await bot.messenger.send_private(TENANT, NOBODY.aad_id, Reply(text="temporary password: see approver"))
        await bot.messenger.send_private(TENANT, NOBODY.aad_id, Reply(text="second"))
        creates = [c for c in bot.connector.calls if c.kind == "create"]
        assert len(creates) == 1
        private = bot.connector.private_chats[NOBODY.teams_id]  # the Teams id from the roster
        assert [c.text for c in bot.replies(private)] == ["temporary password: see approver", "second"]
        doc = await bot.storage.get(f"convref/{private}")
        assert doc.value["tenant_id"] == TENANT and doc.value["kind"] == "personal"
        bot.connector.fail(private, 403, times=1)  # the user blocked the bot once; the chat is opened again
        await bot.messenger.send_private(TENANT, NOBODY.aad_id, Reply(text="third"))
        assert len([c for c in bot.connector.calls if c.kind == "create"]) == 2
        assert bot.replies(private)[-1].text == "third"


async def test_send_private_without_any_conversation_in_the_tenant_fails_clearly():
    async with BotApp.started() as bot:
        with pytest.raises(DeliveryError, match="install the app first"):
            await bot.messenger.send_private(OTHER_TENANT, TECH.aad_id, Reply(text="x"))


async def test_services_messenger_is_set_by_build_app():
    async with BotApp.started() as bot:
        assert bot.services.messenger is bot.messenger
        assert bot.messenger is not None


ALERTS = "19:alerts@thread.tacv2"


async def test_a_proactive_message_in_a_channel_is_a_new_post_not_a_reply_in_an_old_thread():
    async with BotApp.started() as bot:
        thread = channel_chat(ALERTS, message_id="1700000000001")
        assert (await bot.send_message("help", conversation=thread)).status == 201  # typed in a thread
        [answer] = bot.replies(thread.id)
        assert answer.kind == "reply" and answer.reply_to_id == answer.activity_id  # the turn answers in the thread
        stored = (await bot.storage.get(f"convref/{ALERTS}")).value  # the channel's own reference, for new posts
        assert stored["kind"] == "channel" and stored["reference"]["conversation"]["id"] == ALERTS
        assert stored["reference"].get("activityId") is None
        ids = []
        for target in (ALERTS, thread.id):  # addressed by the channel or by one of its threads: a new post
            ids.append(await bot.messenger.send(target, Reply(text="risky sign-in", card=CARD)))
            posted = bot.replies(ALERTS)[-1]
            assert posted.kind == "send" and posted.activity_id == ids[-1]
            assert posted.reply_to_id is None and posted.body["conversation"]["id"] == ALERTS
        assert len(set(ids)) == 2 and len(bot.replies(thread.id)) == 1  # nothing more landed in the old thread
        new_card = {**CARD, "body": [{"type": "TextBlock", "text": "handled", "wrap": True}]}
        await bot.messenger.update(ALERTS, ids[0], Reply(card=new_card))
        [update] = bot.connector.updates(ALERTS)
        assert update.activity_id == ids[0] and update.cards[0]["body"][0]["text"] == "handled"
        assert update.reply_to_id is None and bot.openid.verify_outbound(update.authorization.split(" ", 1)[1], APP_ID)


async def test_installing_in_a_channel_then_talking_in_threads_keeps_one_channel_reference():
    async with BotApp.started() as bot:
        await bot.install(channel_chat(ALERTS))
        installed = await bot.storage.get(f"convref/{ALERTS}")
        assert installed.value["reference"].get("activityId") is None
        for n in (3, 4):
            await bot.send_message("help", conversation=channel_chat(ALERTS, message_id=f"170000000000{n}"))
            assert await bot.storage.get(f"convref/{ALERTS};messageid=170000000000{n}") is not None
        assert (await bot.storage.get(f"convref/{ALERTS}")).version == installed.version  # kept, not rewritten
        await bot.messenger.send(ALERTS, Reply(text="x"))
        assert bot.replies(ALERTS)[-1].reply_to_id is None


async def test_a_proactive_message_to_a_personal_chat_replies_to_nothing():
    from tests.support.botapp import personal_chat

    async with BotApp.started() as bot:
        chat = personal_chat(TECH)
        await bot.send_message("help", conversation=chat)
        message_id = await bot.messenger.send(chat.id, Reply(text="your report is ready"))
        posted = bot.replies(chat.id)[-1]
        assert posted.kind == "send" and posted.activity_id == message_id and posted.reply_to_id is None
        assert posted.body["conversation"]["id"] == chat.id


# --- opening a 1:1 chat: which id, and what is remembered -----------------------------------------------------------


def creates(bot: BotApp) -> list:
    return [c for c in bot.connector.calls if c.kind == "create"]


async def test_a_new_chat_uses_the_teams_id_seen_in_the_users_own_activity():
    """The Playground answers UserNotFound to an Entra object id: the `29:` id from the approver's press is used."""
    async with BotApp.started() as bot:
        bot.connector.teams_ids_only = True
        bot.connector.roster_status = 500  # the id can only come from the activity
        await bot.install(channel_chat())
        await bot.invoke_action("nothing.here", {}, actor=APPROVER, conversation=channel_chat())
        await bot.messenger.send_private(TENANT, APPROVER.aad_id, Reply(text="temporary password"))
        [create] = creates(bot)
        assert create.body["members"] == [{"id": APPROVER.teams_id}] and create.status == 200
        private = bot.connector.private_chats[APPROVER.teams_id]
        assert [c.text for c in bot.replies(private)] == ["temporary password"]
        assert (await bot.storage.get(f"chat/{TENANT}/{APPROVER.aad_id}")).value == {"conversation_id": private}


async def test_a_new_chat_uses_the_teams_id_from_the_roster_when_no_activity_was_seen():
    async with BotApp.started() as bot:
        bot.connector.teams_ids_only = True
        opaque = User("55555555-5555-4555-8555-555555555555", "olga@contoso.com", "Olga Opaque")
        bot.connector.add_member(opaque.aad_id, opaque.upn, opaque.name, tenant_id=TENANT, teams_id="29:1OpAqUe-x")
        await bot.install(channel_chat())
        await bot.messenger.send_private(TENANT, opaque.aad_id, Reply(text="hello"))
        [create] = creates(bot)
        assert create.body["members"] == [{"id": "29:1OpAqUe-x"}]
        assert [c.text for c in bot.replies("a:1:1-29:1OpAqUe-x")] == ["hello"]
        assert (await bot.storage.get(f"member/{TENANT}/{opaque.aad_id}")).value == {"teams_id": "29:1OpAqUe-x"}


async def test_without_a_teams_id_the_object_id_is_tried_and_works_where_the_channel_accepts_it():
    async with BotApp.started() as bot:
        bot.connector.roster_status = 500
        await bot.install(channel_chat())
        await bot.messenger.send_private(TENANT, NOBODY.aad_id, Reply(text="hello"))
        [create] = creates(bot)
        assert create.body["members"] == [{"id": NOBODY.aad_id}]
        private = bot.connector.private_chats[NOBODY.aad_id]
        assert [c.text for c in bot.replies(private)] == ["hello"]
        assert await bot.storage.get(f"convref/{private}") is not None


async def test_a_chat_the_channel_refuses_to_open_is_never_remembered():
    async with BotApp.started() as bot:
        bot.connector.teams_ids_only = True
        bot.connector.roster_status = 500
        await bot.install(channel_chat())
        with pytest.raises(DeliveryError, match="does not know that user .*404 UserNotFound") as caught:
            await bot.messenger.send_private(TENANT, NOBODY.aad_id, Reply(text="temporary password"))
        assert not caught.value.gone  # the bot was not removed anywhere
        [create] = creates(bot)  # the Playground creates the chat, then answers its first message UserNotFound
        assert create.body["members"] == [{"id": NOBODY.aad_id}]
        ghost = f"a:1:1-{NOBODY.aad_id}"
        [refused] = [c for c in bot.connector.calls if c.kind in ("send", "reply") and c.conversation_id == ghost]
        assert refused.status == 404
        assert await bot.storage.get(f"chat/{TENANT}/{NOBODY.aad_id}") is None
        assert [key for key, _ in await bot.storage.list("convref/")] == ["convref/" + channel_chat().id]
        assert bot.replies(f"a:1:1-{NOBODY.aad_id}") == []


async def test_a_chat_whose_first_message_fails_is_not_remembered():
    async with BotApp.started() as bot:
        await bot.install(channel_chat())
        bot.connector.fail(f"a:1:1-{NOBODY.teams_id}", 502)
        with pytest.raises(DeliveryError):
            await bot.messenger.send_private(TENANT, NOBODY.aad_id, Reply(text="x"))
        assert await bot.storage.get(f"chat/{TENANT}/{NOBODY.aad_id}") is None
        assert await bot.storage.get(f"convref/a:1:1-{NOBODY.teams_id}") is None


@pytest.mark.parametrize("older_version", [False, True])
async def test_the_personal_chat_the_user_wrote_in_is_reused(older_version: bool):
    async with BotApp.started() as bot:
        bot.connector.teams_ids_only = True
        await bot.install(channel_chat())
        await bot.send_message("help", actor=APPROVER, conversation=personal_chat(APPROVER))
        if older_version:  # saved before `chat/` keys were kept for personal chats: found by scanning
            doc = await bot.storage.get(f"chat/{TENANT}/{APPROVER.aad_id}")
            await bot.storage.delete(f"chat/{TENANT}/{APPROVER.aad_id}", doc.version)
        await bot.messenger.send_private(TENANT, APPROVER.aad_id, Reply(text="temporary password"))
        assert creates(bot) == []
        assert bot.replies(personal_chat(APPROVER).id)[-1].text == "temporary password"
