"""Stand-in Identity Protection and sign-in logs: risk detections that arrive over time, risky users, sign-ins.

    async with GraphStandin(home_tenant=T, extensions=[identity_protection.register]) as graph:
        risk = identity_protection.data(graph, T, now=clock)        # arrivals are judged by `now()`
        risk.add_detection(identity_protection.risk_detection(user, detected=t0), arrives=t0 + 10 min)

Like Graph: `$filter=detectedDateTime ge <UTC time>` (nothing else), `$top` ≤ 500, nextLink paging; risk APIs
answer 403 `Authentication_RequestFromNonPremiumTenantOrB2CTenant` unless the tenant has Entra ID P2, and a 429
(inject it with `Fault.throttle(path)`) carries no Retry-After. Every payload here parses into the msgraph-sdk
model with nothing left over (tests/test_alerts_standin.py).

This module owns the Identity Protection routes and the sign-in log (`/auditLogs/signIns`) for every family:
`lockdown_routes` registers them through `register` (which adds them once per router, so both extensions load
together in any order) and keeps its own books through `RiskData.observers` and views onto this state.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.graph_standin import payloads, sign_in_filter
from tests.support.graph_standin.server import graph_error
from tests.support.graph_standin.state import LICENCE_CODE, LICENCE_MESSAGE

if TYPE_CHECKING:
    from tests.support.graph_standin.server import GraphStandin
    from tests.support.graph_standin.state import TenantState

KEY = "identity_protection"
MAX_TOP = 500
_TIME = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)"
_DETECTED = re.compile(rf"^detectedDateTime ge {_TIME}$")
_CHANGED = re.compile(rf"^riskLastUpdatedDateTime ge {_TIME}$")
DETECTIONS_PATH = "/v1.0/identityProtection/riskDetections"


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class RiskData:
    """One tenant's Identity Protection. `now` decides which detections have "arrived" (None: all have)."""

    now: Callable[[], dt.datetime] | None = None
    detections: list[tuple[dt.datetime | None, dict[str, Any]]] = field(default_factory=list)
    risky_users: dict[str, tuple[dt.datetime | None, dict[str, Any]]] = field(default_factory=dict)
    sign_ins: dict[str, dict[str, Any]] = field(default_factory=dict)  # the tenant's sign-in log, by id
    actions: list[tuple[str, list[str]]] = field(default_factory=list)  # ("confirmCompromised", [user ids])
    # told (method, path, body) of every accepted risky-user action: other families' own write logs
    observers: list[Callable[[str, str, dict[str, Any]], None]] = field(default_factory=list)

    def add_detection(self, payload: dict[str, Any], arrives: dt.datetime | None = None) -> dict[str, Any]:
        self.detections.append((arrives, payload))
        return payload

    def set_risky_user(self, payload: dict[str, Any], arrives: dt.datetime | None = None) -> dict[str, Any]:
        self.risky_users[payload["id"]] = (arrives, payload)
        return payload

    def add_sign_in(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.sign_ins[payload["id"]] = payload
        return payload

    def arrived(self, arrives: dt.datetime | None) -> bool:
        return arrives is None or self.now is None or arrives <= self.now()


def data(standin: GraphStandin, tenant_id: str, *, now: Callable[[], dt.datetime] | None = None) -> RiskData:
    """The tenant's risk data (created on first use)."""
    risk = data_of(standin.tenant(tenant_id))
    if now is not None:
        risk.now = now
    return risk


def data_of(state: TenantState) -> RiskData:
    """The risk data of a tenant's state (created on first use)."""
    return state.extra.setdefault(KEY, RiskData())


# --- payloads ---------------------------------------------------------------------------------------------------
def risk_detection(
    user: dict[str, Any],
    *,
    detected: dt.datetime,
    event: str = "anonymizedIPAddress",
    level: str = "high",
    state: str = "atRisk",
    ip: str = "185.220.101.4",
    city: str = "Stockholm",
    country: str = "SE",
    request_id: str | None = None,
    correlation_id: str | None = None,
    id: str | None = None,
) -> dict[str, Any]:  # noqa: A002
    """A riskDetection as Graph v1.0 returns it (a sign-in detection, real-time)."""
    return {
        "id": id or payloads.new_id().replace("-", "")[:32],
        "requestId": request_id or payloads.new_id(),
        "correlationId": correlation_id or payloads.new_id(),
        "riskEventType": event,
        "riskState": state,
        "riskLevel": level,
        "riskDetail": "none",
        "source": "IdentityProtection",
        "detectionTimingType": "realtime",
        "activity": "signin",
        "tokenIssuerType": "AzureAD",
        "ipAddress": ip,
        "location": {
            "city": city,
            "state": city,
            "countryOrRegion": country,
            "geoCoordinates": {"latitude": 59.33, "longitude": 18.06},
        },
        "activityDateTime": payloads.iso(detected - dt.timedelta(seconds=30)),
        "detectedDateTime": payloads.iso(detected),
        "lastUpdatedDateTime": payloads.iso(detected + dt.timedelta(minutes=1)),
        "userId": user["id"],
        "userDisplayName": user["displayName"],
        "userPrincipalName": user["userPrincipalName"],
        "additionalInfo": json.dumps([{"Key": "userAgent", "Value": "Mozilla/5.0"}]),
    }


def risky_user(
    user: dict[str, Any], *, changed: dt.datetime, level: str = "high", state: str = "atRisk"
) -> dict[str, Any]:
    return {
        "id": user["id"],
        "isDeleted": False,
        "isProcessing": False,
        "riskLastUpdatedDateTime": payloads.iso(changed),
        "riskLevel": level,
        "riskState": state,
        "riskDetail": "none",
        "userDisplayName": user["displayName"],
        "userPrincipalName": user["userPrincipalName"],
    }


def sign_in(detection: dict[str, Any], *, app: str = "Office 365 Exchange Online") -> dict[str, Any]:
    """The sign-in a detection came from: its id is the detection's requestId."""
    return {
        "id": detection["requestId"],
        "createdDateTime": detection["activityDateTime"],
        "userDisplayName": detection["userDisplayName"],
        "userPrincipalName": detection["userPrincipalName"],
        "userId": detection["userId"],
        "appId": "00000002-0000-0ff1-ce00-000000000000",
        "appDisplayName": app,
        "ipAddress": detection["ipAddress"],
        "clientAppUsed": "Browser",
        "correlationId": detection["correlationId"],
        "conditionalAccessStatus": "notApplied",
        "isInteractive": True,
        "riskDetail": "none",
        "riskLevelAggregated": detection["riskLevel"],
        "riskLevelDuringSignIn": detection["riskLevel"],
        "riskState": detection["riskState"],
        "riskEventTypes_v2": [detection["riskEventType"]],
        "resourceDisplayName": "Office 365 Exchange Online",
        "resourceId": "00000002-0000-0ff1-ce00-000000000000",
        "status": {"errorCode": 0, "failureReason": "Other.", "additionalDetails": None},
        "deviceDetail": {
            "deviceId": "",
            "displayName": None,
            "operatingSystem": "Windows10",
            "browser": "Edge 120",
            "isCompliant": False,
            "isManaged": False,
            "trustType": None,
        },
        "location": detection["location"],
        "appliedConditionalAccessPolicies": [],
    }


# --- routes -----------------------------------------------------------------------------------------------------
def _p2(standin: GraphStandin, request: web.Request) -> bool:
    state = standin.state_for(request)
    return any(p["servicePlanName"] == "AAD_PREMIUM_P2" for s in state.skus for p in s.get("servicePlans", []))


def _top(request: web.Request) -> web.Response | None:
    top = request.query.get("$top")
    if top is not None and (not top.isdigit() or not 1 <= int(top) <= MAX_TOP):
        return graph_error(
            400, "BadRequest", f"Invalid page size specified: '{top}'. Must be between 1 and {MAX_TOP} inclusive."
        )
    return None


def _plain(value: Any) -> Any:
    """A JSON body without `@odata.type` annotations (the SDK sends them; Graph accepts them)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "@odata.type"}
    return value


def register(router: web.UrlDispatcher, standin: GraphStandin) -> None:
    """Add the routes, once per router (both this module and `lockdown_routes` call it)."""
    if any(resource.canonical == DETECTIONS_PATH for resource in router.resources()):
        return

    def risk_of(request: web.Request) -> RiskData:
        return data(standin, standin.state_for(request).tenant_id)

    async def risk_detections(request: web.Request) -> web.Response:
        if not _p2(standin, request):
            return graph_error(403, LICENCE_CODE, LICENCE_MESSAGE)
        if (bad := _top(request)) is not None:
            return bad
        match = _DETECTED.match(request.query.get("$filter", ""))
        if "$filter" in request.query and not match:
            return graph_error(400, "BadRequest", "Invalid filter clause")
        since = _time(match.group(1)) if match else None
        risk = risk_of(request)
        rows = sorted(
            (
                p
                for arrives, p in risk.detections
                if risk.arrived(arrives) and (since is None or _time(p["detectedDateTime"]) >= since)
            ),
            key=lambda p: p["detectedDateTime"],
        )
        return standin.page(request, len(rows), lambda start, size: rows[start : start + size])

    async def risky_users(request: web.Request) -> web.Response:
        if not _p2(standin, request):
            return graph_error(403, LICENCE_CODE, LICENCE_MESSAGE)
        if (bad := _top(request)) is not None:
            return bad
        match = _CHANGED.match(request.query.get("$filter", ""))
        if "$filter" in request.query and not match:
            return graph_error(400, "BadRequest", "Invalid filter clause")
        since = _time(match.group(1)) if match else None
        risk = risk_of(request)
        rows = sorted(
            (
                p
                for arrives, p in risk.risky_users.values()
                if risk.arrived(arrives) and (since is None or _time(p["riskLastUpdatedDateTime"]) >= since)
            ),
            key=lambda p: p["riskLastUpdatedDateTime"],
        )
        return standin.page(request, len(rows), lambda start, size: rows[start : start + size])

    def user_action(name: str, level: str, state: str) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.Response:
            if not _p2(standin, request):
                return graph_error(403, LICENCE_CODE, LICENCE_MESSAGE)
            try:
                body = _plain(await request.json())
            except ValueError:
                return graph_error(400, "BadRequest", "Invalid JSON")
            ids = body.get("userIds") if isinstance(body, dict) else None
            if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
                return graph_error(400, "BadRequest", "userIds must be a non-empty list of ids")
            if set(body) != {"userIds"}:
                return graph_error(400, "BadRequest", f"unexpected properties {sorted(set(body) - {'userIds'})}")
            risk = risk_of(request)
            risk.actions.append((name, list(ids)))
            for user_id in ids:
                if user_id in risk.risky_users:
                    arrives, payload = risk.risky_users[user_id]
                    risk.risky_users[user_id] = (arrives, {**payload, "riskLevel": level, "riskState": state})
            for observer in risk.observers:
                observer(request.method, request.path, body)
            return web.Response(status=204)

        return handler

    async def sign_ins(request: web.Request) -> web.Response:
        state = standin.state_for(request)
        if not state.premium:
            return graph_error(403, LICENCE_CODE, LICENCE_MESSAGE)
        p2 = _p2(standin, request)
        rows = [r if p2 else sign_in_filter.hidden_risk(r) for r in risk_of(request).sign_ins.values()]
        if "$filter" in request.query:
            try:
                keep = sign_in_filter.compile_filter(request.query["$filter"], p2=p2)
            except sign_in_filter.FilterError:
                return graph_error(400, "BadRequest", "Invalid filter clause")
            rows = [r for r in rows if keep(r)]
        rows.sort(key=lambda r: r["createdDateTime"], reverse=True)  # Graph lists the newest first
        selected = set(request.query.get("$select", "").split(",")) - {""}
        if selected:
            rows = [{k: v for k, v in r.items() if k in selected} for r in rows]
        return standin.page(request, len(rows), lambda start, size: rows[start : start + size])

    router.add_get(DETECTIONS_PATH, risk_detections)
    router.add_get("/v1.0/identityProtection/riskyUsers", risky_users)
    router.add_post(
        "/v1.0/identityProtection/riskyUsers/confirmCompromised",
        user_action("confirmCompromised", "high", "confirmedCompromised"),
    )
    router.add_post("/v1.0/identityProtection/riskyUsers/dismiss", user_action("dismiss", "none", "dismissed"))
    router.add_get("/v1.0/auditLogs/signIns", sign_ins)


# --- several tenants against one stand-in -----------------------------------------------------------------------
class StandinTokens:
    """A token source that asks the stand-in for a token of its own tenant (msal is tested by the Graph tests)."""

    def __init__(self, standin: GraphStandin, tenant: Any) -> None:
        self.standin = standin
        self.tenant = tenant
        self._token: str | None = None
        self.acquired = 0

    async def token(self) -> str:
        if self._token is None:
            self._token = self.standin.issue_token(self.tenant.tenant_id)
            self.acquired += 1
        return self._token

    def forget(self) -> None:
        self._token = None


def standin_gateway(standin: GraphStandin, config: Any, *, retry: Any = None) -> Any:
    """A real GraphGateway whose tenants each get tokens for themselves from the stand-in."""
    from adapters.graph import GraphGateway

    class _Gateway(GraphGateway):
        def token_source(self, tenant: Any) -> Any:
            source = self._sources.get(tenant.tenant_id)
            if source is None:
                source = self._sources[tenant.tenant_id] = StandinTokens(standin, tenant)
            return source

    return _Gateway(config, retry=retry)


def tenants_config(url: str, tenant_ids: list[str], **sections: Any) -> Any:
    """A CordonConfig with one `[[tenants]]` entry per id (names T0, T1, ...; domains t0.example, ...)."""
    from adapters.config import parse_config

    tenants = [
        {"name": f"T{i}", "tenant_id": tid, "domains": [f"t{i}.example"], "credential": "managed_identity"}
        for i, tid in enumerate(tenant_ids)
    ]
    return parse_config({"graph": {"endpoint": url}, "tenants": tenants, **sections})
