"""The tenant MFA report: pages through `userRegistrationDetails` and aggregates page by page.

Memory stays constant whatever the tenant size: counters, a bounded heap of the most urgent users, and the list
of admins without MFA (admins are few). The full per-user list is streamed to a row callback (the CLI's CSV
writer) as each page arrives, never held. Pages are requested with the largest `$top` Graph allows, and the next
page is already on its way while this one is counted (`GraphGateway.pages`).
"""

from __future__ import annotations

import asyncio
import heapq
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.config import TenantConfig
from adapters.graph import permissions
from adapters.graph.errors import GraphProblem
from adapters.graph.mfa_policy import (
    STRENGTH_LABEL,
    best_second_factor,
    is_privileged_role,
    tenant_enforcement,
    weak_only,
)

PAGE_SIZE = 999  # Graph's maximum $top for the registration report
REPORT_PATH = "/reports/authenticationMethods/userRegistrationDetails"
REPORT_FIELDS = (
    "id,userPrincipalName,userDisplayName,isAdmin,isMfaRegistered,isMfaCapable,isPasswordlessCapable,"
    "methodsRegistered,lastUpdatedDateTime"
)
TOP_URGENT = 20

# urgency (lower is more urgent) and what the card says
URGENCY = {
    0: "admin without MFA",
    1: "admin on SMS/voice only",
    2: "no MFA",
    3: "SMS/voice only",
    4: "registered, not capable",
}


def urgency(item: dict[str, Any], admin: bool | None = None) -> int | None:
    """`admin`: holds a privileged role (None: fall back to the report's own isAdmin)."""
    admin = bool(item.get("isAdmin")) if admin is None else admin
    registered = bool(item.get("isMfaRegistered"))
    if not registered:
        return 0 if admin else 2
    if weak_only(item.get("methodsRegistered") or []):
        return 1 if admin else 3
    if not item.get("isMfaCapable"):
        return 4
    return None


@dataclass
class TenantReport:
    tenant: str
    users: int = 0
    registered: int = 0
    capable: int = 0
    passwordless: int = 0
    weak_only: int = 0
    admins: int = 0
    admins_without_mfa: list[str] = field(default_factory=list)
    by_method: Counter[str] = field(default_factory=Counter)
    enforcement: str = "unknown"
    security_defaults: bool | None = None
    pages: int = 0
    # user id -> privileged roles held (None: the roles could not be read, so the report's isAdmin is used)
    privileged: dict[str, set[str]] | None = None
    admins_basis: str = "privileged roles"
    report_admins_unprivileged: int = 0  # isAdmin in the report, but no active privileged role
    oldest_update: str | None = None
    newest_update: str | None = None
    _urgent: list[tuple[int, int, str, str, str]] = field(default_factory=list)  # heap of (-urgency, -seq, ...)
    _seq: int = 0

    def is_admin(self, item: dict[str, Any]) -> bool:
        """A holder of an active privileged role; the report's isAdmin only when the roles could not be read."""
        if self.privileged is None:
            return bool(item.get("isAdmin"))
        return str(item.get("id") or "").lower() in self.privileged

    def add(self, item: dict[str, Any]) -> int | None:
        self.users += 1
        admin = self.is_admin(item)
        upn = str(item.get("userPrincipalName") or item.get("id"))
        registered = bool(item.get("isMfaRegistered"))
        methods = item.get("methodsRegistered") or []
        self.registered += registered
        self.capable += bool(item.get("isMfaCapable"))
        self.passwordless += bool(item.get("isPasswordlessCapable"))
        self.by_method.update(str(m) for m in methods)
        if registered and weak_only(methods):
            self.weak_only += 1
        if item.get("isAdmin") and not admin:
            self.report_admins_unprivileged += 1
        if admin:
            self.admins += 1
            if not registered:
                self.admins_without_mfa.append(upn)
        updated = item.get("lastUpdatedDateTime")
        if isinstance(updated, str):
            self.oldest_update = min(self.oldest_update or updated, updated)
            self.newest_update = max(self.newest_update or updated, updated)
        level = urgency(item, admin)
        if level is not None:
            self._seq += 1
            entry = (-level, -self._seq, upn, str(item.get("userDisplayName") or ""), URGENCY[level])
            if len(self._urgent) < TOP_URGENT:
                heapq.heappush(self._urgent, entry)
            elif entry > self._urgent[0]:
                heapq.heapreplace(self._urgent, entry)
        return level

    def most_urgent(self) -> list[dict[str, str]]:
        """Up to 20 users, most urgent first (admins without MFA lead), in the order Graph listed them."""
        ordered = sorted(self._urgent, key=lambda e: (-e[0], -e[1]))
        return [{"user": upn, "name": name, "issue": issue} for _, _, upn, name, issue in ordered]

    def percent(self, count: int) -> str:
        return f"{100 * count / self.users:.0f}%" if self.users else "—"

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "users": self.users,
            "registered": self.registered,
            "capable": self.capable,
            "weak_only": self.weak_only,
            "admins_without_mfa": list(self.admins_without_mfa),
            "by_method": dict(self.by_method.most_common()),
            "enforcement": self.enforcement,
            # additions
            "passwordless_capable": self.passwordless,
            "admins": self.admins,
            "admins_basis": self.admins_basis,
            "report_admins_unprivileged": self.report_admins_unprivileged,
            "security_defaults": self.security_defaults,
            "most_urgent": self.most_urgent(),
            "report_updated_oldest": self.oldest_update,
            "report_updated_newest": self.newest_update,
        }


