"""Read what an incident responder needs about one user, or a whole tenant's sign-ins, as plain records.

Raw JSON pages (`GraphGateway.pages`, no model parsing: 10,000 sign-ins parse in milliseconds, not seconds) turned
into small frozen records, so the judgement in `dialogs.investigate` stays pure and never sees SDK types. Each
reader raises `GraphProblem` (licence, permission) for its own part only; the caller lists what it could not read.
The hunt never reads the whole tenant log: it asks Graph for the sign-ins from given IPs, or rated risky, with a
server-side `$filter` and a `$select` of the few fields it needs, streamed page by page.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from adapters.config import TenantConfig
from adapters.graph import permissions as needs
from adapters.graph.errors import GraphProblem
from adapters.graph.gateway import GraphGateway
from adapters.graph.inputs import odata_eq, odata_string

PAGE = 999  # Graph's largest sign-in page
MAX_APP_LOOKUPS = 20
MAX_DEVICES = 20
RISKY_LEVELS = ("high", "medium")  # low-risk sign-ins are too common in a large tenant to be evidence
# the few fields the hunt reads from each tenant sign-in it is sent
HUNT_SELECT = "id,createdDateTime,userId,userPrincipalName,ipAddress,status,riskLevelDuringSignIn,riskState,location"
USER_SELECT = (
    "id,createdDateTime,ipAddress,location,appDisplayName,clientAppUsed,status,riskLevelDuringSignIn,"
    "riskState,riskEventTypes_v2,deviceDetail,isInteractive"
)


def odata_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)  # Python 3.11 reads the trailing Z
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed if parsed.utcoffset() == dt.timedelta(0) else parsed.astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class SignIn:
    """One sign-in, as much as the investigation needs."""

    at: dt.datetime
    ip: str
    country: str
    city: str
    latitude: float | None
    longitude: float | None
    app: str
    client: str
    success: bool
    error_code: int
    risk_level: str
    risk_state: str
    risk_events: tuple[str, ...]
    device: str
    user_id: str = ""
    upn: str = ""


def sign_in_from(row: dict[str, Any]) -> SignIn | None:
    """A record from Graph's JSON; None for a row without a time (nothing can be said about it)."""
    at = parse_time(row.get("createdDateTime"))
    if at is None:
        return None
    location = row.get("location") or {}
    geo = location.get("geoCoordinates") or {}
    status = row.get("status") or {}
    device = row.get("deviceDetail") or {}
    lat, lon = geo.get("latitude"), geo.get("longitude")
    has_geo = isinstance(lat, int | float) and isinstance(lon, int | float) and (lat, lon) != (0, 0)
    code = status.get("errorCode")
    return SignIn(
        at=at,
        ip=str(row.get("ipAddress") or "unknown"),
        country=str(location.get("countryOrRegion") or "unknown"),
        city=str(location.get("city") or ""),
        latitude=float(lat) if has_geo and lat is not None else None,
        longitude=float(lon) if has_geo and lon is not None else None,
        app=str(row.get("appDisplayName") or "unknown"),
        client=str(row.get("clientAppUsed") or ""),
        success=code in (0, None),
        error_code=int(code or 0),
        risk_level=str(row.get("riskLevelDuringSignIn") or "none"),
        risk_state=str(row.get("riskState") or "none"),
        risk_events=tuple(str(e) for e in row.get("riskEventTypes_v2") or ()),
        device=" ".join(
            str(v) for v in (device.get("displayName"), device.get("operatingSystem"), device.get("browser")) if v
        ),
        user_id=str(row.get("userId") or ""),
        upn=str(row.get("userPrincipalName") or ""),
    )


def hunt_sign_in_from(row: dict[str, Any]) -> SignIn | None:
    """The hunt's light record (who, when, from where, succeeded, risk): only the selected fields are looked at."""
    at = parse_time(row.get("createdDateTime"))
    if at is None:
        return None
    code = (row.get("status") or {}).get("errorCode")
    return SignIn(
        at,
        str(row.get("ipAddress") or "unknown"),
        str((row.get("location") or {}).get("countryOrRegion") or "unknown"),
        "",
        None,
        None,
        "",
        "",
        code in (0, None),
        int(code or 0),
        str(row.get("riskLevelDuringSignIn") or "none"),
        str(row.get("riskState") or "none"),
        (),
        "",
        str(row.get("userId") or ""),
        str(row.get("userPrincipalName") or ""),
    )


@dataclass(frozen=True)
class AuditEvent:
    at: dt.datetime
    activity: str
    category: str
    result: str
    by: str  # initiating user's UPN, or app's name
    by_ip: str
    target: str  # first target's display name or UPN
    detail: str  # result reason, or the method/app named in the additional details


