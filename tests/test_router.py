"""The one gate: command splitting, help by role, did-you-mean, audited refusals, error cards, card actions."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from adapters.config import CordonConfig, RolesConfig
from adapters.roles import RoleResolver
from adapters.storage import MemoryStorage
from dialogs import cards
from dialogs.contract import (
    ActionResult,
    Actor,
    CardAction,
    Command,
    Conversation,
    DialogContext,
    Reply,
    Role,
    Services,
)
from dialogs.registry import ActionSpec, CommandSpec, Registry
from dialogs.router import Router, help_card, split_command
from tests.support.cards import assert_valid_card

TECH = "11111111-1111-1111-1111-111111111111"
APPROVER = "22222222-2222-2222-2222-222222222222"
PLAIN = "33333333-3333-3333-3333-333333333333"
GROUP = "44444444-4444-4444-4444-444444444444"
TENANT = "55555555-5555-5555-5555-555555555555"
CONVERSATION = Conversation(id="19:test@thread.tacv2", kind="channel", tenant_id=TENANT)


class RecordingOutbox:
    """An Outbox that keeps what dialogs sent, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    async def send(self, reply: Reply, conversation_id: str | None = None) -> str | None:
        self.events.append(("send", reply))
        return f"msg-{len(self.events)}"

    async def update(self, message_id: str, reply: Reply, conversation_id: str | None = None) -> None:
        self.events.append(("update", message_id))

    async def typing(self) -> None:
        self.events.append(("typing", None))

    async def send_private(self, user_aad_id: str, reply: Reply) -> str | None:
        self.events.append(("private", user_aad_id))
        return None


class Harness:
    """A router over a registry of small test dialogs that record how they were called."""

    def __init__(self, group_checker: Any = None) -> None:
        self.calls: list[Command | CardAction] = []
        self.storage = MemoryStorage()
        self.outbox = RecordingOutbox()
        self.registry = Registry()
        self._declare()
        roles = RolesConfig(technicians=[TECH, GROUP], approvers=[APPROVER])
        services = Services(config=CordonConfig(roles=roles), storage=self.storage)
        self.router = Router(services, RoleResolver(roles, group_checker), self.registry)

    def _declare(self) -> None:
        async def record(cmd: Command, ctx: DialogContext) -> list[Reply]:
            self.calls.append(cmd)
            return [Reply(text=f"ran {cmd.name} with {list(cmd.args)}")]

        async def explode(cmd: Command, ctx: DialogContext) -> list[Reply]:
            raise RuntimeError("secret-detail-xyz: database password hunter2")

        async def slow(cmd: Command, ctx: DialogContext) -> list[Reply]:
            self.calls.append(cmd)
            ctx.outbox.events.append(("handler", None))  # type: ignore[attr-defined]
            return []

        async def press(act: CardAction, ctx: DialogContext) -> ActionResult:
            self.calls.append(act)
            return ActionResult(card=cards.card([cards.text(f"pressed by {act.actor.label}")]))

        async def press_explodes(act: CardAction, ctx: DialogContext) -> ActionResult:
            raise KeyError("boom-detail")

        add = self.registry.add_command
        add(CommandSpec("check", "Check a domain.", "check example.com", Role.ANYONE, record, aliases=("dns",)))
        add(CommandSpec("lookup", "Read the directory.", "lookup alice", Role.TECHNICIAN, record))
        add(CommandSpec("approve", "Approve a request.", "approve 12", Role.APPROVER, record))
        add(CommandSpec("crash", "Always fails.", "crash", Role.ANYONE, explode))
        add(CommandSpec("report", "Takes a while.", "report", Role.ANYONE, slow, slow=True))
        add(CommandSpec("secret", "Not listed.", "secret", Role.ANYONE, record, hidden=True))
        self.registry.add_action(ActionSpec("approve_request", Role.APPROVER, press))
        self.registry.add_action(ActionSpec("explode", Role.ANYONE, press_explodes))

    async def text(self, text: str, aad_id: str | None = PLAIN) -> list[Reply]:
        return await self.router.handle_text(
            text,
            Actor(aad_id=aad_id, upn="u@example.com"),
            TENANT,
            CONVERSATION,
            self.outbox,
            message_id="1700000000000",
        )

    async def action(self, verb: str, data: dict[str, Any], aad_id: str = PLAIN) -> ActionResult:
        return await self.router.handle_action(
            verb, data, Actor(aad_id=aad_id), TENANT, CONVERSATION, self.outbox, card_message_id="card-1"
        )


