"""The Graph gateway against the stand-in over real sockets: tokens, retries, errors, paging, licences, groups."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from adapters.config import RolesConfig
from adapters.graph import GraphProblem, permissions
from adapters.graph.inputs import odata_eq
from adapters.roles import RoleResolver
from dialogs.contract import Role
from tests.support.graph_standin import Fault, GraphStandin, payloads
from tests.support.graph_standin.fixtures import CONTOSO

USER = permissions.USER


def contoso(gateway):
    return gateway.tenant("Contoso")


async def get_user(gateway, key: str):
    return await gateway.call(contoso(gateway), USER, lambda c: c.users.by_user_id(key).get())


async def test_managed_identity_token_from_the_local_identity_endpoint_is_fetched_once_and_used(
    graph_standin: GraphStandin, gateway_for
) -> None:
    alice = graph_standin.state.add_user("alice@contoso.com")
    gateway, _ = gateway_for()
    for _ in range(3):
        assert (await get_user(gateway, "alice@contoso.com")).id == alice["id"]
    assert graph_standin.identity_requests == 1  # cached, not one token per call
    assert [r.tenant for r in graph_standin.graph_requests()] == [CONTOSO] * 3
    assert gateway.token_source(contoso(gateway)).acquired == 1


async def test_imds_managed_identity_when_no_app_service_variables(
    graph_standin: GraphStandin, gateway_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IDENTITY_ENDPOINT")
    monkeypatch.delenv("IDENTITY_HEADER")
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", graph_standin.url)  # msal's IMDS base override
    graph_standin.state.add_user("alice@contoso.com")
    gateway, _ = gateway_for()
    assert (await get_user(gateway, "alice@contoso.com")).user_principal_name == "alice@contoso.com"
    assert graph_standin.identity_requests == 1


async def test_a_refused_managed_identity_is_a_credentials_problem(
    graph_standin: GraphStandin, gateway_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "wrong")
    gateway, _ = gateway_for()
    with pytest.raises(GraphProblem) as caught:
        await get_user(gateway, "alice@contoso.com")
    assert caught.value.kind == "credentials" and caught.value.refused
    assert "managed identity" in caught.value.user_message
    assert graph_standin.graph_requests() == []


async def test_missing_client_secret_names_the_environment_variable(
    graph_standin: GraphStandin, gateway_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONTOSO_SECRET", raising=False)
    gateway, _ = gateway_for(
        tenants=[
            {
                "name": "Contoso",
                "tenant_id": CONTOSO,
                "domains": ["contoso.com"],
                "credential": "client_secret",
                "client_id": CONTOSO,
                "client_secret_env": "CONTOSO_SECRET",
            }
        ]
    )
    with pytest.raises(GraphProblem) as caught:
        await get_user(gateway, "alice@contoso.com")
    assert caught.value.kind == "credentials" and "CONTOSO_SECRET" in caught.value.user_message


async def test_one_client_per_tenant_reused_within_the_loop(graph_standin: GraphStandin, gateway_for) -> None:
    gateway, _ = gateway_for()
    first = gateway.client(contoso(gateway))
    assert gateway.client(contoso(gateway)) is first
    assert first.request_adapter.base_url == f"{graph_standin.url}/v1.0"
    assert "RetryHandler" not in _middleware_names(first)  # kiota's own retries are replaced by Cordon's budget
    assert "BudgetRetryHandler" in _middleware_names(first)


def _middleware_names(client) -> list[str]:
    transport = client.request_adapter._http_client._transport
    names, node = [], transport.pipeline._first_middleware
    while node is not None:
        names.append(type(node).__name__)
        node = node.next
    return names


async def test_429_with_retry_after_is_honoured(graph_standin: GraphStandin, gateway_for) -> None:
    graph_standin.state.add_user("alice@contoso.com")
    graph_standin.add_fault(Fault.throttle("/users/alice", retry_after=7, times=2))
    gateway, sleeper = gateway_for()
    assert (await get_user(gateway, "alice@contoso.com")).user_principal_name == "alice@contoso.com"
    assert sleeper.waits == [7.0, 7.0]
    assert len(graph_standin.graph_requests("/users/alice")) == 3


async def test_429_without_retry_after_backs_off_exponentially_with_jitter(
    graph_standin: GraphStandin, gateway_for
) -> None:
    graph_standin.state.add_user("alice@contoso.com")
    graph_standin.add_fault(Fault.throttle("/users/alice", times=4))
    gateway, sleeper = gateway_for()
    await get_user(gateway, "alice@contoso.com")
    assert len(sleeper.waits) == 4
    for attempt, wait in enumerate(sleeper.waits, start=1):
        ceiling = min(32.0, 2 ** (attempt - 1))
        assert ceiling / 2 <= wait <= ceiling  # equal jitter: half fixed, half random
    assert len(set(sleeper.waits)) == 4


async def test_throttling_beyond_the_budget_says_when_to_try_again(graph_standin: GraphStandin, gateway_for) -> None:
    graph_standin.state.add_user("alice@contoso.com")
    graph_standin.add_fault(Fault.throttle("/users/alice", retry_after=120, times=-1))
    gateway, sleeper = gateway_for(budget=60)
    with pytest.raises(GraphProblem) as caught:
        await get_user(gateway, "alice@contoso.com")
    assert caught.value.kind == "throttled" and caught.value.retry_after == 120
    assert "try again in 120 s" in caught.value.user_message
    assert sleeper.waits == []  # a wait longer than the budget is not even started


async def test_503_is_retried_then_succeeds_and_504_forever_is_unavailable(
    graph_standin: GraphStandin, gateway_for
) -> None:
    graph_standin.state.add_user("alice@contoso.com")
    graph_standin.add_fault(Fault.unavailable("/users/alice", times=2))
    gateway, sleeper = gateway_for(budget=20)
    assert (await get_user(gateway, "alice@contoso.com")).user_principal_name == "alice@contoso.com"
    assert len(sleeper.waits) == 2
    graph_standin.add_fault(Fault.unavailable("/users/alice", status=504, times=-1))
    with pytest.raises(GraphProblem) as caught:
        await get_user(gateway, "alice@contoso.com")
    assert caught.value.kind == "unavailable" and "try again in" in caught.value.user_message


async def test_403_licence_says_which_licence(graph_standin: GraphStandin, gateway_for) -> None:
    graph_standin.state.add_user("alice@contoso.com")
    graph_standin.add_fault(Fault.licence("/users/alice"))
    gateway, _ = gateway_for()
    with pytest.raises(GraphProblem) as caught:
        await get_user(gateway, "alice@contoso.com")
    assert caught.value.kind == "licence" and caught.value.refused
    assert "Microsoft Entra ID P1 or P2" in caught.value.user_message
    with pytest.raises(GraphProblem) as caught:  # the raw JSON path reads the OData error code too
        await gateway.get_json(contoso(gateway), permissions.SIGN_IN_ACTIVITY, "/users/alice@contoso.com")
    assert caught.value.kind == "licence"
    assert caught.value.code == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"


async def test_403_permission_names_the_permission_and_role(graph_standin: GraphStandin, gateway_for) -> None:
    alice = graph_standin.state.add_user("alice@contoso.com")
    graph_standin.add_fault(Fault.permission("/authentication/methods"))
    graph_standin.add_fault(Fault.permission("/v1.0/users/[^/]+$", times=1))
    gateway, _ = gateway_for()
    with pytest.raises(GraphProblem) as caught:
        await gateway.call(
            contoso(gateway),
            permissions.METHODS,
            lambda c: c.users.by_user_id(alice["id"]).authentication.methods.get(),
        )
    assert caught.value.kind == "permission"
    assert "UserAuthenticationMethod.Read.All" in caught.value.user_message and "Contoso" in caught.value.user_message
    with pytest.raises(GraphProblem) as caught:
        await gateway.request_json(
            contoso(gateway), permissions.DISABLE_USER, "PATCH", f"/users/{alice['id']}", body={"accountEnabled": False}
        )
    assert "User.EnableDisableAccount.All" in caught.value.user_message
    assert "Privileged Authentication Administrator" in caught.value.user_message


async def test_404_says_no_such_user_in_the_tenant(graph_standin: GraphStandin, gateway_for) -> None:
    gateway, _ = gateway_for()
    with pytest.raises(GraphProblem) as caught:
        await get_user(gateway, "nobody@contoso.com")
    assert caught.value.kind == "not_found" and caught.value.user_message == "No such user in Contoso."


async def test_slow_answer_is_retried_and_a_dead_graph_is_reported(graph_standin: GraphStandin, gateway_for) -> None:
    graph_standin.state.add_user("alice@contoso.com")
    graph_standin.add_fault(Fault.slow("/users/alice", seconds=2.0, times=1))
    gateway, sleeper = gateway_for(timeout_seconds=0.3, budget=5)
    assert (await get_user(gateway, "alice@contoso.com")).user_principal_name == "alice@contoso.com"
    assert len(sleeper.waits) == 1
    graph_standin.add_fault(Fault.slow("/users/alice", seconds=2.0, times=-1))
    with pytest.raises(GraphProblem) as caught:
        await get_user(gateway, "alice@contoso.com")
    assert caught.value.kind == "unavailable" and "did not answer in time" in caught.value.user_message


async def test_malformed_json_is_an_unreadable_answer_not_a_crash(graph_standin: GraphStandin, gateway_for) -> None:
    graph_standin.state.add_user("alice@contoso.com")
    graph_standin.add_fault(Fault.malformed_json("/users/alice"))
    gateway, _ = gateway_for()
    with pytest.raises(GraphProblem) as caught:
        await get_user(gateway, "alice@contoso.com")
    assert caught.value.kind == "unavailable" and "unreadable" in caught.value.user_message
    with pytest.raises(GraphProblem) as caught:
        await gateway.get_json(contoso(gateway), USER, "/users/alice@contoso.com")
    assert "unreadable" in caught.value.user_message


async def test_paging_follows_next_links_over_several_pages(graph_standin: GraphStandin, gateway_for) -> None:
    graph_standin.max_page = 4
    for i in range(11):
        graph_standin.state.add_user(f"user{i:02d}@contoso.com")
    gateway, _ = gateway_for()
    pages = [page async for page in gateway.pages(contoso(gateway), USER, "/users", {"$top": 4})]
    assert [len(p) for p in pages] == [4, 4, 3]
    assert sorted(u["userPrincipalName"] for p in pages for u in p) == [f"user{i:02d}@contoso.com" for i in range(11)]
    assert len(graph_standin.graph_requests("/users")) == 3


async def test_token_is_only_sent_to_the_graph_host(graph_standin: GraphStandin, gateway_for) -> None:
    seen: list[str | None] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"value": []})

    app = web.Application()
    app.router.add_get("/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    elsewhere = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    try:
        gateway, _ = gateway_for()
        client = gateway.client(contoso(gateway))
        # a typed call aimed elsewhere (another port on the same host) goes out without a token
        await client.users.with_url(f"{elsewhere}/v1.0/users").get()
        assert seen == [None]
        # a token set by hand on a request to another origin is stripped by the client's host guard
        import httpx

        await client.request_adapter._http_client.send(
            httpx.Request("GET", f"{elsewhere}/v1.0/me", headers={"Authorization": "Bearer leaked"})
        )
        assert seen == [None, None]
        # a nextLink to another origin is refused before it is fetched
        graph_standin.max_page = 1
        graph_standin.state.add_user("a@contoso.com")
        graph_standin.state.add_user("b@contoso.com")
        graph_standin.next_link_base = elsewhere
        with pytest.raises(GraphProblem):
            async for _ in gateway.pages(contoso(gateway), USER, "/users", {"$top": 1}):
                pass
        assert seen == [None, None]
        assert all(r.authorized for r in graph_standin.graph_requests())
    finally:
        await runner.cleanup()


async def test_odata_injection_stays_one_literal_in_the_filter(graph_standin: GraphStandin, gateway_for) -> None:
    graph_standin.state.add_user("o'brien@contoso.com")
    graph_standin.state.add_user("alice@contoso.com")
    gateway, _ = gateway_for()
    query = {"$filter": odata_eq("mail", "o'brien@contoso.com")}
    found = await gateway.get_json(contoso(gateway), USER, "/users", query)
    assert [u["mail"] for u in found["value"]] == ["o'brien@contoso.com"]
    for attack in ["x' or 1 eq 1", "x' or mail eq 'alice@contoso.com", "') or ('1' eq '1"]:
        answer = await gateway.get_json(contoso(gateway), USER, "/users", {"$filter": odata_eq("mail", attack)})
        assert answer["value"] == [], attack
    assert all("''" in r.query or "%27%27" in r.query for r in graph_standin.graph_requests("/users")[1:])


async def test_licence_level_from_subscribed_skus_is_cached(graph_standin: GraphStandin, gateway_for) -> None:
    gateway, _ = gateway_for()
    graph_standin.state.skus = payloads.premium_skus("P2")
    assert await gateway.licence(contoso(gateway)) == "P2"
    graph_standin.state.skus = payloads.premium_skus("Free")
    assert await gateway.licence(contoso(gateway)) == "P2"  # cached for 24 h
    assert len(graph_standin.graph_requests("/subscribedSkus")) == 1
    fresh, _ = gateway_for()
    assert await fresh.licence(contoso(fresh)) == "Free"
    graph_standin.state.skus = [payloads.sku("AAD_PREMIUM", ["AAD_PREMIUM"], status="Suspended")]
    other, _ = gateway_for()
    assert await other.licence(contoso(other)) == "Free"  # a suspended subscription grants nothing


async def test_role_resolver_uses_transitive_group_membership(graph_standin: GraphStandin, gateway_for) -> None:
    approvers = payloads.group("Cordon approvers")
    techs = payloads.group("Cordon technicians")
    alice = graph_standin.state.add_user("alice@contoso.com", groups=[approvers])
    bob = graph_standin.state.add_user("bob@contoso.com")
    gateway, _ = gateway_for()
    resolver = RoleResolver(RolesConfig(technicians=[techs["id"]], approvers=[approvers["id"]]), gateway.check_groups)
    assert await resolver.roles(alice["id"], CONTOSO) == frozenset({Role.APPROVER})
    assert await resolver.roles(bob["id"], CONTOSO) == frozenset()
    assert await resolver.roles(alice["id"], "00000000-0000-0000-0000-0000000000ff") == frozenset()  # unconfigured
    graph_standin.add_fault(Fault.unavailable("checkMemberGroups", times=-1))
    fresh = RoleResolver(RolesConfig(approvers=[approvers["id"]]), gateway.check_groups)
    assert await fresh.roles(alice["id"], CONTOSO) == frozenset()  # an outage never grants a role


async def test_a_new_event_loop_gets_its_own_client() -> None:
    from tests.support.graph_standin.fixtures import make_gateway, standin_config

    gateway = make_gateway(standin_config("http://127.0.0.1:9"))

    async def grab():
        return gateway.client(contoso(gateway))

    first = await grab()
    other = await asyncio.to_thread(lambda: asyncio.run(grab()))
    assert other is not first
    await gateway.close()
