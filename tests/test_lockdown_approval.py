"""Who may decide, on what, and when: self-approval, the gate, edited cards, expiry, reject, cancel, bad input,
the approvals channel, and the temporary password's only destination."""

from __future__ import annotations

import logging

import pytest

from adapters.storage import MemoryStorage
from dialogs.contract import Conversation
from dialogs.lockdown import runner, state
from tests.support.cards import assert_valid_card
from tests.support.graph_standin.lockdown_world import RecordingMessenger, lockdown_config, world_fixture  # noqa: F401
from tests.test_lockdown_flow import (
    APPROVER,
    APPROVER2,
    CONV,
    NOBODY,
    TEAMS_TENANT,
    TECH,
    Flow,
    button_data,
    texts,
    toggles,
)


async def asked(world, text: str = "lockdown alice@contoso.com phished", **kw) -> tuple[Flow, dict, dict]:
    flow = Flow(world, MemoryStorage(), **kw)
    await flow.say(text)
    return flow, flow.outbox.sent[0].card, await flow.only_request()


async def audit(flow: Flow) -> list[tuple[str, str, str | None]]:
    return [(e.command, e.outcome, e.detail) for e in await flow.services.storage.audit_tail(200)]


async def test_the_requester_cannot_approve_even_as_an_approver(world) -> None:
    flow, card, request = await asked(world)  # TECH is also an approver in this config
    result = await flow.press("lockdown.approve", button_data(card), actor=TECH)
    assert result.card is None and "another approver must decide" in result.message
    rejected = await flow.press("lockdown.reject", button_data(card, "Reject"), actor=TECH)
    assert f"lockdown cancel {request['id']}" in rejected.message
    assert (await flow.only_request())["state"] == state.PENDING
    assert [(c, o) for c, o, d in await audit(flow) if d == "self-approval"] == [
        ("lockdown:reject", "refused"),
        ("lockdown:approve", "refused"),
    ]
    assert world.data.writes == []


async def test_people_without_the_approver_role_are_refused_by_the_gate(world) -> None:
    cfg = lockdown_config(
        world.standin.url, roles={"technicians": [TECH.aad_id, NOBODY.aad_id], "approvers": [APPROVER.aad_id]}
    )
    flow, card, _ = await asked(world, config=cfg)
    result = await flow.press("lockdown.approve", button_data(card), actor=NOBODY)
    assert "only Cordon approvers may press this button" in result.message
    assert ("action:lockdown.approve", "refused", "needs approver") in await audit(flow)
    assert (await flow.only_request())["state"] == state.PENDING


async def test_a_press_from_another_tenant_is_refused(world) -> None:
    flow, card, _ = await asked(world)
    result = await flow.press("lockdown.approve", button_data(card), tenant="0badc0de-0000-4000-8000-000000000bad")
    assert "another organisation" in result.message
    assert (await flow.only_request())["state"] == state.PENDING


async def test_an_edited_card_payload_changes_nothing(world) -> None:
    flow, card, request = await asked(world)
    forged = {**button_data(card), "nonce": "guessed"}
    assert "does not match" in (await flow.press("lockdown.approve", forged)).message
    unknown = {**button_data(card), "request_id": state.new_request_id()}
    assert "does not exist" in (await flow.press("lockdown.approve", unknown)).message
    bob = world.people["bob"]
    edited = {
        **button_data(card),
        "target": {"id": bob["id"], "upn": "bob@contoso.com"},
        "requester": APPROVER2.aad_id,
        "steps": ["enable_sign_in"],
        "step_enable_sign_in": "true",
        "tenant_id": "x",
        "kind": "unlock",
    }
    result = await flow.press("lockdown.approve", edited)
    assert result.card is not None
    await flow.drain()
    done = await flow.only_request()
    assert done["decision"]["steps"] == ["block_sign_in", "revoke_sessions", "inbox_rules", "confirm_compromised"]
    assert done["target"]["upn"] == "alice@contoso.com" and done["kind"] == "lockdown"
    assert all(world.people["alice"]["id"] in path or "confirmCompromised" in path for _, path, _ in world.data.writes)
    assert world.writes("enable") == [] and world.standin.state.users[bob["id"]]["accountEnabled"] is True


