"""Everything Graph says about one user's MFA, read concurrently, each part allowed to fail on its own.

A tenant without P1 cannot read the registration report, and an app without Policy.Read.All cannot read
Conditional Access; the user still gets what could be read, plus a line saying what could not and why.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

from adapters.config import TenantConfig
from adapters.graph import permissions
from adapters.graph.errors import GraphProblem
from adapters.graph.inputs import UserRef, odata_eq
from adapters.graph.mfa_policy import Principal, Strength, strength_of

T = TypeVar("T")
USER_FIELDS = "id,displayName,userPrincipalName,accountEnabled,userType,mail"
METHOD_NAMES = {
    "fido2": "FIDO2 key / passkey",
    "windowsHelloForBusiness": "Windows Hello for Business",
    "platformCredential": "Platform credential",
    "x509Certificate": "Certificate",
    "microsoftAuthenticator": "Microsoft Authenticator",
    "externalAuthentication": "External MFA",
    "softwareOath": "Authenticator app code (TOTP)",
    "hardwareOath": "Hardware OATH token",
    "temporaryAccessPass": "Temporary Access Pass",
    "qrCodePin": "QR code + PIN",
    "phone": "Phone (SMS/voice)",
    "email": "E-mail (password reset only)",
    "password": "Password",
}


@dataclass(frozen=True)
class MethodInfo:
    type: str  # "fido2", "microsoftAuthenticator", "phone", ...
    strength: Strength
    detail: str | None  # device, model or masked number/address
    created: dt.datetime | None

    @property
    def label(self) -> str:
        return METHOD_NAMES.get(self.type, self.type)


@dataclass
class UserMfaFacts:
    tenant: TenantConfig
    user: dict[str, Any]
    registration: dict[str, Any] | None = None
    methods: list[MethodInfo] | None = None
    groups: set[str] = field(default_factory=set)
    roles: list[tuple[str, str]] | None = None  # (role template id, display name)
    security_defaults: bool | None = None
    policies: list[dict[str, Any]] | None = None
    licence: str | None = None
    last_sign_in: dt.datetime | None = None
    gaps: list[str] = field(default_factory=list)  # what could not be read, and why (user-facing)

    @property
    def principal(self) -> Principal:
        return Principal(
            user_id=str(self.user["id"]).lower(),
            groups=frozenset(self.groups),
            roles=frozenset(r for r, _ in self.roles or []),
            guest=str(self.user.get("userType") or "").lower() == "guest",
            external="#ext#" in str(self.user.get("userPrincipalName") or "").lower(),
        )


def mask_phone(number: str | None) -> str | None:
    if not number:
        return None
    digits = re.sub(r"\D", "", number)
    prefix = number.split()[0] if number.startswith("+") and " " in number else ""
    return f"{prefix} {'•' * max(len(digits) - len(prefix) - 1, 3)}{digits[-2:]}".strip()


def mask_email(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}"


def parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def method_info(item: dict[str, Any]) -> MethodInfo:
    odata = str(item.get("@odata.type") or "").removeprefix("#microsoft.graph.")
    short = odata.removesuffix("AuthenticationMethod")
    if short == "phone":
        detail = " ".join(filter(None, [item.get("phoneType"), mask_phone(item.get("phoneNumber"))])) or None
    elif short == "email":
        detail = mask_email(item.get("emailAddress"))
    else:
        detail = item.get("displayName") or item.get("model") or item.get("platform") or None
    return MethodInfo(short, strength_of(odata), detail, parse_time(item.get("createdDateTime")))


async def _part(facts: UserMfaFacts, work: Awaitable[T]) -> T | None:
    """Run one read; a GraphProblem becomes a gap line instead of failing the whole answer."""
    try:
        return await work
    except GraphProblem as problem:
        if problem.kind in ("throttled", "unavailable") and not facts.gaps:
            facts.gaps.append(problem.user_message)
        elif problem.kind not in ("throttled", "unavailable"):
            facts.gaps.append(problem.user_message)
        return None


async def find_user(gateway: Any, tenant: TenantConfig, user: UserRef) -> dict[str, Any]:
    """The user by UPN or object id; an e-mail address that is not a UPN is looked up by `mail`."""
    try:
        found_user: dict[str, Any] = await gateway.get_json(
            tenant, permissions.USER, f"/users/{quote(user.key, safe='@')}", {"$select": USER_FIELDS}
        )
        return found_user
    except GraphProblem as problem:
        if problem.kind != "not_found" or user.is_object_id:
            raise
    answer = await gateway.get_json(
        tenant, permissions.USER, "/users", {"$filter": odata_eq("mail", user.key), "$select": USER_FIELDS}
    )
    found: list[dict[str, Any]] = answer.get("value") or []
    if len(found) != 1:
        raise GraphProblem("not_found", f"No such user in {tenant.name}.", status=404, tenant=tenant.name)
    return found[0]


async def _memberships(gateway: Any, tenant: TenantConfig, user_id: str, facts: UserMfaFacts) -> None:
    roles: list[tuple[str, str]] = []
    async for page in gateway.pages(
        tenant, permissions.MEMBERSHIP, f"/users/{user_id}/transitiveMemberOf", {"$top": 999}
    ):
        for item in page:
            kind = item.get("@odata.type")
            if kind == "#microsoft.graph.group":
                facts.groups.add(str(item["id"]).lower())
            elif kind == "#microsoft.graph.directoryRole" and item.get("roleTemplateId"):
                roles.append((str(item["roleTemplateId"]).lower(), str(item.get("displayName") or "role")))
    facts.roles = roles


async def _policies(gateway: Any, tenant: TenantConfig) -> list[dict[str, Any]]:
    return [
        policy
        async for page in gateway.pages(tenant, permissions.CA_POLICIES, "/identity/conditionalAccess/policies")
        for policy in page
    ]


async def _security_defaults(gateway: Any, tenant: TenantConfig) -> bool:
    answer = await gateway.get_json(
        tenant, permissions.SECURITY_DEFAULTS, "/policies/identitySecurityDefaultsEnforcementPolicy"
    )
    return bool(answer.get("isEnabled"))


async def _sign_in(gateway: Any, tenant: TenantConfig, user_id: str, facts: UserMfaFacts) -> None:
    facts.licence = await _part(facts, gateway.licence(tenant))
    if facts.licence not in ("P1", "P2"):
        return
    answer = await _part(
        facts,
        gateway.get_json(tenant, permissions.SIGN_IN_ACTIVITY, f"/users/{user_id}", {"$select": "id,signInActivity"}),
    )
    activity = (answer or {}).get("signInActivity") or {}
    facts.last_sign_in = parse_time(activity.get("lastSuccessfulSignInDateTime") or activity.get("lastSignInDateTime"))


async def fetch_user_facts(gateway: Any, tenant: TenantConfig, user: UserRef) -> UserMfaFacts:
    """Read the user (fatal if missing), then every MFA-related part concurrently."""
    account = await find_user(gateway, tenant, user)
    facts = UserMfaFacts(tenant=tenant, user=account)
    user_id = str(account["id"])

    async def registration() -> None:
        facts.registration = await _part(
            facts,
            gateway.get_json(
                tenant, permissions.REGISTRATION, f"/reports/authenticationMethods/userRegistrationDetails/{user_id}"
            ),
        )

    async def methods() -> None:
        answer = await _part(
            facts, gateway.get_json(tenant, permissions.METHODS, f"/users/{user_id}/authentication/methods")
        )
        if answer is not None:
            facts.methods = [method_info(m) for m in answer.get("value") or []]

    async def policies() -> None:
        facts.policies = await _part(facts, _policies(gateway, tenant))

    async def defaults() -> None:
        facts.security_defaults = await _part(facts, _security_defaults(gateway, tenant))

    await asyncio.gather(
        registration(),
        methods(),
        _part(facts, _memberships(gateway, tenant, user_id, facts)),
        policies(),
        defaults(),
        _sign_in(gateway, tenant, user_id, facts),
    )
    return facts
