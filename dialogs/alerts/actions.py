"""The alert card's buttons: Lock down… (technicians), Confirm compromised and Dismiss risk (approvers).

The router's gate checks the role; here the card id in the payload is only a key: tenant, user and what was
already done come from the stored card. A press from another conversation than the card's is refused. Confirm and
dismiss are claimed with a compare-and-set write first, so two approvers pressing at once call Graph once.
Every press is audited and listed on the card, which is updated in place for everyone.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from typing import Any

from adapters.storage import AuditEntry, Conflict, update
from dialogs.alerts.cards import VERB_CONFIRM, VERB_DISMISS, VERB_LOCKDOWN, alert_card, safe, when
from dialogs.alerts.delivery import card_key
from dialogs.alerts.documents import AlertCard, Claim, Event, LockdownAsked
from dialogs.alerts.model import Detection, iso, parse_time, plain_event, same_conversation
from dialogs.alerts.runtime import risk_source
from dialogs.contract import ActionResult, CardAction, Command, DialogContext, Reply, Role
from dialogs.registry import action

log = logging.getLogger(__name__)

_CARD_ID = re.compile(r"^[0-9a-f]{32}$")
CLAIM_STALE = dt.timedelta(minutes=5)
DECISIONS = {VERB_CONFIRM: ("confirmed", "Confirmed compromised"), VERB_DISMISS: ("dismissed", "Dismissed risk")}


async def _audit(
    ctx: DialogContext, act: CardAction, doc: AlertCard | None, outcome: str, detail: str | None = None
) -> None:
    await ctx.services.storage.append_audit(
        AuditEntry(
            actor=act.actor.aad_id or act.actor.label,
            command=f"action:{act.verb}",
            outcome=outcome,
            tenant=(doc.tenant_id if doc else None) or act.tenant_id,
            conversation=act.conversation.id,
            target=(((doc.upn or doc.user_id) if doc else None) or str(act.data.get("card", ""))[:64]) or None,
            detail=(detail or "")[:500] or None,
            actor_name=act.actor.audit_name,
        )
    )


async def _load(act: CardAction, ctx: DialogContext) -> tuple[AlertCard | None, int | None, str | None]:
    """The stored card for this press, or why the press is refused."""
    card_id = act.data.get("card")
    if not isinstance(card_id, str) or not _CARD_ID.match(card_id):
        return None, None, "This button's card is not one Cordon posted (no valid card id)."
    doc = await ctx.services.storage.get(card_key(card_id))
    if doc is None:
        return (
            None,
            None,
            (
                "Cordon no longer knows this alert card (its record is kept for "
                f"{ctx.services.config.alerts.card_retention_days:g} days; or it is from another "
                "installation)."
            ),
        )
    card = AlertCard.from_document(doc.value)
    if not same_conversation(card.conversation_id, act.conversation.id):
        return None, None, "This alert card belongs to another conversation; press the button where it was posted."
    return card, doc.version, None


async def _record(ctx: DialogContext, card_id: str, event: Event, change: Callable[[AlertCard], None]) -> AlertCard:
    """Append an event (and make `change`) on the stored card; retried on concurrent writers."""

    def write(current: dict[str, Any] | None) -> dict[str, Any]:
        if current is None:
            raise LookupError(card_id)
        card = AlertCard.from_document(current)
        change(card)
        card.events = [*card.events, event][-20:]
        return card.to_document()

    value, _ = await update(ctx.services.storage, card_key(card_id), write)
    return AlertCard.from_document(value)


def _unchanged(card: AlertCard) -> None:
    """A `_record` that only lists the event."""


async def _show(ctx: DialogContext, act: CardAction, doc: AlertCard, note: str | None = None) -> ActionResult:
    """Update the card for everyone in the conversation, and answer the presser with it."""
    card = alert_card(doc)
    message_id = act.card_message_id or doc.message_id
    if message_id:
        try:
            await ctx.outbox.update(message_id, Reply(card=card))
        except Exception:  # noqa: BLE001 - the presser still gets the updated card in the invoke response
            log.warning("could not update alert card %s in place", doc.id, exc_info=True)
    return ActionResult(card=card, message=note)


def _decided(doc: AlertCard, now: dt.datetime) -> str | None:
    """Why the card takes no decision now (already decided, or being decided), or None."""
    for done, word in ((doc.confirmed, "confirmed compromised"), (doc.dismissed, "dismissed")):
        if not done:
            continue
        if done.state == "done":
            return f"Already {word} by {safe(done.by)} at {when(done.at)}; change it in the Entra portal if needed."
        started = parse_time(done.at)
        if started is not None and now - started < CLAIM_STALE:
            return "Another approver is acting on this alert right now; the card will show the outcome."
    return None  # a claim left by a crashed process is stale: the press may go ahead


@action(VERB_CONFIRM, role=Role.APPROVER)
async def confirm_pressed(act: CardAction, ctx: DialogContext) -> ActionResult:
    return await _decide(act, ctx)


@action(VERB_DISMISS, role=Role.APPROVER)
async def dismiss_pressed(act: CardAction, ctx: DialogContext) -> ActionResult:
    return await _decide(act, ctx)


async def _decide(act: CardAction, ctx: DialogContext) -> ActionResult:
    from adapters.graph.errors import GraphProblem

    doc, version, refusal = await _load(act, ctx)
    if doc is None or version is None:
        await _audit(ctx, act, None, "refused", refusal)
        return ActionResult(message=refusal)
    field, title = DECISIONS[act.verb]
    now = ctx.services.clock()
    claim = Claim(by=act.actor.label, at=iso(now), state="running")
    for _ in range(10):  # the claim is the compare-and-set: of two presses at once, one calls Graph
        busy = _decided(doc, now)
        if busy:
            await _audit(ctx, act, doc, "refused", busy)
            return ActionResult(message=busy)
        claimed = doc.model_copy()
        setattr(claimed, field, claim)
        try:
            await ctx.services.storage.put(card_key(doc.id), claimed.to_document(), version)
            break
        except Conflict:  # someone else wrote the card (another press, a new detection): look again
            fresh = await ctx.services.storage.get(card_key(doc.id))
            if fresh is None:
                return ActionResult(message="Cordon no longer knows this alert card.")
            doc, version = AlertCard.from_document(fresh.value), fresh.version
    else:
        return ActionResult(message="This alert card is busy; press again in a moment.")
    source = risk_source(ctx.services)
    try:
        if act.verb == VERB_CONFIRM:
            await source.confirm_compromised(doc.tenant_id, [doc.user_id])
        else:
            await source.dismiss(doc.tenant_id, [doc.user_id])
    except GraphProblem as problem:
        failed = Event(what=title, actor=act.actor.label, at=iso(now), outcome="failed", detail=problem.user_message)
        updated = await _record(ctx, doc.id, failed, lambda c: setattr(c, field, None))
        await _audit(ctx, act, doc, "failed", problem.user_message)
        return await _show(ctx, act, updated, problem.user_message)
    event = Event(what=title, actor=act.actor.label, at=iso(now), outcome="ok", detail=None)
    done = claim.model_copy(update={"state": "done"})
    updated = await _record(ctx, doc.id, event, lambda c: setattr(c, field, done))
    await _audit(ctx, act, doc, "ok", title)
    return await _show(ctx, act, updated)


@action(VERB_LOCKDOWN, role=Role.TECHNICIAN)
async def lockdown_pressed(act: CardAction, ctx: DialogContext) -> ActionResult:
    doc, _, refusal = await _load(act, ctx)
    if doc is None:
        await _audit(ctx, act, None, "refused", refusal)
        return ActionResult(message=refusal)
    now = ctx.services.clock()
    latest = Detection.from_json(doc.latest)
    reason = f"risk alert: {plain_event(latest.event_type)} at {when(latest.detected_at)}"
    if latest.ip:
        reason += f" from {latest.ip}" + (f" ({latest.place})" if latest.place else "")
    try:
        request_id, notes = await open_lockdown(act, ctx, doc, reason)
    except LockdownUnavailable as exc:
        failed = Event(
            what="Lock-down requested", actor=act.actor.label, at=iso(now), outcome="failed", detail=str(exc)
        )
        updated = await _record(ctx, doc.id, failed, _unchanged)
        await _audit(ctx, act, doc, "failed", str(exc))
        return await _show(ctx, act, updated, str(exc))
    detail = f"request {request_id}" if request_id else (notes[0] if notes else None)
    again = request_id is not None and doc.lockdown is not None and request_id == doc.lockdown.request_id
    event = Event(
        what="Lock-down already requested" if again else "Lock-down requested",
        actor=act.actor.label,
        at=iso(now),
        outcome="ok" if request_id else "failed",
        detail=f"{detail} is still open" if again else detail,
    )
    asked = LockdownAsked(request_id=request_id, by=act.actor.label, at=iso(now)) if request_id else doc.lockdown
    updated = await _record(ctx, doc.id, event, lambda c: setattr(c, "lockdown", asked))
    await _audit(ctx, act, doc, "ok" if request_id else "failed", detail)
    return await _show(ctx, act, updated, " ".join(notes)[:1000] or None)


class LockdownUnavailable(Exception):
    """The lock-down flow could not be opened (not installed, Graph not configured)."""


async def open_lockdown(
    act: CardAction, ctx: DialogContext, doc: AlertCard, reason: str
) -> tuple[str | None, list[str]]:
    """Open the lock-down approval request for the card's user, asked by the presser; (request id, notes)."""
    try:
        from dialogs.lockdown import commands as lockdown
        from dialogs.lockdown.runtime import store
    except ImportError as exc:
        raise LockdownUnavailable("The lock-down flow is not available in this Cordon.") from exc
    user = doc.upn or doc.user_id
    command = Command(
        name="lockdown",
        args=(user, *reason.split()),
        text=f"lockdown {user} {reason}",
        actor=act.actor,
        tenant_id=act.tenant_id,
        conversation=act.conversation,
    )
    replies = await lockdown.ask_in_tenant(command, ctx, "lockdown", doc.tenant_id)
    notes = []
    for reply in replies:
        if reply.card is not None:
            await ctx.outbox.send(reply)
        elif reply.text:
            notes.append(reply.text)
    live = await store(ctx.services).live_for(doc.tenant_id, doc.user_id)
    return (live.id if live else None), notes
