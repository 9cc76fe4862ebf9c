"""`mfa <user>` through the real router, against the Graph stand-in over HTTP."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from adapters.config import RolesConfig
from adapters.roles import RoleResolver
from adapters.storage import MemoryStorage
from dialogs.contract import Actor, Conversation, Reply, Services
from dialogs.router import Router
from tests.support.cards import assert_valid_card
from tests.support.graph_standin import Fault, GraphStandin, payloads
from tests.support.graph_standin.fixtures import CONTOSO
from tests.test_router import RecordingOutbox

TECH = "11111111-1111-1111-1111-111111111111"
PLAIN = "33333333-3333-3333-3333-333333333333"
CHAT = Conversation(id="a:1:personal", kind="personal", tenant_id=CONTOSO)
NOW = dt.datetime(2026, 11, 27, 22, 0, tzinfo=dt.UTC)  # the services' clock in these tests


def populate(standin: GraphStandin) -> dict[str, dict[str, Any]]:
    state = standin.state
    admin_role = payloads.directory_role("Global Administrator", payloads.GLOBAL_ADMIN)
    finance = payloads.group("Finance")
    people = {
        "alice": state.add_user(
            "alice@contoso.com",
            roles=[admin_role],
            registered=["fido2", "microsoftAuthenticatorPush"],
            methods=[
                payloads.fido2_method(created=NOW - dt.timedelta(days=90)),
                payloads.authenticator_method("Pixel 8", NOW - dt.timedelta(days=80)),
            ],
            last_sign_in=NOW - dt.timedelta(hours=3),
        ),
        "bob": state.add_user(
            "bob@contoso.com",
            registered=["mobilePhone"],
            methods=[payloads.phone_method("+1 5555550123", created=None)],
        ),
        "carol": state.add_user("carol@contoso.com", roles=[admin_role], registered=[]),
        "dave": state.add_user(
            "dave@contoso.com",
            registered=["microsoftAuthenticatorPush"],
            methods=[payloads.authenticator_method("iPhone", NOW - dt.timedelta(days=30))],
        ),
        "erin": state.add_user(
            "erin@contoso.com",
            groups=[finance],
            registered=["softwareOneTimePasscode"],
            methods=[payloads.software_oath_method(NOW - dt.timedelta(days=10))],
        ),
        "frank": state.add_user(
            "frank@contoso.com",
            registered=["microsoftAuthenticatorPush"],
            methods=[payloads.authenticator_method("Unknown Android", NOW - dt.timedelta(minutes=12))],
        ),
    }
    state.ca_policies = [
        payloads.ca_policy("Require MFA for admins", include_roles=[payloads.GLOBAL_ADMIN]),
        payloads.ca_policy("Require MFA for Finance", include_groups=[finance["id"]]),
        payloads.ca_policy(
            "MFA outside the office",
            include_users=[people["dave"]["id"]],
            locations={"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]},
        ),
        payloads.ca_policy(
            "Report-only MFA for everyone", state="enabledForReportingButNotEnforced", include_users=["All"]
        ),
        payloads.ca_policy("Block legacy", include_users=["All"], controls=["block"]),
    ]
    return people


@pytest.fixture
async def world(graph_standin: GraphStandin, gateway_for) -> tuple[GraphStandin, Router, dict[str, dict[str, Any]]]:
    people = populate(graph_standin)
    gateway, _ = gateway_for()
    roles = RolesConfig(technicians=[TECH])
    services = Services(
        config=gateway.config.model_copy(update={"roles": roles}),
        storage=MemoryStorage(),
        graph=gateway,
        clock=lambda: NOW,
    )
    return graph_standin, Router(services, RoleResolver(roles)), people


async def say(router: Router, text: str, who: str = TECH) -> list[Reply]:
    return await router.handle_text(text, Actor(aad_id=who), CONTOSO, CHAT, RecordingOutbox())


def first_line(reply: Reply) -> str:
    assert reply.card is not None, reply.text
    assert_valid_card(reply.card)
    return reply.card["body"][0]["text"]


def words(reply: Reply) -> str:
    return json.dumps(reply.card, ensure_ascii=False) if reply.card else (reply.text or "")


async def test_admin_with_phishing_resistant_mfa_enforced_through_a_role(world) -> None:
    _, router, _ = world
    [reply] = await say(router, "mfa alice@contoso.com")
    line = first_line(reply)
    assert "Registered — phishing-resistant — enforced by CA 'Require MFA for admins'" in line
    text = words(reply)
    assert "Global Administrator" in text and "FIDO2" in text and "Pixel 8" in text and "3 h ago" in text


async def test_unregistered_admin_is_called_out_first(world) -> None:
    _, router, _ = world
    [reply] = await say(router, "mfa carol@contoso.com")
    assert first_line(reply).startswith("❌ NOT registered — and an admin!")


async def test_sms_only_user_without_enforcement_and_masked_number(world) -> None:
    _, router, _ = world
    [reply] = await say(router, "mfa BOB@contoso.com")
    assert "SMS/voice only (weak) — MFA NOT enforced" in first_line(reply)
    text = words(reply)
    assert "5555550123" not in text and "23" in text and "date not given" in text


async def test_location_exclusion_is_only_partial_enforcement(world) -> None:
    _, router, _ = world
    [reply] = await say(router, "mfa dave@contoso.com")
    assert "only partly enforced by CA 'MFA outside the office' (not from some locations)" in first_line(reply)


async def test_group_policy_applies_and_report_only_policies_do_not_count(world) -> None:
    _, router, _ = world
    [reply] = await say(router, "mfa erin@contoso.com")
    line = first_line(reply)
    assert "Registered — one-time codes — enforced by CA 'Require MFA for Finance'" in line
    assert "Report-only" not in line


async def test_method_added_minutes_ago_is_flagged(world) -> None:
    _, router, _ = world
    [reply] = await say(router, "mfa frank@contoso.com")
    assert "1 method(s) added in the last 24 h" in first_line(reply)
    assert "12 min ago" in words(reply) and "an attacker" in words(reply)


async def test_security_defaults_enforce_for_admins_and_only_when_necessary_for_others(world) -> None:
    standin, router, _ = world
    standin.state.security_defaults = True
    standin.state.ca_policies = []
    [admin] = await say(router, "mfa alice@contoso.com")
    assert "enforced by security defaults" in first_line(admin)
    [reply] = await say(router, "mfa bob@contoso.com")
    line = first_line(reply)
    assert "required when Microsoft judges it necessary (security defaults)" in line
    assert "enforced by security defaults" not in line
    assert "only when Microsoft judges it necessary (risk-based)" in words(reply)


async def test_security_defaults_in_json_are_partial_for_a_user_outside_admin_roles(world, gateway_for) -> None:
    from adapters.graph.inputs import parse_user
    from adapters.graph.mfa_data import fetch_user_facts
    from dialogs.mfa_status import UserStatus

    standin, _, _ = world
    standin.state.security_defaults = True
    standin.state.ca_policies = []
    gateway, _ = gateway_for()
    tenant = gateway.tenant("Contoso")
    bob = UserStatus.build(await fetch_user_facts(gateway, tenant, parse_user("bob@contoso.com")), NOW).to_json()
    assert bob["enforced"] is False and bob["enforced_by"] == []
    assert bob["partially_enforced_by"] == ["security defaults (only when Microsoft judges it necessary)"]
    alice = UserStatus.build(await fetch_user_facts(gateway, tenant, parse_user("alice@contoso.com")), NOW).to_json()
    assert alice["enforced"] is True and alice["enforced_by"] == ["security defaults"]


async def test_a_reader_role_is_shown_but_does_not_make_an_admin(world, gateway_for) -> None:
    from adapters.graph.inputs import parse_user
    from adapters.graph.mfa_data import fetch_user_facts
    from dialogs.mfa_status import UserStatus

    standin, router, _ = world
    readers = payloads.directory_role("Directory Readers", "88d8e3e3-8f55-4a1e-953a-9b9898b8876b")
    message_center = payloads.directory_role("Message Center Reader", "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b")
    standin.state.add_user("rita@contoso.com", roles=[readers, message_center], registered=[])  # report: isAdmin
    [reply] = await say(router, "mfa rita@contoso.com")
    line = first_line(reply)
    assert line.startswith("❌ NOT registered") and "an admin" not in line
    text = words(reply)
    assert "Directory Readers" in text and "Message Center Reader" in text and "(privileged)" not in text
    assert "registration report says admin, but the user holds no active privileged role" in text
    gateway, _ = gateway_for()
    data = UserStatus.build(
        await fetch_user_facts(gateway, gateway.tenant("Contoso"), parse_user("rita@contoso.com")), NOW
    ).to_json()
    assert data["is_admin"] is False and data["report_is_admin"] is True and data["privileged_roles"] == []
    [carol] = await say(router, "mfa carol@contoso.com")
    assert "**Global Administrator (privileged)**" in words(carol)


async def test_object_id_and_email_address_lookups(world) -> None:
    standin, router, people = world
    [reply] = await say(router, f"mfa {people['erin']['id'].upper()}")
    assert "erin@contoso.com" in words(reply)
    standin.state.add_user("grace.upn@contoso.com", mail="grace@contoso.com", registered=[])
    [reply] = await say(router, "mfa grace@contoso.com")  # not a UPN: found through `mail eq '...'`
    assert "grace.upn@contoso.com" in words(reply)
    assert any(
        "$filter=mail%20eq%20%27grace%40contoso.com%27" in f"$filter={r.query.split('$filter=')[-1]}"
        or "grace" in r.query
        for r in standin.graph_requests("/users")
    )


async def test_free_tenant_still_shows_live_methods_and_says_what_needs_p1(world) -> None:
    standin, router, _ = world
    standin.state.skus = payloads.premium_skus("Free")
    [reply] = await say(router, "mfa alice@contoso.com")
    text = words(reply)
    assert "FIDO2" in text and "Microsoft Entra ID P1 or P2" in text and "needs Entra ID P1" in text
    assert not standin.graph_requests("signInActivity")  # last sign-in is not even asked without a licence


async def test_missing_policy_permission_makes_enforcement_unknown_never_not_enforced(world) -> None:
    standin, router, _ = world
    standin.add_fault(Fault.permission("/identity/conditionalAccess/policies"))
    [reply] = await say(router, "mfa bob@contoso.com")
    assert "enforcement unknown" in first_line(reply) and "NOT enforced" not in first_line(reply)
    assert "Policy.Read.All" in words(reply)


async def test_unreadable_memberships_do_not_claim_not_enforced(world) -> None:
    standin, router, _ = world
    standin.add_fault(Fault.permission("/transitiveMemberOf"))
    [reply] = await say(router, "mfa erin@contoso.com")
    assert "enforcement unknown" in first_line(reply)
    assert "GroupMember.Read.All" in words(reply)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mfa", "Which user?"),
        ("mfa x' or 1 eq 1", "takes one user"),
        ('mfa "x\' or 1 eq 1"', "is neither a sign-in name"),
        ('mfa "x\' or 1 eq 1@contoso.com"', "the part before @ may hold"),
        ("mfa \"alice@contoso.com' or userType eq 'Member\"", "is not a valid domain name"),
        ("mfa alice@contoso.com bob@contoso.com", "takes one user"),
        ("mfa mallory@northwind.example", "No configured tenant owns the domain northwind.example"),
        ("mfa nobody@contoso.com", "No such user in Contoso."),
        ("mfa alice@contoso.com --tenant", "`--tenant` needs a tenant name"),
        ("mfa alice@contoso.com --tenant Northwind", "is not a tenant Cordon acts in"),
    ],
)
async def test_bad_input_gets_a_clear_message(world, text: str, expected: str) -> None:
    standin, router, _ = world
    before = len(standin.graph_requests())
    [reply] = await say(router, text)
    assert expected in (reply.text or ""), reply.text
    if "nobody" not in text:
        assert len(standin.graph_requests()) == before  # refused before anything reached Graph


async def test_plain_users_may_not_run_mfa(world) -> None:
    standin, router, _ = world
    [reply] = await say(router, "mfa alice@contoso.com", who=PLAIN)
    assert "only Cordon technicians" in (reply.text or "")
    assert standin.graph_requests() == []


async def test_throttled_graph_says_when_to_retry(world) -> None:
    standin, router, _ = world
    standin.add_fault(Fault.throttle("/v1.0/users/alice", retry_after=300, times=-1))
    [reply] = await say(router, "mfa alice@contoso.com")
    assert "try again in 300 s" in (reply.text or "")


async def test_a_temporary_access_pass_alone_is_not_registered(world) -> None:
    standin, router, _ = world
    standin.state.add_user(
        "henry@contoso.com",
        registered=["temporaryAccessPass"],
        methods=[payloads.password_method(), payloads.temporary_access_pass_method(NOW - dt.timedelta(hours=1))],
    )
    [reply] = await say(router, "mfa henry@contoso.com")
    assert first_line(reply).startswith("❌ NOT registered — MFA NOT enforced")
    assert "Temporary Access Pass" in words(reply)  # the method is still listed
