"""Approve and Reject on the lock-down card (approvers only, never the requester).

The card sends back only the request id and a nonce; the target, steps offered and requester are read from
storage, so an edited payload changes nothing. The decision itself is one CAS write (`pending → approved`), so
of 50 simultaneous presses exactly one starts a run. Every refusal answers only the presser and is audited.
"""

from __future__ import annotations

import secrets

from adapters.storage import AuditEntry
from dialogs.contract import ActionResult, CardAction, DialogContext, Role
from dialogs.lockdown import cards as lcards
from dialogs.lockdown import runner, state, steps
from dialogs.lockdown.model import Card, Decision, LockdownRequest
from dialogs.lockdown.runtime import runtime, store
from dialogs.registry import action

VERDICTS = {lcards.APPROVE_VERB: "approve", lcards.REJECT_VERB: "reject"}


@action(lcards.APPROVE_VERB, role=Role.APPROVER)
async def approve(act: CardAction, ctx: DialogContext) -> ActionResult:
    return await decide(act, ctx)


@action(lcards.REJECT_VERB, role=Role.APPROVER)
async def reject(act: CardAction, ctx: DialogContext) -> ActionResult:
    return await decide(act, ctx)


async def _refuse(
    ctx: DialogContext, act: CardAction, request: LockdownRequest | None, why: str, message: str
) -> ActionResult:
    actor = act.actor.aad_id or act.actor.label
    verdict = VERDICTS[act.verb]
    if request is None:
        await ctx.services.storage.append_audit(
            AuditEntry(
                actor=actor,
                command=f"lockdown:{verdict}",
                outcome="refused",
                tenant=act.tenant_id,
                conversation=act.conversation.id,
                target=str(act.data.get("request_id"))[:60],
                detail=why,
                actor_name=act.actor.audit_name,
            )
        )
    else:
        await runner.audit(
            ctx.services, request, verdict, "refused", actor=actor, detail=why, actor_name=act.actor.audit_name
        )
    return ActionResult(message=message)


async def _load(act: CardAction, ctx: DialogContext) -> tuple[LockdownRequest | None, ActionResult | None]:
    """The stored request this press is about, or the refusal to answer."""
    request_id = act.data.get("request_id")
    stored = await store(ctx.services).get(request_id) if isinstance(request_id, str) else None
    if stored is None:
        return None, await _refuse(
            ctx, act, None, "unknown request", "This lock-down request does not exist (any more). Nothing was changed."
        )
    request = stored.request
    nonce = act.data.get("nonce")
    if not isinstance(nonce, str) or not secrets.compare_digest(nonce.encode(), request.nonce.encode()):
        return None, await _refuse(
            ctx,
            act,
            request,
            "card nonce mismatch",
            "This card does not match the stored request; nothing was changed.",
        )
    home = request.requested_in.tenant_id
    if home and not state.same_id(home, act.tenant_id):
        return None, await _refuse(
            ctx,
            act,
            request,
            f"pressed from tenant {act.tenant_id}",
            "This request belongs to another organisation; nothing was changed.",
        )
    if state.same_id(act.actor.aad_id, request.requester.aad_id):
        hint = f" To withdraw it, type `lockdown cancel {request.id}`." if act.verb == lcards.REJECT_VERB else ""
        return None, await _refuse(
            ctx,
            act,
            request,
            "self-approval",
            f"You asked for this, so another approver must decide (four eyes).{hint}",
        )
    return request, None


async def _not_pending(ctx: DialogContext, act: CardAction, request: LockdownRequest | None) -> ActionResult:
    now = ctx.services.clock()
    if request is not None and state.is_expired(request, now):
        try:
            request = await store(ctx.services).transition(
                request.id, {state.PENDING}, state.EXPIRED, guard=lambda r: state.is_expired(r, now)
            )
            await runner.audit(ctx.services, request, "expire", "expired")
            await runner.publish(ctx.services, request)
        except state.WrongState as exc:
            request = exc.request
    if request is None:
        return await _refuse(ctx, act, None, "request vanished", "This request no longer exists.")
    current = request.state
    decision = request.decision
    if current == state.EXPIRED:
        text = f"This request expired at {lcards.when(request.expires_at)}; nothing was changed."
    elif decision:
        verb = "approved" if decision.verdict == "approve" else "rejected"
        text = f"Already {verb} by {lcards.who(decision.by)} at {lcards.when(decision.at)}."
    else:
        text = f"This request is {current}; there is nothing to decide."
    return await _refuse(ctx, act, request, f"already {current}", text)


async def decide(act: CardAction, ctx: DialogContext) -> ActionResult:
    request, refusal = await _load(act, ctx)
    if refusal is not None or request is None:
        return refusal or ActionResult(message="Nothing was changed.")
    services = ctx.services
    verdict = VERDICTS[act.verb]
    chosen = steps.chosen_steps(request.offered, act.data) if verdict == "approve" else []
    if verdict == "approve" and not chosen:
        return ActionResult(message="Choose at least one step to approve, or press Reject.")
    comment = str(act.data.get("comment") or "").strip()[:300]
    now = services.clock()
    decision = Decision.model_validate(
        {
            "verdict": verdict,
            "at": state.iso(now),
            "comment": comment,
            "steps": chosen,
            "by": {
                "aad_id": act.actor.aad_id,
                "upn": act.actor.upn,
                "name": act.actor.name,
                "tenant_id": act.tenant_id,
            },
        }
    )

    def record(r: LockdownRequest) -> None:
        r.decision = decision
        if not r.card and act.card_message_id:  # the card's id was not known when it was posted
            r.card = Card(conversation_id=act.conversation.id, message_id=act.card_message_id)

    target = state.APPROVED if verdict == "approve" else state.REJECTED
    try:
        request = await store(services).transition(
            request.id, {state.PENDING}, target, record, guard=lambda r: not state.is_expired(r, now)
        )
    except state.WrongState as exc:
        return await _not_pending(ctx, act, exc.request)
    await runner.audit(
        services,
        request,
        verdict,
        target,
        actor=act.actor.aad_id,
        actor_name=act.actor.audit_name,
        detail=(f"steps: {', '.join(chosen)}" if chosen else "") + (f"; {comment}" if comment else ""),
    )
    rt = runtime(services)
    if services.messenger is None:
        rt.outboxes.setdefault(request.id, ctx.outbox)
    if verdict == "approve":
        rt.spawn(runner.run(services, request.id), name=f"lockdown-{request.id}")
    else:
        await runner.publish(services, request)
    return ActionResult(card=lcards.render(request, now))