async def test_the_approver_chooses_among_the_offered_steps_only(world) -> None:
    flow, card, _ = await asked(world)
    choice = {
        **button_data(card),
        **toggles(card),
        "step_revoke_sessions": "false",
        "step_inbox_rules": "false",
        "step_confirm_compromised": "false",
    }
    await flow.press("lockdown.approve", choice)
    await flow.drain()
    done = await flow.only_request()
    assert done["decision"]["steps"] == ["block_sign_in"] and done["state"] == state.DONE
    final = texts(flow.outbox.updates[-1][1].card)
    assert "➖ Revoke sessions: skipped — not chosen by the approver" in final
    assert "Inbox rules found: 6" in final  # listed in the summary even though nothing was disabled
    flow2, card2, _ = await asked(world, "lockdown bob@contoso.com")
    nothing = {**button_data(card2), **{k: "false" for k in toggles(card2)}}
    assert "at least one step" in (await flow2.press("lockdown.approve", nothing)).message
    assert (await flow2.only_request())["state"] == state.PENDING


async def test_an_expired_request_refuses_approval_and_its_card_loses_its_buttons(world) -> None:
    flow, card, request = await asked(world)
    world.clock.advance(minutes=30)
    result = await flow.press("lockdown.approve", button_data(card))
    assert result.card is None and "expired at 2026-11-27 22:30 UTC" in result.message
    assert (await flow.only_request())["state"] == state.EXPIRED
    expired_card = flow.outbox.updates[-1][1].card
    assert_valid_card(expired_card)
    assert "actions" not in expired_card and "Expired" in texts(expired_card)
    assert world.data.writes == []
    assert ("lockdown:expire", "expired", None) in await audit(flow)


async def test_the_sweeper_expires_forgotten_requests(world) -> None:
    flow, card, _ = await asked(world)
    world.clock.advance(minutes=29)
    assert await runner.expire_due(flow.services) == []
    world.clock.advance(minutes=2)
    (expired,) = await runner.expire_due(flow.services)
    assert expired.state == state.EXPIRED and "actions" not in flow.outbox.updates[-1][1].card
    await flow.say("lockdown alice@contoso.com again")  # the user is free for a new request
    assert len(await flow.requests()) == 2


async def test_reject_with_a_comment_changes_nothing(world) -> None:
    flow, card, _ = await asked(world)
    result = await flow.press("lockdown.reject", {**button_data(card, "Reject"), "comment": "false alarm, she travels"})
    assert_valid_card(result.card)
    assert "Rejected by **Avery Approver" in texts(result.card) and "false alarm, she travels" in texts(result.card)
    assert "actions" not in result.card
    assert (await flow.only_request())["state"] == state.REJECTED and world.data.writes == []
    again = await flow.press("lockdown.approve", button_data(card), actor=APPROVER2)
    assert again.message.startswith("Already rejected by Avery Approver")


async def test_only_the_requester_may_cancel(world) -> None:
    flow, card, request = await asked(world)
    refused = await flow.say(f"lockdown cancel {request['id']}", actor=APPROVER)
    assert "Only the requester (Tess Tech" in refused[0].text
    (ok,) = await flow.say(f"lockdown cancel {request['id'].upper()}")
    assert "Cancelled" in ok.text and (await flow.only_request())["state"] == state.CANCELLED
    assert "actions" not in flow.outbox.updates[-1][1].card
    assert_valid_card(flow.outbox.updates[-1][1].card)
    assert "is cancelled" in (await flow.say(f"lockdown cancel {request['id']}"))[0].text
    assert "no lock-down request" in (await flow.say("lockdown cancel zzzzzzzzzzzzzzzz"))[0].text
    assert "cancelled" in (await flow.press("lockdown.approve", button_data(card))).message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("lockdown", "Name the user"),
        ("lockdown nobody@contoso.com", "No such user in Contoso"),
        ("lockdown alice@fabrikam.com", "No configured tenant owns the domain fabrikam.com"),
        ("lockdown 'alice smith'", "is neither a sign-in name"),
        ("lockdown breakglass@contoso.com", "break-glass"),
        ("lockdown BreakGlass@Contoso.com", "break-glass"),
    ],
)
async def test_bad_targets_are_refused_with_the_reason(world, text, says) -> None:
    flow = Flow(world, MemoryStorage())
    (reply,) = await flow.say(text)
    assert says in reply.text and await flow.requests() == [] and flow.outbox.sent == []