CSV_FIELDS = (
    "user",
    "display_name",
    "is_admin",
    "registered",
    "capable",
    "passwordless_capable",
    "strongest",
    "methods",
    "issue",
    "report_updated",
)


def csv_row(item: dict[str, Any], level: int | None, admin: bool | None = None) -> dict[str, Any]:
    """`admin`: holds a privileged role (None: the report's isAdmin)."""
    methods = [str(m) for m in item.get("methodsRegistered") or []]
    return {
        "user": item.get("userPrincipalName"),
        "display_name": item.get("userDisplayName"),
        "is_admin": bool(item.get("isAdmin")) if admin is None else admin,
        "registered": bool(item.get("isMfaRegistered")),
        "capable": bool(item.get("isMfaCapable")),
        "passwordless_capable": bool(item.get("isPasswordlessCapable")),
        "strongest": STRENGTH_LABEL[best_second_factor(methods)],
        "methods": " ".join(methods),
        "issue": URGENCY.get(level, "") if level is not None else "",
        "report_updated": item.get("lastUpdatedDateTime"),
    }


async def _enforcement(gateway: Any, tenant: TenantConfig, report: TenantReport) -> None:
    defaults: bool | None = None
    policies: list[dict[str, Any]] | None = None
    try:
        answer = await gateway.get_json(
            tenant, permissions.SECURITY_DEFAULTS, "/policies/identitySecurityDefaultsEnforcementPolicy"
        )
        defaults = bool(answer.get("isEnabled"))
        if not defaults:
            policies = [
                p
                async for page in gateway.pages(tenant, permissions.CA_POLICIES, "/identity/conditionalAccess/policies")
                for p in page
            ]
    except GraphProblem as problem:
        report.enforcement = f"unknown: {problem.user_message}"
        return
    report.security_defaults = defaults
    report.enforcement = tenant_enforcement(defaults, policies)


async def privileged_holders(gateway: Any, tenant: TenantConfig) -> dict[str, set[str]]:
    """Users holding an active privileged directory role (directly or through a role-assignable group)."""
    roles = [
        r
        async for page in gateway.pages(
            tenant, permissions.DIRECTORY_ROLES, "/directoryRoles", {"$select": "id,displayName,roleTemplateId"}
        )
        for r in page
    ]
    holders: dict[str, set[str]] = {}

    def hold(user_id: Any, role: str) -> None:
        holders.setdefault(str(user_id).lower(), set()).add(role)

    async def expand(group_id: str, role: str) -> None:
        async for page in gateway.pages(
            tenant, permissions.GROUP_MEMBERS, f"/groups/{group_id}/transitiveMembers", {"$select": "id"}
        ):
            for member in page:
                if member.get("@odata.type") == "#microsoft.graph.user":
                    hold(member.get("id"), role)

    async def members(role: dict[str, Any]) -> None:
        name = str(role.get("displayName") or role.get("roleTemplateId"))
        groups: list[str] = []
        async for page in gateway.pages(
            tenant, permissions.ROLE_MEMBERS, f"/directoryRoles/{role['id']}/members", {"$select": "id"}
        ):
            for member in page:
                kind = member.get("@odata.type")
                if kind == "#microsoft.graph.user":
                    hold(member.get("id"), name)
                elif kind == "#microsoft.graph.group":
                    groups.append(str(member.get("id")))
        await asyncio.gather(*(expand(g, name) for g in groups))

    await asyncio.gather(*(members(r) for r in roles if is_privileged_role(str(r.get("roleTemplateId") or ""))))
    return holders


async def _admins(gateway: Any, tenant: TenantConfig, report: TenantReport) -> None:
    try:
        report.privileged = await privileged_holders(gateway, tenant)
    except GraphProblem as problem:
        report.admins_basis = (
            f"the registration report's isAdmin (any admin role): the privileged roles could "
            f"not be read: {problem.user_message}"
        )


async def build_report(
    gateway: Any,
    tenant: TenantConfig,
    *,
    on_row: Callable[[dict[str, Any], int | None], None] | None = None,
    on_progress: Callable[[TenantReport], Awaitable[None]] | None = None,
    page_size: int = PAGE_SIZE,
    report: TenantReport | None = None,
) -> TenantReport:
    """Aggregate the whole tenant; `on_row` sees every user once, `on_progress` runs after each page.

    Pass `report` to ask it, inside `on_row`, whether a user holds a privileged role (`report.is_admin(item)`).
    """
    report = report if report is not None else TenantReport(tenant=tenant.name)

    def count(page: list[dict[str, Any]]) -> None:
        for item in page:
            level = report.add(item)
            if on_row is not None:
                on_row(item, level)

    enforcement = asyncio.ensure_future(_enforcement(gateway, tenant, report))
    admins = asyncio.ensure_future(_admins(gateway, tenant, report))
    try:
        async for page in gateway.pages(
            tenant, permissions.REGISTRATION_REPORT, REPORT_PATH, {"$top": page_size, "$select": REPORT_FIELDS}
        ):
            await admins  # read alongside the first page; every user is judged against the same roles
            report.pages += 1
            # counted in a worker thread so the loop can send the next page's request meanwhile
            await asyncio.to_thread(count, page)
            if on_progress is not None:
                await on_progress(report)
        await admins
        await enforcement
    finally:
        for task in (admins, enforcement):
            if not task.done():
                task.cancel()
    return report
