"""`lockdown <user> [reason]`, `unlock <user> [reason]` and `lockdown cancel <id>` (technicians).

Asking validates everything before an approver sees anything: the user must exist in a configured tenant, a
break-glass account is refused outright, an admin target gets a warning, and a second request for a user who
already has a live one points to the first instead.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from adapters.graph.errors import GraphProblem
from adapters.graph.inputs import BadUserInput, UserRef, parse_user
from adapters.storage import AuditEntry
from dialogs.alerts.model import channel_of
from dialogs.contract import Command, DialogContext, Reply, Role
from dialogs.lockdown import cards as lcards
from dialogs.lockdown import state, steps
from dialogs.lockdown.model import Card, LockdownRequest
from dialogs.lockdown.runner import audit, publish
from dialogs.lockdown.runtime import runtime, store
from dialogs.registry import command

if TYPE_CHECKING:
    from adapters.config import TenantConfig
    from dialogs.lockdown.runtime import TenantGraph

USAGE = {
    "lockdown": "lockdown alice@contoso.com phished, mailing her contacts",
    "unlock": "unlock alice@contoso.com password changed, MFA re-registered",
}


@command(
    "lockdown",
    summary="Ask an approver to lock an account down (sign-in, sessions, inbox rules); "
    "`lockdown cancel <id>` withdraws it.",
    usage=USAGE["lockdown"],
    role=Role.TECHNICIAN,
    slow=True,
)
async def lockdown_command(cmd: Command, ctx: DialogContext) -> list[Reply]:
    if cmd.args and cmd.args[0].lower() == "cancel":
        return await cancel(cmd, ctx)
    return await ask(cmd, ctx, "lockdown")


@command(
    "unlock",
    summary="Ask an approver to re-enable sign-in for an account (same approval as a lock-down).",
    usage=USAGE["unlock"],
    role=Role.TECHNICIAN,
    slow=True,
)
async def unlock_command(cmd: Command, ctx: DialogContext) -> list[Reply]:
    return await ask(cmd, ctx, "unlock")


async def _refuse(ctx: DialogContext, cmd: Command, target: str, why: str) -> list[Reply]:
    await ctx.services.storage.append_audit(
        AuditEntry(
            actor=cmd.actor.aad_id or cmd.actor.label,
            command=f"lockdown:{cmd.name}",
            outcome="refused",
            tenant=cmd.tenant_id,
            conversation=cmd.conversation.id,
            target=target[:200],
            detail=why[:500],
            actor_name=cmd.actor.audit_name,
        )
    )
    return [Reply(text=why)]


def _break_glass(tenant: Any, *names: str | None) -> bool:
    listed = {entry.strip().lower() for entry in tenant.break_glass}
    return any(name and name.lower() in listed for name in names)


def _card_place(request: LockdownRequest, here: str) -> str:
    """Where the request's card is, as seen from conversation `here` ("above" only when it really is)."""
    card = request.card or Card()
    asked_in = request.requested_in
    conversation = str(card.conversation_id or asked_in.conversation_id or "")
    message_id = card.message_id
    root = channel_of(conversation)
    in_channel = root.startswith("19:") and ("@thread.tacv2" in root or "@thread.skype" in root)
    thread = conversation.split(";messageid=", 1)[1] if ";messageid=" in conversation else None
    link = (
        message_link(root, str(message_id), request.tenant_id, parent=thread) if (message_id and in_channel) else None
    )

    def linked(text: str) -> str:
        return f"[{text}]({link})" if link else text

    if conversation and conversation == here:
        return "above in this conversation"
    if request.approvals_elsewhere:
        return "in " + linked("the approvals channel")
    if conversation and root == channel_of(here):
        return "in " + linked("another thread of this channel")
    kind = asked_in.kind or ("personal" if conversation.startswith("a:") else "channel" if in_channel else "groupChat")
    if kind == "personal":
        asker = request.requester
        return f"in {lcards.safe(asker.name or asker.upn or 'the requester')}'s 1:1 chat with Cordon"
    if kind == "channel":
        return "in " + linked("another channel")
    return "in a group chat"


def _pointer(request: LockdownRequest, here: str) -> str:
    where = _card_place(request, here)
    verb = "waiting for an approver" if request.state == state.PENDING else request.state
    return (
        f"A {request.kind} request for {lcards.safe(request.target.upn)} already exists "
        f"(request `{request.id}`, asked by {lcards.who(request.requester)} "
        f"at {lcards.when(request.created_at)}, {verb}); see its card {where}. Its requester can withdraw it "
        f"with `lockdown cancel {request.id}`."
    )


