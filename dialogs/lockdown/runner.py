"""Runs an approved request's steps in the background, one CAS-recorded step at a time, and resumes after a crash.

Claiming the run is the `approved → running` transition (or taking over a running request whose runner's lease
ran out), so exactly one runner ever works on a request. Each step is written as "started" before it is tried
and with its outcome after; a runner that finds a step started but not finished repeats it only if the step is
safe to repeat, and otherwise marks it "not run" and says why.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from adapters.graph.errors import GraphProblem
from adapters.storage import AuditEntry
from dialogs.contract import Reply, Services
from dialogs.lockdown import cards as lcards
from dialogs.lockdown import rules, state, steps
from dialogs.lockdown.model import LockdownRequest, Runner
from dialogs.lockdown.runtime import TenantGraph, runtime, store
from dialogs.lockdown.state import LEASE, WrongState, iso

log = logging.getLogger(__name__)

SUMMARY_DAYS = 7
INTERRUPTED = (
    "Cordon stopped while this step was running and cannot tell whether it took effect, so it was not "
    "repeated. Check it by hand (a second password reset would make a password nobody was given)."
)


async def audit(
    services: Services,
    request: LockdownRequest,
    what: str,
    outcome: str,
    actor: str | None = None,
    detail: str | None = None,
    actor_name: str | None = None,
) -> None:
    """One audit line per request, decision and step (never a secret in `detail`)."""
    try:
        await services.storage.append_audit(
            AuditEntry(
                actor=actor or "cordon",
                command=f"lockdown:{what}",
                outcome=outcome,
                tenant=request.requested_in.tenant_id,
                conversation=request.requested_in.conversation_id,
                target=f"{request.target.upn} ({request.id})",
                detail=(detail or "")[:500] or None,
                actor_name=actor_name,
            )
        )
    except Exception:  # noqa: BLE001 - loud in the log, but it must not stop a containment in progress
        log.exception("could not write the audit log for lock-down %s", request.id)


async def publish(services: Services, request: LockdownRequest) -> None:
    """Redraw the request's card in place (for everyone), from the stored state."""
    where = request.card
    if where is None or not where.message_id or not where.conversation_id:
        return
    reply = Reply(card=lcards.render(request, services.clock()))
    try:
        if services.messenger is not None:
            await services.messenger.update(where.conversation_id, where.message_id, reply)
            return
        outbox = runtime(services).outboxes.get(request.id)
        if outbox is not None:
            await outbox.update(where.message_id, reply, where.conversation_id)
    except Exception as exc:  # noqa: BLE001 - a card we cannot redraw must not stop the run
        log.warning("could not update the card of lock-down %s: %s", request.id, exc)


def final_state(request: LockdownRequest) -> str:
    chosen = request.decision.steps if request.decision else []
    statuses = [(request.results.get(k) or {}).get("status") for k in chosen]
    if statuses and all(s == steps.OK for s in statuses):
        return state.DONE
    return state.PARTIAL if any(s == steps.OK for s in statuses) else state.FAILED


async def run(services: Services, request_id: str) -> LockdownRequest | None:
    """Claim and run the request; returns the final request, or None when another runner has it."""
    rt = runtime(services)
    st = store(services)
    now = services.clock()
    taken_over: list[str] = []

    def claim(request: LockdownRequest) -> None:
        if request.runner:
            taken_over.append(request.runner.owner or "?")
        request.runner = Runner(owner=rt.owner, lease_until=iso(now + LEASE))
        request.results = dict(request.results)  # stored even while empty, as before the model

    try:
        request = await st.transition(
            request_id,
            {state.APPROVED, state.RUNNING},
            state.RUNNING,
            claim,
            guard=lambda r: r.state == state.APPROVED or state.lease_expired(r, now),
        )
    except WrongState:
        return None
    if taken_over:
        await audit(services, request, "resume", "ok", detail=f"took over from runner {taken_over[0]}")

    def mine(r: LockdownRequest) -> bool:
        return r.runner is not None and r.runner.owner == rt.owner

    def runner_of(r: LockdownRequest) -> Runner:
        assert r.runner is not None  # `mine` held: the run is ours
        return r.runner

    async def record(key: str, result: dict[str, Any]) -> LockdownRequest:
        def change(r: LockdownRequest) -> None:
            r.results = {**r.results, key: {**result, "at": iso(services.clock())}}
            if key in ("block_sign_in", "enable_sign_in") and result["status"] == steps.OK:
                r.target.enabled = key == "enable_sign_in"  # the card's facts follow what was done
            runner_of(r).lease_until = iso(services.clock() + LEASE)

        return await st.transition(request_id, {state.RUNNING}, state.RUNNING, change, guard=mine)

    try:
        graph = await _graph(services, request)
        for key in request.decision.steps if request.decision else []:
            previous = request.results.get(key) or {}
            if previous.get("status") in steps.FINISHED:
                continue
            if previous.get("status") == steps.STARTED and not steps.STEPS[key].repeatable:
                request = await record(key, steps.not_run(INTERRUPTED))
                await audit(services, request, f"step:{key}", "not_run", detail="interrupted by a restart")
                await publish(services, request)
                continue
            request = await record(key, {"status": steps.STARTED})
            await publish(services, request)
            outcome = await _execute(key, request, graph, services)
            if previous.get("status") == steps.STARTED:  # safe to repeat, and repeated: say so
                outcome["detail"] = f"{outcome.get('detail', '')} (tried again after Cordon restarted)".strip()
            request = await record(key, outcome)
            await audit(services, request, f"step:{key}", outcome["status"], detail=outcome.get("detail"))
            await publish(services, request)
        summary = await investigate(services, request, graph)
        final = final_state(request)

        def finish(r: LockdownRequest) -> None:
            r.summary = summary
            runner_of(r).lease_until = None

        request = await st.transition(request_id, {state.RUNNING}, final, finish, guard=mine)
    except WrongState:
        log.warning("lock-down %s: another runner took over; this one stops", request_id)
        return None
    await audit(services, request, "finished", final)
    await publish(services, request)
    rt.outboxes.pop(request_id, None)
    return request


