"""`hunt` asks Graph for what it needs, over real sockets against the stand-in, whose `$filter` parser proves the
filters select the right sign-ins: the seed IPs (bounded, validated, escaped), the risky sign-ins (P2), the page and
seed bounds said in `cut_short`, a spray that cannot hide a success, and the 400 Graph gives a filter it refuses."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest

from adapters.graph import incident as graph_reads
from adapters.graph.incident import IncidentReader
from dialogs.investigate import hunt as hunt_module
from dialogs.investigate.cards import hunt_card
from dialogs.investigate.commands import run_hunt
from tests.support.cards import assert_valid_card
from tests.support.graph_standin import GraphStandin, identity_protection, payloads
from tests.support.graph_standin import incident_payloads as ip
from tests.support.graph_standin.fixtures import CONTOSO, make_gateway, standin_config
from tests.support.graph_standin.incident_routes import register
from tests.support.graph_standin.incident_world import NOW, VPN_IP, World, build
from tests.support.graph_standin.sign_in_filter import FilterError, compile_filter

SINCE = "createdDateTime ge 2026-11-20T22:00:00Z"


@pytest.fixture
async def world(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[GraphStandin, World, Any]]:
    async with GraphStandin(home_tenant=CONTOSO, extensions=[register]) as standin:
        for key, value in standin.environ().items():
            monkeypatch.setenv(key, value)
        built = build(standin)
        gateway = make_gateway(standin_config(standin.url))
        yield standin, built, gateway
        await gateway.close()


def sign_in_filters(standin: GraphStandin) -> list[str]:
    return [
        parse_qs(r.query).get("$filter", [""])[0]
        for r in standin.graph_requests("/auditLogs/signIns")
        if "$skiptoken" not in r.query
    ]


def add_user(standin: GraphStandin, name: str) -> dict[str, Any]:
    return standin.state.add_user(f"{name}@contoso.com")


def log(standin: GraphStandin) -> identity_protection.RiskData:
    return identity_protection.data_of(standin.state)


async def test_a_spray_that_overflows_the_page_bound_cannot_hide_a_success(
    world: tuple[GraphStandin, World, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    standin, _, gateway = world
    monkeypatch.setattr(graph_reads, "PAGE", 2)
    monkeypatch.setattr(hunt_module, "MAX_PAGES", 2)
    monkeypatch.setattr(hunt_module, "MAX_RULE_READS", 2)
    erin = add_user(standin, "erin")
    victims = [add_user(standin, f"sprayed{i}") for i in range(8)]
    for i, user in enumerate(victims):  # newest first in Graph's order: the spray fills the first pages
        log(standin).add_sign_in(
            ip.sign_in(user, NOW - dt.timedelta(minutes=i), ip=VPN_IP, place="stockholm", error_code=50126)
        )
    log(standin).add_sign_in(ip.sign_in(erin, NOW - dt.timedelta(days=3), ip=VPN_IP, place="stockholm"))
    before = len(standin.graph_requests("/auditLogs/signIns"))
    result, _ = await run_hunt(gateway, VPN_IP, 7, NOW, tenant_name="Contoso")
    data = result.to_json()
    label = f"sign-ins from {VPN_IP}"
    assert {"part": label, "reason": "more than 2 pages (4 sign-ins): the rest were not read"} in data["cut_short"]
    assert {
        "part": "inbox rules",
        "reason": f"read for the 2 strongest of {len(data['accounts'])} accounts with evidence only",
    } in data["cut_short"]
    erin_found = next(a for a in data["accounts"] if a["user"] == "erin@contoso.com")  # older than the spray
    assert erin_found["reasons"] == [f"signed in from {VPN_IP}"]
    filters = sign_in_filters(standin)
    assert f"(ipAddress eq '{VPN_IP}') and {SINCE} and status/errorCode eq 0" in filters
    # bounded: two streams of at most 2 pages (+1 page fetched ahead when cut) and the risky stream's pages
    made = len(standin.graph_requests("/auditLogs/signIns")) - before
    assert len(standin.graph_requests("/messageRules")) == 2
    assert made <= 2 * (2 + 1) + 2 + 1 and data["pages_read"] <= 2 * 2 + 2


async def test_seed_ips_are_bounded_validated_and_joined_five_to_a_request(
    world: tuple[GraphStandin, World, Any],
) -> None:
    standin, _, gateway = world
    tenant = gateway.tenant("Contoso")
    seeds = ["unknown", "203.0.113.66' or userId eq 'x", *(f"192.0.2.{i}" for i in range(1, 25)), VPN_IP]
    result = await hunt_module.hunt(gateway, tenant, seeds, NOW, 7)
    assert result.seed_ips == [f"192.0.2.{i}" for i in range(1, 21)]  # the first 20 valid ones; VPN_IP was 25th
    cut = {c["part"]: c["reason"] for c in result.cut_short}
    assert cut["seed IPs"].startswith("25 suspicious IPs: the first 20") and VPN_IP in cut["seed IPs"]
    ip_filters = [f for f in sign_in_filters(standin) if "ipAddress" in f]
    assert len(ip_filters) == 4 and all(f.count("ipAddress eq") == 5 for f in ip_filters)
    assert ip_filters[0].startswith("(ipAddress eq '192.0.2.1' or ipAddress eq '192.0.2.2' or ")
    # none of these IPs signed anyone in: only Alice's risky sign-in (and her forwarding rule) is evidence
    assert [(a.upn, a.ips) for a in result.ranked()] == [("alice@contoso.com", set())]


async def test_the_reader_refuses_what_is_not_an_ip(world: tuple[GraphStandin, World, Any]) -> None:
    _, _, gateway = world
    reader = IncidentReader(gateway, gateway.tenant("Contoso"))
    for bad in (["1.2.3.4' or userId eq 'x"], ["not an ip"], []):
        with pytest.raises(ValueError):
            async for _ in reader.sign_ins_from(bad, NOW):
                pass


async def test_risky_sign_ins_come_from_the_risk_filter_and_need_p2(world: tuple[GraphStandin, World, Any]) -> None:
    standin, _, gateway = world
    frank = add_user(standin, "frank")
    log(standin).add_sign_in(
        ip.sign_in(
            frank, NOW - dt.timedelta(days=2), ip="192.0.2.200", place="lagos", risk_level="high", risk_state="atRisk"
        )
    )
    log(standin).add_sign_in(
        ip.sign_in(
            frank, NOW - dt.timedelta(days=9), ip="192.0.2.201", place="lagos", risk_level="high", risk_state="atRisk"
        )
    )  # before the window
    result, _ = await run_hunt(gateway, VPN_IP, 7, NOW, tenant_name="Contoso")
    frank_found = result.accounts[frank["id"]]
    assert list(frank_found.reasons) == ["high-risk sign-in (atRisk)"] and frank_found.ips == set()
    assert result.not_read == []

    standin.state.skus = payloads.premium_skus("P1")  # risk levels read `hidden` without P2
    fresh = make_gateway(standin_config(standin.url))  # the licence is cached for a day
    try:
        result, _ = await run_hunt(fresh, VPN_IP, 7, NOW, tenant_name="Contoso")
    finally:
        await fresh.close()
    assert frank["id"] not in result.accounts and "bob@contoso.com" in {a.upn for a in result.accounts.values()}
    assert [(p["part"], p["kind"]) for p in result.not_read] == [("risky sign-ins", "licence")]
    assert "Entra ID P2" in result.not_read[0]["reason"]


async def test_the_card_says_what_a_bound_cut_short(world: tuple[GraphStandin, World, Any]) -> None:
    _, _, gateway = world
    seeds = [f"192.0.2.{i}" for i in range(1, 30)]
    result = await hunt_module.hunt(gateway, gateway.tenant("Contoso"), seeds, NOW, 7)
    card = hunt_card(result, {"ref": "r", "nonce": "n"})
    assert_valid_card(card)
    texts = " ".join(str(item.get("text", "")) for item in card["body"])
    assert "Cut short — seed IPs: 29 suspicious IPs" in texts


async def test_the_standin_refuses_filters_graph_refuses(world: tuple[GraphStandin, World, Any]) -> None:
    standin, _, _ = world
    token = standin.issue_token(CONTOSO)
    refused = [
        "status/errorCode ne 0",
        "startsWith(ipAddress, '203.')",
        "userType eq 'Guest'",
        "ipAddress eq 203",
        "status/errorCode eq '0'",
        "(ipAddress eq 'a'",
        "ipAddress eq 'a' and",
        "createdDateTime ge '2026-11-20T22:00:00Z'",
        "ipAddress gt 'a'",
        "ipAddress eq 'a' xor 1",
    ]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        for text in refused:
            async with session.get(f"{standin.url}/v1.0/auditLogs/signIns", params={"$filter": text}) as response:
                body = await response.json()
                assert response.status == 400 and body["error"]["message"] == "Invalid filter clause", text
        params = {"$filter": f"(ipAddress eq '{VPN_IP}') and status/errorCode eq 0 and {SINCE}"}
        async with session.get(f"{standin.url}/v1.0/auditLogs/signIns", params=params) as response:
            rows = (await response.json())["value"]
    assert sorted(r["userPrincipalName"] for r in rows) == ["alice@contoso.com", "alice@contoso.com", "bob@contoso.com"]
    assert [r["createdDateTime"] for r in rows] == sorted((r["createdDateTime"] for r in rows), reverse=True)


def test_the_filter_parser_reads_quotes_precedence_and_types() -> None:
    row = {
        "ipAddress": "x'y",
        "status": {"errorCode": 0},
        "createdDateTime": "2026-11-21T00:00:00Z",
        "riskLevelDuringSignIn": "high",
    }
    assert compile_filter("ipAddress eq 'x''y'")(row)
    assert compile_filter("ipAddress eq 'z' or ipAddress eq 'x''y' and status/errorCode eq 0")(row)
    assert not compile_filter("(ipAddress eq 'z' or ipAddress eq 'x''y') and status/errorCode eq 1")(row)
    assert compile_filter(f"status/errorCode eq 0 and {SINCE}")(row)
    assert not compile_filter("riskLevelDuringSignIn eq 'high'", p2=False)(row)
    with pytest.raises(FilterError):
        compile_filter("ipAddress eq 'x' or userId eq 'a'' or ''1'' eq ''1")
