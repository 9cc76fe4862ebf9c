"""Identity Protection for the alert poller and its buttons: risk detections, risky users, sign-in enrichment,
confirm compromised / dismiss.

Identity Protection allows about one request per second per tenant, shared by every app, and its 429s carry no
Retry-After. So every request here waits its turn in a per-tenant `Pacer` (≥ 1 s apart), goes out with the
gateway's own retries switched off (`RetryBudget(0)`), and a 429 is retried here with exponential backoff and
jitter, within the configured retry budget, while the tenant's pacer holds back every other request too.
Answers are read as raw JSON (no model parsing: the poller may read 10,000 detections a cycle).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from adapters.config import TenantConfig
from adapters.detections import Detection, iso
from adapters.graph import permissions
from adapters.graph.errors import DEFAULT_WAIT_SECONDS, GraphProblem
from adapters.graph.inputs import odata_string
from adapters.shared_pacer import SharedPacer

log = logging.getLogger(__name__)

MIN_INTERVAL = 1.0  # seconds between two Identity Protection requests to one tenant
PAGE_SIZE = 500
SIGN_IN_CHUNK = 10  # ids per signIns $filter (`id eq 'a' or id eq 'b' ...`)
SIGN_IN_RETRY_SECONDS = 5.0  # the app name is a nicety: a short retry budget, then alert without it
BACKOFF_BASE = 2.0
BACKOFF_MAX = 60.0
_GUIDISH = re.compile(r"^[0-9A-Za-z-]{8,64}$")


class Pacer:
    """At most one request per `interval` seconds per tenant (this process); a 429 holds the tenant back."""

    def __init__(
        self,
        interval: float = MIN_INTERVAL,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.interval = interval
        self.monotonic = monotonic
        self.sleep = sleep
        self._next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def acquire(self, tenant_id: str) -> None:
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            wait = self._next.get(tenant_id, 0.0) - self.monotonic()
            if wait > 0:
                await self.sleep(wait)
            self._next[tenant_id] = max(self.monotonic(), self._next.get(tenant_id, 0.0)) + self.interval

    def hold_off(self, tenant_id: str, seconds: float) -> None:
        self._next[tenant_id] = max(self._next.get(tenant_id, 0.0), self.monotonic() + seconds)


def _level(value: Any) -> str:
    return str(value or "none")


def detection_from(tenant_id: str, item: dict[str, Any]) -> Detection:
    location = item.get("location") or {}
    return Detection(
        id=str(item.get("id")),
        tenant_id=tenant_id,
        user_id=str(item.get("userId") or ""),
        upn=item.get("userPrincipalName"),
        user_name=item.get("userDisplayName"),
        risk_level=_level(item.get("riskLevel")),
        event_type=str(item.get("riskEventType") or ""),
        risk_state=item.get("riskState"),
        detected_at=str(item.get("detectedDateTime") or ""),
        ip=item.get("ipAddress"),
        city=location.get("city"),
        country=location.get("countryOrRegion"),
        request_id=item.get("requestId"),
        correlation_id=item.get("correlationId"),
        kind="detection",
    )


def risky_user_change(tenant_id: str, item: dict[str, Any]) -> Detection:
    """A risky user whose risk changed, as a Detection keyed by user and change time (alerts once per change)."""
    changed = str(item.get("riskLastUpdatedDateTime") or "")
    return Detection(
        id=f"user:{item.get('id')}@{changed}",
        tenant_id=tenant_id,
        user_id=str(item.get("id") or ""),
        upn=item.get("userPrincipalName"),
        user_name=item.get("userDisplayName"),
        risk_level=_level(item.get("riskLevel")),
        event_type="userRiskChanged",
        risk_state=item.get("riskState"),
        detected_at=changed,
        kind="user",
    )


class IdentityProtection:
    """The `RiskSource` of `dialogs.alerts.poller`, over a `GraphGateway`."""

    def __init__(
        self,
        gateway: Any,
        *,
        pacer: Pacer | SharedPacer | None = None,
        rng: random.Random | None = None,
        budget_seconds: float | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gateway = gateway
        self.pacer = pacer or Pacer(monotonic=monotonic, sleep=sleep)
        self.rng = rng or random.Random()
        self.budget = gateway.config.graph.retry_budget_seconds if budget_seconds is None else budget_seconds
        self.sleep = sleep
        self.monotonic = monotonic
        self.requests = 0  # Identity Protection requests sent (bench, tests)

    def tenant(self, tenant_id: str) -> TenantConfig:
        tenant: TenantConfig | None = self.gateway.directory.by_id(tenant_id)
        if tenant is None:
            raise GraphProblem("bad_request", f"tenant {tenant_id} is not configured in cordon.toml", tenant=tenant_id)
        return tenant

    async def _request(
        self,
        tenant: TenantConfig,
        need: permissions.Need,
        method: str,
        url: str,
        body: Any = None,
        retry_seconds: float = 0,
    ) -> dict[str, Any] | None:
        """One raw request through the gateway, its retries off by default (the pacing here decides)."""
        from adapters.graph.transport import RetryBudget

        answer: dict[str, Any] | None = await self.gateway.request_json(
            tenant, need, method, url, body=body, options=[RetryBudget(retry_seconds)]
        )
        return answer

    async def _paced(
        self, tenant: TenantConfig, need: permissions.Need, method: str, url: str, body: Any = None
    ) -> dict[str, Any] | None:
        """One request in the tenant's turn; a 429 backs off (exponential, jitter) within the budget."""
        started = self.monotonic()
        attempt = 0
        while True:
            await self.pacer.acquire(tenant.tenant_id)
            self.requests += 1
            try:
                return await self._request(tenant, need, method, url, body)
            except GraphProblem as problem:
                if problem.kind not in ("throttled", "unavailable") or problem.status is None:
                    raise
                attempt += 1
                ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1))
                delay = ceiling / 2 + self.rng.uniform(0, ceiling / 2)
                if _sent_retry_after(problem):
                    delay = max(delay, float(problem.retry_after or 0))
                if self.monotonic() - started + delay > self.budget:
                    raise
                log.info(
                    "Identity Protection %s for %s: HTTP %s, retry %d in %.1f s",
                    url.split("?")[0][-60:],
                    tenant.name,
                    problem.status,
                    attempt,
                    delay,
                )
                self.pacer.hold_off(tenant.tenant_id, delay)

    async def _list(
        self, tenant: TenantConfig, need: permissions.Need, path: str, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        from adapters.graph.transport import origin

        items: list[dict[str, Any]] = []
        url: str | None = self.gateway.url(path, params)
        while url:
            page = await self._paced(tenant, need, "GET", url) or {}
            items.extend(page.get("value") or [])
            url = page.get("@odata.nextLink")
            if url and origin(url) != origin(self.gateway.graph.endpoint):
                raise GraphProblem(
                    "unavailable",
                    f"Graph sent a next-page link to another host for {tenant.name}; the poll was stopped.",
                    tenant=tenant.name,
                )
        return items

    async def licence(self, tenant_id: str) -> str:
        """ "P2" | "P1" | "Free" (subscribedSkus through the gateway, cached there)."""
        licence: str = await self.gateway.licence(self.tenant(tenant_id))
        return licence

    async def detections(self, tenant_id: str, since: dt.datetime) -> list[Detection]:
        tenant = self.tenant(tenant_id)
        params = {"$filter": f"detectedDateTime ge {iso(since)}", "$top": PAGE_SIZE}
        rows = await self._list(tenant, permissions.RISK_DETECTIONS, "/identityProtection/riskDetections", params)
        return [detection_from(tenant_id, row) for row in rows if row.get("id")]

    async def risky_users(self, tenant_id: str, since: dt.datetime) -> list[Detection]:
        tenant = self.tenant(tenant_id)
        params = {"$filter": f"riskLastUpdatedDateTime ge {iso(since)}", "$top": PAGE_SIZE}
        rows = await self._list(tenant, permissions.RISKY_USERS, "/identityProtection/riskyUsers", params)
        return [risky_user_change(tenant_id, row) for row in rows if row.get("id")]

    async def enrich(self, tenant_id: str, detections: list[Detection]) -> list[Detection]:
        """Add the app name from each detection's sign-in (by request id, else correlation id)."""
        import dataclasses

        tenant = self.tenant(tenant_id)
        wanted = [d for d in detections if d.kind == "detection" and not d.app]
        by_request = {d.request_id: d for d in wanted if d.request_id and _GUIDISH.match(d.request_id)}
        by_correlation = {
            d.correlation_id: d
            for d in wanted
            if not (d.request_id and d.request_id in by_request)
            and d.correlation_id
            and _GUIDISH.match(d.correlation_id)
        }
        apps: dict[str, str] = {}
        for field, keys in (("id", list(by_request)), ("correlationId", list(by_correlation))):
            for start in range(0, len(keys), SIGN_IN_CHUNK):
                chunk = keys[start : start + SIGN_IN_CHUNK]
                flt = " or ".join(f"{field} eq {odata_string(k)}" for k in chunk)
                params = {"$filter": flt, "$select": "id,correlationId,appDisplayName", "$top": len(chunk) * 5}
                answer = (
                    await self._request(
                        tenant,
                        permissions.SIGN_INS,
                        "GET",  # not Identity Protection
                        self.gateway.url("/auditLogs/signIns", params),
                        retry_seconds=SIGN_IN_RETRY_SECONDS,
                    )
                    or {}
                )
                for row in answer.get("value") or []:
                    name = row.get("appDisplayName")
                    if name:
                        apps.setdefault(f"id:{row.get('id')}", name)
                        apps.setdefault(f"correlationId:{row.get('correlationId')}", name)
        out = []
        for det in detections:
            app = apps.get(f"id:{det.request_id}") or apps.get(f"correlationId:{det.correlation_id}")
            out.append(dataclasses.replace(det, app=app) if app and not det.app else det)
        return out

    async def confirm_compromised(self, tenant_id: str, user_ids: list[str]) -> None:
        tenant = self.tenant(tenant_id)
        await self._paced(
            tenant,
            permissions.RISKY_USERS,
            "POST",
            self.gateway.url("/identityProtection/riskyUsers/confirmCompromised"),
            body={"userIds": list(user_ids)},
        )

    async def dismiss(self, tenant_id: str, user_ids: list[str]) -> None:
        tenant = self.tenant(tenant_id)
        await self._paced(
            tenant,
            permissions.RISKY_USERS,
            "POST",
            self.gateway.url("/identityProtection/riskyUsers/dismiss"),
            body={"userIds": list(user_ids)},
        )


def _sent_retry_after(problem: GraphProblem) -> bool:
    """GraphProblem fills `retry_after` with a default wait when Graph sent none (Identity Protection never does)."""
    return problem.retry_after is not None and problem.retry_after != DEFAULT_WAIT_SECONDS.get(problem.kind)
