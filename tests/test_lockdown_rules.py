"""Inbox-rule judgement (pure), the card under Teams' size limit with many rules, and licence-dependent steps."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from adapters.graph.containment import InboxRule
from adapters.storage import MemoryStorage
from dialogs.lockdown import rules, state
from tests.support.cards import assert_valid_card
from tests.support.graph_standin.lockdown_payloads import message_rule
from tests.support.graph_standin.lockdown_world import world_fixture  # noqa: F401
from tests.test_lockdown_flow import Flow, button_data, texts, toggles

DOMAINS = ["contoso.com", "contoso.onmicrosoft.com"]
label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12)
internal = st.builds(
    lambda local, sub, d: f"{local}@{sub + '.' if sub else ''}{d}",
    label,
    st.one_of(st.just(""), label),
    st.sampled_from(DOMAINS),
)
external = st.builds(
    lambda local, d, tld: f"{local}@{d}.{tld}",
    label,
    label.filter(lambda d: "contoso" not in d),
    st.sampled_from(["com", "example", "net", "io"]),
)


@given(st.lists(internal, min_size=1, max_size=4), st.booleans())
def test_forwarding_inside_the_tenant_is_never_disabled(addresses: list[str], redirect: bool) -> None:
    rule = InboxRule("r", "r", True, **{"redirect_to" if redirect else "forward_to": tuple(addresses)})
    assert rules.assess(rule, DOMAINS).disable == ()


@given(
    st.lists(internal, max_size=3),
    external,
    st.sampled_from(["forward_to", "redirect_to", "forward_as_attachment_to"]),
    st.lists(st.text(min_size=1, max_size=10), max_size=2),
)
def test_any_address_outside_the_tenant_is_disabled(
    inside: list[str], outside: str, kind: str, conditions: list[str]
) -> None:
    rule = InboxRule("r", "r", True, conditions=tuple(conditions), **{kind: (*inside, outside)})
    verdict = rules.assess(rule, DOMAINS)
    assert verdict.disable and outside in verdict.disable[0]
    assert not any(a in verdict.disable[0] for a in inside)


def test_hiding_is_disabled_only_when_wholesale() -> None:
    hide = InboxRule("r", "r", True, move_to_folder="RSS Feeds", move_to_hidden=True, mark_as_read=True)
    assert rules.assess(hide, DOMAINS).disable == ("moves to RSS Feeds all incoming mail",)
    narrow = InboxRule(
        "r",
        "r",
        True,
        move_to_folder="RSS Feeds",
        move_to_hidden=True,
        mark_as_read=True,
        conditions=("subject_contains: invoice",),
    )
    verdict = rules.assess(narrow, DOMAINS)
    assert verdict.disable == () and "invoice" in verdict.review[0]
    tidy = InboxRule("r", "r", True, delete=True, conditions=("sender_contains: spam@",))
    assert rules.assess(tidy, DOMAINS) == rules.Verdict(tidy, (), ("deletes mail matching sender_contains: spam@",))
    assert rules.describe(tidy) == "sender_contains: spam@ → delete"


async def test_sixty_hostile_rules_keep_every_card_under_the_teams_limit(world) -> None:
    aid = world.people["alice"]["id"]
    world.data.rules[aid] = [
        message_rule(
            f"Rule {i} " + "x" * 200,
            forward_to=[f"thief{i}@evil.example"],
            conditions={"subjectContains": ["invoice " * 20]},
            sequence=i,
        )
        for i in range(60)
    ]
    flow = Flow(world, MemoryStorage())
    await flow.say("lockdown alice@contoso.com " + "very long reason " * 40)
    await flow.press("lockdown.approve", button_data(flow.outbox.sent[0].card))
    await flow.drain()
    assert len([w for w in world.data.writes if "/messageRules/" in w[1]]) == 60
    final = flow.outbox.updates[-1][1].card
    for card in flow.cards():
        assert_valid_card(card)  # includes the 28 KB limit
    assert "Disabled: and 50 more" in texts(final)


async def test_without_p2_confirm_compromised_is_not_offered(world) -> None:
    from tests.support.graph_standin import payloads

    world.standin.state.skus = payloads.premium_skus("P1")
    flow = Flow(world, MemoryStorage())
    await flow.say("lockdown alice@contoso.com")
    card = flow.outbox.sent[0].card
    assert "step_confirm_compromised" not in toggles(card)
    assert "Risk state needs Microsoft Entra ID P2." in texts(card)
    forged = {**button_data(card), "step_confirm_compromised": "true"}
    await flow.press("lockdown.approve", forged)
    await flow.drain()
    assert world.data.compromised == [] and (await flow.only_request())["state"] == state.DONE


async def test_a_tenant_removed_from_config_before_the_run_fails_every_step_with_the_reason(world) -> None:
    flow = Flow(world, MemoryStorage())
    await flow.say("lockdown alice@contoso.com")
    card = flow.outbox.sent[0].card
    request = await flow.only_request()
    await flow.services.storage.put(
        f"lockdown/request/{request['id']}",
        {**request, "tenant_id": "00000000-0000-4000-8000-000000000000"},
        (await flow.services.storage.get(f"lockdown/request/{request['id']}")).version,
    )
    await flow.press("lockdown.approve", button_data(card))
    await flow.drain()
    done = await flow.only_request()
    assert done["state"] == state.FAILED and world.data.writes == []
    assert all("not configured" in r["detail"] for r in done["results"].values())
    assert_valid_card(flow.outbox.updates[-1][1].card)
