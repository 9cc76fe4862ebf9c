"""Lock-down Graph calls against the Graph stand-in over real sockets: containment, investigation, failures."""

from __future__ import annotations

import datetime as dt

import pytest

from adapters.graph import GraphProblem
from adapters.graph.containment import Containment
from adapters.graph.investigation import Investigation
from adapters.storage import MemoryStorage
from dialogs.contract import Services
from dialogs.lockdown import rules, steps
from dialogs.lockdown.model import LockdownRequest
from tests.support.graph_standin import Fault, GraphStandin, assert_parses
from tests.support.graph_standin.fixtures import graph_standin, make_gateway  # noqa: F401
from tests.support.graph_standin.lockdown_payloads import (
    mail_folder,
    message_rule,
    registered_security_info,
    risky_user,
    sign_in,
)
from tests.support.graph_standin.lockdown_routes import LockdownData, register
from tests.support.graph_standin.lockdown_world import START, lockdown_config, populate


@pytest.fixture
async def world(monkeypatch: pytest.MonkeyPatch):
    from tests.support.graph_standin.fixtures import CONTOSO

    async with GraphStandin(home_tenant=CONTOSO, extensions=[register]) as standin:
        for key, value in standin.environ().items():
            monkeypatch.setenv(key, value)
        data, people = populate(standin)
        config = lockdown_config(standin.url)
        gateway = make_gateway(config)
        tenant = gateway.tenant("Contoso")
        yield standin, data, people, gateway, tenant, config
        await gateway.close()


def test_every_lockdown_payload_parses_into_its_msgraph_model() -> None:
    from msgraph.generated.identity_protection.risky_users.confirm_compromised.confirm_compromised_post_request_body import (  # noqa: E501
        ConfirmCompromisedPostRequestBody,
    )
    from msgraph.generated.models.directory_audit import DirectoryAudit
    from msgraph.generated.models.mail_folder import MailFolder
    from msgraph.generated.models.message_rule import MessageRule
    from msgraph.generated.models.risky_user import RiskyUser
    from msgraph.generated.models.sign_in import SignIn
    from msgraph.generated.users.item.revoke_sign_in_sessions.revoke_sign_in_sessions_post_response import (
        RevokeSignInSessionsPostResponse,
    )

    user = {"id": "7d5b0e51-0d7c-4f5e-9d59-0f5e6e0a0a01", "userPrincipalName": "a@contoso.com", "displayName": "A"}
    rule = assert_parses(
        message_rule(
            "x",
            forward_to=["a@b.example"],
            redirect_to=["c@d.example"],
            forward_as_attachment_to=["e@f.example"],
            delete=True,
            permanent_delete=True,
            move_to_folder="AAMk=",
            mark_as_read=True,
            conditions={"subjectContains": ["invoice"], "senderContains": ["x"]},
        ),
        MessageRule,
    )
    assert rule.actions.forward_to[0].email_address.address == "a@b.example"
    assert assert_parses(mail_folder("RSS Feeds"), MailFolder).display_name == "RSS Feeds"
    parsed = assert_parses(sign_in(user, START, ip="203.0.113.7", country="NG", app="Teams", error_code=50126), SignIn)
    assert parsed.status.error_code == 50126 and parsed.location.country_or_region == "NG"
    audit = assert_parses(registered_security_info(user, START, "Mobile phone", "203.0.113.7"), DirectoryAudit)
    assert audit.target_resources[0].id == user["id"]
    assert assert_parses(risky_user(user), RiskyUser).risk_level.value == "medium"
    assert assert_parses({"value": True}, RevokeSignInSessionsPostResponse).value is True
    assert assert_parses({"userIds": [user["id"]]}, ConfirmCompromisedPostRequestBody).user_ids == [user["id"]]


async def test_profile_shows_roles_methods_last_sign_in_and_risk(world) -> None:
    standin, data, people, gateway, tenant, _ = world
    inv = Investigation(gateway, tenant)
    alice = await inv.profile("alice@contoso.com", licence="P2")
    assert (alice.id, alice.upn, alice.name, alice.enabled) == (
        people["alice"]["id"],
        "alice@contoso.com",
        "Alice Victim",
        True,
    )
    assert alice.admin_roles == [] and alice.risk == "high (atRisk)"
    assert alice.mfa_methods == ["Microsoft Authenticator", "phone (SMS/voice)"]
    assert alice.last_sign_in == "2026-11-27T21:00:00+00:00" and alice.notes == []
    bob = await inv.profile("bob@contoso.com", licence="P2")
    assert bob.admin_roles == ["Global Administrator"]
    assert bob.risk == "none (no risk record)" and bob.mfa_methods == ["none (password only)"]


