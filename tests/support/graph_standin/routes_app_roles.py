"""Service principals and app role assignments, as `app.py permissions --grant` uses them.

    GraphStandin(home_tenant=..., extensions=[routes_app_roles.register])

Microsoft Graph's service principal offers an application role for every permission name in `GRAPH_ROLES`
(ids are stable per name). `POST /servicePrincipals/{id}/appRoleAssignments` answers 201 with the assignment, and
400 "Permission being assigned already exists on the object" for a duplicate, as Graph does. A caller's tenant
must hold `can_assign` (else 403 Authorization_RequestDenied). Every payload parses into msgraph-sdk models.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.graph_standin.server import graph_error, json_response, parse_filter

if TYPE_CHECKING:
    from tests.support.graph_standin.server import GraphStandin

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_ROLES = (
    "Application.Read.All",
    "AuditLog.Read.All",
    "DelegatedPermissionGrant.Read.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "DeviceManagementManagedDevices.PrivilegedOperations.All",
    "DeviceManagementManagedDevices.Read.All",
    "Directory.Read.All",
    "GroupMember.Read.All",
    "IdentityRiskEvent.Read.All",
    "IdentityRiskyUser.ReadWrite.All",
    "LicenseAssignment.Read.All",
    "MailboxSettings.ReadWrite",
    "Policy.Read.All",
    "RoleManagement.Read.Directory",
    "SecurityEvents.Read.All",
    "ThreatHunting.Read.All",
    "User-PasswordProfile.ReadWrite.All",
    "User.EnableDisableAccount.All",
    "User.Read.All",
    "User.RevokeSessions.All",
    "UserAuthenticationMethod.Read.All",
)
SP_PATH = "/v1.0/servicePrincipals"
ASSIGNMENTS_PATH = "/v1.0/servicePrincipals/{sp_id}/appRoleAssignments"


def role_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"graph-app-role:{name}"))


@dataclass
class Directory:
    """Service principals (by object id) and app role assignments of one tenant."""

    principals: dict[str, dict[str, Any]] = field(default_factory=dict)
    assignments: list[dict[str, Any]] = field(default_factory=list)
    can_assign: bool = True
    posts: list[dict[str, Any]] = field(default_factory=list)

    def add_principal(self, app_id: str, name: str, roles: tuple[str, ...] = ()) -> dict[str, Any]:
        sp: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "appId": app_id,
            "displayName": name,
            "appRoles": [
                {
                    "id": role_id(r),
                    "value": r,
                    "displayName": r,
                    "description": f"Allows the app to {r}.",
                    "allowedMemberTypes": ["Application"],
                    "isEnabled": True,
                    "origin": "Application",
                }
                for r in roles
            ],
        }
        self.principals[sp["id"]] = sp
        return sp

    def held(self, principal_id: str) -> set[str]:
        graph = next(sp for sp in self.principals.values() if sp["appId"] == GRAPH_APP_ID)
        names = {role["id"]: role["value"] for role in graph["appRoles"]}
        return {
            names[a["appRoleId"]]
            for a in self.assignments
            if a["principalId"] == principal_id and a["resourceId"] == graph["id"]
        }


def directory(standin: GraphStandin, tenant_id: str) -> Directory:
    """The tenant's service principals; Microsoft Graph's own is there from the start."""
    state = standin.tenant(tenant_id)
    found = getattr(state, "app_roles_directory", None)
    if found is None:
        found = Directory()
        found.add_principal(GRAPH_APP_ID, "Microsoft Graph", GRAPH_ROLES)
        state.app_roles_directory = found  # type: ignore[attr-defined]
    return found


def register(router: web.UrlDispatcher, standin: GraphStandin) -> None:
    def of(request: web.Request) -> Directory:
        return directory(standin, standin.state_for(request).tenant_id)

    def selected(item: dict[str, Any], request: web.Request) -> dict[str, Any]:
        wanted = set(request.query.get("$select", "").split(",")) - {""}
        return {k: v for k, v in item.items() if not wanted or k in wanted}

    async def principals(request: web.Request) -> web.Response:
        rows = list(of(request).principals.values())
        if "$filter" in request.query:
            try:
                clauses = parse_filter(request.query["$filter"])
            except ValueError:
                return graph_error(400, "BadRequest", "Invalid filter clause")
            if any(prop != "appId" for prop, _ in clauses):
                return graph_error(400, "BadRequest", "Unsupported filter property")
            wanted = {value for _, value in clauses}
            rows = [sp for sp in rows if sp["appId"] in wanted]
        rows = [selected(sp, request) for sp in rows]
        return standin.page(request, len(rows), lambda start, size: rows[start : start + size])

    async def assignments(request: web.Request) -> web.Response:
        sp_id = request.match_info["sp_id"]
        if sp_id not in of(request).principals:
            return graph_error(404, "Request_ResourceNotFound", f"Resource '{sp_id}' does not exist.")
        rows = [a for a in of(request).assignments if a["principalId"] == sp_id]
        return standin.page(request, len(rows), lambda start, size: rows[start : start + size])

    async def assign(request: web.Request) -> web.Response:
        store = of(request)
        sp_id = request.match_info["sp_id"]
        try:
            body = json.loads(await request.text())
        except ValueError:
            return graph_error(400, "BadRequest", "Invalid request body")
        store.posts.append(body)
        if not store.can_assign:
            return graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        principal, resource = store.principals.get(sp_id), store.principals.get(str(body.get("resourceId")))
        if principal is None or body.get("principalId") != sp_id or resource is None:
            return graph_error(404, "Request_ResourceNotFound", "Resource does not exist.")
        if body.get("appRoleId") not in {r["id"] for r in resource["appRoles"]}:
            return graph_error(400, "Request_BadRequest", "Permission being assigned was not found on application")
        if any(
            a["principalId"] == sp_id and a["resourceId"] == resource["id"] and a["appRoleId"] == body["appRoleId"]
            for a in store.assignments
        ):
            return graph_error(400, "Request_BadRequest", "Permission being assigned already exists on the object")
        created = {
            "id": str(uuid.uuid4()),
            "appRoleId": body["appRoleId"],
            "principalId": sp_id,
            "principalDisplayName": principal["displayName"],
            "principalType": "ServicePrincipal",
            "resourceId": resource["id"],
            "resourceDisplayName": resource["displayName"],
            "createdDateTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        store.assignments.append(created)
        return json_response(created, 201)

    standin.describe(
        router,
        SP_PATH,
        principals,
        "msgraph.generated.models.service_principal_collection_response:ServicePrincipalCollectionResponse",
    )
    standin.describe(
        router,
        ASSIGNMENTS_PATH,
        assignments,
        "msgraph.generated.models.app_role_assignment_collection_response:AppRoleAssignmentCollectionResponse",
    )
    router.add_post(ASSIGNMENTS_PATH, assign)
