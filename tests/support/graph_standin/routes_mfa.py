"""Stand-in endpoints for the MFA registration report and a user's live authentication methods."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.graph_standin.server import graph_error, json_response, parse_filter
from tests.support.graph_standin.state import LICENCE_CODE, LICENCE_MESSAGE

if TYPE_CHECKING:
    from tests.support.graph_standin.server import GraphStandin
    from tests.support.graph_standin.state import TenantState

REPORT = "/v1.0/reports/authenticationMethods/userRegistrationDetails"


def register(router: web.UrlDispatcher, standin: GraphStandin) -> None:
    async def registration_list(request: web.Request) -> web.Response:
        state = standin.state_for(request)
        if not state.premium:  # the report needs Entra ID P1/P2, as in Graph
            return graph_error(403, LICENCE_CODE, LICENCE_MESSAGE)
        if "$filter" in request.query:
            try:
                clauses = parse_filter(request.query["$filter"])
            except ValueError:
                return graph_error(400, "Request_UnsupportedQuery", "Invalid filter clause")
            items = [
                r
                for r in state.registration.values()
                if any(str(r.get(name) or "").lower() == value.lower() for name, value in clauses)
            ]
            return standin.page(request, len(items), lambda start, size: items[start : start + size])
        return standin.page(request, state.registration_count(), state.registration_slice)

    async def registration_item(request: web.Request) -> web.Response:
        state = standin.state_for(request)
        if not state.premium:
            return graph_error(403, LICENCE_CODE, LICENCE_MESSAGE)
        item = state.registration.get(request.match_info["id"].lower())
        if item is None:
            return graph_error(404)
        return json_response(item)

    async def methods(request: web.Request) -> web.Response:
        state = standin.state_for(request)
        user = state.find_user(request.match_info["key"])
        if user is None:
            return graph_error(404)
        return json_response({"value": state.methods.get(user["id"], [])})

    async def directory_roles(request: web.Request) -> web.Response:
        roles = list(_activated_roles(standin.state_for(request)).values())
        return standin.page(request, len(roles), lambda start, size: roles[start : start + size])

    async def role_members(request: web.Request) -> web.Response:
        state = standin.state_for(request)
        role = next((r for r in _activated_roles(state).values() if r["id"] == request.match_info["role"]), None)
        if role is None:
            return graph_error(404)
        template = role["roleTemplateId"]
        members = [
            {"@odata.type": "#microsoft.graph.user", "id": user_id}
            for user_id, held in state.member_of.items()
            if any(m.get("roleTemplateId") == template for m in held)
        ]
        members += state.extra.get("role_members", {}).get(template, [])
        return standin.page(request, len(members), lambda start, size: members[start : start + size])

    async def group_members(request: web.Request) -> web.Response:
        members = standin.state_for(request).extra.get("group_members", {}).get(request.match_info["group"])
        if members is None:
            return graph_error(404)
        return standin.page(request, len(members), lambda start, size: members[start : start + size])

    models = "msgraph.generated.models."
    standin.describe(
        router,
        "/v1.0/directoryRoles",
        directory_roles,
        models + "directory_role_collection_response:DirectoryRoleCollectionResponse",
    )
    standin.describe(
        router,
        "/v1.0/directoryRoles/{role}/members",
        role_members,
        models + "directory_object_collection_response:DirectoryObjectCollectionResponse",
    )
    standin.describe(
        router,
        "/v1.0/groups/{group}/transitiveMembers",
        group_members,
        models + "directory_object_collection_response:DirectoryObjectCollectionResponse",
    )
    standin.describe(
        router,
        REPORT,
        registration_list,
        models + "user_registration_details_collection_response:UserRegistrationDetailsCollectionResponse",
    )
    standin.describe(
        router, REPORT + "/{id}", registration_item, models + "user_registration_details:UserRegistrationDetails"
    )
    standin.describe(
        router,
        "/v1.0/users/{key}/authentication/methods",
        methods,
        models + "authentication_method_collection_response:AuthenticationMethodCollectionResponse",
    )


def _activated_roles(state: TenantState) -> dict[str, dict[str, Any]]:
    """The tenant's activated directory roles by template id: those users hold (`member_of`) and those given
    members directly in `extra["role_members"]` ({template id: [user or group objects]})."""
    roles: dict[str, dict[str, Any]] = {}
    for held in state.member_of.values():
        for item in held:
            if item.get("@odata.type") == "#microsoft.graph.directoryRole":
                roles.setdefault(item["roleTemplateId"], {k: v for k, v in item.items() if k != "@odata.type"})
    for template in state.extra.get("role_members", {}):
        roles.setdefault(
            template,
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_OID, template)),
                "displayName": state.extra.get("role_names", {}).get(template, "Role"),
                "roleTemplateId": template,
            },
        )
    return roles
