"""Stand-in endpoints for `investigate` and `hunt`: OAuth2 permission grants (list, revoke), service principals,
Intune managed devices, their Defender state and the Defender scan action.

Sign-ins and directory audits are served by their owners (`identity_protection`, `lockdown_routes`), which this
module registers once; their data is `IncidentData.risk.sign_ins` / `LockdownData.audits` of the same tenant.
Intune answers 403 "not licensed" when the tenant's `IncidentData.intune` is False, like a tenant without an
Intune licence. Every write is booked in `writes` so tests can count them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.graph_standin import lockdown_routes
from tests.support.graph_standin.server import graph_error, json_response

if TYPE_CHECKING:
    from tests.support.graph_standin.server import GraphStandin
    from tests.support.graph_standin.state import TenantState

INTUNE_UNLICENSED = "Tenant is not licensed for Microsoft Intune: not licensed for this operation."
MODELS = {
    "grants": "msgraph.generated.models.o_auth2_permission_grant_collection_response:"
    "OAuth2PermissionGrantCollectionResponse",
    "sp": "msgraph.generated.models.service_principal:ServicePrincipal",
    "devices": "msgraph.generated.models.managed_device_collection_response:ManagedDeviceCollectionResponse",
    "protection": "msgraph.generated.models.windows_protection_state:WindowsProtectionState",
}


@dataclass
class IncidentData:
    grants: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # user id -> grants
    service_principals: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> servicePrincipal
    devices: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # user id -> managedDevices
    protection: dict[str, dict[str, Any]] = field(default_factory=dict)  # device id -> windowsProtectionState
    intune: bool = True
    writes: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    scans: list[str] = field(default_factory=list)  # device ids scanned
    revoked: list[str] = field(default_factory=list)  # grant ids deleted

    @classmethod
    def of(cls, state: TenantState) -> IncidentData:
        data = state.extra.get("incident")
        if data is None:
            data = state.extra["incident"] = cls()
        return data

    def add_device(
        self, user: dict[str, Any], device: dict[str, Any], protection: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        self.devices.setdefault(user["id"], []).append(device)
        if protection is not None:
            self.protection[device["id"]] = protection
        return device

    def add_grant(self, user: dict[str, Any], sp: dict[str, Any], grant: dict[str, Any]) -> dict[str, Any]:
        self.service_principals[sp["id"]] = sp
        self.grants.setdefault(user["id"], []).append(grant)
        return grant


def register(router: web.UrlDispatcher, standin: GraphStandin) -> None:
    if not any(r.canonical == "/v1.0/auditLogs/directoryAudits" for r in router.resources()):
        lockdown_routes.register(router, standin)  # sign-ins, audits, rules (once per router)

    def context(request: web.Request) -> tuple[IncidentData, dict[str, Any] | None]:
        state = standin.state_for(request)
        key = request.match_info.get("key")
        return IncidentData.of(state), state.find_user(key) if key else None

    async def list_grants(request: web.Request) -> web.Response:
        data, user = context(request)
        if user is None:
            return graph_error(404)
        rows = data.grants.get(user["id"], [])
        return standin.page(request, len(rows), lambda start, size: rows[start : start + size])

    async def get_sp(request: web.Request) -> web.Response:
        data, _ = context(request)
        sp = data.service_principals.get(request.match_info["sp"])
        if sp is None:
            return graph_error(404)
        selected = set(request.query.get("$select", "").split(",")) - {""}
        return json_response({k: v for k, v in sp.items() if not selected or k in selected})

    async def delete_grant(request: web.Request) -> web.Response:
        data, _ = context(request)
        grant_id = request.match_info["grant"]
        for rows in data.grants.values():
            for row in rows:
                if row["id"] == grant_id:
                    rows.remove(row)
                    data.writes.append(("DELETE", request.path, None))
                    data.revoked.append(grant_id)
                    return web.Response(status=204)
        return graph_error(404)

    def intune_refused(data: IncidentData) -> web.Response | None:
        return None if data.intune else graph_error(403, "Forbidden", INTUNE_UNLICENSED)

    async def list_devices(request: web.Request) -> web.Response:
        data, user = context(request)
        if (refused := intune_refused(data)) is not None:
            return refused
        if user is None:
            return graph_error(404)
        rows = data.devices.get(user["id"], [])
        return standin.page(request, len(rows), lambda start, size: rows[start : start + size])

    def find_device(data: IncidentData, device_id: str) -> dict[str, Any] | None:
        return next((d for rows in data.devices.values() for d in rows if d["id"] == device_id), None)

    async def protection(request: web.Request) -> web.Response:
        data, _ = context(request)
        if (refused := intune_refused(data)) is not None:
            return refused
        state = data.protection.get(request.match_info["device"])
        return json_response(state) if state is not None else graph_error(404)

    async def scan(request: web.Request) -> web.Response:
        data, _ = context(request)
        if (refused := intune_refused(data)) is not None:
            return refused
        device = find_device(data, request.match_info["device"])
        if device is None:
            return graph_error(404)
        body = await request.json() if request.can_read_body else None
        if not isinstance(body, dict) or set(body) != {"quickScan"} or not isinstance(body["quickScan"], bool):
            return graph_error(400, "BadRequest", "quickScan (Edm.Boolean) is required")
        if not device["operatingSystem"].lower().startswith("windows"):
            return graph_error(400, "BadRequest", "windowsDefenderScan is only supported on Windows devices")
        data.writes.append(("POST", request.path, body))
        data.scans.append(device["id"])
        return web.Response(status=204)

    standin.describe(router, "/v1.0/users/{key}/oauth2PermissionGrants", list_grants, MODELS["grants"])
    standin.describe(router, "/v1.0/servicePrincipals/{sp}", get_sp, MODELS["sp"])
    router.add_delete("/v1.0/oauth2PermissionGrants/{grant}", delete_grant)
    standin.describe(router, "/v1.0/users/{key}/managedDevices", list_devices, MODELS["devices"])
    standin.describe(
        router,
        "/v1.0/deviceManagement/managedDevices/{device}/windowsProtectionState",
        protection,
        MODELS["protection"],
    )
    router.add_post("/v1.0/deviceManagement/managedDevices/{device}/windowsDefenderScan", scan)
