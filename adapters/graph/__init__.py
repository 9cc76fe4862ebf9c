"""Microsoft Graph for Cordon: msal credentials per tenant, one GraphServiceClient per tenant, retries, errors.

Usable by other dialog families (lock-down, alerts). The gateway sits in `Services.graph` (app.build_app):

    from adapters.graph import GraphProblem, permissions
    from adapters.graph.inputs import odata_eq

    gateway = ctx.services.graph                                  # a GraphGateway
    tenant, user = gateway.directory.resolve_user("alice@contoso.com", tenant_name=None,
                                                  conversation_tenant_id=cmd.tenant_id)   # BadUserInput / UnknownTenant
    try:
        # typed msgraph-sdk call (the client is made inside the running loop and reused):
        me = await gateway.call(tenant, permissions.USER, lambda c: c.users.by_user_id(user.key).get())
        # raw JSON (fast, no model parsing), any method; OData values always through inputs.odata_string/odata_eq:
        page = await gateway.get_json(tenant, permissions.USER, "/users",
                                      {"$filter": odata_eq("userPrincipalName", user.key), "$select": "id"})
        await gateway.request_json(tenant, permissions.DISABLE_USER, "PATCH", f"/users/{me.id}",
                                   body={"accountEnabled": False})
        async for items in gateway.pages(tenant, permissions.RISK_DETECTIONS, "/identityProtection/riskDetections",
                                         {"$top": 500}, options=[RetryBudget(0)]):   # transport.RetryBudget
            ...
        level = await gateway.licence(tenant)                       # "Free" | "P1" | "P2", cached 24 h
    except GraphProblem as problem:                                 # .kind, .user_message, .retry_after, .refused
        return [Reply(text=problem.user_message)]

- Add a `Need` for each new operation in `permissions.py` (it also prints the README's permissions table).
- Extra kiota middleware per tenant (e.g. Identity Protection pacing): `gateway.middleware.append(factory)` where
  `factory(tenant_id) -> BaseMiddleware`, before the first call.
- `gateway.check_groups` is the `GroupChecker` for `adapters.roles.RoleResolver`.
- Tests: `tests/support/graph_standin` (a real aiohttp Graph on 127.0.0.1 + a managed-identity token endpoint).

Nothing heavy is imported here: msal, kiota and msgraph load on the first Graph call.
"""

from __future__ import annotations

from adapters.graph.errors import GraphProblem
from adapters.graph.gateway import GraphGateway
from adapters.graph.inputs import BadUserInput, UserRef, odata_eq, odata_string, parse_user
from adapters.graph.tenants import TenantDirectory, UnknownTenant

__all__ = [
    "BadUserInput",
    "GraphGateway",
    "GraphProblem",
    "TenantDirectory",
    "UnknownTenant",
    "UserRef",
    "odata_eq",
    "odata_string",
    "parse_user",
]