def card_text(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("help", ("help", ())),
        ("  HeLp  ", ("help", ())),
        ("CHECK   Example.COM  ", ("check", ("Example.COM",))),
        ("lookup\t alice   bob", ("lookup", ("alice", "bob"))),
        ('lockdown "Alice Smith" now', ("lockdown", ("Alice Smith", "now"))),
        ("say it's fine", ("say", ("it's", "fine"))),  # a stray quote is taken literally, not an error
        ("", ("", ())),
        ("   \n  ", ("", ())),
    ],
)
def test_split_command_is_case_insensitive_and_ignores_extra_spaces(text: str, expected: tuple) -> None:
    assert split_command(text) == expected


async def test_command_word_is_matched_case_insensitively_with_extra_spaces() -> None:
    h = Harness()
    replies = await h.text("   CHECK    example.com   ")
    assert [r.text for r in replies] == ["ran check with ['example.com']"]
    command = h.calls[0]
    assert isinstance(command, Command)
    assert command.name == "check" and command.args == ("example.com",) and command.message_id == "1700000000000"
    assert command.tenant_id == TENANT and command.conversation == CONVERSATION


async def test_alias_reaches_the_same_command() -> None:
    h = Harness()
    await h.text("DNS example.org")
    assert h.calls[0].name == "check"


async def test_empty_text_answers_with_help() -> None:
    h = Harness()
    replies = await h.text("   ")
    assert replies and replies[0].card is not None
    assert_valid_card(replies[0].card)
    assert "what I can do" in card_text(replies[0].card)


@pytest.mark.parametrize(
    ("aad_id", "shown", "not_shown", "hidden_count"),
    [
        (PLAIN, ["check", "crash"], ["lookup", "approve", "secret"], 2),
        (TECH, ["check", "lookup"], ["approve", "secret"], 1),
        (APPROVER, ["check", "approve"], ["lookup", "secret"], 1),
    ],
)
async def test_help_lists_only_the_commands_the_sender_may_run(
    aad_id: str, shown: list[str], not_shown: list[str], hidden_count: int
) -> None:
    h = Harness()
    roles = await h.router.roles.roles(aad_id, TENANT)
    card = help_card(h.registry, Actor(aad_id=aad_id, roles=roles))
    assert_valid_card(card)
    text = card_text(card)
    for name in shown:
        assert f"**{name}" in text
    for name in not_shown:
        assert f"**{name}" not in text
    assert f"{hidden_count} more command(s) need" in text


async def test_unknown_command_suggests_the_closest_and_shows_help() -> None:
    h = Harness()
    replies = await h.text("chekc example.com")
    assert len(replies) == 1
    assert "I don't know the command `chekc`" in replies[0].text
    assert "Did you mean `check`?" in replies[0].text
    assert "help" in replies[0].text
    assert_valid_card(replies[0].card)
    assert "**check" in card_text(replies[0].card)
    assert h.calls == []


async def test_unknown_command_far_from_any_gives_no_suggestion() -> None:
    h = Harness()
    replies = await h.text("zzzzqqq")
    assert "Did you mean" not in replies[0].text and "Type `help`" in replies[0].text
    assert_valid_card(replies[0].card)


async def test_an_unknown_word_is_echoed_without_live_markdown() -> None:
    """In a channel everyone sees Cordon's answer: a typed word must not turn into a link Cordon appears to post."""
    h = Harness()
    replies = await h.text("x`[Reset](https://ev.il/pw)`x")
    text = replies[0].text
    assert "](" not in text and "https[:]//ev.il/pw" in text  # shown, but not as a link
    assert text.count("`") == 4  # only Cordon's own code spans: around the word and around `help`


async def test_refusal_is_polite_audited_and_never_runs_the_handler() -> None:
    h = Harness()
    replies = await h.text("lookup alice")
    assert h.calls == []
    assert len(replies) == 1 and replies[0].card is None
    assert "only Cordon technicians may run `lookup`" in replies[0].text
    assert "recorded" in replies[0].text
    [entry] = await h.storage.audit_tail(10)
    assert (entry.actor, entry.command, entry.outcome, entry.target) == (PLAIN, "lookup", "refused", "alice")
    assert entry.detail == "needs technician" and entry.tenant == TENANT and entry.conversation == CONVERSATION.id
    assert entry.at.endswith("+00:00")


