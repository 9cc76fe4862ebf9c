"""`GraphGateway`: the one object dialogs use to reach Microsoft Graph in any configured tenant.

It owns, per tenant, one msal token source and one `GraphServiceClient` (created inside the running loop and
reused while that loop lives); the clients share one SSL context (`transport.default_ssl_context`).
Every call goes through `call()` or the raw JSON helpers, which turn failures into `GraphProblem` using the
operation's `Need`. The licence level is cached 24 hours; group checks for the role gate go
through `check_groups` (a `GroupChecker` for `adapters.roles.RoleResolver`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlencode

from adapters.config import BotSettings, CordonConfig, TenantConfig
from adapters.graph import permissions
from adapters.graph.credentials import TokenSource
from adapters.graph.errors import GraphProblem, problem_from
from adapters.graph.inputs import parse_user
from adapters.graph.permissions import Need
from adapters.graph.tenants import TenantDirectory, default_tenants
from adapters.ttl_cache import TTLCache

log = logging.getLogger(__name__)

T = TypeVar("T")
Licence = Literal["Free", "P1", "P2"]
LICENCE_TTL_SECONDS = 24 * 3600.0
P2_PLANS = frozenset({"AAD_PREMIUM_P2"})
P1_PLANS = frozenset({"AAD_PREMIUM", "AAD_PREMIUM_P1"})
CHECK_MEMBER_GROUPS_MAX = 20  # Graph's limit of ids per checkMemberGroups request


class GraphGateway:
    """Microsoft Graph for every configured tenant. Put one in `Services.graph`; `await close()` at shutdown."""

    def __init__(
        self,
        config: CordonConfig,
        settings: BotSettings | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        verify: bool | str = True,
        retry: Any = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.graph = config.graph
        self.directory = TenantDirectory(default_tenants(config, settings))
        self._environ = environ
        self._verify = verify
        self._retry = retry  # a transport.RetryPolicy; built on first use (keeps kiota out of import time)
        self._monotonic = monotonic
        self._sources: dict[str, TokenSource] = {}
        self._clients: dict[str, tuple[asyncio.AbstractEventLoop, Any]] = {}
        self._ssl_context: Any = None  # one for every tenant's client, made with the first one
        self._licences: TTLCache[str, Licence] = TTLCache(
            LICENCE_TTL_SECONDS, max(1, len(self.tenants)), monotonic=monotonic
        )
        self.middleware: list[Callable[[str], Any]] = []  # extra kiota middleware factories (tenant id -> handler)
        self.requests_sent = 0  # HTTP attempts, retries included (bench and tests read it)

    # --- tenants and clients ------------------------------------------------------------------------------------
    @property
    def tenants(self) -> list[TenantConfig]:
        return self.directory.tenants

    def tenant(self, name_or_id: str) -> TenantConfig:
        return self.directory.by_id(name_or_id) or self.directory.by_name(name_or_id)

    def token_source(self, tenant: TenantConfig) -> TokenSource:
        source = self._sources.get(tenant.tenant_id)
        if source is None:
            source = TokenSource(tenant, self.graph, environ=self._environ, verify=self._verify)
            self._sources[tenant.tenant_id] = source
        return source

    @property
    def retry_policy(self) -> Any:
        if self._retry is None:
            from adapters.graph.transport import RetryPolicy

            self._retry = RetryPolicy(budget_seconds=self.graph.retry_budget_seconds)
        return self._retry

    def _count(self, _request: Any) -> None:
        self.requests_sent += 1

    def client(self, tenant: TenantConfig) -> Any:
        """The tenant's GraphServiceClient for the running loop (made on first use, then reused)."""
        from adapters.graph.transport import build_client

        loop = asyncio.get_running_loop()
        held = self._clients.get(tenant.tenant_id)
        if held is not None and held[0] is loop:
            return held[1]
        client = build_client(
            self.token_source(tenant),
            endpoint=self.graph.endpoint,
            timeout=self.graph.timeout_seconds,
            policy=self.retry_policy,
            extra=self.middleware,
            on_attempt=self._count,
            ssl_context=self.ssl_context,
        )
        self._clients[tenant.tenant_id] = (loop, client)
        return client

    @property
    def ssl_context(self) -> Any:
        """The SSL context every tenant's client uses (one CA store in memory, not one per tenant)."""
        if self._ssl_context is None:
            from adapters.graph.transport import default_ssl_context

            self._ssl_context = default_ssl_context()
        return self._ssl_context

    async def close(self) -> None:
        """Close the connections of the clients made in this loop (others can only be dropped)."""
        from adapters.graph.transport import close_client

        loop = asyncio.get_running_loop()
        for key, (owner, client) in list(self._clients.items()):
            if owner is loop:
                await close_client(client)
            del self._clients[key]

    # --- calls ---------------------------------------------------------------------------------------------------
    async def call(self, tenant: TenantConfig, need: Need, operation: Callable[[Any], Awaitable[T]]) -> T:
        """`await operation(client)`, with any failure turned into a GraphProblem explained through `need`."""
        try:
            return await operation(self.client(tenant))
        except GraphProblem:
            raise
        except Exception as exc:  # noqa: BLE001 - problem_from re-raises what it cannot explain
            problem = problem_from(exc, need=need, tenant=tenant.name)
            log.info("Graph call to %s in %s failed: %s (%s)", need.what, tenant.name, problem.kind, problem.status)
            raise problem from exc

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """An absolute v1.0 URL; `params` values are URL-encoded (OData escaping is the caller's, via inputs)."""
        query = urlencode(params or {}, quote_via=quote, safe="$,'()/:")
        return f"{self.graph.endpoint}/v1.0{path}" + (f"?{query}" if query else "")

    async def _send(
        self, tenant: TenantConfig, method: str, url: str, body: Any = None, options: list[Any] | None = None
    ) -> bytes | None:
        from kiota_abstractions.method import Method
        from kiota_abstractions.request_information import RequestInformation
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        client = self.client(tenant)
        info = RequestInformation(Method(method))
        info.url = url  # a raw URL, not a template (template expansion would mangle `$select=a,b`)
        info.headers.try_add("Accept", "application/json")
        if body is not None:
            info.content = json.dumps(body).encode()
            info.headers.try_add("Content-Type", "application/json")
        if options:
            info.add_request_options(options)
        errors = {"XXX": ODataError}
        data: bytes | None = await client.request_adapter.send_primitive_async(info, "bytes", errors)
        return data

    async def request_json(
        self,
        tenant: TenantConfig,
        need: Need,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        options: list[Any] | None = None,
    ) -> dict[str, Any] | None:
        """One raw request (fast path, no model parsing); the JSON answer as a dict, None for 204."""
        url = path_or_url if "://" in path_or_url else self.url(path_or_url, params)

        async def run(_client: Any) -> dict[str, Any] | None:
            content = await self._send(tenant, method, url, body, options)
            if not content:
                return None
            value = json.loads(content)
            if not isinstance(value, dict):
                raise json.JSONDecodeError("expected a JSON object", "", 0)
            return value

        return await self.call(tenant, need, run)

    async def get_json(
        self, tenant: TenantConfig, need: Need, path: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        return await self.request_json(tenant, need, "GET", path, params=params) or {}

    async def pages(
        self,
        tenant: TenantConfig,
        need: Need,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        options: list[Any] | None = None,
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """Each page's `value` list, following @odata.nextLink; the next page is fetched while this one is used."""
        from adapters.graph.transport import origin

        async def fetch(url: str) -> dict[str, Any]:
            return await self.request_json(tenant, need, "GET", url, options=options) or {}

        pending: asyncio.Task[dict[str, Any]] | None = asyncio.ensure_future(fetch(self.url(path, params)))
        try:
            while pending is not None:
                payload = await pending
                pending = None
                link = payload.get("@odata.nextLink")
                if link:
                    if origin(link) != origin(self.graph.endpoint):
                        raise GraphProblem(
                            "unavailable",
                            f"Graph sent a next-page link to another host for {tenant.name}; the listing was stopped.",
                            tenant=tenant.name,
                        )
                    pending = asyncio.ensure_future(fetch(link))
                yield list(payload.get("value") or [])
        finally:
            if pending is not None:
                pending.cancel()

    # --- licence and groups --------------------------------------------------------------------------------------
    async def licence(self, tenant: TenantConfig) -> Licence:
        """Entra ID level from `subscribedSkus` (enabled or in grace), cached 24 hours."""
        cached = self._licences.get(tenant.tenant_id)
        if cached is not None:
            return cached
        plans: set[str] = set()
        async for page in self.pages(tenant, permissions.SKUS, "/subscribedSkus"):
            for sku in page:
                if sku.get("capabilityStatus") not in ("Enabled", "Warning"):
                    continue
                plans |= {
                    p.get("servicePlanName")
                    for p in sku.get("servicePlans") or []
                    if p.get("provisioningStatus") in (None, "Success", "PendingActivation", "PendingInput")
                }
        level: Licence = "P2" if plans & P2_PLANS else "P1" if plans & P1_PLANS else "Free"
        self._licences.put(tenant.tenant_id, level)
        return level

    async def check_groups(self, tenant_id: str, user_id: str, candidates: list[str]) -> set[str]:
        """The candidate group ids the user is a transitive member of (a `roles.GroupChecker`)."""
        tenant = self.directory.by_id(tenant_id)
        if tenant is None:  # Cordon cannot see groups in a tenant it does not act in: no group-based role there
            log.debug("group check skipped: tenant %s is not configured", tenant_id)
            return set()
        user = parse_user(user_id)
        found: set[str] = set()
        for start in range(0, len(candidates), CHECK_MEMBER_GROUPS_MAX):
            chunk = candidates[start : start + CHECK_MEMBER_GROUPS_MAX]
            answer = await self.request_json(
                tenant,
                permissions.GROUP_CHECK,
                "POST",
                f"/users/{quote(user.key, safe='@')}/checkMemberGroups",
                body={"groupIds": chunk},
            )
            found |= {str(v).lower() for v in (answer or {}).get("value") or []}
        return found & {c.lower() for c in candidates}
