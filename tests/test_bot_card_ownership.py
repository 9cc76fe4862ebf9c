"""A card may be replaced only by its own actions: refusals and unknown verbs update no card, and a handler's card
replaces only a card Cordon posted for that family and request (the real app, JWTs, connector and Graph stand-ins)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from adapters.storage import MemoryStorage
from bot.posted_cards import PostedCards, buttons
from dialogs import cards
from dialogs.contract import ActionResult, Role
from dialogs.lockdown import runner, state
from dialogs.registry import ActionSpec, registry
from tests.support.botapp import APPROVER, NOBODY, TECH, BotApp, personal_chat
from tests.test_lockdown_e2e import CHANNEL, E2E, e2e  # noqa: F401 - the fixture

pressed: list = []


async def _echo(action, ctx) -> ActionResult:
    pressed.append(action)
    return ActionResult(
        card=cards.card(
            [cards.text(f"echo {action.data.get('n')}")], actions=[cards.execute("Again", "test.own.echo", {"n": 1})]
        )
    )


@pytest.fixture
def echo_action() -> Iterator[None]:
    """`test.own.echo`, a button anyone may press whose handler answers with a card (like `emailauth.recheck`)."""
    reg = registry()
    reg.add_action(ActionSpec(verb="test.own.echo", role=Role.ANYONE, handler=_echo))
    pressed.clear()
    try:
        yield
    finally:
        del reg.actions["test.own.echo"]


def approval_card_id(request: dict) -> str:
    return request["card"]["message_id"]


async def still_pending_and_untouched(e2e: E2E, request: dict) -> None:  # noqa: F811
    assert (await runner.store(e2e.bot.services).get(request["id"])).request.state == state.PENDING
    assert [u for u in e2e.bot.connector.updates() if u.activity_id == approval_card_id(request)] == []


@pytest.mark.parametrize(
    "verb, data", [("no.such.verb", {}), ("emailauth.recheck", {"domain": "not a domain!"}), ("lockdown.approve", {})]
)
async def test_a_press_without_a_role_or_with_an_unknown_verb_leaves_the_approval_card_in_place(
    e2e: E2E,  # noqa: F811 - the fixture imported above
    verb: str,
    data: dict,
) -> None:
    request = await e2e.ask()
    sent_before = len(e2e.bot.replies(CHANNEL.id))
    result = await e2e.bot.submit_action(
        verb, data, actor=NOBODY, conversation=CHANNEL, card_message_id=approval_card_id(request)
    )
    assert result.status == 201
    await still_pending_and_untouched(e2e, request)
    [answer] = e2e.bot.replies(CHANNEL.id)[sent_before:]
    assert answer.text and not answer.cards  # the presser's note, as a message of its own


async def test_a_card_anyone_may_ask_for_does_not_replace_the_approval_card(e2e: E2E, echo_action) -> None:  # noqa: F811
    request = await e2e.ask()
    sent_before = len(e2e.bot.replies(CHANNEL.id))
    submitted = await e2e.bot.submit_action(
        "test.own.echo", {"n": 7}, actor=NOBODY, conversation=CHANNEL, card_message_id=approval_card_id(request)
    )
    executed = await e2e.bot.invoke_action(
        "test.own.echo", {"n": 8}, actor=NOBODY, conversation=CHANNEL, card_message_id=approval_card_id(request)
    )
    assert submitted.status == 201 and executed.status == 200
    assert [p.card_message_id for p in pressed] == [None, None]  # the handler is not told it may update that card
    await still_pending_and_untouched(e2e, request)
    [posted] = e2e.bot.replies(CHANNEL.id)[sent_before:]  # the Submit's card: a new message, not an update
    assert posted.cards and "echo 7" in str(posted.cards[0])


async def test_an_approval_names_only_its_own_card(e2e: E2E, echo_action) -> None:  # noqa: F811
    """An approver's press pointing at another card (another family) does not move the request's card there."""
    request = await e2e.ask()
    other = await e2e.bot.invoke_action("test.own.echo", {"n": 1}, actor=TECH, conversation=CHANNEL)
    assert other.status == 200
    sent = await e2e.bot.submit_action("test.own.echo", {"n": 2}, actor=TECH, conversation=CHANNEL)
    assert sent.status == 201
    echo_card_id = e2e.bot.replies(CHANNEL.id)[-1].new_id
    assert echo_card_id
    payload = {"request_id": request["id"], "nonce": request["nonce"]}
    result = await e2e.bot.invoke_action(
        "lockdown.approve", payload, actor=APPROVER, conversation=CHANNEL, card_message_id=echo_card_id
    )
    assert result.status == 200
    done = await e2e.finished()
    assert done["state"] == state.DONE
    assert {u.activity_id for u in e2e.bot.connector.updates()} == {approval_card_id(request)}


async def test_a_card_cordon_posted_for_the_family_is_replaced_in_place(echo_action) -> None:
    async with BotApp.started() as bot:
        chat = personal_chat(NOBODY)
        await bot.submit_action("test.own.echo", {"n": 1}, actor=NOBODY, conversation=chat)
        [posted] = bot.replies(chat.id)
        result = await bot.submit_action(
            "test.own.echo", {"n": 2}, actor=NOBODY, conversation=chat, card_message_id=posted.new_id
        )
        assert result.status == 201
        assert pressed[-1].card_message_id == posted.new_id
        [update] = bot.connector.updates(chat.id)
        assert update.activity_id == posted.new_id and "echo 2" in str(update.cards[0])


async def test_posted_card_records_check_family_request_conversation_and_expire() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    clock = [now]
    storage = MemoryStorage()
    posted = PostedCards(storage, lambda: clock[0], retention={"alerts": dt.timedelta(days=30)})
    alert = cards.card(
        [cards.text("alert")],
        actions=[
            cards.execute("Confirm", "alerts.confirm", {"card": "a" * 32}),
            cards.execute("Dismiss", "alerts.dismiss", {"card": "a" * 32}),
        ],
    )
    assert buttons(alert) == ({"alerts"}, {"a" * 32})
    await posted.record("19:c@thread.tacv2", "m-1", alert)
    await posted.record("19:c@thread.tacv2", "m-2", cards.card([cards.text("no buttons")]))
    thread = "19:c@thread.tacv2;messageid=m-1"  # a press on a new post arrives in its own thread
    assert await posted.may_replace(thread, "m-1", "alerts.dismiss", {"card": "a" * 32})
    assert not await posted.may_replace(thread, "m-1", "alerts.dismiss", {"card": "b" * 32})  # another alert
    assert not await posted.may_replace(thread, "m-1", "lockdown.approve", {})  # another family
    assert not await posted.may_replace("19:other@thread.tacv2", "m-1", "alerts.dismiss", {"card": "a" * 32})
    assert not await posted.may_replace(thread, "m-2", "alerts.dismiss", {})  # no buttons: not recorded
    assert not await posted.may_replace(thread, None, "alerts.dismiss", {})
    clock[0] = now + dt.timedelta(days=31)
    assert not await posted.may_replace(thread, "m-1", "alerts.dismiss", {"card": "a" * 32})
    assert await posted.prune() == 1 and await storage.list("postedcard/") == []
