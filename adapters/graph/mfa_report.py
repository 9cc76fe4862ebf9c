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
from adapters.graph.mfa_policy import STRENGTH_LABEL, best_second_factor, tenant_enforcement, weak_only

PAGE_SIZE = 999  # Graph's maximum $top for the registration report
REPORT_PATH = "/reports/authenticationMethods/userRegistrationDetails"
REPORT_FIELDS = ("id,userPrincipalName,userDisplayName,isAdmin,isMfaRegistered,isMfaCapable,isPasswordlessCapable,"
                 "methodsRegistered,lastUpdatedDateTime")
TOP_URGENT = 20

# urgency (lower is more urgent) and what the card says
URGENCY = {0: "admin without MFA", 1: "admin on SMS/voice only", 2: "no MFA", 3: "SMS/voice only",
           4: "registered, not capable"}


def urgency(item: dict[str, Any]) -> int | None:
    admin = bool(item.get("isAdmin"))
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
    oldest_update: str | None = None
    newest_update: str | None = None
    _urgent: list[tuple[int, int, str, str, str]] = field(default_factory=list)  # heap of (-urgency, -seq, ...)
    _seq: int = 0

    def add(self, item: dict[str, Any]) -> int | None:
        self.users += 1
        upn = str(item.get("userPrincipalName") or item.get("id"))
        registered = bool(item.get("isMfaRegistered"))
        methods = item.get("methodsRegistered") or []
        self.registered += registered
        self.capable += bool(item.get("isMfaCapable"))
        self.passwordless += bool(item.get("isPasswordlessCapable"))
        self.by_method.update(str(m) for m in methods)
        if registered and weak_only(methods):
            self.weak_only += 1
        if item.get("isAdmin"):
            self.admins += 1
            if not registered:
                self.admins_without_mfa.append(upn)
        updated = item.get("lastUpdatedDateTime")
        if isinstance(updated, str):
            self.oldest_update = min(self.oldest_update or updated, updated)
            self.newest_update = max(self.newest_update or updated, updated)
        level = urgency(item)
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
            "security_defaults": self.security_defaults,
            "most_urgent": self.most_urgent(),
            "report_updated_oldest": self.oldest_update,
            "report_updated_newest": self.newest_update,
        }


CSV_FIELDS = ("user", "display_name", "is_admin", "registered", "capable", "passwordless_capable", "strongest",
              "methods", "issue", "report_updated")


def csv_row(item: dict[str, Any], level: int | None) -> dict[str, Any]:
    methods = [str(m) for m in item.get("methodsRegistered") or []]
    return {"user": item.get("userPrincipalName"), "display_name": item.get("userDisplayName"),
            "is_admin": bool(item.get("isAdmin")), "registered": bool(item.get("isMfaRegistered")),
            "capable": bool(item.get("isMfaCapable")), "passwordless_capable": bool(item.get("isPasswordlessCapable")),
            "strongest": STRENGTH_LABEL[best_second_factor(methods)], "methods": " ".join(methods),
            "issue": URGENCY.get(level, "") if level is not None else "",
            "report_updated": item.get("lastUpdatedDateTime")}


async def _enforcement(gateway: Any, tenant: TenantConfig, report: TenantReport) -> None:
    defaults: bool | None = None
    policies: list[dict[str, Any]] | None = None
    try:
        answer = await gateway.get_json(tenant, permissions.SECURITY_DEFAULTS,
                                        "/policies/identitySecurityDefaultsEnforcementPolicy")
        defaults = bool(answer.get("isEnabled"))
        if not defaults:
            policies = [p async for page in gateway.pages(tenant, permissions.CA_POLICIES,
                                                          "/identity/conditionalAccess/policies") for p in page]
    except GraphProblem as problem:
        report.enforcement = f"unknown: {problem.user_message}"
        return
    report.security_defaults = defaults
    report.enforcement = tenant_enforcement(defaults, policies)


async def build_report(gateway: Any, tenant: TenantConfig, *,
                       on_row: Callable[[dict[str, Any], int | None], None] | None = None,
                       on_progress: Callable[[TenantReport], Awaitable[None]] | None = None,
                       page_size: int = PAGE_SIZE) -> TenantReport:
    """Aggregate the whole tenant; `on_row` sees every user once, `on_progress` runs after each page."""
    report = TenantReport(tenant=tenant.name)

    def count(page: list[dict[str, Any]]) -> None:
        for item in page:
            level = report.add(item)
            if on_row is not None:
                on_row(item, level)

    enforcement = asyncio.ensure_future(_enforcement(gateway, tenant, report))
    try:
        async for page in gateway.pages(tenant, permissions.REGISTRATION, REPORT_PATH,
                                        {"$top": page_size, "$select": REPORT_FIELDS}):
            report.pages += 1
            # counted in a worker thread so the loop can send the next page's request meanwhile
            await asyncio.to_thread(count, page)
            if on_progress is not None:
                await on_progress(report)
        await enforcement
    finally:
        if not enforcement.done():
            enforcement.cancel()
    return report
