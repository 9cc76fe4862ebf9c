"""Acceptance review of the lock-down: a password Graph echoes back, ids in any case, replayed cards, break-glass
by either name in any case, lookalike forwarding domains, rules that hide only some mail, the reset's note, and
attacker-written rules that must not push the card over Teams' size limit."""

from __future__ import annotations

import json
import logging

import pytest

from adapters.graph.containment import Containment
from adapters.graph.containment import InboxRule as Rule
from adapters.storage import MemoryStorage
from dialogs.contract import Actor
from dialogs.lockdown import rules, state, steps
from dialogs.lockdown.model import LockdownRequest
from tests.support.cards import assert_valid_card
from tests.support.graph_standin.lockdown_payloads import mail_folder, message_rule
from tests.support.graph_standin.lockdown_world import RecordingMessenger, world_fixture  # noqa: F401
from tests.support.graph_standin.state import Fault, error_body
from tests.test_lockdown_flow import TECH, Flow, button_data, texts, toggles

PASSWORD = "Qx7!echoed-Back-Secret"


def with_lockdown(world, **settings: str):
    return world.config.model_copy(update={"lockdown": world.config.lockdown.model_copy(update=settings)})


def only(card: dict, *chosen: str) -> dict:
    """The Approve press with exactly these steps switched on."""
    return {**button_data(card), **{k: "true" if k[len("step_") :] in chosen else "false" for k in toggles(card)}}


