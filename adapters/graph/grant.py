"""`python app.py permissions --grant --tenant T [--dry-run]`: give Cordon's identity its Graph application roles.

A managed identity has no consent page: its application permissions are app role assignments on Microsoft
Graph's service principal (`POST /servicePrincipals/{identity}/appRoleAssignments`). This reads which roles Cordon
needs from `permissions.NEEDS` (the table the README prints), finds Microsoft Graph's role ids, assigns only those
not yet assigned (so a second run changes nothing), and says what still needs an administrator by hand: directory
roles and licences. It runs as whoever is signed in (azure-identity: Azure CLI / Cloud Shell login, environment,
managed identity), who needs AppRoleAssignment.ReadWrite.All and Application.Read.All, or Privileged Role
Administrator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from adapters.graph import permissions
from adapters.graph.inputs import odata_string

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph's application id, the same in every tenant
GRANT_NEEDS = "AppRoleAssignment.ReadWrite.All and Application.Read.All (or the Privileged Role Administrator role)"
USAGE, REFUSED, FAILED = 2, 3, 1


class GrantError(Exception):
    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


def needed_permissions() -> list[str]:
    """Every application permission in the permissions table, once each, sorted."""
    names: set[str] = set()
    for need in permissions.NEEDS:
        names.update(part.strip() for part in need.permission.split(" and ") if part.strip())
    return sorted(names)


def admin_steps() -> list[str]:
    """What an administrator grants by hand: directory roles and licences (no API call does that for them)."""
    steps: list[str] = []
    for need in permissions.NEEDS:
        if need.role:
            step = f"directory role {need.role} for Cordon's identity, to {need.what} when {need.role_when}"
            if step not in steps:
                steps.append(step)
    licences = sorted({n.licence for n in permissions.NEEDS if n.licence})
    for licence in licences:
        uses = ", ".join(n.what for n in permissions.NEEDS if n.licence == licence)
        steps.append(f"Entra ID {licence} licence in the tenant, to {uses}")
    return steps


@dataclass
class Plan:
    identity: dict[str, Any]
    graph: dict[str, Any]
    already: list[str] = field(default_factory=list)
    to_grant: list[tuple[str, str]] = field(default_factory=list)  # (permission, app role id)
    unknown: list[str] = field(default_factory=list)  # not offered by this Graph (a national cloud, a typo)


class GraphClient:
    """Raw JSON over aiohttp with a bearer token from azure-identity; errors become `GrantError`."""

    def __init__(self, endpoint: str, credential: Any, session: Any) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.credential = credential
        self.session = session
        self.scope = f"{self.endpoint}/.default"

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        token = await self.credential.get_token(self.scope)
        url = path if path.startswith("http") else f"{self.endpoint}/v1.0{path}"
        headers = {"Authorization": f"Bearer {token.token}", "Accept": "application/json"}
        async with self.session.request(method, url, json=body, headers=headers) as response:
            text = await response.text()
            payload = json.loads(text) if text.strip() else None
            return response.status, payload

    async def get_all(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        next_url: str | None = path
        while next_url:
            status, page = await self.call("GET", next_url)
            self.raise_for(status, page, f"GET {path.split('?')[0]}")
            items.extend(page.get("value") or [])
            next_url = page.get("@odata.nextLink")
            if next_url and not next_url.startswith(self.endpoint + "/"):
                raise GrantError(f"Graph sent a next page on another host ({next_url.split('/')[2]}); stopped")
        return items

    @staticmethod
    def raise_for(status: int, payload: Any, what: str) -> None:
        if status < 400:
            return
        message = ((payload or {}).get("error") or {}).get("message", "") if isinstance(payload, dict) else ""
        if status in (401, 403):
            raise GrantError(
                f"{what}: Microsoft Graph refused ({status}): the signed-in account needs {GRANT_NEEDS}."
                f" {message}".rstrip(),
                REFUSED,
            )
        raise GrantError(f"{what}: Microsoft Graph answered {status}. {message}".rstrip())


async def service_principal(graph: GraphClient, app_id: str, select: str) -> dict[str, Any] | None:
    query = f"/servicePrincipals?$filter=appId eq {odata_string(app_id)}&$select={select}"
    found = await graph.get_all(query)
    return found[0] if found else None


async def make_plan(graph: GraphClient, identity_app_id: str) -> Plan:
    graph_sp = await service_principal(graph, GRAPH_APP_ID, "id,appId,displayName,appRoles")
    if graph_sp is None:
        raise GrantError("Microsoft Graph's service principal is not in this tenant (is the tenant id right?)")
    identity = await service_principal(graph, identity_app_id, "id,appId,displayName")
    if identity is None:
        raise GrantError(
            f"no service principal with app id {identity_app_id} in this tenant: give the managed "
            f"identity's client id (the `appId` output of infra/main.bicep)",
            USAGE,
        )
    assigned = await graph.get_all(f"/servicePrincipals/{identity['id']}/appRoleAssignments")
    held = {a.get("appRoleId") for a in assigned if a.get("resourceId") == graph_sp["id"]}
    roles = {
        r.get("value"): r
        for r in graph_sp.get("appRoles") or []
        if "Application" in (r.get("allowedMemberTypes") or []) and r.get("isEnabled", True)
    }
    plan = Plan(identity=identity, graph=graph_sp)
    for name in needed_permissions():
        role = roles.get(name)
        if role is None:
            plan.unknown.append(name)
        elif role["id"] in held:
            plan.already.append(name)
        else:
            plan.to_grant.append((name, role["id"]))
    return plan


def assignment_body(plan: Plan, role_id: str) -> dict[str, str]:
    return {"principalId": plan.identity["id"], "resourceId": plan.graph["id"], "appRoleId": role_id}


async def grant(graph: GraphClient, identity_app_id: str, *, dry_run: bool, out: Any = sys.stdout) -> int:
    plan = await make_plan(graph, identity_app_id)
    name = plan.identity.get("displayName") or identity_app_id
    print(f"Cordon's identity: {name} (app id {identity_app_id}, object id {plan.identity['id']})", file=out)
    for permission in plan.already:
        print(f"  already granted  {permission}", file=out)
    for permission, role_id in plan.to_grant:
        path = f"/servicePrincipals/{plan.identity['id']}/appRoleAssignments"
        body = assignment_body(plan, role_id)
        if dry_run:
            print(f"  would grant      {permission}: POST {graph.endpoint}/v1.0{path} {json.dumps(body)}", file=out)
            continue
        status, payload = await graph.call("POST", path, body)
        message = str(((payload or {}).get("error") or {}).get("message", "")) if isinstance(payload, dict) else ""
        if status == 400 and "already exists" in message:  # granted meanwhile (another run): the same outcome
            print(f"  already granted  {permission}", file=out)
            continue
        graph.raise_for(status, payload, f"grant {permission}")
        print(f"  granted          {permission}", file=out)
    for permission in plan.unknown:
        print(f"  not offered      {permission}: this Microsoft Graph has no such application role", file=out)
    print("Still needed from an administrator (no API grants these to Cordon):", file=out)
    for step in admin_steps():
        print(f"  - {step}", file=out)
    return FAILED if plan.unknown else 0


async def run_grant(endpoint: str, identity_app_id: str, tenant_id: str, *, dry_run: bool) -> int:
    import aiohttp
    from azure.identity.aio import DefaultAzureCredential

    credential = DefaultAzureCredential(
        exclude_interactive_browser_credential=True, additionally_allowed_tenants=[tenant_id]
    )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            graph = GraphClient(endpoint, _TenantCredential(credential, tenant_id), session)
            return await grant(graph, identity_app_id, dry_run=dry_run)
    finally:
        await credential.close()


class _TenantCredential:
    """Asks the credential for tokens in the tenant named on the command line, not the login's home tenant."""

    def __init__(self, inner: Any, tenant_id: str) -> None:
        self.inner = inner
        self.tenant_id = tenant_id

    async def get_token(self, scope: str) -> Any:
        return await self.inner.get_token(scope, tenant_id=self.tenant_id)