async def test_profile_without_premium_notes_what_it_could_not_read(world) -> None:
    standin, *_, gateway, tenant, _ = world
    standin.state.skus = []
    profile = await Investigation(gateway, tenant).profile("alice@contoso.com", licence="Free")
    assert profile.last_sign_in is None and profile.risk is None
    assert any("P1" in n for n in profile.notes) and any("P2" in n for n in profile.notes)
    assert not any("signInActivity" in r.query for r in standin.graph_requests("/users/alice"))


async def test_unknown_user_is_not_found_naming_the_tenant(world) -> None:
    *_, gateway, tenant, _ = world
    with pytest.raises(GraphProblem) as caught:
        await Investigation(gateway, tenant).profile("nobody@contoso.com", licence="P2")
    assert caught.value.kind == "not_found" and "Contoso" in caught.value.user_message


async def test_containment_calls_change_the_directory_with_exact_payloads(world) -> None:
    standin, data, people, gateway, tenant, _ = world
    c = Containment(gateway, tenant)
    aid = people["alice"]["id"]
    await c.set_sign_in(aid, enabled=False)
    assert standin.state.users[aid]["accountEnabled"] is False
    await c.revoke_sessions(aid)
    await c.confirm_compromised(aid)
    await c.reset_password(aid, "Xy7!long-enough-Password")
    await c.set_sign_in(aid, enabled=True)
    assert standin.state.users[aid]["accountEnabled"] is True
    bodies = [(m, p.rsplit("/", 1)[-1], b) for m, p, b in data.writes]
    assert bodies == [
        ("PATCH", aid, {"accountEnabled": False}),
        ("POST", "revokeSignInSessions", None),
        ("POST", "confirmCompromised", {"userIds": [aid]}),
        (
            "PATCH",
            aid,
            {"passwordProfile": {"forceChangePasswordNextSignIn": True, "password": "Xy7!long-enough-Password"}},
        ),
        ("PATCH", aid, {"accountEnabled": True}),
    ]


async def test_inbox_rules_are_read_with_folder_names_and_judged(world) -> None:
    standin, data, people, gateway, tenant, _ = world
    found = await Containment(gateway, tenant).inbox_rules(people["alice"]["id"])
    by_name = {r.name: r for r in found}
    assert by_name["Hide replies"].move_to_folder == "RSS Feeds" and by_name["Hide replies"].move_to_hidden
    assert by_name["Old trash"].move_to_hidden and not by_name["Old trash"].enabled
    assert not by_name["Newsletters"].move_to_hidden
    assert by_name["To my manager"].conditions == ("subject_contains: urgent",)
    domains = ["contoso.com"]
    verdicts = {r.name: rules.assess(r, domains) for r in found}
    assert verdicts[".."].disable == ("forwards mail to collector@evil.example (outside the tenant)",)
    assert verdicts["Hide replies"].disable == ("moves to RSS Feeds all incoming mail",)
    assert verdicts["Clean"].disable == ("deletes all incoming mail",)
    assert not verdicts["To my manager"].disable and not verdicts["Newsletters"].disable


def test_internal_means_a_tenant_domain_or_its_subdomain() -> None:
    assert rules.is_internal("a@contoso.com", ["contoso.com"])
    assert rules.is_internal("a@eu.contoso.com", ["contoso.com"])
    assert not rules.is_internal("a@contoso.com.evil.example", ["contoso.com"])
    assert not rules.is_internal("a@notcontoso.com", ["contoso.com"])
    assert not rules.is_internal("no-at-sign", ["contoso.com"])


def a_request(target: dict[str, str]) -> LockdownRequest:
    """A stored request as a step reads it: only the target matters to these steps."""
    return LockdownRequest.from_document(
        {
            "id": "x",
            "nonce": "n",
            "kind": "lockdown",
            "state": "running",
            "tenant_id": "t",
            "tenant_name": "Contoso",
            "target": target,
            "requester": {},
            "requested_in": {},
            "offered": {},
            "created_at": "2026-01-01T00:00:00+00:00",
            "expires_at": "2026-01-01T00:30:00+00:00",
        }
    )