@pytest.mark.parametrize("padding", [0, 178])  # 178: the password straddles where the Graph message is cut
async def test_a_password_graph_echoes_in_its_error_reaches_no_card_store_audit_or_log(
    world, caplog, monkeypatch, padding
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(steps, "temporary_password", lambda length=20: PASSWORD)
    message = "x" * padding + f"The password {PASSWORD} does not comply with the password complexity requirements."
    world.standin.add_fault(
        Fault(r"/users/[^/?]+$", 400, method="PATCH", times=-1, body=error_body(400, "Request_BadRequest", message))
    )
    messenger = RecordingMessenger()
    flow = Flow(world, MemoryStorage(), messenger=messenger)
    await flow.say("lockdown alice@contoso.com")
    await flow.press("lockdown.approve", only(flow.outbox.sent[0].card, "reset_password"))
    await flow.drain()
    done = await flow.only_request()
    assert done["state"] == state.FAILED
    detail = done["results"]["reset_password"]["detail"]
    assert detail.startswith("Graph rejected the request to reset the user's password in Contoso")
    if not padding:
        assert "The password [password] does not comply" in detail
    everything = json.dumps(
        [
            [(c, m, r.text, r.card) for c, m, r in messenger.updates],
            messenger.private,
            [vars(e) for e in await flow.services.storage.audit_tail(500)],
            await flow.requests(),
        ],
        default=str,
    )
    logged = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    for fragment in (PASSWORD, PASSWORD[:8], PASSWORD[-8:]):
        assert fragment not in everything and not any(fragment in line for line in logged)
    assert messenger.private == []


async def test_the_graph_error_of_a_reset_does_not_carry_the_password_as_its_cause(world) -> None:
    world.standin.add_fault(
        Fault(r"/users/[^/?]+$", 400, method="PATCH", body=error_body(400, "Request_BadRequest", f"bad {PASSWORD}"))
    )
    from adapters.graph.errors import GraphProblem

    with pytest.raises(GraphProblem) as caught:
        await Containment(world.gateway, world.config.tenants[0]).reset_password(world.people["alice"]["id"], PASSWORD)
    assert PASSWORD not in str(caught.value) and caught.value.__cause__ is None
    assert caught.value.__suppress_context__ and caught.value.kind == "bad_request"


async def test_the_requester_is_known_whatever_the_case_of_their_object_id(world) -> None:
    flow = Flow(world, MemoryStorage())
    await flow.say("lockdown alice@contoso.com")
    card = flow.outbox.sent[0].card
    request = await flow.only_request()
    shouting = Actor(TECH.aad_id.upper(), "TESS.TECH@CONTOSO.COM", TECH.name)
    for verb, title in (("lockdown.approve", "Approve"), ("lockdown.reject", "Reject")):
        refused = await flow.press(verb, button_data(card, title), actor=shouting)
        assert "another approver must decide" in refused.message
    assert (await flow.only_request())["state"] == state.PENDING and world.data.writes == []
    (ok,) = await flow.say(f"lockdown cancel {request['id']}", actor=shouting)
    assert ok.text.startswith("Cancelled")


async def test_a_replayed_or_transplanted_nonce_changes_nothing(world) -> None:
    flow = Flow(world, MemoryStorage())
    await flow.say("lockdown alice@contoso.com")
    first_card = flow.outbox.sent[0].card
    await flow.say("lockdown bob@contoso.com")
    second = next(r for r in await flow.requests() if r["target"]["upn"] == "bob@contoso.com")
    transplanted = {**button_data(first_card), "request_id": second["id"]}
    assert "does not match" in (await flow.press("lockdown.approve", transplanted)).message
    world.clock.advance(minutes=31)  # the first card expires unanswered; the user is asked for again
    await flow.say("lockdown alice@contoso.com second try")
    replay = await flow.press("lockdown.approve", button_data(first_card))
    assert "expired" in replay.message
    stored = [LockdownRequest.from_document(r) for r in await flow.requests()]
    live = [r for r in stored if r.state == state.PENDING and not state.is_expired(r, world.clock())]
    assert [r.reason for r in live] == ["second try"] and world.data.writes == []


@pytest.mark.parametrize(
    ("listed", "typed"),
    [
        ("id-upper", "breakglass@contoso.com"),
        ("EMERGENCY-UPN", "id-upper"),
        ("EMERGENCY-UPN", "id-lower"),
    ],
)
async def test_break_glass_is_refused_by_either_name_in_any_case(world, listed, typed) -> None:
    glass = world.people["breakglass"]
    names = {"id-upper": glass["id"].upper(), "id-lower": glass["id"], "EMERGENCY-UPN": "BreakGlass@CONTOSO.com"}
    tenant = world.config.tenants[0].model_copy(update={"break_glass": [names[listed]]})
    flow = Flow(world, MemoryStorage(), config=world.config.model_copy(update={"tenants": [tenant]}))
    (reply,) = await flow.say(f"lockdown {names.get(typed, typed)}")
    assert "never locks it down" in reply.text and await flow.requests() == []
    (reply,) = await flow.say(f"unlock {names.get(typed, typed)}")
    assert "never locks it down" in reply.text and await flow.requests() == []


@pytest.mark.parametrize(
    "address",
    [
        "thief@contoso.com.evil.net",
        "thief@contoso-com.net",
        "thief@notcontoso.com",
        "thief@contoso.co",
        "thief@cοntoso.com",  # a Greek omicron
        "thief@contoso.com.",
        "contoso.com@evil.net",
        "thief@contoso.onmicrosoft.com.evil.net",
    ],
)
def test_lookalike_and_suffix_domains_are_outside_the_tenant(address: str) -> None:
    domains = ["contoso.com", "contoso.onmicrosoft.com"]
    verdict = rules.assess(Rule("r", "r", True, forward_to=(address,)), domains)
    if address == "thief@contoso.com.":  # the root-dot form of the tenant's own domain
        assert verdict.disable == ()
    else:
        assert verdict.disable and address in verdict.disable[0]


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        (
            Rule("r", "r", True, move_to_folder="Deleted Items", move_to_hidden=True, conditions=("subject: hacked",)),
            "moves to Deleted Items mail matching subject: hacked",
        ),
        (
            Rule("r", "r", True, move_to_folder="Archive", move_to_hidden=True, conditions=("subject: invoice",)),
            "moves to Archive mail matching subject: invoice",
        ),
        (
            Rule("r", "r", True, move_to_folder="RSS Feeds", move_to_hidden=True, conditions=("from: ceo@",)),
            "moves to RSS Feeds mail matching from: ceo@",
        ),
        (
            Rule("r", "r", True, delete=True, mark_as_read=True, conditions=("body: wire",)),
            "deletes and marks as read mail matching body: wire",
        ),
    ],
)
def test_rules_hiding_only_some_mail_are_flagged_for_a_human(rule: Rule, says: str) -> None:
    verdict = rules.assess(rule, ["contoso.com"])
    assert verdict.disable == () and verdict.review == (says,)