async def _graph(services: Services, request: LockdownRequest) -> TenantGraph | str:
    """Graph for the request's tenant, or the reason there is none (said on the card for every step)."""
    gateway = services.graph
    tenant = gateway.directory.by_id(request.tenant_id) if gateway is not None else None
    if tenant is None:
        return f"The tenant {request.tenant_name} is not configured in this Cordon (any more)."
    try:
        return await runtime(services).graph_for(services, tenant)
    except Exception:  # noqa: BLE001 - every step then says so; details to the log only
        correlation = uuid.uuid4().hex[:12]
        log.exception("lock-down %s: no Graph for %s (correlation id %s)", request.id, tenant.name, correlation)
        return f"Cordon could not reach Microsoft Graph for {tenant.name} (correlation id {correlation})."


async def _execute(key: str, request: LockdownRequest, graph: TenantGraph | str, services: Services) -> dict[str, Any]:
    if isinstance(graph, str):
        return {"status": steps.FAILED, "detail": graph}
    try:
        return await steps.execute(key, request, graph.containment, services, list(graph.tenant.domains))
    except Exception:  # noqa: BLE001 - one broken step must not stop the others; details to the log only
        correlation = uuid.uuid4().hex[:12]
        log.exception("lock-down %s step %s failed (correlation id %s)", request.id, key, correlation)
        return {"status": steps.FAILED, "detail": f"Unexpected error (correlation id {correlation})."}


async def investigate(services: Services, request: LockdownRequest, graph: TenantGraph | str) -> dict[str, Any]:
    """The summary under the steps; each part that Graph refuses says why instead."""
    if isinstance(graph, str):
        return {}
    since = services.clock() - dt.timedelta(days=SUMMARY_DAYS)
    user_id = request.target.id
    summary: dict[str, Any] = {}
    try:
        summary["sign_ins"] = (await graph.investigation.sign_ins(user_id, since)).to_dict()
    except GraphProblem as problem:
        summary["sign_ins_error"] = problem.user_message
    try:
        summary["registered"] = await graph.investigation.registered_methods(user_id, since)
    except GraphProblem as problem:
        summary["registered_error"] = problem.user_message
    rules_result = request.results.get("inbox_rules") or {}
    if rules_result.get("data") is None:  # not a chosen step: read them, change nothing
        try:
            found = await graph.containment.inbox_rules(user_id)
            domains = list(graph.tenant.domains)
            summary["rules"] = [_rule_row(rules.assess(r, domains)) for r in found][: lcards.MAX_RULES * 3]
        except GraphProblem as problem:
            summary["rules_error"] = problem.user_message
    return summary


def _rule_row(verdict: rules.Verdict) -> dict[str, Any]:
    row = {"name": verdict.rule.name, "does": rules.describe(verdict.rule)}
    if verdict.disable or verdict.review:
        row["why"] = "suspicious: " + "; ".join(verdict.disable + verdict.review)
    return row


async def expire_due(services: Services, live: list[state.Stored] | None = None) -> list[LockdownRequest]:
    """Turn pending requests past their expiry into `expired` (one CAS each) and redraw their cards.

    `live` is what the sweep already read (`RequestStore.live()`); ended requests are never read here."""
    st = store(services)
    expired = []
    for request in [s.request for s in (await st.live() if live is None else live)]:
        if not state.is_expired(request, services.clock()):
            continue
        try:
            request = await st.transition(
                request.id, {state.PENDING}, state.EXPIRED, guard=lambda r: state.is_expired(r, services.clock())
            )
        except WrongState:
            continue
        await audit(services, request, "expire", "expired")
        await publish(services, request)
        expired.append(request)
    return expired


async def resume_interrupted(services: Services, live: list[state.Stored] | None = None) -> int:
    """Start a runner for each approved request nobody runs, and each running one whose runner's lease ran out."""
    rt = runtime(services)
    now = services.clock()
    started = 0
    if services.graph is None:
        log.warning("lock-down: Microsoft Graph is not configured; interrupted runs wait until it is")
        return 0
    for request in [s.request for s in (await store(services).live() if live is None else live)]:
        if request.state == state.APPROVED or (request.state == state.RUNNING and state.lease_expired(request, now)):
            rt.spawn(run(services, request.id), name=f"lockdown-{request.id}")
            started += 1
    return started