async def test_an_approver_is_not_implicitly_a_technician() -> None:
    h = Harness()
    replies = await h.text("lookup alice", aad_id=APPROVER)
    assert "only Cordon technicians" in replies[0].text and h.calls == []
    replies = await h.text("approve 12", aad_id=APPROVER)
    assert replies[0].text == "ran approve with ['12']"


async def test_a_sender_without_an_aad_id_holds_no_role() -> None:
    h = Harness()
    replies = await h.text("lookup alice", aad_id=None)
    assert "only Cordon technicians" in replies[0].text
    [entry] = await h.storage.audit_tail(5)
    assert entry.outcome == "refused"


async def test_role_from_group_membership_and_a_failing_group_check_grants_nothing() -> None:
    async def member(tenant: str, user: str, groups: list[str]) -> set[str]:
        return {GROUP} if user == PLAIN else set()

    async def outage(tenant: str, user: str, groups: list[str]) -> set[str]:
        raise ConnectionError("graph unreachable")

    allowed = Harness(group_checker=member)
    assert (await allowed.text("lookup alice"))[0].text == "ran lookup with ['alice']"
    refused = Harness(group_checker=outage)
    assert "only Cordon technicians" in (await refused.text("lookup alice"))[0].text


async def test_allowed_restricted_commands_are_audited_and_open_ones_are_not() -> None:
    h = Harness()
    await h.text("lookup bob", aad_id=TECH)
    await h.text("check example.com", aad_id=TECH)
    entries = await h.storage.audit_tail(10)
    assert [(e.command, e.outcome, e.target) for e in entries] == [("lookup", "ok", "bob")]


async def test_slow_command_shows_typing_before_the_handler_runs() -> None:
    h = Harness()
    await h.text("report")
    assert [kind for kind, _ in h.outbox.events] == ["typing", "handler"]


async def test_a_failing_dialog_gives_an_error_card_and_the_traceback_only_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness()
    with caplog.at_level(logging.ERROR, logger="dialogs.router"):
        replies = await h.text("crash")
    assert len(replies) == 1 and replies[0].text is None
    card = replies[0].card
    assert_valid_card(card)
    shown = card_text(card)
    assert "failed unexpectedly" in shown
    assert "secret-detail-xyz" not in shown and "hunter2" not in shown and "Traceback" not in shown
    correlation = shown.split("Correlation id: ")[1].split('"')[0]
    assert len(correlation) == 12
    [record] = [r for r in caplog.records if correlation in r.getMessage()]
    assert record.exc_info and "secret-detail-xyz" in str(record.exc_info[1])
    [entry] = await h.storage.audit_tail(5)
    assert (entry.command, entry.outcome, entry.detail) == ("crash", "error", correlation)


async def test_card_action_reaches_its_handler_when_the_role_allows() -> None:
    h = Harness()
    result = await h.action("approve_request", {"request_id": "r-1"}, aad_id=APPROVER)
    assert_valid_card(result.card)
    [act] = h.calls
    assert isinstance(act, CardAction)
    assert act.verb == "approve_request" and act.data == {"request_id": "r-1"}
    assert act.card_message_id == "card-1" and act.actor.has(Role.APPROVER)


async def test_card_action_refusal_is_a_private_note_and_audited() -> None:
    h = Harness()
    result = await h.action("approve_request", {"request_id": "r-9"}, aad_id=TECH)
    assert result.card is None and "only Cordon approvers may press this button" in result.message
    assert h.calls == []
    [entry] = await h.storage.audit_tail(5)
    assert (entry.command, entry.outcome, entry.target) == ("action:approve_request", "refused", "r-9")


async def test_unknown_card_verb_gets_a_message_for_the_presser_and_no_card() -> None:
    """A card in the answer would replace the pressed card (for everyone, with Action.Submit)."""
    h = Harness()
    result = await h.action("no_such_verb", {})
    assert result.card is None
    assert result.message and "not known to this version" in result.message