def add_grant_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--grant",
        action="store_true",
        help="assign the application permissions to Cordon's identity through Microsoft Graph",
    )
    parser.add_argument("--tenant", metavar="GUID", help="the tenant to grant in (with --grant)")
    parser.add_argument(
        "--app-id", metavar="GUID", help="the identity's app (client) id (default: MicrosoftAppId from the environment)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the Graph calls instead of making them")


def run_from_args(args: argparse.Namespace) -> int:
    from adapters.config import ConfigError, load_environment, parse_guid

    try:
        settings, config = load_environment()
        tenant = parse_guid(args.tenant or "", "--tenant")
        app_id = parse_guid(args.app_id or settings.app_id or os.environ.get("AZURE_CLIENT_ID", ""), "--app-id")
    except (ConfigError, ValueError) as exc:
        print(
            f"app.py permissions: {exc} (usage: app.py permissions --grant --tenant GUID [--app-id GUID] [--dry-run])",
            file=sys.stderr,
        )
        return USAGE
    try:
        return asyncio.run(run_grant(config.graph.endpoint, app_id, tenant, dry_run=args.dry_run))
    except GrantError as exc:
        print(f"app.py permissions: {exc}", file=sys.stderr)
        return exc.code
    except Exception as exc:  # noqa: BLE001 - sign-in failures of every credential kind end here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(
            f"app.py permissions: could not sign in to Microsoft Graph for tenant {tenant}: {first} "
            f"(sign in with `az login --tenant {tenant}` first)",
            file=sys.stderr,
        )
        return REFUSED
