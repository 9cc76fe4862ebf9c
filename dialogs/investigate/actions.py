"""The buttons of the `investigate` and `hunt` cards (technicians; the router's gate checks the role).

Nothing here changes the tenant: **Lock down…**, **Disable this rule**, **Revoke this consent** and **Scan
devices** each open a lock-down request (`dialogs.lockdown.commands.ask_in_tenant`), which an approver other than
the presser must approve; the approval card shows exactly what will be done. **Hunt from here** and
**Investigate** only read. What a button acts on is read from the server-side reference (`refs`), never from the
card; a press from another organisation than the card's is refused.
"""

from __future__ import annotations

from typing import Any

from adapters.graph.errors import GraphProblem
from adapters.storage import AuditEntry
from dialogs.contract import ActionResult, CardAction, Command, DialogContext, Role
from dialogs.investigate import refs
from dialogs.investigate.cards import VERBS
from dialogs.investigate.commands import hunt_reply, investigation_reply
from dialogs.investigate.hunt import hunt
from dialogs.investigate.report import investigate
from dialogs.lockdown import commands as lockdown
from dialogs.lockdown.cards import safe
from dialogs.lockdown.runtime import store
from dialogs.registry import action

GONE = "This card's investigation is no longer stored (kept 7 days) or the card was altered; run it again."


async def _load(act: CardAction, ctx: DialogContext) -> tuple[dict[str, Any] | None, ActionResult | None]:
    """The stored subject of the press: an investigation, or one account of a hunt (`item` = `account:i`)."""
    doc = await refs.load(ctx.services.storage, act.data)
    if doc is not None and doc.get("kind") == "hunt":
        prefix, _, index = str(act.data.get("item") or "").partition(":")
        accounts = doc.get("accounts") or []
        doc = (
            {**doc, **accounts[int(index)]}
            if prefix == "account" and index.isdigit() and int(index) < len(accounts)
            else None
        )
    why = None
    if doc is None:
        why, message = "unknown or altered reference", GONE
    elif doc.get("home_tenant") and act.tenant_id and doc["home_tenant"].lower() != act.tenant_id.lower():
        why, message = f"pressed from tenant {act.tenant_id}", "This card belongs to another organisation."
    elif ctx.services.graph is None:
        why, message = "Graph not configured", "Microsoft Graph is not configured in this Cordon."
    if why is None:
        return doc, None
    await _audit(ctx, act, doc, "refused", why)
    return None, ActionResult(message=message)


async def _audit(
    ctx: DialogContext, act: CardAction, doc: dict[str, Any] | None, outcome: str, detail: str | None = None
) -> None:
    await ctx.services.storage.append_audit(
        AuditEntry(
            actor=act.actor.aad_id or act.actor.label,
            command=f"action:{act.verb}",
            outcome=outcome,
            tenant=act.tenant_id,
            conversation=act.conversation.id,
            target=str((doc or {}).get("upn") or act.data.get("ref") or "")[:200] or None,
            detail=(detail or "")[:500] or None,
        )
    )


def _item(doc: dict[str, Any], act: CardAction, kind: str) -> dict[str, Any] | None:
    """The rule or grant `rule:N` / `grant:N` names, from the stored list."""
    text = str(act.data.get("item") or "")
    prefix, _, index = text.partition(":")
    entries = doc.get("rules" if kind == "rule" else "grants") or []
    if prefix != kind or not index.isdigit() or int(index) >= len(entries):
        return None
    entry: dict[str, Any] = entries[int(index)]
    return entry


async def _ask(
    act: CardAction,
    ctx: DialogContext,
    doc: dict[str, Any],
    kind: str,
    reason: str,
    offered: dict[str, bool] | None = None,
    params: dict[str, str] | None = None,
) -> ActionResult:
    """Open the approval request as the presser; its card goes where lock-down cards go."""
    cmd = Command(
        name="lockdown",
        args=(doc["user_id"], *reason.split()),
        text=f"lockdown {doc['upn']} {reason}",
        actor=act.actor,
        tenant_id=act.tenant_id,
        conversation=act.conversation,
    )
    live = store(ctx.services)
    before = await live.live_for(doc["tenant_id"], doc["user_id"])
    replies = await lockdown.ask_in_tenant(cmd, ctx, kind, doc["tenant_id"], offered=offered, params=params)
    notes = []
    for reply in replies:
        if reply.card is not None:
            await ctx.outbox.send(reply)
        elif reply.text:
            notes.append(reply.text)
    after = await live.live_for(doc["tenant_id"], doc["user_id"])
    asked = after is not None and (before is None or before.id != after.id)
    await _audit(
        ctx,
        act,
        doc,
        "ok" if asked else "failed",
        f"request {after.id}: {reason}" if asked and after else " ".join(notes)[:500] or reason,
    )
    if asked and after is not None:
        notes.insert(0, f"Asked an approver (request `{after.id}`): {reason}")
    return ActionResult(message=" ".join(notes)[:1000] or "Nothing was asked.")


