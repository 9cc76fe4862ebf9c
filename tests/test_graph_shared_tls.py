"""Every tenant's Graph client shares one SSL context (one CA store in memory), while each keeps its own
credentials, connection pool, host guard and retry budget: each request carries only its own tenant's token
(real msal credentials, real sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from adapters.config import parse_config
from adapters.graph import GraphGateway, permissions
from adapters.graph.transport import RetryPolicy
from tests.support.graph_standin import Fault, GraphStandin
from tests.support.graph_standin.authority import AppRegistration
from tests.support.graph_standin.fixtures import CONTOSO, FABRIKAM, SleepRecorder
from tests.support.graph_standin.server import TENANT_KEY
from tests.support.tls_ca import LocalCA

APP = "5f2f0c50-1111-4222-8333-944455556666"
SECRET = "Fq8~another-test-secret-for-fabrikam"


def peer_route(router: web.UrlDispatcher, standin: GraphStandin) -> None:
    """`GET /v1.0/_whoami`: the tenant the bearer token proves and the client port of the connection it came on."""

    async def whoami(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        return web.json_response(
            {"tenant": request[TENANT_KEY], "port": peer[1] if peer else None, "asked_for": request.query.get("for")}
        )

    router.add_get("/v1.0/_whoami", whoami)


@pytest.fixture
async def two_tenants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[GraphStandin, Any]]:
    """Contoso through the managed identity, Fabrikam through a client secret against the HTTPS authority."""
    ca = LocalCA()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(ca.pem, encoding="utf-8")
    async with GraphStandin(
        home_tenant=CONTOSO, tls=ca.server_context(["localhost"]), extensions=[peer_route]
    ) as standin:
        for key, value in standin.environ().items():
            monkeypatch.setenv(key, value)
        standin.apps[(FABRIKAM, APP)] = AppRegistration(FABRIKAM, APP, secret=SECRET)
        config = parse_config(
            {
                "graph": {"endpoint": standin.url, "authority_host": standin.authority_url},
                "tenants": [
                    {"name": "Contoso", "tenant_id": CONTOSO, "domains": ["contoso.com"]},
                    {
                        "name": "Fabrikam",
                        "tenant_id": FABRIKAM,
                        "domains": ["fabrikam.com"],
                        "client_id": APP,
                        "credential": "client_secret",
                        "client_secret_env": "FABRIKAM_SECRET",
                    },
                ],
            }
        )
        sleeper = SleepRecorder()
        gateway = GraphGateway(
            config, environ={"FABRIKAM_SECRET": SECRET}, verify=str(ca_file), retry=RetryPolicy(sleep=sleeper)
        )
        gateway.sleeper = sleeper  # type: ignore[attr-defined]
        try:
            yield standin, gateway
        finally:
            await gateway.close()


def pool_of(client: Any) -> Any:
    """The connection pool under a tenant's client: client -> Graph middleware transport -> httpx transport."""
    return client.request_adapter._http_client._transport.transport


async def whoami(gateway: GraphGateway, tenant_name: str) -> dict[str, Any]:
    return await gateway.get_json(gateway.tenant(tenant_name), permissions.USER, "/_whoami", {"for": tenant_name})


async def test_tenants_share_the_ssl_context_and_nothing_else(two_tenants) -> None:
    _, gateway = two_tenants
    contoso, fabrikam = gateway.client(gateway.tenant("Contoso")), gateway.client(gateway.tenant("Fabrikam"))
    assert contoso is not fabrikam
    assert contoso.request_adapter._http_client is not fabrikam.request_adapter._http_client
    assert isinstance(pool_of(contoso), httpx.AsyncHTTPTransport) and pool_of(contoso) is not pool_of(fabrikam)
    assert pool_of(contoso)._pool._ssl_context is gateway.ssl_context  # one CA store loaded, not one per tenant
    assert pool_of(fabrikam)._pool._ssl_context is gateway.ssl_context
    # each keeps its own token provider (its own credentials) and its own retry handler
    assert (
        contoso.request_adapter._authentication_provider.access_token_provider.source
        is not fabrikam.request_adapter._authentication_provider.access_token_provider.source
    )
    first = {type(m).__name__: m for m in _middleware(contoso)}
    second = {type(m).__name__: m for m in _middleware(fabrikam)}
    assert first["BudgetRetryHandler"] is not second["BudgetRetryHandler"]


