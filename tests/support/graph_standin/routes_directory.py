"""Stand-in endpoints for users, memberships, licences and the policies that enforce MFA."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.graph_standin.server import graph_error, json_response, parse_filter
from tests.support.graph_standin.state import LICENCE_CODE, LICENCE_MESSAGE

if TYPE_CHECKING:
    from tests.support.graph_standin.server import GraphStandin

USER_FILTER_FIELDS = {"mail", "userPrincipalName", "id", "displayName"}


def register(router: web.UrlDispatcher, standin: GraphStandin) -> None:
    async def list_users(request: web.Request) -> web.Response:
        state = standin.state_for(request)
        users = list(state.users.values())
        if "$filter" in request.query:
            try:
                clauses = parse_filter(request.query["$filter"])
            except ValueError:
                return graph_error(400, "Request_UnsupportedQuery", "Invalid filter clause")
            if any(name not in USER_FILTER_FIELDS for name, _ in clauses):
                return graph_error(400, "Request_UnsupportedQuery", "Unsupported property in filter")
            users = [
                u for u in users if any(str(u.get(name) or "").lower() == value.lower() for name, value in clauses)
            ]
        return standin.page(request, len(users), lambda start, size: [_public(u) for u in users[start : start + size]])

    async def get_user(request: web.Request) -> web.Response:
        state = standin.state_for(request)
        user = state.find_user(request.match_info["key"])
        if user is None:
            return graph_error(
                404,
                "Request_ResourceNotFound",
                f"Resource '{request.match_info['key']}' does not exist or one of its queried "
                "reference-property objects are not present.",
            )
        selected = set(request.query.get("$select", "").split(",")) - {""}
        if "signInActivity" in selected and not state.premium:
            return graph_error(403, LICENCE_CODE, LICENCE_MESSAGE)
        payload = _public(user)
        if "signInActivity" in selected and "signInActivity" in user:
            payload["signInActivity"] = user["signInActivity"]
        if selected:
            payload = {k: v for k, v in payload.items() if k in selected or k == "id"}
        return json_response(payload)

    async def member_of(request: web.Request) -> web.Response:
        state = standin.state_for(request)
        user = state.find_user(request.match_info["key"])
        if user is None:
            return graph_error(404)
        items = state.member_of.get(user["id"], [])
        return standin.page(request, len(items), lambda start, size: items[start : start + size])

    async def check_member_groups(request: web.Request) -> web.Response:
        state = standin.state_for(request)
        user = state.find_user(request.match_info["key"])
        if user is None:
            return graph_error(404)
        body = await request.json()
        wanted = body.get("groupIds") if isinstance(body, dict) else None
        if not isinstance(wanted, list) or not 1 <= len(wanted) <= 20:
            return graph_error(400, "Request_BadRequest", "groupIds must hold 1 to 20 ids")
        held = {m["id"] for m in state.member_of.get(user["id"], []) if m["@odata.type"] == "#microsoft.graph.group"}
        return json_response({"value": [g for g in wanted if g in held]})

    async def subscribed_skus(request: web.Request) -> web.Response:
        return json_response({"value": standin.state_for(request).skus})

    async def ca_policies(request: web.Request) -> web.Response:
        state = standin.state_for(request)
        return standin.page(
            request, len(state.ca_policies), lambda start, size: state.ca_policies[start : start + size]
        )

    async def security_defaults(request: web.Request) -> web.Response:
        from tests.support.graph_standin import payloads

        return json_response(payloads.security_defaults(standin.state_for(request).security_defaults))

    models = "msgraph.generated.models."
    standin.describe(router, "/v1.0/users", list_users, models + "user_collection_response:UserCollectionResponse")
    standin.describe(router, "/v1.0/users/{key}", get_user, models + "user:User")
    standin.describe(
        router,
        "/v1.0/users/{key}/transitiveMemberOf",
        member_of,
        models + "directory_object_collection_response:DirectoryObjectCollectionResponse",
    )
    router.add_post("/v1.0/users/{key}/checkMemberGroups", check_member_groups)
    standin.describe(
        router,
        "/v1.0/subscribedSkus",
        subscribed_skus,
        models + "subscribed_sku_collection_response:SubscribedSkuCollectionResponse",
    )
    standin.describe(
        router,
        "/v1.0/identity/conditionalAccess/policies",
        ca_policies,
        models + "conditional_access_policy_collection_response:ConditionalAccessPolicyCollectionResponse",
    )
    standin.describe(
        router,
        "/v1.0/policies/identitySecurityDefaultsEnforcementPolicy",
        security_defaults,
        models + "identity_security_defaults_enforcement_policy:IdentitySecurityDefaultsEnforcementPolicy",
    )


def _public(user: dict[str, Any]) -> dict[str, Any]:
    """A user as Graph returns it by default (signInActivity only when selected)."""
    return {k: v for k, v in user.items() if k != "signInActivity"}