async def test_a_break_glass_account_named_by_object_id_is_refused_and_audited(world) -> None:
    cfg = world.config.model_copy(
        update={
            "tenants": [world.config.tenants[0].model_copy(update={"break_glass": [world.people["breakglass"]["id"]]})]
        }
    )
    flow = Flow(world, MemoryStorage(), config=cfg)
    (reply,) = await flow.say("lockdown breakglass@contoso.com")
    assert "never locks it down" in reply.text
    assert ("lockdown:lockdown", "refused") in [(c, o) for c, o, _ in await audit(flow)]


async def test_an_admin_target_warns_about_the_privileged_role(world) -> None:
    flow, card, _ = await asked(world, "lockdown bob@contoso.com")
    assert "Admin roles: Global Administrator" in texts(card)
    assert "Privileged Authentication Administrator" in texts(card)


async def test_a_second_request_for_the_same_user_points_to_the_first(world) -> None:
    flow, card, request = await asked(world)
    (reply,) = await flow.say("lockdown alice@contoso.com again", actor=APPROVER)
    assert request["id"] in reply.text and "already exists" in reply.text
    (reply,) = await flow.say("unlock alice@contoso.com", actor=APPROVER)
    assert request["id"] in reply.text
    assert len(await flow.requests()) == 1 and len(flow.outbox.sent) == 1


async def test_the_approvals_channel_gets_the_card_and_the_asker_a_note(world) -> None:
    messenger = RecordingMessenger()
    cfg = world.config.model_copy(
        update={
            "lockdown": world.config.lockdown.model_copy(update={"approvals_conversation": "19:approvals@thread.tacv2"})
        }
    )
    flow = Flow(world, MemoryStorage(), messenger=messenger, config=cfg)
    (note,) = await flow.say("lockdown alice@contoso.com")
    request = await flow.only_request()
    assert "approvals channel" in note.text and request["id"] in note.text and note.card is None
    assert (
        "[the approvals channel](https://teams.microsoft.com/l/message/19%3Aapprovals%40thread.tacv2/proactive-1"
        f"?parentMessageId=proactive-1&tenantId={CONV.tenant_id})"
    ) in note.text  # a deep link to the card
    assert flow.outbox.sent == [] and messenger.sent[0][0] == "19:approvals@thread.tacv2"
    card = messenger.sent[0][1].card
    assert_valid_card(card)
    await flow.press("lockdown.approve", button_data(card))
    await flow.drain()
    assert {(c, m) for c, m, _ in messenger.updates} == {("19:approvals@thread.tacv2", "proactive-1")}
    assert "Done" in texts(messenger.updates[-1][2].card)


async def test_unlock_re_enables_sign_in_after_approval(world) -> None:
    world.standin.state.users[world.people["alice"]["id"]]["accountEnabled"] = False
    flow, card, _ = await asked(world, "unlock alice@contoso.com password changed")
    assert toggles(card) == {"step_enable_sign_in": "true"} and card["body"][0]["text"].startswith("Unlock")
    await flow.press("lockdown.approve", button_data(card))
    await flow.drain()
    assert (await flow.only_request())["state"] == state.DONE and len(world.writes("enable")) == 1
    assert world.standin.state.users[world.people["alice"]["id"]]["accountEnabled"] is True