async def test_inbox_step_disables_never_deletes_and_lists_the_rest(world) -> None:
    standin, data, people, gateway, tenant, config = world
    aid = people["alice"]["id"]
    services = Services(config=config, storage=MemoryStorage(), graph=gateway)
    request = a_request({"id": aid, "upn": "alice@contoso.com", "name": "Alice"})
    outcome = await steps.execute("inbox_rules", request, Containment(gateway, tenant), services, tenant.domains)
    assert outcome["status"] == steps.OK
    assert sorted(e["name"] for e in outcome["data"]["disabled"]) == ["..", "Clean", "Hide replies"]
    assert sorted(e["name"] for e in outcome["data"]["others"]) == ["Newsletters", "Old trash", "To my manager"]
    assert "admin.exchange.microsoft.com" in outcome["detail"]
    assert len(data.rules[aid]) == 6  # nothing deleted
    assert {r["displayName"]: r["isEnabled"] for r in data.rules[aid]} == {
        "..": False,
        "Hide replies": False,
        "Clean": False,
        "To my manager": True,
        "Newsletters": True,
        "Old trash": False,
    }
    assert all(m == "PATCH" and b == {"isEnabled": False} for m, _, b in data.writes)
    assert not any(r.method == "DELETE" for r in standin.graph_requests())


@pytest.mark.parametrize(
    ("fault", "status", "says"),
    [
        (Fault.permission("/revokeSignInSessions"), steps.FAILED, "User.RevokeSessions.All"),
        (Fault.throttle("/revokeSignInSessions", retry_after=1), steps.OK, "Sessions revoked"),
        (Fault.unavailable("/revokeSignInSessions", status=500), steps.FAILED, "HTTP 500"),
    ],
)
async def test_a_step_failure_is_explained_and_a_throttle_is_retried(world, fault, status, says) -> None:
    standin, data, people, gateway, tenant, config = world
    standin.add_fault(fault)
    services = Services(config=config, storage=MemoryStorage(), graph=gateway)
    request = a_request({"id": people["alice"]["id"], "upn": "alice@contoso.com", "name": "Alice"})
    outcome = await steps.execute("revoke_sessions", request, Containment(gateway, tenant), services, [])
    assert outcome["status"] == status and says in outcome["detail"]
    assert len(data.revoked) == (1 if status == steps.OK else 0)


async def test_sign_ins_are_grouped_by_country_ip_and_app_with_failures(world) -> None:
    standin, data, people, gateway, tenant, _ = world
    inv = Investigation(gateway, tenant)
    summary = await inv.sign_ins(people["alice"]["id"], START - dt.timedelta(days=7))
    assert (summary.total, summary.failures) == (3, 1)
    assert summary.by_country == [("NG", 2, 1), ("US", 1, 0)]
    assert summary.by_ip == [("203.0.113.7", 2, 1), ("198.51.100.20", 1, 0)]
    assert ("Microsoft Teams", 1, 0) in summary.by_app
    events = await inv.registered_methods(people["alice"]["id"], START - dt.timedelta(days=7))
    assert events == [
        {
            "at": "2026-11-27T02:00:00+00:00",
            "what": "User registered Mobile phone",
            "by": "alice@contoso.com",
            "ip": "203.0.113.7",
        }
    ]


async def test_sign_in_pages_are_followed_and_capped(world, monkeypatch: pytest.MonkeyPatch) -> None:
    standin, data, people, gateway, tenant, _ = world
    from adapters.graph import investigation

    monkeypatch.setattr(investigation, "MAX_SIGN_IN_PAGES", 2)
    standin.default_page = 1
    alice = people["alice"]
    data.sign_ins += [
        sign_in(alice, START - dt.timedelta(hours=h), ip="192.0.2.1", country="FR", app="x") for h in range(1, 4)
    ]
    standin.max_page = 2  # $top=999 is refused above this, like Graph's own limit would be
    with pytest.raises(GraphProblem):
        await Investigation(gateway, tenant).sign_ins(alice["id"], START - dt.timedelta(days=7))
    standin.max_page = 999
    monkeypatch.setattr(standin, "page_size", lambda request: 2)
    summary = await Investigation(gateway, tenant).sign_ins(alice["id"], START - dt.timedelta(days=7))
    assert summary.total == 4 and summary.truncated


async def test_sign_ins_without_p1_say_which_licence(world) -> None:
    standin, data, people, gateway, tenant, _ = world
    standin.state.skus = []
    with pytest.raises(GraphProblem) as caught:
        await Investigation(gateway, tenant).sign_ins(people["alice"]["id"], START)
    assert caught.value.kind == "licence" and "P1" in caught.value.user_message


def test_lockdown_data_is_per_tenant_state() -> None:
    from tests.support.graph_standin.state import TenantState

    state = TenantState("t")
    assert LockdownData.of(state) is LockdownData.of(state)
