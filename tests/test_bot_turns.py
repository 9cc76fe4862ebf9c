"""Turns through the real HTTP + JWT path: mentions, card actions (Execute and Submit), errors, roster, references."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from botbuilder.schema import Activity, ChannelAccount, Entity

from adapters.storage import MemoryStorage
from bot.turns import strip_mention
from dialogs.contract import ActionResult, Reply, Role
from dialogs.registry import ActionSpec, CommandSpec, registry
from tests.support.botapp import APPROVER, BOT_ID, NOBODY, TECH, TENANT, BotApp, channel_chat, group_chat, personal_chat
from tests.support.cards import assert_valid_card

seen: list = []


async def _echo_action(action, ctx) -> ActionResult:
    seen.append(action)
    if action.data.get("answer") == "message":
        return ActionResult(message=f"noted, {action.actor.label}")
    return ActionResult(
        card={
            "type": "AdaptiveCard",
            "version": "1.5",
            "body": [
                {"type": "TextBlock", "text": f"pressed by {action.actor.label}: {action.data.get('n')}", "wrap": True}
            ],
        }
    )


async def _explode(cmd, ctx):
    raise RuntimeError("secret internal detail 0xDEADBEEF")


async def _whisper(cmd, ctx):
    await ctx.outbox.send_private(cmd.actor.aad_id, Reply(text="only for you"))
    return [Reply(text="sent you a private message")]


@pytest.fixture
def test_handlers() -> Iterator[None]:
    """Declare a test-only action and two hidden commands for the duration of one test."""
    reg = registry()
    reg.add_action(ActionSpec(verb="test.bot.echo", role=Role.TECHNICIAN, handler=_echo_action))
    reg.add_command(
        CommandSpec(name="test-explode", summary="t", usage="t", role=Role.ANYONE, handler=_explode, hidden=True)
    )
    reg.add_command(
        CommandSpec(name="test-whisper", summary="t", usage="t", role=Role.ANYONE, handler=_whisper, hidden=True)
    )
    seen.clear()
    try:
        yield
    finally:
        del reg.actions["test.bot.echo"]
        for name in ("test-explode", "test-whisper"):
            del reg.commands[name]
            del reg.aliases[name]


def _activity(text: str, mentions: list[tuple[str, str]]) -> Activity:
    return Activity(
        type="message",
        text=text,
        recipient=ChannelAccount(id=BOT_ID, name="Cordon"),
        entities=[
            Entity().deserialize({"type": "mention", "mentioned": {"id": mid, "name": "x"}, "text": mtext})
            for mid, mtext in mentions
        ],
    )


@pytest.mark.parametrize(
    "text, mentions, expected",
    [
        ("<at>Cordon</at> help", [(BOT_ID, "<at>Cordon</at>")], "help"),
        ("<at>Cordon</at>   CHECK   contoso.com  ", [(BOT_ID, "<at>Cordon</at>")], "CHECK contoso.com"),
        ("<AT>cordon</AT> help", [(BOT_ID, "<at>Cordon</at>")], "help"),
        ("help <at>Cordon</at>", [(BOT_ID, "<at>Cordon</at>")], "help"),
        (
            "<at>Cordon Bot</at> mfa <at>Alice</at>",
            [(BOT_ID, "<at>Cordon Bot</at>"), ("29:alice", "<at>Alice</at>")],
            "mfa Alice",
        ),
        ("help", [], "help"),
        ("<at>Cordon</at>", [(BOT_ID, "<at>Cordon</at>")], ""),
        ("check a&amp;b", [], "check a&b"),
    ],
)
def test_strip_mention(text, mentions, expected):
    assert strip_mention(_activity(text, mentions)) == expected


@pytest.mark.parametrize("chat", [personal_chat(TECH), group_chat(), channel_chat()], ids=lambda c: c.kind)
async def test_help_works_in_every_kind_of_conversation_and_saves_the_reference(chat):
    async with BotApp.started() as bot:
        assert (await bot.send_message("  HeLp  ", conversation=chat)).status == 201
        [reply] = bot.replies(chat.id)
        assert_valid_card(reply.cards[0])
        doc = await bot.storage.get(f"convref/{chat.id}")
        assert doc is not None
        assert doc.value["tenant_id"] == TENANT and doc.value["kind"] == chat.kind
        assert doc.value["reference"]["serviceUrl"] == bot.connector.url
        assert doc.value["team_id"] == chat.team_id


async def test_personal_chat_without_mention_and_unknown_command_points_to_help():
    async with BotApp.started() as bot:
        await bot.send_message("hlep", mention=False)
        [reply] = bot.replies()
        assert "Did you mean `help`" in reply.text
        assert_valid_card(reply.cards[0])


async def test_action_execute_returns_200_with_a_card_and_knows_who_pressed(test_handlers):
    async with BotApp.started() as bot:
        card_id = await _posted_echo_card(bot, personal_chat(TECH), 7)
        result = await bot.invoke_action("test.bot.echo", {"n": 7}, actor=TECH, card_message_id=card_id)
        assert result.status == 200
        assert result.body["statusCode"] == 200
        assert result.body["type"] == "application/vnd.microsoft.card.adaptive"
        assert_valid_card(result.body["value"])
        assert "pressed by tess.tech@contoso.com: 7" in result.body["value"]["body"][0]["text"]
        [action] = seen
        assert action.actor.aad_id == TECH.aad_id and action.tenant_id == TENANT
        assert action.card_message_id == card_id


async def test_action_execute_message_result_and_role_refusal(test_handlers):
    async with BotApp.started() as bot:
        ok = await bot.invoke_action("test.bot.echo", {"answer": "message"}, actor=TECH)
        assert ok.body == {
            "statusCode": 200,
            "type": "application/vnd.microsoft.activity.message",
            "value": "noted, tess.tech@contoso.com",
        }
        refused = await bot.invoke_action("test.bot.echo", {"n": 1}, actor=NOBODY)
        assert refused.status == 200
        assert refused.body["type"] == "application/vnd.microsoft.activity.message"
        assert "only Cordon technicians" in refused.body["value"]
        assert len(seen) == 1
        audit = await bot.storage.audit_tail(5)
        assert audit[0].outcome == "refused" and audit[0].actor == NOBODY.aad_id


async def test_unknown_verb_is_200_with_a_message_and_no_card():
    async with BotApp.started() as bot:
        result = await bot.invoke_action("no.such.verb", {}, actor=APPROVER)
        assert result.status == 200
        assert result.body["type"] == "application/vnd.microsoft.activity.message"
        assert "not known to this version" in result.body["value"]


async def test_invoke_without_verb_and_other_invokes():
    async with BotApp.started() as bot:
        activity = bot.activity("invoke", name="adaptiveCard/action", value={"action": {"type": "Action.Execute"}})
        result = await bot.post(activity)
        assert result.status == 200 and result.body["statusCode"] == 400
        other = await bot.post(bot.activity("invoke", name="task/fetch", value={}))
        assert other.status == 501


async def _posted_echo_card(bot: BotApp, chat, n: int = 1) -> str:
    """A card with a `test.bot.echo` button, posted by Cordon (only such a card may be replaced by the press)."""
    from dialogs.cards import card, execute

    reply = Reply(
        card=card([{"type": "TextBlock", "text": "press"}], actions=[execute("Go", "test.bot.echo", {"n": n})])
    )
    await bot.install(chat)
    message_id = await bot.messenger.send(chat.id, reply)
    assert message_id
    return message_id


async def test_action_submit_reaches_the_same_handler_and_updates_the_card_in_place(test_handlers):
    async with BotApp.started() as bot:
        chat = channel_chat()
        card_id = await _posted_echo_card(bot, chat, 3)
        result = await bot.submit_action("test.bot.echo", {"n": 3}, conversation=chat, card_message_id=card_id)
        assert result.status == 201
        [action] = seen
        assert action.data == {"n": 3} and action.card_message_id == card_id
        [update] = bot.connector.updates(chat.id)
        assert update.activity_id == card_id
        assert_valid_card(update.cards[0])
        assert "pressed by tess.tech@contoso.com: 3" in update.cards[0]["body"][0]["text"]


async def test_an_old_client_pressing_the_submit_fallback_of_a_cordon_button_reaches_the_same_handler(test_handlers):
    from dialogs.cards import execute

    button = execute("Again", "test.bot.echo", {"n": 5})
    fallback = button["fallback"]  # what a Teams client without Universal Actions renders instead
    assert fallback["type"] == "Action.Submit" and fallback["title"] == "Again"
    async with BotApp.started() as bot:
        card_id = await _posted_echo_card(bot, personal_chat(TECH), 5)
        activity = bot.activity("message", value=fallback["data"], replyToId=card_id)  # Teams: value = data
        assert (await bot.post(activity)).status == 201
        [action] = seen
        assert action.verb == "test.bot.echo" and action.data == {"n": 5}
        assert [u.activity_id for u in bot.connector.updates()] == [card_id]


async def test_action_submit_refusal_is_posted_as_text(test_handlers):
    async with BotApp.started() as bot:
        await bot.submit_action("test.bot.echo", {"n": 3}, actor=NOBODY, card_message_id="act-1")
        [reply] = bot.replies()
        assert "only Cordon technicians" in reply.text
        assert seen == [] and bot.connector.updates() == []


async def test_error_in_a_dialog_gives_an_error_card_with_correlation_id_and_no_traceback(test_handlers, caplog):
    async with BotApp.started() as bot:
        with caplog.at_level(logging.ERROR):
            result = await bot.send_message("test-explode")
        assert result.status == 201
        [reply] = bot.replies()
        card = reply.cards[0]
        assert_valid_card(card)
        shown = str(reply.body)
        assert "Correlation id:" in shown
        assert "Traceback" not in shown and "0xDEADBEEF" not in shown and "RuntimeError" not in shown
        correlation = shown.split("Correlation id: ")[1][:12]
        assert correlation in caplog.text and "0xDEADBEEF" in caplog.text  # details in the log only


async def test_roster_gives_the_upn_and_is_cached():
    async with BotApp.started() as bot:
        await bot.send_message("audit")
        await bot.send_message("audit")
        members = [c for c in bot.connector.calls if c.kind == "member"]
        assert len(members) == 1
        audit = await bot.storage.audit_tail(1)
        assert audit[0].command == "audit" and audit[0].outcome == "ok"
        assert audit[0].actor_name == f"{TECH.name} <{TECH.upn}>"  # the roster's, stored with the entry


@pytest.mark.parametrize("status", [404, 403, 500])
async def test_roster_failure_carries_on_with_the_activity(caplog, status):
    async with BotApp.started() as bot:
        bot.connector.roster_status = status
        with caplog.at_level(logging.WARNING):
            result = await bot.send_message("audit", actor=TECH)
        assert result.status == 201
        [reply] = bot.replies()
        assert "audit" in str(reply.body).lower()
        assert "roster lookup" in caplog.text


async def test_install_and_installation_update_save_references():
    async with BotApp.started() as bot:
        chat = channel_chat("19:team-sec@thread.tacv2")
        assert (await bot.install(chat)).status == 201
        doc = await bot.storage.get(f"convref/{chat.id}")
        assert doc.value["kind"] == "channel" and doc.value["channel_id"] == chat.channel_id
        group = group_chat("19:another@thread.v2")
        await bot.post(bot.activity("installationUpdate", conversation=group, action="add"))
        assert await bot.storage.get(f"convref/{group.id}") is not None
        assert bot.replies() == []  # installing says nothing by itself


async def test_outbox_send_private_opens_a_chat_once_and_reuses_it(test_handlers):
    async with BotApp.started() as bot:
        chat = channel_chat()
        await bot.send_message("test-whisper", conversation=chat)
        await bot.send_message("test-whisper", conversation=chat)
        creates = [c for c in bot.connector.calls if c.kind == "create"]
        assert len(creates) == 1
        assert creates[0].body["members"] == [{"id": TECH.teams_id}]  # the Teams id from the message, not the object id
        assert creates[0].body["channelData"]["tenant"]["id"] == TENANT and creates[0].body["isGroup"] is False
        private = bot.connector.private_chats[TECH.teams_id]
        assert [c.text for c in bot.replies(private)] == ["only for you", "only for you"]
        assert [c.text for c in bot.replies(chat.id)] == ["sent you a private message"] * 2


async def test_reference_is_saved_once_on_the_first_message_and_refreshed_on_install():
    async with BotApp.started() as bot:
        chat = channel_chat("19:team-x@thread.tacv2")
        await bot.send_message("help", conversation=chat)
        await bot.send_message("help", conversation=chat)
        assert (await bot.storage.get(f"convref/{chat.id}")).version == 1
        await bot.install(chat)
        assert (await bot.storage.get(f"convref/{chat.id}")).version == 2


class ReferenceWritesFail(MemoryStorage):
    """Fault injection: writes of conversation references fail (disk full, locked database)."""

    async def put(self, key, value, expected_version):
        if key.startswith("convref/"):
            raise OSError("database is locked")
        return await super().put(key, value, expected_version)


async def test_a_failing_reference_write_does_not_cost_the_user_the_answer(caplog):
    async with BotApp.started(storage=ReferenceWritesFail()) as bot:
        with caplog.at_level(logging.ERROR):
            assert (await bot.send_message("help")).status == 201
        assert bot.replies() and "could not save the conversation reference" in caplog.text


async def test_a_slow_command_shows_typing_in_teams_before_its_answer():
    async def slow(cmd, ctx):
        return [Reply(text="done")]

    reg = registry()
    reg.add_command(
        CommandSpec(name="test-slow", summary="t", usage="t", role=Role.ANYONE, handler=slow, slow=True, hidden=True)
    )
    try:
        async with BotApp.started() as bot:
            assert (await bot.send_message("test-slow")).status == 201
            sent = [(call.body or {}).get("type") for call in bot.connector.calls if call.kind == "reply"]
            assert sent == ["typing", "message"]
    finally:
        del reg.commands["test-slow"]
        del reg.aliases["test-slow"]
