"""`python app.py permissions --grant --tenant T [--dry-run]` against the Graph stand-in, in a subprocess signed in
through the stand-in's managed-identity endpoint (azure-identity, as in Cloud Shell or on App Service)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from adapters.graph.grant import needed_permissions
from tests.support.graph_standin import GraphStandin, assert_parses
from tests.support.graph_standin.fixtures import CONTOSO
from tests.support.graph_standin.routes_app_roles import GRAPH_APP_ID, Directory, directory, register

ROOT = Path(__file__).resolve().parents[1]
APP_ID = "5e6f7a8b-1c2d-4e3f-9a0b-c1d2e3f4a5b6"


@pytest.fixture
async def standin() -> AsyncIterator[GraphStandin]:
    async with GraphStandin(home_tenant=CONTOSO, extensions=[register]) as graph:
        yield graph


def identity(standin: GraphStandin) -> tuple[Directory, dict]:
    tenant = directory(standin, CONTOSO)
    return tenant, tenant.add_principal(APP_ID, "cordon-id-abc123")


async def grant(standin: GraphStandin, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "cordon.toml").write_text(f'[graph]\nendpoint = "{standin.url}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "Microsoft"))}
    env.update(standin.environ(), CORDON_CONFIG=str(tmp_path / "cordon.toml"), PYTHONPATH=str(ROOT))
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(ROOT / "app.py"), "permissions", "--grant", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_grant_assigns_what_is_missing_once_and_a_second_run_changes_nothing(standin, tmp_path) -> None:
    tenant, me = identity(standin)
    graph_sp = next(sp for sp in tenant.principals.values() if sp["appId"] == GRAPH_APP_ID)
    user_read = next(r["id"] for r in graph_sp["appRoles"] if r["value"] == "User.Read.All")
    tenant.assignments.append(
        {
            "id": "a0",
            "appRoleId": user_read,
            "principalId": me["id"],
            "resourceId": graph_sp["id"],
            "principalType": "ServicePrincipal",
        }
    )
    needed = needed_permissions()
    assert "User.Read.All" in needed and "RoleManagement.Read.Directory" in needed and len(needed) >= 10

    dry = await grant(standin, tmp_path, "--tenant", CONTOSO, "--app-id", APP_ID, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert tenant.posts == [] and tenant.held(me["id"]) == {"User.Read.All"}  # a dry run changes nothing
    assert "already granted  User.Read.All" in dry.stdout
    would = [line for line in dry.stdout.splitlines() if "would grant" in line]
    assert len(would) == len(needed) - 1
    assert f"POST {standin.url}/v1.0/servicePrincipals/{me['id']}/appRoleAssignments" in would[0]
    assert f'"principalId": "{me["id"]}", "resourceId": "{graph_sp["id"]}"' in would[0]

    done = await grant(standin, tmp_path, "--tenant", CONTOSO, "--app-id", APP_ID)
    assert done.returncode == 0, done.stderr
    assert tenant.held(me["id"]) == set(needed)
    assert len(tenant.posts) == len(needed) - 1
    assert sum(line.strip().startswith("granted") for line in done.stdout.splitlines()) == len(needed) - 1
    assert "Privileged Authentication Administrator" in done.stdout and "P2 licence" in done.stdout

    again = await grant(standin, tmp_path, "--tenant", CONTOSO, "--app-id", APP_ID)
    assert again.returncode == 0 and len(tenant.posts) == len(needed) - 1  # idempotent: nothing posted
    assert sum("already granted" in line for line in again.stdout.splitlines()) == len(needed)


async def test_a_refused_grant_names_what_the_signed_in_account_needs(standin, tmp_path) -> None:
    tenant, _ = identity(standin)
    tenant.can_assign = False
    done = await grant(standin, tmp_path, "--tenant", CONTOSO, "--app-id", APP_ID)
    assert done.returncode == 3
    assert "AppRoleAssignment.ReadWrite.All" in done.stderr and "Traceback" not in done.stderr


async def test_bad_arguments_and_an_unknown_identity_are_explained(standin, tmp_path) -> None:
    identity(standin)
    missing = await grant(standin, tmp_path, "--app-id", APP_ID)
    assert missing.returncode == 2 and "--tenant must be a GUID" in missing.stderr
    unknown = await grant(standin, tmp_path, "--tenant", CONTOSO, "--app-id", "0e6f7a8b-1c2d-4e3f-9a0b-c1d2e3f4a5b6")
    assert unknown.returncode == 2 and "no service principal with app id 0e6f7a8b" in unknown.stderr


async def test_the_standin_payloads_parse_into_msgraph_models(standin) -> None:
    from msgraph.generated.models.app_role_assignment import AppRoleAssignment
    from msgraph.generated.models.app_role_assignment_collection_response import (
        AppRoleAssignmentCollectionResponse,
    )
    from msgraph.generated.models.service_principal_collection_response import ServicePrincipalCollectionResponse

    tenant, me = identity(standin)
    graph_sp = next(sp for sp in tenant.principals.values() if sp["appId"] == GRAPH_APP_ID)
    headers = {"Authorization": f"Bearer {standin.issue_token(CONTOSO)}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{standin.url}/v1.0/servicePrincipals") as response:
            listed = assert_parses(await response.json(), ServicePrincipalCollectionResponse)
        assert {sp.app_id for sp in listed.value} == {GRAPH_APP_ID, APP_ID}
        assert any(role.value == "User.Read.All" for sp in listed.value for role in sp.app_roles or [])
        body = {"principalId": me["id"], "resourceId": graph_sp["id"], "appRoleId": graph_sp["appRoles"][0]["id"]}
        path = f"{standin.url}/v1.0/servicePrincipals/{me['id']}/appRoleAssignments"
        async with session.post(path, json=body) as response:
            assert response.status == 201
            assert_parses(await response.json(), AppRoleAssignment)
        async with session.post(path, json=body) as response:
            assert response.status == 400 and "already exists" in (await response.json())["error"]["message"]
        async with session.get(path) as response:
            assert len(assert_parses(await response.json(), AppRoleAssignmentCollectionResponse).value) == 1
