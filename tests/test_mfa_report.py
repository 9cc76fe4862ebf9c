"""`mfa report` in chat (progress card updated in place) and the tenant aggregation over several pages."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from adapters.config import RolesConfig
from adapters.graph.mfa_report import build_report
from adapters.roles import RoleResolver
from adapters.storage import MemoryStorage
from dialogs.contract import Actor, Conversation, Reply, Services
from dialogs.router import Router
from tests.support.cards import assert_valid_card
from tests.support.graph_standin import Fault, GraphStandin, payloads
from tests.support.graph_standin.fixtures import CONTOSO

TECH = "11111111-1111-1111-1111-111111111111"
CHAT = Conversation(id="a:1:personal", kind="personal", tenant_id=CONTOSO)
METHOD_MIX = [
    ["microsoftAuthenticatorPush"],
    ["fido2", "microsoftAuthenticatorPush"],
    ["mobilePhone"],
    [],
    ["softwareOneTimePasscode", "email"],
    ["email"],
    ["windowsHelloForBusiness"],
]


def synthetic(i: int) -> dict[str, Any]:
    """User i of a synthetic tenant: every 7th pattern repeats; every 500th user is an admin."""
    user = {
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "userPrincipalName": f"user{i:05d}@contoso.com",
        "displayName": f"User {i}",
    }
    return payloads.registration(
        user, METHOD_MIX[i % 7], is_admin=i % 500 == 0, updated=dt.datetime(2026, 11, 27, 6, 0, tzinfo=dt.UTC)
    )


def expected(total: int) -> dict[str, Any]:
    items = [synthetic(i) for i in range(total)]
    return {
        "users": total,
        "registered": sum(r["isMfaRegistered"] for r in items),
        "capable": sum(r["isMfaCapable"] for r in items),
        "weak_only": sum(r["methodsRegistered"] == ["mobilePhone"] for r in items),
        "admins_without_mfa": [r["userPrincipalName"] for r in items if r["isAdmin"] and not r["isMfaRegistered"]],
    }


async def test_report_pages_through_three_pages_with_the_largest_page_size(
    graph_standin: GraphStandin, gateway_for
) -> None:
    total = 2_500
    graph_standin.state.synthetic_registration = (total, synthetic)
    # the report's isAdmin users also hold Global Administrator (admins are privileged-role holders now)
    graph_standin.state.extra["role_members"] = {
        payloads.GLOBAL_ADMIN: [
            {"@odata.type": "#microsoft.graph.user", "id": synthetic(i)["id"]} for i in range(0, total, 500)
        ]
    }
    graph_standin.state.ca_policies = [
        payloads.ca_policy("Require MFA for all users", include_users=["All"], exclude_users=[payloads.new_id()])
    ]
    gateway, _ = gateway_for()
    rows: list[tuple[str, int | None]] = []
    report = await build_report(
        gateway, gateway.tenant("Contoso"), on_row=lambda item, level: rows.append((item["userPrincipalName"], level))
    )
    calls = graph_standin.graph_requests("userRegistrationDetails")
    assert len(calls) == 3 and all("$top=999" in c.query for c in calls)
    data = report.to_json()
    assert {k: data[k] for k in expected(total)} == expected(total)
    assert len(rows) == total and len({upn for upn, _ in rows}) == total  # each user exactly once
    assert data["by_method"]["microsoftAuthenticatorPush"] == sum(1 for i in range(total) if i % 7 in (0, 1))
    assert data["enforcement"] == "enforced tenant-wide by CA 'Require MFA for all users' (1 exclusion(s))"
    urgent = data["most_urgent"]
    assert len(urgent) == 20
    admins_first = [u for u in urgent if u["issue"] == "admin without MFA"]
    assert [u["user"] for u in admins_first] == data["admins_without_mfa"][:20]
    assert urgent[: len(admins_first)] == admins_first


async def test_report_in_chat_updates_one_card_in_place(graph_standin: GraphStandin, gateway_for) -> None:
    graph_standin.state.synthetic_registration = (1_200, synthetic)
    graph_standin.state.security_defaults = True
    gateway, _ = gateway_for()
    roles = RolesConfig(technicians=[TECH])
    router = Router(Services(config=gateway.config, storage=MemoryStorage(), graph=gateway), RoleResolver(roles))
    outbox = CardOutbox()
    replies = await router.handle_text("mfa report", Actor(aad_id=TECH), CONTOSO, CHAT, outbox)
    assert replies == []  # the result replaced the progress card
    kinds = [kind for kind, _, _ in outbox.events]
    assert kinds[0] == "typing" and kinds[1] == "send" and kinds[-1] == "update"
    sent_id = outbox.events[1][1]
    assert all(mid == sent_id for kind, mid, _ in outbox.events if kind == "update")
    for _, _, reply in outbox.events[1:]:
        assert_valid_card(reply.card)
    final = outbox.events[-1][2].card["body"][0]["text"]
    assert "of 1,200 users registered for MFA" in final and "security defaults" in final
    assert "Working" in outbox.events[1][2].card["body"][1]["text"]


async def test_long_report_updates_its_progress_card_in_place(
    graph_standin: GraphStandin, gateway_for, monkeypatch
) -> None:
    import dialogs.mfa

    monkeypatch.setattr(dialogs.mfa, "PROGRESS_EVERY_SECONDS", 0.0)
    graph_standin.state.synthetic_registration = (3_500, synthetic)
    gateway, _ = gateway_for()
    router = Router(
        Services(config=gateway.config, storage=MemoryStorage(), graph=gateway),
        RoleResolver(RolesConfig(technicians=[TECH])),
    )
    outbox = CardOutbox()
    await router.handle_text("mfa report", Actor(aad_id=TECH), CONTOSO, CHAT, outbox)
    updates = [reply for kind, _, reply in outbox.events if kind == "update"]
    assert len(updates) == 5  # after each of the 4 pages, then the result
    assert [u.card["body"][2]["text"] for u in updates[:4]] == [
        f"Read {n:,} users so far ({p} page(s))." for p, n in ((1, 999), (2, 1998), (3, 2997), (4, 3500))
    ]
    assert "of 3,500 users registered" in updates[-1].card["body"][0]["text"]


async def test_report_for_a_free_tenant_says_it_needs_p1(graph_standin: GraphStandin, gateway_for) -> None:
    graph_standin.state.skus = payloads.premium_skus("Free")
    graph_standin.state.add_user("alice@contoso.com", registered=["fido2"])
    gateway, _ = gateway_for()
    router = Router(
        Services(config=gateway.config, storage=MemoryStorage(), graph=gateway),
        RoleResolver(RolesConfig(technicians=[TECH])),
    )
    outbox = CardOutbox()
    await router.handle_text("mfa report Contoso", Actor(aad_id=TECH), CONTOSO, CHAT, outbox)
    assert outbox.events[-1][0] == "update"
    assert "needs Microsoft Entra ID P1 or P2" in (outbox.events[-1][2].text or "")


async def test_report_survives_a_throttled_page_and_a_malformed_one_is_reported(
    graph_standin: GraphStandin, gateway_for
) -> None:
    graph_standin.state.synthetic_registration = (2_000, synthetic)
    graph_standin.add_fault(Fault.throttle("skiptoken", times=1))  # the second page is throttled once
    gateway, sleeper = gateway_for()
    report = await build_report(gateway, gateway.tenant("Contoso"))
    assert report.users == 2_000 and len(sleeper.waits) == 1
    graph_standin.add_fault(Fault.malformed_json("skiptoken"))
    outbox = CardOutbox()
    router = Router(
        Services(config=gateway.config, storage=MemoryStorage(), graph=gateway),
        RoleResolver(RolesConfig(technicians=[TECH])),
    )
    await router.handle_text("mfa report", Actor(aad_id=TECH), CONTOSO, CHAT, outbox)
    assert "unreadable answer" in (outbox.events[-1][2].text or "")


async def test_unknown_tenant_for_the_report_lists_the_configured_ones(
    graph_standin: GraphStandin, gateway_for
) -> None:
    gateway, _ = gateway_for()
    router = Router(
        Services(config=gateway.config, storage=MemoryStorage(), graph=gateway),
        RoleResolver(RolesConfig(technicians=[TECH])),
    )
    [reply] = await router.handle_text("mfa report Northwind", Actor(aad_id=TECH), CONTOSO, CHAT, CardOutbox())
    assert "Northwind" in (reply.text or "") and "Contoso (contoso.com)" in (reply.text or "")
    assert graph_standin.graph_requests() == []


class CardOutbox:
    """Keeps the replies themselves (the router tests' outbox keeps only ids)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str | None, Reply | None]] = []

    async def send(self, reply: Reply, conversation_id: str | None = None) -> str | None:
        self.events.append(("send", f"msg-{len(self.events)}", reply))
        return self.events[-1][1]

    async def update(self, message_id: str, reply: Reply, conversation_id: str | None = None) -> None:
        self.events.append(("update", message_id, reply))

    async def typing(self) -> None:
        self.events.append(("typing", None, None))

    async def send_private(self, user_aad_id: str, reply: Reply) -> str | None:
        raise AssertionError("the MFA report never sends private messages")


async def test_report_admins_are_privileged_role_holders_reconciled_with_is_admin(
    graph_standin: GraphStandin, gateway_for
) -> None:
    state = graph_standin.state
    readers = payloads.directory_role("Directory Readers", "88d8e3e3-8f55-4a1e-953a-9b9898b8876b")
    rita = state.add_user("rita@contoso.com", roles=[readers], registered=[])  # the report says isAdmin
    ops = payloads.group("Role-assignable ops")
    olga = state.add_user("olga@contoso.com", groups=[ops], registered=[])  # isAdmin lags: false
    state.extra["role_members"] = {
        payloads.SECURITY_ADMIN: [{"@odata.type": "#microsoft.graph.group", "id": ops["id"]}]
    }
    state.extra["group_members"] = {ops["id"]: [{"@odata.type": "#microsoft.graph.user", "id": olga["id"]}]}
    carol = state.add_user(
        "carol@contoso.com",
        roles=[payloads.directory_role("Global Administrator", payloads.GLOBAL_ADMIN)],
        registered=["microsoftAuthenticatorPush"],
    )
    assert state.registration[rita["id"]]["isAdmin"] and not state.registration[olga["id"]]["isAdmin"]
    gateway, _ = gateway_for()
    data = (await build_report(gateway, gateway.tenant("Contoso"))).to_json()
    assert data["admins_without_mfa"] == ["olga@contoso.com"]
    assert data["admins"] == 2 and data["report_admins_unprivileged"] == 1
    assert data["admins_basis"] == "privileged roles"
    issues = {u["user"]: u["issue"] for u in data["most_urgent"]}
    assert issues == {"olga@contoso.com": "admin without MFA", "rita@contoso.com": "no MFA"}
    assert carol["userPrincipalName"] not in issues
    # the roles cannot be read: the report's own isAdmin stands in, and the report says so
    graph_standin.add_fault(Fault(path=r"/directoryRoles", status=403, times=-1))
    data = (await build_report(gateway, gateway.tenant("Contoso"))).to_json()
    assert data["admins_without_mfa"] == ["rita@contoso.com"]
    assert data["admins_basis"].startswith("the registration report's isAdmin (any admin role)")


async def test_a_missing_tenant_wide_resource_is_not_a_missing_user(graph_standin: GraphStandin, gateway_for) -> None:
    """A 404 on `/directoryRoles` once read "No such user in Contoso" on the report card."""
    graph_standin.state.add_user("alice@contoso.com", registered=["fido2"])
    graph_standin.add_fault(
        Fault(
            path=r"^/v1\.0/directoryRoles",
            status=404,
            times=-1,
            body={"error": {"code": "Request_ResourceNotFound", "message": "not found"}},
        )
    )
    gateway, _ = gateway_for()
    router = Router(
        Services(config=gateway.config, storage=MemoryStorage(), graph=gateway),
        RoleResolver(RolesConfig(technicians=[TECH])),
    )
    outbox = CardOutbox()
    await router.handle_text("mfa report", Actor(aad_id=TECH), CONTOSO, CHAT, outbox)
    final = outbox.events[-1][2]
    assert final is not None and final.card is not None
    assert_valid_card(final.card)
    shown = json.dumps(final.card)
    assert "No such user" not in shown
    assert "found no directory roles there (HTTP 404 Request_ResourceNotFound)" in shown
    assert "not about any one user" in shown and "of 1 users registered for MFA" in shown