def audit_from(row: dict[str, Any]) -> AuditEvent | None:
    at = parse_time(row.get("activityDateTime"))
    if at is None:
        return None
    initiator = row.get("initiatedBy") or {}
    user = initiator.get("user") or {}
    app = initiator.get("app") or {}
    targets = row.get("targetResources") or []
    first = targets[0] if targets else {}
    details = {d.get("key"): d.get("value") for d in row.get("additionalDetails") or [] if isinstance(d, dict)}
    return AuditEvent(
        at=at,
        activity=str(row.get("activityDisplayName") or ""),
        category=str(row.get("category") or ""),
        result=str(row.get("result") or ""),
        by=str(user.get("userPrincipalName") or app.get("displayName") or user.get("id") or ""),
        by_ip=str(user.get("ipAddress") or ""),
        target=str(first.get("displayName") or first.get("userPrincipalName") or first.get("id") or ""),
        detail=str(row.get("resultReason") or details.get("Method") or details.get("AppId") or ""),
    )


@dataclass(frozen=True)
class Grant:
    """A delegated permission grant (an OAuth consent) for the user, or for all users."""

    id: str
    client_id: str
    app: str
    scope: str
    consent_type: str


@dataclass(frozen=True)
class Device:
    id: str
    name: str
    os: str
    os_version: str
    compliance: str
    last_sync: dt.datetime | None
    last_quick_scan: dt.datetime | None
    last_full_scan: dt.datetime | None
    scan_action: str | None  # the latest windowsDefenderScan action's state (pending, done, failed, ...)
    protection_note: str | None = None  # why the Defender state could not be read

    @property
    def windows(self) -> bool:
        return self.os.lower().startswith("windows")


