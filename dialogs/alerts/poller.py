"""The risky sign-in poller: one cycle per tenant — lease, fetch, de-duplicate, queue, deliver.

Graph has no push for risk detections, so Cordon polls. A cycle first writes what it found (new seen ids, the
advanced watermark and the alerts still to deliver) in one compare-and-set write, and only then sends; an alert
leaves the pending list once the connector accepted it. A crash between poll and send therefore re-sends on the
next cycle (of this or another process) and never drops.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from dialogs.alerts import state as st
from dialogs.alerts.delivery import Deliverer, Outcome
from dialogs.alerts.model import Detection, iso, meets, parse_time
from dialogs.contract import Services

log = logging.getLogger(__name__)

JITTER = 0.10  # ±10 % of the interval, per tenant, so 500 tenants do not all poll in the same second
SCHEDULER_TICK_MAX = 30.0


class RiskSource(Protocol):
    """What the poller needs from Identity Protection (adapters/graph/identity_protection.py)."""

    async def licence(self, tenant_id: str) -> str: ...  # "P2" | "P1" | "none"

    async def detections(self, tenant_id: str, since: dt.datetime) -> list[Detection]: ...

    async def risky_users(self, tenant_id: str, since: dt.datetime) -> list[Detection]: ...

    async def enrich(self, tenant_id: str, detections: list[Detection]) -> list[Detection]: ...


class RiskActions(RiskSource, Protocol):
    """The poller's source plus what the alert buttons do with it."""

    async def confirm_compromised(self, tenant_id: str, user_ids: list[str]) -> None: ...

    async def dismiss(self, tenant_id: str, user_ids: list[str]) -> None: ...


@dataclass(frozen=True)
class SendResult:
    """One line of `poll-once --json`."""

    detection_id: str
    user: str
    risk_level: str
    conversation: str
    status: str  # sent | updated | digest | pending (will retry) | undeliverable (bot removed) | dropped

    def to_json(self) -> dict[str, str]:
        return {
            "detection_id": self.detection_id,
            "user": self.user,
            "risk_level": self.risk_level,
            "conversation": self.conversation,
            "status": self.status,
        }


@dataclass
class TenantOutcome:
    tenant_id: str
    polled: bool = False
    # why nothing was polled: busy (another process) / not due / not licensed / no subscriptions (none working)
    skipped: str | None = None
    error: str | None = None
    problem: Any = None  # the GraphProblem behind `error`, if any
    results: list[SendResult] | None = None


def tenant_name(services: Services, tenant_id: str) -> str:
    for tenant in services.config.tenants:
        if tenant.tenant_id == tenant_id:
            return tenant.name
    return tenant_id