def _cannot_ask(cmd: Command, ctx: DialogContext, kind: str) -> list[Reply] | None:
    if not cmd.args:
        return [Reply(text=f"Name the user, and say why: `{USAGE[kind]}`.")]
    if ctx.services.graph is None:
        return [
            Reply(
                text="Microsoft Graph is not configured, so Cordon cannot look users up. See the README "
                "(`[[tenants]]` in cordon.toml)."
            )
        ]
    return None


async def ask(cmd: Command, ctx: DialogContext, kind: str) -> list[Reply]:
    """Typed by a technician: the tenant is the one owning the user's domain (or the conversation's)."""
    refusal, graph = _cannot_ask(cmd, ctx, kind), ctx.services.graph
    if refusal is not None or graph is None:
        return refusal or []
    try:
        tenant, user = graph.directory.resolve_user(cmd.args[0], conversation_tenant_id=cmd.tenant_id)
    except BadUserInput as exc:
        return [Reply(text=str(exc))]
    return await _ask_in(cmd, ctx, kind, tenant, user)


async def ask_in_tenant(
    cmd: Command,
    ctx: DialogContext,
    kind: str,
    tenant_id: str,
    *,
    offered: dict[str, bool] | None = None,
    params: dict[str, str] | None = None,
) -> list[Reply]:
    """For a caller that knows the user's tenant (an alert, an investigation): never guessed from the user's
    domain, which a tenant need not list in cordon.toml (and a listed parent domain could name another tenant).
    `offered` replaces the usual steps (kind "remediate": one step an investigation's button asks for) and
    `params` says what it acts on (a rule id, a grant id), read by the server, never taken from a card."""
    refusal, graph = _cannot_ask(cmd, ctx, kind), ctx.services.graph
    if refusal is not None or graph is None:
        return refusal or []
    tenant = graph.directory.by_id(tenant_id)
    if tenant is None:
        return [
            Reply(
                text=f"Tenant {lcards.safe(tenant_id, 40)} is not one Cordon acts in "
                f"(configured: {graph.directory.listing()})."
            )
        ]
    try:
        user = parse_user(cmd.args[0])
    except BadUserInput as exc:
        return [Reply(text=str(exc))]
    return await _ask_in(cmd, ctx, kind, tenant, user, offered, params)


async def _ask_in(
    cmd: Command,
    ctx: DialogContext,
    kind: str,
    tenant: TenantConfig,
    user: UserRef,
    offered: dict[str, bool] | None = None,
    params: dict[str, str] | None = None,
) -> list[Reply]:
    """Validate the target in `tenant`, store a pending request and post the approval card."""
    services = ctx.services
    reason = " ".join(cmd.args[1:]).strip()[:300]
    if _break_glass(tenant, user.key):
        return await _refuse(
            ctx,
            cmd,
            user.key,
            f"{user.key} is a break-glass (emergency access) account in "
            f"{tenant.name}: Cordon never locks it down. Handle it by hand if you must.",
        )
    rt = runtime(services)
    graph = await rt.graph_for(services, tenant)
    try:
        profile = await graph.investigation.profile(user.key, licence=graph.licence)
    except GraphProblem as problem:
        return [Reply(text=problem.user_message)]
    if _break_glass(tenant, profile.id, profile.upn):
        return await _refuse(
            ctx,
            cmd,
            profile.upn,
            f"{profile.upn} is a break-glass (emergency access) account in "
            f"{tenant.name}: Cordon never locks it down. Handle it by hand if you must.",
        )
    st = store(services)
    existing = await st.live_for(tenant.tenant_id, profile.id)
    if existing is not None:
        return [Reply(text=_pointer(existing, cmd.conversation.id))]
    if offered is None:
        offered = steps.offered_steps(
            kind, graph.licence, await _windows_devices(graph, profile.id) if kind == "lockdown" else 0
        )
    now = services.clock()
    elsewhere = bool(services.config.lockdown.approvals_conversation and services.messenger is not None)
    document: dict[str, Any] = {
        "id": state.new_request_id(),
        "nonce": state.new_nonce(),
        "kind": kind,
        "state": state.PENDING,
        "tenant_id": tenant.tenant_id,
        "tenant_name": tenant.name,
        "licence": graph.licence,
        "target": profile.to_dict(),
        "reason": reason,
        "requester": {"aad_id": cmd.actor.aad_id, "upn": cmd.actor.upn, "name": cmd.actor.name},
        "requested_in": {
            "tenant_id": cmd.tenant_id,
            "conversation_id": cmd.conversation.id,
            "kind": cmd.conversation.kind,
        },
        "offered": offered,
        "params": dict(params or {}),
        "results": {},
        "created_at": state.iso(now),
        "updated_at": state.iso(now),
        "expires_at": state.iso(now + dt.timedelta(minutes=services.config.lockdown.expiry_minutes)),
        "password_delivery": services.config.lockdown.password_delivery,
        "approvals_elsewhere": elsewhere,
        "history": [{"state": state.PENDING, "at": state.iso(now)}],
    }
    try:
        request = await st.create(LockdownRequest.from_document(document))
    except state.AlreadyActive as exc:
        return [Reply(text=_pointer(exc.request, cmd.conversation.id))]
    await audit(
        services,
        request,
        kind,
        "requested",
        actor=cmd.actor.aad_id or cmd.actor.label,
        detail=reason,
        actor_name=cmd.actor.audit_name,
    )
    return await _post(cmd, ctx, request, elsewhere)