def _middleware(client: Any) -> list[Any]:
    found, node = [], client.request_adapter._http_client._transport.pipeline._first_middleware
    while node is not None:
        found.append(node)
        node = node.next
    return found


async def test_each_request_carries_its_own_tenant_token_on_its_own_tenant_connections(two_tenants) -> None:
    standin, gateway = two_tenants
    # one after the other: each tenant keeps its connection alive and uses it again
    answers = [await whoami(gateway, name) for name in ("Contoso", "Fabrikam", "Contoso", "Fabrikam")]
    assert [a["tenant"] for a in answers] == [CONTOSO, FABRIKAM, CONTOSO, FABRIKAM]
    assert answers[0]["port"] == answers[2]["port"] != answers[1]["port"] == answers[3]["port"]
    # interleaved: rounds of requests of both tenants at once; never a token for the other one
    standin.latency = 0.01
    names = ["Contoso", "Fabrikam"] * 4
    answers = []
    for _ in range(10):
        answers += await asyncio.gather(*(whoami(gateway, name) for name in names))
    names *= 10
    expected = {"Contoso": CONTOSO, "Fabrikam": FABRIKAM}
    assert [a["asked_for"] for a in answers] == names
    assert [a["tenant"] for a in answers] == [expected[a["asked_for"]] for a in answers]
    by_port: dict[int, set[str]] = {}
    for answer in answers:
        by_port.setdefault(answer["port"], set()).add(answer["tenant"])
    assert len(by_port) <= 10  # connections were kept alive and reused (4 at a time per tenant)...
    assert all(len(tenants) == 1 for tenants in by_port.values())  # ...each only by its own tenant
    recorded = standin.graph_requests("/_whoami")
    assert len(recorded) == 84 and all(r.authorized for r in recorded)
    assert {(r.tenant, r.query.split("for=")[1]) for r in recorded} == {(CONTOSO, "Contoso"), (FABRIKAM, "Fabrikam")}
    assert standin.token_requests == [{"tenant": FABRIKAM, "client_id": APP, "kind": "secret"}]


async def test_retry_budget_and_host_guard_stay_per_tenant(two_tenants) -> None:
    standin, gateway = two_tenants
    standin.tenant(FABRIKAM).add_user("bob@fabrikam.com")
    standin.add_fault(Fault.throttle("/users/bob@fabrikam.com", retry_after=3))
    bob = await gateway.get_json(gateway.tenant("Fabrikam"), permissions.USER, "/users/bob@fabrikam.com")
    assert bob["userPrincipalName"] == "bob@fabrikam.com"
    assert gateway.sleeper.waits == [3.0]
    # a hand-set token aimed at another origin is stripped by the tenant's own client, shared pool or not
    seen: list[str | None] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        for name in ("Contoso", "Fabrikam"):
            http = gateway.client(gateway.tenant(name)).request_adapter._http_client
            await http.send(
                httpx.Request("GET", f"http://127.0.0.1:{port}/v1.0/me", headers={"Authorization": "Bearer leaked"})
            )
    finally:
        await runner.cleanup()
    assert seen == [None, None]


async def test_close_closes_every_tenant_connection(two_tenants) -> None:
    _, gateway = two_tenants
    assert (await whoami(gateway, "Fabrikam"))["tenant"] == FABRIKAM
    assert (await whoami(gateway, "Contoso"))["tenant"] == CONTOSO
    pools = [pool_of(gateway.client(gateway.tenant(name))) for name in ("Contoso", "Fabrikam")]
    assert all(pool._pool.connections for pool in pools)
    await gateway.close()
    assert [pool._pool.connections for pool in pools] == [[], []]  # not left to the garbage collector
    assert (await whoami(gateway, "Contoso"))["tenant"] == CONTOSO  # a later call gets a new client
    assert pool_of(gateway.client(gateway.tenant("Contoso"))) not in pools


async def test_many_tenants_load_one_ssl_context() -> None:
    tenants = [{"name": f"T{i}", "tenant_id": f"20000000-0000-4000-8000-{i:012d}"} for i in range(50)]
    gateway = GraphGateway(parse_config({"graph": {"endpoint": "http://127.0.0.1:9"}, "tenants": tenants}))
    try:
        clients = [gateway.client(t) for t in gateway.tenants]
        assert len({id(c) for c in clients}) == len({id(pool_of(c)) for c in clients}) == 50
        assert {id(pool_of(c)._pool._ssl_context) for c in clients} == {id(gateway.ssl_context)}
    finally:
        await gateway.close()