async def test_failing_card_action_gives_an_error_card_with_correlation(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness()
    with caplog.at_level(logging.ERROR, logger="dialogs.router"):
        result = await h.action("explode", {"target": "t"})
    assert_valid_card(result.card)
    shown = card_text(result.card)
    assert "Correlation id: " in shown and "boom-detail" not in shown
    correlation = shown.split("Correlation id: ")[1].split('"')[0]
    assert any(correlation in r.getMessage() and r.exc_info for r in caplog.records)
    [entry] = await h.storage.audit_tail(5)
    assert (entry.command, entry.outcome, entry.detail) == ("action:explode", "error", correlation)


async def test_roles_claimed_by_the_caller_are_ignored_only_configuration_counts() -> None:
    h = Harness()
    forged = Actor(aad_id=PLAIN, roles=frozenset({Role.TECHNICIAN, Role.APPROVER}))
    replies = await h.router.handle_text("lookup alice", forged, TENANT, CONVERSATION, h.outbox)
    assert "only Cordon technicians" in replies[0].text and h.calls == []
    result = await h.router.handle_action(
        "approve_request", {"request_id": "r-1"}, forged, TENANT, CONVERSATION, h.outbox
    )
    assert result.message and "only Cordon approvers" in result.message and h.calls == []


async def test_typed_arguments_and_card_inputs_cannot_carry_a_disguised_link() -> None:
    """Dialogs echo what was typed (errors, reasons on cards): the router makes it inert once, for all of them."""
    assert split_command("check [Reset your password](https://evil.example) `x`") == (
        "check",
        ("[Reset", "your", "password] (https[:]//evil.example)", "'x'"),
    )
    seen: list[dict] = []
    reg = Registry()

    async def echo(act, ctx):
        seen.append(act.data)
        return ActionResult(message="ok")

    reg.add_action(ActionSpec(verb="test.echo", role=Role.ANYONE, handler=echo))
    router = Router(Services(config=CordonConfig(), storage=MemoryStorage()), RoleResolver(RolesConfig()), reg)
    await router.handle_action(
        "test.echo",
        {"comment": "see [this](https://evil.example)", "n": 3},
        Actor("u"),
        None,
        Conversation("c", "personal"),
        None,
    )
    assert seen == [{"comment": "see [this] (https[:]//evil.example)", "n": 3}]


@pytest.mark.parametrize(
    "typed, shown",
    [
        ("https://evil.example/reset", "https[:]//evil.example/reset"),
        ("<https://evil.example/reset>", "‹https[:]//evil.example/reset›"),
        ('<a href="https://evil.example">Reset</a>', '‹a href="https[:]//evil.example"›Reset‹/a›'),
        ("HTTP://EVIL.example", "HTTP[:]//EVIL.example"),
        ("mailto://x@evil.example", "mailto[:]//x@evil.example"),
        ("contoso.com", "contoso.com"),
        ("alice@contoso.com", "alice@contoso.com"),
    ],
)
def test_raw_urls_autolinks_and_html_anchors_in_typed_arguments_are_inert(typed: str, shown: str) -> None:
    """Teams links a raw URL, an autolink and an HTML anchor just as it does a markdown link."""
    assert cards.inert(typed) == shown
    args = " ".join(split_command(f"lockdown alice@contoso.com {typed}")[1])
    assert shown.replace('"', "") in args and "://" not in args and "<" not in args  # shlex drops the quotes


async def test_a_refused_press_stores_its_target_inert_and_on_one_line() -> None:
    storage = MemoryStorage()
    reg = Registry()

    async def never(act, ctx):
        raise AssertionError("a refused press must not run")

    reg.add_action(ActionSpec(verb="test.approve", role=Role.APPROVER, handler=never))
    router = Router(Services(config=CordonConfig(), storage=storage), RoleResolver(RolesConfig()), reg)
    hostile = "r-1\r\n2026-01-01 approved by admin [Open](https://evil.example) <https://evil.example>"
    result = await router.handle_action(
        "test.approve", {"request_id": hostile}, Actor("u"), None, Conversation("c", "personal"), None
    )
    assert result.message and result.card is None
    [entry] = await storage.audit_tail(5)
    assert entry.outcome == "refused"
    assert "\n" not in entry.target and "\r" not in entry.target
    assert "](" not in entry.target and "://" not in entry.target and "<" not in entry.target
    assert entry.target.startswith("r-1 2026-01-01 approved by admin")