async def test_hiding_rules_and_nameless_recipients_are_flagged_on_the_card(world) -> None:
    aid = world.people["alice"]["id"]
    archive = world.data.add_folder(aid, mail_folder("Archive"), "archive")
    german_rss = world.data.add_folder(aid, mail_folder("RSS-Feeds"))  # no well-known name: known by its name
    deleted = next(f for f in world.data.folders[aid].values() if f["displayName"] == "Deleted Items")
    nameless = message_rule("Forward to a contact", sequence=7)
    nameless["actions"]["forwardTo"] = [{"emailAddress": {"name": "Mr Collector"}}]
    world.data.rules[aid] = [
        message_rule(
            "Hide fraud replies",
            move_to_folder=deleted["id"],
            sequence=1,
            conditions={"bodyContains": ["hacked", "phishing"]},
        ),
        message_rule(
            "Archive invoices", move_to_folder=archive["id"], sequence=2, conditions={"subjectContains": ["invoice"]}
        ),
        nameless,
        message_rule("Verstecken", move_to_folder=german_rss["id"], sequence=8),  # every message, out of sight
    ]
    flow = Flow(world, MemoryStorage())
    await flow.say("lockdown alice@contoso.com")
    await flow.press("lockdown.approve", only(flow.outbox.sent[0].card, "inbox_rules"))
    await flow.drain()
    final = flow.outbox.updates[-1][1].card
    assert_valid_card(final)
    shown = texts(final)
    assert "“Hide fraud replies”" in shown and "check: moves to Deleted Items mail matching body_contains" in shown
    assert "check: moves to Archive mail matching subject_contains: invoice" in shown
    assert "check: forwards mail to mr collector (not an e-mail address: check it)" in shown
    assert "Disabled: “Verstecken”: all mail → move to RSS-Feeds — moves to RSS-Feeds all incoming mail" in shown
    assert len(world.writes("rule")) == 1  # only that one: hiding some mail is flagged for a human, not disabled


async def test_a_folder_whose_name_cannot_be_read_is_never_shown_as_its_raw_id(world) -> None:
    aid = world.people["alice"]["id"]
    gone = "AAMkAGI2TG93AAA" + "x" * 40 + "="  # deleted since, or not readable: the id is all Graph gave
    world.data.rules[aid] = [
        message_rule("Hide replies", move_to_folder=gone, sequence=1, conditions={"subjectContains": ["hacked"]})
    ]
    flow = Flow(world, MemoryStorage())
    await flow.say("lockdown alice@contoso.com")
    await flow.press("lockdown.approve", only(flow.outbox.sent[0].card, "inbox_rules"))
    await flow.drain()
    for card in flow.cards():
        assert_valid_card(card)
        assert "AAMkAG" not in texts(card)
    assert "move to a folder Cordon could not name" in texts(flow.outbox.updates[-1][1].card)


@pytest.mark.parametrize(
    ("delivery", "says"),
    [("approver_chat", "only the approver sees it, in a 1:1 chat"), ("none", "by configuration nobody is shown it")],
)
async def test_the_reset_step_on_the_card_says_where_the_password_will_go(world, delivery, says) -> None:
    flow = Flow(world, MemoryStorage(), config=with_lockdown(world, password_delivery=delivery))
    await flow.say("lockdown alice@contoso.com")
    card = flow.outbox.sent[0].card
    assert_valid_card(card)
    assert says in texts(card)


@pytest.mark.parametrize("inbox_step", ["true", "false"])  # the rules under the step, or in the summary
async def test_rules_full_of_the_attackers_emoji_keep_every_card_under_the_teams_limit(world, inbox_step) -> None:
    aid = world.people["alice"]["id"]
    deleted = next(f for f in world.data.folders[aid].values() if f["displayName"] == "Deleted Items")
    devil = "😈" * 255  # 4 bytes each in UTF-8: a 255-character name is a kilobyte
    world.data.rules[aid] = [
        message_rule(
            devil,
            forward_to=[f"{'😈' * 40}{i}@evil.example", f"{'x' * 60}{i}@evil2.example"],
            conditions={"subjectContains": ["😈" * 50] * 5},
            sequence=i,
        )
        for i in range(30)
    ] + [
        message_rule(
            devil, move_to_folder=deleted["id"], conditions={"bodyContains": ["😈" * 50] * 5}, sequence=100 + i
        )
        for i in range(30)
    ]
    flow = Flow(world, MemoryStorage())
    await flow.say("lockdown alice@contoso.com " + "😈" * 300)
    await flow.press(
        "lockdown.approve",
        {**button_data(flow.outbox.sent[0].card), "step_inbox_rules": inbox_step, "comment": "😈" * 300},
    )
    await flow.drain()
    for card in flow.cards():
        assert_valid_card(card)  # includes the 28 KB limit
    final = texts(flow.outbox.updates[-1][1].card)
    assert "Done" in final and "Investigation (last 7 days)" in final
    assert ("Disabled: and" if inbox_step == "true" else "Left as they were: and") in final