@pytest.mark.parametrize("delivery", ["approver_chat", "none"])
async def test_the_temporary_password_reaches_only_the_approver_and_no_log(world, caplog, delivery) -> None:
    caplog.set_level(logging.DEBUG)
    messenger = RecordingMessenger()
    cfg = world.config.model_copy(
        update={"lockdown": world.config.lockdown.model_copy(update={"password_delivery": delivery})}
    )
    flow = Flow(world, MemoryStorage(), messenger=messenger, config=cfg)
    await flow.say("lockdown alice@contoso.com")
    card = flow.outbox.sent[0].card
    result = await flow.press("lockdown.approve", {**button_data(card), "step_reset_password": "true"})
    await flow.drain()
    (password,) = world.data.passwords()
    assert (
        len(password) == 20
        and world.writes("password")[0][2]["passwordProfile"]["forceChangePasswordNextSignIn"] is True
    )
    if delivery == "approver_chat":
        ((tenant, user, reply),) = messenger.private
        assert (tenant, user) == (CONV.tenant_id, APPROVER.aad_id) and password in reply.text
    else:
        assert messenger.private == []
    import json

    everything_else = json.dumps(
        [
            result.card,
            [r.card for r in flow.outbox.sent],
            [(c, m, r.text, r.card) for c, m, r in messenger.updates],
            [(c, r.text, r.card) for c, r in messenger.sent],
            [vars(e) for e in await flow.services.storage.audit_tail(500)],
            await flow.requests(),
        ]
    )
    assert password not in everything_else
    assert caplog.records and not any(password in r.getMessage() for r in caplog.records)
    final = texts(messenger.updates[-1][2].card)
    assert ("1:1 chat" in final) if delivery == "approver_chat" else ("not shown to anyone" in final)


async def test_without_a_messenger_the_password_goes_to_the_approvers_own_outbox(world) -> None:
    flow, card, _ = await asked(world)  # the console: no messenger, the approver's turn outbox only
    await flow.press("lockdown.approve", {**button_data(card), "step_reset_password": "true"})
    await flow.drain()
    (password,) = world.data.passwords()
    ((user, reply),) = flow.outbox.private
    assert user == APPROVER.aad_id and password in reply.text
    assert "Enabled: no (sign-in blocked)" in texts(flow.outbox.updates[-1][1].card)
    assert password not in str([r.card for r in flow.outbox.sent] + [r.card for _, r in flow.outbox.updates])


async def test_an_approvals_thread_configured_by_mistake_posts_to_its_channel(world) -> None:
    messenger = RecordingMessenger()
    cfg = world.config.model_copy(
        update={
            "lockdown": world.config.lockdown.model_copy(
                update={"approvals_conversation": "19:approvals@thread.tacv2;messageid=1700000000099"}
            )
        }
    )
    flow = Flow(world, MemoryStorage(), messenger=messenger, config=cfg)
    (note,) = await flow.say("lockdown alice@contoso.com")
    assert "approvals channel" in note.text and flow.outbox.sent == []
    assert [conversation for conversation, _ in messenger.sent] == ["19:approvals@thread.tacv2"]
    request = await flow.only_request()
    assert request["card"]["conversation_id"] == "19:approvals@thread.tacv2"


@pytest.mark.parametrize(
    ("elsewhere", "says"),
    [
        (Conversation("a:personal-tess", "personal", TEAMS_TENANT), "in Tess Tech's 1:1 chat with Cordon"),
        (Conversation("19:group@thread.v2", "groupChat", TEAMS_TENANT), "in a group chat"),
        (Conversation("19:other@thread.tacv2", "channel", TEAMS_TENANT), "in [another channel](https://teams.micro"),
        (
            Conversation("19:soc@thread.tacv2;messageid=171", "channel", TEAMS_TENANT),
            "in [another thread of this channel](https://teams.microsoft.com/l/message/19%3Asoc%40thread.tacv2/msg-",
        ),
    ],
)
async def test_a_second_request_from_another_conversation_names_where_the_card_is(world, elsewhere, says) -> None:
    flow = Flow(world, MemoryStorage())
    await flow.router.handle_text("lockdown alice@contoso.com", TECH, TEAMS_TENANT, elsewhere, flow.outbox)
    (reply,) = await flow.say("lockdown alice@contoso.com again", actor=APPROVER)  # in 19:soc@thread.tacv2
    assert "already exists" in reply.text and says in reply.text and "above" not in reply.text
    (reply,) = await flow.router.handle_text(
        "lockdown alice@contoso.com", APPROVER, TEAMS_TENANT, elsewhere, flow.outbox
    )
    assert "see its card above in this conversation" in reply.text