class IncidentReader:
    """Read-only Graph look-ups for `investigate` and `hunt` in one tenant."""

    def __init__(self, gateway: GraphGateway, tenant: TenantConfig) -> None:
        self.gateway = gateway
        self.tenant = tenant

    async def user_sign_ins(
        self, user_id: str, since: dt.datetime, until: dt.datetime | None = None
    ) -> AsyncGenerator[list[SignIn], None]:
        """The user's sign-ins from `since` (to before `until`), a page at a time (newest first, as Graph sends
        them)."""
        text = f"userId eq {odata_string(user_id)} and createdDateTime ge {odata_time(since)}"
        if until is not None:
            text += f" and createdDateTime lt {odata_time(until)}"
        params = {"$filter": text, "$top": PAGE, "$select": USER_SELECT}
        async for page in self.gateway.pages(self.tenant, needs.USER_SIGN_INS, "/auditLogs/signIns", params):
            yield [s for s in map(sign_in_from, page) if s is not None]

    async def sign_ins_from(
        self, ips: list[str], since: dt.datetime, *, successes_only: bool = False
    ) -> AsyncGenerator[list[SignIn], None]:
        """The tenant's sign-ins from any of `ips` since `since` (`successes_only`: error code 0), a page at a time.
        Each IP must parse as an IP address (ValueError otherwise) and is quoted as an OData string."""
        if not ips:
            raise ValueError("no IP address to filter on")
        for ip in ips:
            ipaddress.ip_address(ip)  # ValueError for anything that is not an IP address
        either = " or ".join(odata_eq("ipAddress", ip) for ip in ips)
        text = f"({either}) and createdDateTime ge {odata_time(since)}"
        if successes_only:
            text += " and status/errorCode eq 0"
        async for page in self._tenant_pages(text):
            yield page

    async def risky_sign_ins(self, since: dt.datetime) -> AsyncGenerator[list[SignIn], None]:
        """The tenant's sign-ins that Identity Protection rated medium or high risk during sign-in, since `since`
        (the levels need Entra ID P2: without it Graph shows them as hidden and this finds nothing)."""
        levels = " or ".join(odata_eq("riskLevelDuringSignIn", level) for level in RISKY_LEVELS)
        async for page in self._tenant_pages(f"({levels}) and createdDateTime ge {odata_time(since)}"):
            yield page

    async def _tenant_pages(self, text: str) -> AsyncGenerator[list[SignIn], None]:
        params = {"$filter": text, "$top": PAGE, "$select": HUNT_SELECT}
        async with aclosing(
            self.gateway.pages(self.tenant, needs.TENANT_SIGN_INS, "/auditLogs/signIns", params)
        ) as pages:
            async for page in pages:
                yield [s for s in map(hunt_sign_in_from, page) if s is not None]

    async def audits(self, user_id: str, since: dt.datetime) -> list[AuditEvent]:
        """Directory audit events about the user (target) or done by the user (consents), newest first."""
        quoted = odata_string(user_id)
        filters = (
            f"activityDateTime ge {odata_time(since)} and targetResources/any(t: t/id eq {quoted})",
            f"activityDateTime ge {odata_time(since)} and initiatedBy/user/id eq {quoted}",
        )
        seen: dict[str, AuditEvent] = {}
        for text in filters:
            async for page in self.gateway.pages(
                self.tenant, needs.USER_AUDITS, "/auditLogs/directoryAudits", {"$filter": text, "$top": PAGE}
            ):
                for row in page:
                    event = audit_from(row)
                    if event is not None:
                        seen[str(row.get("id") or len(seen))] = event
        return sorted(seen.values(), key=lambda e: e.at, reverse=True)

    async def grants(self, user_id: str) -> list[Grant]:
        """The user's delegated grants, with each app's display name when it can be read."""
        rows: list[dict[str, Any]] = []
        async for page in self.gateway.pages(
            self.tenant, needs.GRANTS, f"/users/{quote(user_id, safe='@')}/oauth2PermissionGrants"
        ):
            rows += page
        clients = sorted({str(r.get("clientId") or "") for r in rows} - {""})[:MAX_APP_LOOKUPS]

        async def name(client: str) -> tuple[str, str]:
            try:
                sp = await self.gateway.get_json(
                    self.tenant,
                    needs.APP_NAMES,
                    f"/servicePrincipals/{quote(client)}",
                    {"$select": "id,appId,displayName"},
                )
            except GraphProblem:
                return client, client
            return client, str(sp.get("displayName") or client)

        names = dict(await asyncio.gather(*(name(c) for c in clients)))
        return [
            Grant(
                id=str(r.get("id") or ""),
                client_id=str(r.get("clientId") or ""),
                app=names.get(str(r.get("clientId") or ""), str(r.get("clientId") or "")),
                scope=" ".join(str(r.get("scope") or "").split()),
                consent_type=str(r.get("consentType") or ""),
            )
            for r in rows
        ]

    async def devices(self, user_id: str, *, protection: bool = True) -> list[Device]:
        """The user's Intune managed devices, with the Windows ones' last Defender scans (unless `protection`
        is False: the lock-down only needs to know which devices there are)."""
        rows: list[dict[str, Any]] = []
        async for page in self.gateway.pages(
            self.tenant, needs.DEVICES, f"/users/{quote(user_id, safe='@')}/managedDevices"
        ):
            rows += page
            if len(rows) >= MAX_DEVICES:
                break
        return list(await asyncio.gather(*(self._device(r, protection) for r in rows[:MAX_DEVICES])))

    async def _device(self, row: dict[str, Any], protection: bool) -> Device:
        actions = [a for a in row.get("deviceActionResults") or [] if a.get("actionName") == "windowsDefenderScan"]
        actions.sort(key=lambda a: str(a.get("lastUpdatedDateTime") or a.get("startDateTime") or ""))
        os_name = str(row.get("operatingSystem") or "")
        quick = full = None
        note = None
        if protection and os_name.lower().startswith("windows") and row.get("id"):
            try:
                state = await self.gateway.get_json(
                    self.tenant,
                    needs.DEVICE_PROTECTION,
                    f"/deviceManagement/managedDevices/{quote(str(row['id']))}/windowsProtectionState",
                )
                quick = parse_time(state.get("lastQuickScanDateTime"))
                full = parse_time(state.get("lastFullScanDateTime"))
            except GraphProblem as problem:
                note = problem.user_message
        return Device(
            id=str(row.get("id") or ""),
            name=str(row.get("deviceName") or "unnamed device"),
            os=os_name,
            os_version=str(row.get("osVersion") or ""),
            compliance=str(row.get("complianceState") or "unknown"),
            last_sync=parse_time(row.get("lastSyncDateTime")),
            last_quick_scan=quick,
            last_full_scan=full,
            scan_action=str(actions[-1].get("actionState")) if actions else None,
            protection_note=note,
        )

    # --- writes (only ever run by an approved lock-down request) ---------------------------------------------------
    async def defender_scan(self, device_id: str) -> None:
        """Start a quick Defender scan on one managed Windows device."""
        await self.gateway.request_json(
            self.tenant,
            needs.DEVICE_SCAN,
            "POST",
            f"/deviceManagement/managedDevices/{quote(device_id)}/windowsDefenderScan",
            body={"quickScan": True},
        )

    async def revoke_grant(self, grant_id: str) -> None:
        """Delete one delegated permission grant (the app keeps no access in the user's name)."""
        await self.gateway.request_json(
            self.tenant, needs.REVOKE_GRANT, "DELETE", f"/oauth2PermissionGrants/{quote(grant_id, safe='')}"
        )
