"""`tenants`: the configured tenants with their Entra ID licence level, through the router."""

from __future__ import annotations

import json

from adapters.config import RolesConfig
from adapters.roles import RoleResolver
from adapters.storage import MemoryStorage
from dialogs.contract import Actor, Conversation, Services
from dialogs.router import Router
from tests.support.cards import assert_valid_card
from tests.support.graph_standin import Fault, GraphStandin, payloads
from tests.support.graph_standin.fixtures import CONTOSO, FABRIKAM
from tests.test_router import RecordingOutbox

TECH = "11111111-1111-1111-1111-111111111111"
CHAT = Conversation(id="a:1:personal", kind="personal", tenant_id=CONTOSO)
TENANTS = [
    {"name": "Contoso", "tenant_id": CONTOSO, "domains": ["contoso.com"]},
    {
        "name": "Fabrikam",
        "tenant_id": FABRIKAM,
        "domains": ["fabrikam.com", "fabrikam.eu"],
        "credential": "client_secret",
        "client_id": "5f2f0c50-1111-4222-8333-944455556666",
        "client_secret_env": "FABRIKAM_SECRET_FOR_TESTS",
    },
]


async def test_tenants_lists_each_with_its_licence_or_why_it_is_unknown(
    graph_standin: GraphStandin, gateway_for, monkeypatch
) -> None:
    monkeypatch.delenv("FABRIKAM_SECRET_FOR_TESTS", raising=False)
    graph_standin.state.skus = payloads.premium_skus("P2")
    gateway, _ = gateway_for(tenants=TENANTS)
    router = Router(
        Services(config=gateway.config, storage=MemoryStorage(), graph=gateway),
        RoleResolver(RolesConfig(technicians=[TECH])),
    )
    [reply] = await router.handle_text("tenants", Actor(aad_id=TECH), CONTOSO, CHAT, RecordingOutbox())
    assert_valid_card(reply.card)
    text = json.dumps(reply.card, ensure_ascii=False)
    assert "**Contoso** — Entra ID P2" in text
    assert "**Fabrikam** — licence unknown (credentials" in text and "FABRIKAM_SECRET_FOR_TESTS" in text
    assert "fabrikam.com, fabrikam.eu" in text and "client secret" in text
    [again] = await router.handle_text("tenants", Actor(aad_id=TECH), CONTOSO, CHAT, RecordingOutbox())
    assert len(graph_standin.graph_requests("/subscribedSkus")) == 1  # cached
    assert again.card == reply.card


async def test_tenants_with_a_refused_licence_read_names_the_permission(
    graph_standin: GraphStandin, gateway_for
) -> None:
    graph_standin.add_fault(Fault.permission("/subscribedSkus"))
    gateway, _ = gateway_for()
    router = Router(
        Services(config=gateway.config, storage=MemoryStorage(), graph=gateway),
        RoleResolver(RolesConfig(technicians=[TECH])),
    )
    [reply] = await router.handle_text("tenants", Actor(aad_id=TECH), CONTOSO, CHAT, RecordingOutbox())
    assert_valid_card(reply.card)
    assert "LicenseAssignment.Read.All" in json.dumps(reply.card)


async def test_tenants_without_graph_says_how_to_configure_it() -> None:
    from adapters.config import CordonConfig

    router = Router(
        Services(config=CordonConfig(), storage=MemoryStorage(), graph=None),
        RoleResolver(RolesConfig(technicians=[TECH])),
    )
    [reply] = await router.handle_text("tenants", Actor(aad_id=TECH), CONTOSO, CHAT, RecordingOutbox())
    assert "MicrosoftAppTenantId" in (reply.text or "")
