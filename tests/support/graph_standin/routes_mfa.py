"""Stand-in endpoints for the MFA registration report and a user's live authentication methods."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from tests.support.graph_standin.server import graph_error, json_response, parse_filter
from tests.support.graph_standin.state import LICENCE_CODE, LICENCE_MESSAGE

if TYPE_CHECKING:
    from tests.support.graph_standin.server import GraphStandin

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
            items = [r for r in state.registration.values()
                     if any(str(r.get(name) or "").lower() == value.lower() for name, value in clauses)]
            return standin.page(request, len(items), lambda start, size: items[start:start + size])
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

    models = "msgraph.generated.models."
    standin.describe(router, REPORT, registration_list,
                     models + "user_registration_details_collection_response:UserRegistrationDetailsCollectionResponse")
    standin.describe(router, REPORT + "/{id}", registration_item,
                     models + "user_registration_details:UserRegistrationDetails")
    standin.describe(router, "/v1.0/users/{key}/authentication/methods", methods,
                     models + "authentication_method_collection_response:AuthenticationMethodCollectionResponse")
