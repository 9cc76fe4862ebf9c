"""A sample tenant holding every kind of payload the builders make, and a check that every GET route's answers
parse into their declared msgraph-sdk model with nothing left in `additional_data`.

Other families call `assert_routes_parse(standin, params)` with their own extensions and sample data.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Iterable
from typing import Any

from tests.support.graph_standin import payloads
from tests.support.graph_standin.parsing import assert_parses
from tests.support.graph_standin.server import GraphStandin
from tests.support.graph_standin.state import TenantState


def populate(state: TenantState) -> dict[str, str]:
    """Fill `state` with one of everything; returns path parameters for the routes ({key}, {id})."""
    now = dt.datetime.now(dt.UTC)
    admins = payloads.group("Admins")
    everyone = state.add_user(
        "alice@contoso.com",
        last_sign_in=now - dt.timedelta(hours=2),
        is_admin=True,
        roles=[payloads.directory_role("Global Administrator", payloads.GLOBAL_ADMIN)],
        groups=[admins],
        registered=[
            "fido2",
            "microsoftAuthenticatorPush",
            "mobilePhone",
            "softwareOneTimePasscode",
            "email",
            "windowsHelloForBusiness",
        ],
        methods=[
            payloads.fido2_method(created=now),
            payloads.authenticator_method("Pixel 8", now),
            payloads.phone_method("+1 5555550123", created=None),
            payloads.software_oath_method(now),
            payloads.email_method("alice@example.org"),
            payloads.windows_hello_method("LAPTOP-1", now),
            payloads.temporary_access_pass_method(now),
        ],
    )
    state.add_user("bob@contoso.com", registered=[], enabled=False)
    state.ca_policies = [
        payloads.ca_policy("Require MFA for all users", include_users=["All"], exclude_users=[everyone["id"]]),
        payloads.ca_policy(
            "Admins need phishing-resistant MFA",
            include_roles=[payloads.GLOBAL_ADMIN],
            controls=[],
            strength=True,
            operator="AND",
        ),
        payloads.ca_policy(
            "Block legacy auth",
            state="enabledForReportingButNotEnforced",
            include_groups=[admins["id"]],
            controls=["block"],
            client_app_types=["exchangeActiveSync", "other"],
            locations={"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]},
        ),
    ]
    state.security_defaults = False
    state.skus = payloads.premium_skus("P2")
    # a privileged role held through a role-assignable group, for the tenant report's list of admins
    state.extra.setdefault("role_members", {})[payloads.SECURITY_ADMIN] = [
        {"@odata.type": "#microsoft.graph.group", "id": admins["id"]}
    ]
    state.extra.setdefault("group_members", {})[admins["id"]] = [
        {"@odata.type": "#microsoft.graph.user", "id": everyone["id"]}
    ]
    role_id = next(r["id"] for r in state.member_of[everyone["id"]] if r.get("roleTemplateId"))
    return {"key": everyone["id"], "id": everyone["id"], "role": role_id, "group": admins["id"]}


QUERY_VARIANTS = {"/v1.0/users/{key}": ["", "?$select=id,displayName,accountEnabled,signInActivity"]}


def _model(dotted: str) -> type:
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


async def assert_routes_parse(
    standin: GraphStandin, params: dict[str, str], variants: dict[str, Iterable[str]] | None = None
) -> list[str]:
    """GET every described route of the running stand-in and parse each answer; returns the URLs checked."""
    import aiohttp

    token = standin.issue_token(standin.home_tenant)
    variants = {**QUERY_VARIANTS, **(variants or {})}
    checked: list[str] = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        for route, dotted in standin.models.items():
            path = route.format(**params)
            for query in variants.get(route, [""]):
                async with session.get(f"{standin.url}{path}{query}") as response:
                    body: Any = await response.json()
                    assert response.status == 200, f"{path}{query}: HTTP {response.status} {body}"
                assert_parses(body, _model(dotted))
                items = body.get("value") if isinstance(body, dict) else None
                assert items is None or items, f"{path}: an empty collection checks nothing; add sample data"
                checked.append(f"{path}{query}")
    return checked
