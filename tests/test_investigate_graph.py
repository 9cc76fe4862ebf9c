"""`investigate` and `hunt` against the Graph stand-in over real sockets: what is read, how it is judged, what
a refusal or a throttle does, and that the stand-in's new payloads stay true to msgraph-sdk's models."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from dialogs.investigate.cards import CARD_BUDGET, investigation_card
from dialogs.investigate.commands import run_hunt, run_investigation
from dialogs.investigate.report import refused_everything
from tests.support.cards import assert_valid_card
from tests.support.graph_standin import Fault, GraphStandin, assert_parses
from tests.support.graph_standin import incident_payloads as ip
from tests.support.graph_standin.fixtures import CONTOSO, make_gateway, standin_config
from tests.support.graph_standin.incident_routes import IncidentData, register
from tests.support.graph_standin.incident_world import NOW, VPN_IP, World, build
from tests.support.graph_standin.samples import assert_routes_parse, populate


@pytest.fixture
async def world(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[GraphStandin, World, Any]]:
    async with GraphStandin(home_tenant=CONTOSO, extensions=[register]) as standin:
        for key, value in standin.environ().items():
            monkeypatch.setenv(key, value)
        built = build(standin)
        gateway = make_gateway(standin_config(standin.url))
        yield standin, built, gateway
        await gateway.close()


async def test_the_phished_users_investigation_finds_every_sign(world: tuple[GraphStandin, World, Any]) -> None:
    standin, built, gateway = world
    report = await run_investigation(gateway, "alice@contoso.com", 7, NOW)
    data = report.to_json()
    codes = {f["code"] for f in data["findings"]}
    assert {
        "signin.new_country",
        "signin.impossible_travel",
        "signin.anonymiser",
        "signin.risky",
        "signin.legacy_client",
        "audit.mfa_added",
        "audit.consent",
        "rule.suspicious",
        "consent.new",
        "device.scan_due",
    } <= codes, codes
    assert data["verdict"].startswith("likely compromised: new country SE")
    assert data["verdict"] == (
        "likely compromised: new country SE + impossible travel + MFA method added 3 h 00 "
        "min after the first foreign sign-in + new app consent 4 h 00 min after the first "
        "foreign sign-in + suspicious inbox rule"
    )
    assert {c["country"]: c["new"] for c in data["sign_ins"]["countries"]} == {"FR": False, "SE": True}
    assert [i["ip"] for i in data["sign_ins"]["ips"] if i["new"]] == [VPN_IP]
    (travel,) = data["sign_ins"]["impossible_travel"]
    assert travel["from"]["country"] == "FR" and travel["to"]["country"] == "SE" and travel["kmh"] > 900
    assert data["sign_ins"]["legacy_clients"] == ["IMAP4"]
    assert report.suspicious_ips() == [VPN_IP]
    assert [r["name"] for r in data["inbox_rules"] if r["suspicious"]] == [".."]
    assert {c["app"] for c in data["consents"]} == {"Mail Sync Pro", "Microsoft Office"}
    assert [d["name"] for d in data["devices"]] == ["LAPTOP-ALICE", "Alice's iPhone"]
    assert data["devices"][0]["last_quick_scan"] is not None and data["devices"][0]["scan_action"] == "done"
    assert data["not_read"] == []
    card = investigation_card(report, {"ref": "r", "nonce": "n"})
    assert_valid_card(card)
    verbs = [a["verb"] for a in card["actions"]]
    assert verbs == ["investigate.lockdown", "investigate.scan", "investigate.hunt"]
    assert IncidentData.of(standin.state).writes == [] and built.lockdown.writes == []  # investigating only reads


async def test_a_quiet_user_is_not_suspicious(world: tuple[GraphStandin, World, Any]) -> None:
    _, _, gateway = world
    report = await run_investigation(gateway, "carol@contoso.com", 7, NOW)
    assert report.verdict == "nothing suspicious found in the window"
    assert report.suspicious_ips() == []


async def test_what_graph_refuses_is_listed_and_the_rest_still_counts(world: tuple[GraphStandin, World, Any]) -> None:
    standin, built, gateway = world
    built.incident.intune = False
    standin.add_fault(Fault.permission("/oauth2PermissionGrants"))
    standin.add_fault(Fault.throttle("/auditLogs/directoryAudits", retry_after=1, times=2))  # retried, then served
    report = await run_investigation(gateway, "alice@contoso.com", 7, NOW)
    parts = {p["part"]: p["reason"] for p in report.not_read}
    assert set(parts) == {"managed devices", "OAuth consents"}
    assert "Microsoft Intune licence" in parts["managed devices"]
    assert "DelegatedPermissionGrant.Read.All" in parts["OAuth consents"]
    assert report.verdict.startswith("likely compromised") and any(f.code == "audit.mfa_added" for f in report.findings)
    assert not refused_everything(report)


async def test_sign_ins_without_a_licence_are_named_and_everything_refused_is_exit_3(
    world: tuple[GraphStandin, World, Any],
) -> None:
    standin, _, gateway = world
    standin.add_fault(Fault.licence("/auditLogs/signIns"))
    for path in ("/auditLogs/directoryAudits", "/messageRules", "/oauth2PermissionGrants", "/managedDevices"):
        standin.add_fault(Fault.permission(path))
    report = await run_investigation(gateway, "alice@contoso.com", 7, NOW)
    assert "Microsoft Entra ID P1 or P2" in next(p["reason"] for p in report.not_read if p["part"] == "sign-ins")
    assert refused_everything(report)


async def test_hunt_from_the_victim_finds_the_second_victim_and_the_spray(
    world: tuple[GraphStandin, World, Any],
) -> None:
    standin, built, gateway = world
    result, report = await run_hunt(gateway, "alice@contoso.com", 7, NOW)
    assert report is not None and result.seed_ips == [VPN_IP]
    data = result.to_json()
    users = [a["user"] for a in data["accounts"]]
    assert users == ["bob@contoso.com", "dave@contoso.com"]  # the success ranks above the failed spray
    assert data["accounts"][0]["reasons"] == [f"signed in from {VPN_IP}"]
    assert data["accounts"][1]["reasons"] == [f"failed sign-in from {VPN_IP}"]
    # Graph filtered the log: only Alice, Bob and Dave signed in from the IP (Carol's rows were never sent)
    assert data["checked"] == 3 and "alice@contoso.com" not in users
    assert data["sign_ins_read"] == 7 and data["cut_short"] == []  # 6 from the IP + Alice's risky one
    filters = [parse_qs(r.query).get("$filter", [""])[0] for r in standin.graph_requests("/auditLogs/signIns")]
    since = "createdDateTime ge 2026-11-20T22:00:00Z"
    assert f"(ipAddress eq '{VPN_IP}') and {since}" in filters
    assert f"(riskLevelDuringSignIn eq 'high' or riskLevelDuringSignIn eq 'medium') and {since}" in filters
    assert not any(f == since for f in filters)  # never the whole tenant log


async def test_hunt_from_an_ip_pages_through_the_log(world: tuple[GraphStandin, World, Any]) -> None:
    standin, _, gateway = world
    standin.max_page = 50  # Graph's real cap is 999: make the stream page
    standin.add_fault(Fault.throttle("/auditLogs/signIns", retry_after=1))
    before = gateway.requests_sent
    with pytest.raises(Exception, match="Invalid page size"):
        await run_hunt(gateway, VPN_IP, 7, NOW, tenant_name="Contoso")
    standin.max_page = 999
    result, report = await run_hunt(gateway, VPN_IP, 7, NOW, tenant_name="Contoso")
    assert report is None and {a.upn for a in result.accounts.values()} == {
        "alice@contoso.com",
        "bob@contoso.com",
        "dave@contoso.com",
    }
    assert gateway.requests_sent > before


async def test_the_new_payloads_parse_into_msgraph_models(monkeypatch: pytest.MonkeyPatch) -> None:
    from msgraph.generated.models.directory_audit import DirectoryAudit
    from msgraph.generated.models.sign_in import SignIn

    async with GraphStandin(home_tenant=CONTOSO, extensions=[register]) as standin:
        params = populate(standin.state)
        user = standin.state.users[params["key"]]
        incident = IncidentData.of(standin.state)
        app = ip.service_principal("Mail Sync Pro")
        incident.add_grant(user, app, ip.grant(user, app, "Mail.Read offline_access"))
        laptop = incident.add_device(
            user,
            ip.managed_device(user, "LAPTOP-1", synced=NOW, scans=[("done", NOW)]),
            ip.protection_state(quick=NOW, full=NOW),
        )
        incident.add_device(user, ip.managed_device(user, "iPhone", os="iOS", synced=NOW, compliance="noncompliant"))
        checked = await assert_routes_parse(standin, {**params, "sp": app["id"], "device": laptop["id"]})
        built = build(standin)
        alice = built.people["alice"]
    assert any("managedDevices" in c for c in checked) and any("oauth2PermissionGrants" in c for c in checked)
    assert any("windowsProtectionState" in c for c in checked) and any("servicePrincipals" in c for c in checked)
    for row in built.lockdown.risk.sign_ins.values():
        assert_parses(row, SignIn)
    for event in built.lockdown.audits:
        assert_parses(event, DirectoryAudit)
    assert_parses(ip.sign_in(alice, NOW, ip="192.0.2.1", client="Exchange ActiveSync", error_code=50126), SignIn)


def test_card_budget_is_under_teams_limit() -> None:
    assert CARD_BUDGET < 28 * 1024