class Poller:
    def __init__(
        self,
        services: Services,
        source: RiskSource,
        *,
        owner: str | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if services.messenger is None:
            raise ValueError("the alert poller needs a messenger (proactive sends)")
        self.services = services
        self.config = services.config.alerts
        self.source = source
        self.owner = owner or f"poller-{uuid.uuid4().hex[:12]}"
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.deliverer = Deliverer(services, sleep=sleep, rng=self.rng)

    def now(self) -> dt.datetime:
        return self.services.clock()

    def _next_poll(self, now: dt.datetime, seconds: float | None = None) -> str:
        base = self.config.interval_seconds if seconds is None else seconds
        return iso(now + dt.timedelta(seconds=base * self.rng.uniform(1 - JITTER, 1 + JITTER)))

    async def subscribed_tenants(self) -> list[str]:
        subs = await st.subscriptions(self.services.storage)
        return sorted({s.tenant_id for s in subs if s.working})

    async def cycle(self, tenant_ids: Iterable[str] | None = None, *, force: bool = False) -> list[TenantOutcome]:
        """Poll every subscribed tenant that is due (all of `tenant_ids` when forced), concurrently within a bound."""
        wanted = list(tenant_ids) if tenant_ids is not None else await self.subscribed_tenants()
        bound = asyncio.Semaphore(self.config.concurrency)

        async def one(tenant_id: str) -> TenantOutcome:
            async with bound:
                try:
                    return await self.poll_tenant(tenant_id, force=force)
                except Exception as exc:  # noqa: BLE001 - one tenant's failure must not stop the others
                    log.exception("alert poll of %s failed", tenant_id)
                    return TenantOutcome(tenant_id, error=f"{type(exc).__name__}: {exc}"[:300])

        outcomes = list(await asyncio.gather(*(one(t) for t in wanted)))
        if tenant_ids is None:  # the scheduled cycle also keeps alert state bounded (at most hourly, any process)
            await self.prune()
        return outcomes

    async def prune(self) -> int:
        from dialogs.alerts import pruning

        try:
            return await pruning.prune(
                self.services.storage, self.now(), dt.timedelta(days=self.config.card_retention_days)
            )
        except Exception:  # noqa: BLE001 - pruning is housekeeping: retried next hour, never stops polling
            log.exception("alert state pruning failed")
            return 0

    async def poll_tenant(self, tenant_id: str, *, force: bool = False) -> TenantOutcome:
        storage = self.services.storage
        outcome = TenantOutcome(tenant_id)
        if not force and not self._due(await st.tenant_state(storage, tenant_id)):  # a read, no lease write
            outcome.skipped = "not due"
            return outcome
        lease = st.Lease(storage, tenant_id, self.owner, self.config.lease_seconds)
        if not await lease.acquire(self.now()):
            outcome.skipped = "busy"
            return outcome
        try:
            async with lease.kept(self.now):
                state, _ = await st.tenant_state(storage, tenant_id)
                if not force and not self._due((state, None)):  # another process polled it meanwhile
                    outcome.skipped = "not due"
                    return outcome
                subs = [s for s in await st.subscriptions(storage, tenant_id) if s.working]
                if subs:
                    await self._collect(tenant_id, state, subs, outcome, force)
                else:
                    outcome.skipped = "no subscriptions"
                if await lease.keep(self.now()):
                    outcome.results = await self._deliver(tenant_id, lease)
                return outcome
        finally:
            await lease.release()

    def _due(self, loaded: tuple[dict[str, Any], int | None]) -> bool:
        due = parse_time(loaded[0].get("next_poll_at"))
        return due is None or due <= self.now()

    async def _licence(self, tenant_id: str, state: dict[str, Any], force: bool) -> tuple[str, bool]:
        """The tenant's Entra ID licence level, from state when checked recently; (level, checked just now)."""
        checked = parse_time(state.get("licence_checked_at"))
        recheck = dt.timedelta(hours=self.config.unlicensed_recheck_hours)
        if not force and state.get("licence") and checked and self.now() - checked < recheck:
            return state["licence"], False
        return await self.source.licence(tenant_id), True

    async def _collect(
        self,
        tenant_id: str,
        state: dict[str, Any],
        subs: list[st.Subscription],
        outcome: TenantOutcome,
        force: bool = False,
    ) -> None:
        from adapters.graph.errors import GraphProblem

        now = self.now()
        overlap = dt.timedelta(minutes=self.config.overlap_minutes)
        first = now - dt.timedelta(minutes=self.config.initial_lookback_minutes)
        try:
            licence, checked_now = await self._licence(tenant_id, state, force)
            if licence != "P2":
                await self._not_licensed(tenant_id, licence, now)
                outcome.skipped = "not licensed"
                return
            mark = parse_time(state.get("watermark"))
            user_mark = parse_time(state.get("user_watermark"))
            found = await self.source.detections(tenant_id, mark - overlap if mark else first)
            seen = state.get("seen", {})
            fresh = [
                d for d in found if d.id not in seen and not d.quiet and any(meets(d.risk_level, s.level) for s in subs)
            ]
            # the risky-user query waits for the tenant's next second anyway: look the sign-ins up meanwhile
            changed, fresh = await asyncio.gather(
                self.source.risky_users(tenant_id, user_mark - overlap if user_mark else first),
                self._enrich(tenant_id, fresh),
            )
        except GraphProblem as problem:
            if problem.kind == "licence":  # 403 Authentication_RequestFromNonPremiumTenantOrB2CTenant
                await self._not_licensed(tenant_id, "refused", now)
                outcome.skipped = "not licensed"
                return
            await self._failed(tenant_id, problem.user_message, now)
            outcome.error, outcome.problem = problem.user_message, problem
            return
        users_with_detections = {d.user_id for d in fresh}
        wanted = [
            *fresh,
            *(
                u
                for u in changed
                if u.id not in seen
                and u.user_id not in users_with_detections
                and not u.quiet
                and any(meets(u.risk_level, s.level) for s in subs)
            ),
        ]
        queue = {
            s.conversation_id: [
                d.to_json() for d in sorted(wanted, key=lambda d: d.detected) if meets(d.risk_level, s.level)
            ]
            for s in subs
        }
        newest = max((d.detected for d in found), default=None)
        newest_user = max((u.detected for u in changed), default=None)
        keep = dt.timedelta(hours=self.config.seen_retention_hours)

        def enqueue(box: dict[str, Any]) -> None:
            for conv, items in queue.items():
                pending = box["pending"].setdefault(conv, [])
                known = {p["id"] for p in pending}
                pending.extend(item for item in items if item["id"] not in known)

        def change(value: dict[str, Any]) -> None:
            for det in (*found, *changed):
                value["seen"].setdefault(det.id, [iso(now), det.detected_at])
            for key, moment in (("watermark", newest), ("user_watermark", newest_user)):
                current = parse_time(value.get(key))
                if moment is not None and (current is None or moment > current):
                    value[key] = iso(moment)
            st.prune_seen(value, now, keep, overlap)
            value.update(
                licence="P2",
                last_success=iso(now),
                last_error=None,
                last_error_at=None,
                next_poll_at=self._next_poll(now),
            )
            if checked_now or not value.get("licence_checked_at"):
                value["licence_checked_at"] = iso(now)

        if any(queue.values()):  # owed first, seen second: a crash in between re-queues, never drops
            await st.change_outbox(self.services.storage, tenant_id, enqueue)
        await st.change_tenant_state(self.services.storage, tenant_id, change)
        outcome.polled = True

    async def _enrich(self, tenant_id: str, detections: list[Detection]) -> list[Detection]:
        """The app name from each sign-in; a nicety, so a failure leaves the detections as they are."""
        from adapters.graph.errors import GraphProblem

        if not detections or not self.config.enrich_sign_ins:
            return detections
        try:
            enriched = {d.id: d for d in await self.source.enrich(tenant_id, detections)}
        except GraphProblem as problem:
            log.info("sign-in enrichment for %s skipped: %s", tenant_id, problem.user_message)
            return detections
        return [enriched.get(d.id, d) for d in detections]

    async def _not_licensed(self, tenant_id: str, licence: str, now: dt.datetime) -> None:
        def change(value: dict[str, Any]) -> None:
            value.update(
                licence=licence,
                licence_checked_at=iso(now),
                last_error=None,
                last_error_at=None,
                next_poll_at=self._next_poll(now, self.config.unlicensed_recheck_hours * 3600),
            )

        await st.change_tenant_state(self.services.storage, tenant_id, change)

    async def _failed(self, tenant_id: str, message: str, now: dt.datetime) -> None:
        def change(value: dict[str, Any]) -> None:
            value.update(last_error=message, last_error_at=iso(now), next_poll_at=self._next_poll(now))

        await st.change_tenant_state(self.services.storage, tenant_id, change)

    async def _deliver(self, tenant_id: str, lease: st.Lease) -> list[SendResult]:
        """Send what is pending, oldest first; each accepted group leaves the pending list at once."""
        storage = self.services.storage
        state, _ = await st.tenant_state(storage, tenant_id)
        subs = {s.conversation_id: s for s in await st.subscriptions(storage, tenant_id)}
        name = tenant_name(self.services, tenant_id)
        results: list[SendResult] = []
        for conv, items in state["pending"].items():
            if not await lease.keep(self.now()):
                log.warning("lost the poll lease of %s mid-delivery; another process continues", tenant_id)
                break
            dets = {item["id"]: Detection.from_json(item) for item in items}
            sub = subs.get(conv)

            async def settle(
                ids: list[str], outcome: Outcome, conv: str = conv, dets: dict[str, Detection] = dets
            ) -> None:
                if outcome == "gone":
                    await st.mark_broken(
                        storage, conv, "the bot was removed from the conversation (403/404)", self.now()
                    )
                    outcome = "undeliverable"
                status = "pending" if outcome == "retry" else outcome
                results.extend(SendResult(i, dets[i].user_label, dets[i].risk_level, conv, status) for i in ids)
                if outcome not in ("retry", "undeliverable"):  # kept until sent, or until `alerts off`
                    await self._settle(tenant_id, conv, ids, counted=outcome in ("sent", "updated", "digest"))

            if sub is None:  # unsubscribed since it was queued
                await settle(list(dets), "dropped")
            elif not sub.working:  # the bot was removed: retrying will not help, `alerts status` shows it
                await settle(list(dets), "undeliverable")
            else:
                await self.deliverer.deliver(name, conv, list(dets.values()), settle)
        return results

    async def _settle(self, tenant_id: str, conv: str, ids: list[str], *, counted: bool) -> None:
        now = self.now()
        done = set(ids)

        def change(box: dict[str, Any]) -> None:
            box["pending"][conv] = [p for p in box["pending"].get(conv, []) if p.get("id") not in done]
            if counted:
                st.count_sent(box, now, len(ids))

        await st.change_outbox(self.services.storage, tenant_id, change)

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        """Poll each tenant when it is due; sleep until the next one is (bounded, so new subscriptions start)."""
        stop = stop or asyncio.Event()
        tick = min(SCHEDULER_TICK_MAX, self.config.interval_seconds / 10)
        while not stop.is_set():
            try:
                await self.cycle()
            except Exception:  # noqa: BLE001 - the loop must survive anything one cycle does
                log.exception("alert poller cycle failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=tick)
            except TimeoutError:
                pass