@action(VERBS["lockdown"], role=Role.TECHNICIAN)
async def lock_down(act: CardAction, ctx: DialogContext) -> ActionResult:
    doc, refusal = await _load(act, ctx)
    if doc is None:
        return refusal or ActionResult(message=GONE)
    return await _ask(act, ctx, doc, "lockdown", f"from investigate: {doc.get('verdict') or 'see the card'}"[:300])


@action(VERBS["rule"], role=Role.TECHNICIAN)
async def disable_rule(act: CardAction, ctx: DialogContext) -> ActionResult:
    doc, refusal = await _load(act, ctx)
    if doc is None:
        return refusal or ActionResult(message=GONE)
    rule = _item(doc, act, "rule")
    if rule is None:
        await _audit(ctx, act, doc, "refused", "unknown rule")
        return ActionResult(message=GONE)
    return await _ask(
        act,
        ctx,
        doc,
        "remediate",
        f"disable inbox rule “{safe(rule['name'], 80)}” (investigate)",
        {"disable_rule": True},
        {"rule_id": rule["id"], "rule_name": rule["name"]},
    )


@action(VERBS["consent"], role=Role.TECHNICIAN)
async def revoke_consent(act: CardAction, ctx: DialogContext) -> ActionResult:
    doc, refusal = await _load(act, ctx)
    if doc is None:
        return refusal or ActionResult(message=GONE)
    grant = _item(doc, act, "grant")
    if grant is None:
        await _audit(ctx, act, doc, "refused", "unknown consent")
        return ActionResult(message=GONE)
    return await _ask(
        act,
        ctx,
        doc,
        "remediate",
        f"revoke the consent to {safe(grant['app'], 80)} ({safe(grant['scope'], 120)}) (investigate)",
        {"revoke_consent": True},
        {"grant_id": grant["id"], "app": grant["app"]},
    )


@action(VERBS["scan"], role=Role.TECHNICIAN)
async def scan_devices(act: CardAction, ctx: DialogContext) -> ActionResult:
    doc, refusal = await _load(act, ctx)
    if doc is None:
        return refusal or ActionResult(message=GONE)
    return await _ask(
        act,
        ctx,
        doc,
        "remediate",
        "Defender quick scan of the user's managed devices (investigate)",
        {"scan_devices": True},
    )


@action(VERBS["hunt"], role=Role.TECHNICIAN)
async def hunt_from_here(act: CardAction, ctx: DialogContext) -> ActionResult:
    doc, refusal = await _load(act, ctx)
    if doc is None:
        return refusal or ActionResult(message=GONE)
    gateway = ctx.services.graph
    if gateway is None:  # _load refused it already
        return ActionResult(message=GONE)
    tenant = gateway.directory.by_id(doc["tenant_id"])
    if tenant is None:
        return ActionResult(message="That tenant is no longer configured in Cordon.")
    try:
        result = await hunt(
            gateway,
            tenant,
            list(doc.get("ips") or []),
            ctx.services.clock(),
            int(doc["days"]),
            seed_user=doc["upn"],
            seed_user_id=doc["user_id"],
        )
    except GraphProblem as problem:
        await _audit(ctx, act, doc, "failed", problem.user_message)
        return ActionResult(message=problem.user_message)
    await ctx.outbox.send(await hunt_reply(ctx, result, act.tenant_id))
    await _audit(ctx, act, doc, "ok", f"{len(result.accounts)} account(s) with evidence")
    return ActionResult(message=f"Hunted from {doc['upn']}: {len(result.accounts)} account(s) with evidence.")


@action(VERBS["investigate"], role=Role.TECHNICIAN)
async def investigate_account(act: CardAction, ctx: DialogContext) -> ActionResult:
    doc, refusal = await _load(act, ctx)
    if doc is None:
        return refusal or ActionResult(message=GONE)
    gateway = ctx.services.graph
    if gateway is None:  # _load refused it already
        return ActionResult(message=GONE)
    tenant = gateway.directory.by_id(doc["tenant_id"])
    if tenant is None:
        return ActionResult(message="That tenant is no longer configured in Cordon.")
    report = await investigate(gateway, tenant, doc["user_id"], doc["upn"], "", ctx.services.clock(), int(doc["days"]))
    await ctx.outbox.send(await investigation_reply(ctx, report, act.tenant_id))
    await _audit(ctx, act, doc, "ok", report.verdict[:300])
    return ActionResult(message=f"Investigated {doc['upn']}: {report.verdict}"[:1000])