async def _windows_devices(graph: TenantGraph, user_id: str) -> int:
    """How many Intune-managed Windows devices the user has (0 when Intune cannot be read: no scan offered)."""
    from adapters.graph.incident import IncidentReader

    try:
        devices = await IncidentReader(graph.containment.gateway, graph.tenant).devices(user_id, protection=False)
    except GraphProblem:
        return 0
    return sum(1 for d in devices if d.windows)


def message_link(channel_id: str, message_id: str, tenant_id: str | None, *, parent: str | None = None) -> str:
    """A Teams deep link that opens a channel post (the approval card) from the asker's conversation; `parent`:
    the thread's root post when the message is a reply in a thread."""
    query = {"parentMessageId": parent or message_id, **({"tenantId": tenant_id} if tenant_id else {})}
    return (
        f"https://teams.microsoft.com/l/message/{quote(channel_id, safe='')}/{quote(message_id, safe='')}?"
        + urlencode(query)
    )


async def _post(cmd: Command, ctx: DialogContext, request: LockdownRequest, elsewhere: bool) -> list[Reply]:
    """Post the card where approvers decide, and remember where, to update it in place later."""
    services = ctx.services
    card = Reply(card=lcards.render(request, services.clock()))
    replies: list[Reply] = []
    if elsewhere:
        # a channel by its own id, even when a thread's id was configured: the card is a new post there
        conversation = channel_of(services.config.lockdown.approvals_conversation or "")
        message_id = await services.messenger.send(conversation, card)  # type: ignore[union-attr]
        where = "the approvals channel"
        if message_id:
            where = f"[the approvals channel]({message_link(conversation, message_id, cmd.tenant_id)})"
        replies.append(
            Reply(
                text=f"Asked the approvers in {where} to approve the {request.kind} "
                f"of {lcards.safe(request.target.upn)} (request `{request.id}`, expires "
                f"{lcards.when(request.expires_at)}). The card there shows each step as it runs."
            )
        )
    else:
        conversation = cmd.conversation.id
        message_id = await ctx.outbox.send(card)
        if services.messenger is None:  # the console: later updates can only go through this outbox
            runtime(services).outboxes[request.id] = ctx.outbox
    if message_id:

        def remember(r: LockdownRequest) -> None:
            r.card = Card(conversation_id=conversation, message_id=message_id)

        await store(services).annotate(request.id, remember)
    if request.target.enabled is False and request.kind == "lockdown":
        replies.append(Reply(text="Note: sign-in is already blocked for this user; the other steps still help."))
    if request.target.enabled is True and request.kind == "unlock":
        replies.append(Reply(text="Note: sign-in is already enabled for this user."))
    return replies


async def cancel(cmd: Command, ctx: DialogContext) -> list[Reply]:
    """`lockdown cancel <id>`: only the requester, and only while it waits for an approver."""
    if len(cmd.args) != 2:
        return [Reply(text="Say which request: `lockdown cancel <request id>` (the id is on the card).")]
    request_id = cmd.args[1].strip().lower()
    st = store(ctx.services)
    stored = await st.get(request_id)
    if stored is None:
        return [Reply(text=f"There is no lock-down request `{lcards.safe(request_id, 40)}`.")]
    request = stored.request
    if not state.same_id(request.requester.aad_id, cmd.actor.aad_id):
        return await _refuse(
            ctx,
            cmd,
            request_id,
            f"Only the requester ({lcards.who(request.requester)}) may "
            "cancel this request; an approver can press Reject instead.",
        )
    try:
        request = await st.transition(
            request_id, {state.PENDING}, state.CANCELLED, guard=lambda r: not state.is_expired(r, ctx.services.clock())
        )
    except state.WrongState as exc:
        current: str = exc.request.state if exc.request else "gone"
        if exc.request and state.is_expired(exc.request, ctx.services.clock()):
            current = state.EXPIRED
        return [Reply(text=f"Request `{request_id}` is {current}; there is nothing to cancel.")]
    await audit(ctx.services, request, "cancel", "cancelled", actor=cmd.actor.aad_id, actor_name=cmd.actor.audit_name)
    await publish(ctx.services, request)
    return [Reply(text=f"Cancelled request `{request_id}`; nothing was changed.")]
