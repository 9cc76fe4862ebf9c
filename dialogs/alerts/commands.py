"""`alerts on|off|status`: subscribe a channel or chat to a tenant's risky sign-ins, and see whether it works."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dialogs import cards
from dialogs.alerts import state as st
from dialogs.alerts.cards import safe, when
from dialogs.alerts.model import DEFAULT_LEVEL, LEVELS, channel_of, iso, same_conversation
from dialogs.alerts.runtime import tenants
from dialogs.contract import Command, DialogContext, Reply, Role
from dialogs.registry import command

USAGE = (
    "`alerts on [low|medium|high] [--tenant NAME]` posts risky sign-ins of a tenant here (default: medium and "
    "above); `alerts off [--tenant NAME]` stops them; `alerts status` shows polling and delivery per tenant."
)
STATUS_TENANTS_SHOWN = 12  # tenant blocks on one card (Teams refuses cards over ~28 KB)
SUBS_SHOWN = 8
LICENCE_WORDS = {
    "P2": "Entra ID P2",
    "P1": "Entra ID P1 — risk detections need P2: not polled",
    "Free": "none — risk detections need Entra ID P2: not polled",
    "refused": "not licensed — Graph refused risk detections (Entra ID P2 needed): not polled",
}


class _BadArgs(ValueError):
    pass


def _parse(args: tuple[str, ...]) -> tuple[str, list[str], str | None]:
    """(sub-command, plain words, --tenant value)."""
    words, tenant = [], None
    rest = list(args)
    while rest:
        word = rest.pop(0)
        if word.lower() in ("--tenant", "-t"):
            if not rest:
                raise _BadArgs("`--tenant` needs a tenant name, e.g. `alerts on --tenant Contoso`.")
            tenant = rest.pop(0)
        elif word.lower().startswith("--tenant="):
            tenant = word.split("=", 1)[1]
        else:
            words.append(word)
    sub = words.pop(0).lower() if words else "help"
    return sub, words, tenant


def _conversation_label(sub: st.Subscription, here: str) -> str:
    if same_conversation(sub.conversation_id, here):
        return "this conversation"
    short = sub.conversation_id if len(sub.conversation_id) <= 24 else sub.conversation_id[:21] + "…"
    return f"{sub.conversation_kind} {short}"


@command(
    "alerts",
    summary="Post risky sign-ins of a tenant in this channel or chat, with buttons that act.",
    usage="alerts on high --tenant Contoso",
    role=Role.TECHNICIAN,
)
async def alerts_command(cmd: Command, ctx: DialogContext) -> list[Reply]:
    from adapters.graph.tenants import UnknownTenant

    try:
        sub, words, tenant_name = _parse(cmd.args)
        if sub == "on":
            return await _on(cmd, ctx, words, tenant_name)
        if sub == "off":
            return await _off(cmd, ctx, words, tenant_name)
        if sub == "status":
            return await _status(cmd, ctx, tenant_name)
    except _BadArgs as exc:
        return [Reply(text=f"{exc} {USAGE}")]
    except UnknownTenant as exc:
        return [Reply(text=str(exc))]
    prefix = "" if sub == "help" else f"I don't know `alerts {sub[:30]}`. "
    return [Reply(text=prefix + USAGE)]


def _tenant(ctx: DialogContext, cmd: Command, name: str | None) -> Any:
    directory = tenants(ctx.services)
    return directory.by_name(name) if name else directory.default(cmd.tenant_id)


async def _on(cmd: Command, ctx: DialogContext, words: list[str], tenant_name: str | None) -> list[Reply]:
    if len(words) > 1 or (words and words[0].lower() not in LEVELS):
        raise _BadArgs(f"The alert level is one of {', '.join(LEVELS)} (got `{' '.join(words)[:40]}`).")
    level = words[0].lower() if words else DEFAULT_LEVEL
    if cmd.conversation.kind == "console":
        return [Reply(text="Alerts are posted to a Teams channel or chat: run `alerts on` there, with Cordon added.")]
    tenant = _tenant(ctx, cmd, tenant_name)
    storage = ctx.services.storage
    now = ctx.services.clock()
    previous = await st.subscribe(
        storage,
        st.Subscription(
            tenant_id=tenant.tenant_id,
            tenant_name=tenant.name,
            conversation_id=channel_of(cmd.conversation.id),
            conversation_kind=cmd.conversation.kind,
            level=level,
            created_by=cmd.actor.label,
            created_at=iso(now),
        ),
    )

    def due_now(value: dict[str, Any]) -> None:  # poll soon, and re-check the licence (it may have been bought)
        value.update(next_poll_at=None, licence_checked_at=None)

    state = await st.change_tenant_state(storage, tenant.tenant_id, due_now)
    minutes = round(ctx.services.config.alerts.interval_seconds / 60, 1)
    text = (
        f"Risk alerts for **{tenant.name}** ({level} and above) will be posted here. Cordon polls Identity "
        f"Protection about every {minutes:g} minutes."
    )
    if previous is not None and not previous.working:
        text += " The earlier subscription here had stopped (the bot was removed); it works again now."
    elif previous is not None and previous.level != level:
        text += f" (Was: {previous.level} and above.)"
    if state.get("licence") in ("P1", "Free", "refused"):
        text += (
            f" Note: {tenant.name} had no Entra ID P2 at the last check; risk detections need P2, so nothing "
            "will be posted until it has."
        )
    if await storage.get(f"convref/{channel_of(cmd.conversation.id)}") is None:
        text += (
            " Cordon has not stored how to reach this conversation yet; it does when it is added or gets its "
            "first message, so alerts may not arrive until then."
        )
    return [Reply(text=text)]


async def _off(cmd: Command, ctx: DialogContext, words: list[str], tenant_name: str | None) -> list[Reply]:
    if words:
        raise _BadArgs("`alerts off` takes only `--tenant NAME`.")
    tenant_id = _tenant(ctx, cmd, tenant_name).tenant_id if tenant_name else None
    removed = await st.unsubscribe(ctx.services.storage, cmd.conversation.id, tenant_id)
    if not removed:
        return [
            Reply(
                text="This conversation was not receiving risk alerts"
                + (f" for {tenant_name}." if tenant_name else ".")
            )
        ]
    names = ", ".join(sorted(s.tenant_name for s in removed))
    return [
        Reply(
            text=f"Risk alerts for {names} will no longer be posted here. Alerts not yet delivered here "
            "are dropped; existing cards keep working."
        )
    ]


async def _status(cmd: Command, ctx: DialogContext, tenant_name: str | None) -> list[Reply]:
    storage = ctx.services.storage
    now = ctx.services.clock()
    subs = await st.subscriptions(storage)
    if tenant_name:
        wanted = _tenant(ctx, cmd, tenant_name).tenant_id
        subs = [s for s in subs if s.tenant_id == wanted]
    here = [s for s in subs if same_conversation(s.conversation_id, cmd.conversation.id)]
    intro = (
        "This conversation receives: " + ", ".join(f"{s.tenant_name} ({s.level}+)" for s in here) + "."
        if here
        else "This conversation receives no risk alerts (`alerts on` to start)."
    )
    body = cards.title("Risk alerts", intro)
    by_tenant: dict[str, list[st.Subscription]] = {}
    for sub in subs:
        by_tenant.setdefault(sub.tenant_id, []).append(sub)
    if not by_tenant:
        body.append(cards.text("No tenant has alert subscriptions yet."))
    states = {tid: (await st.tenant_state(storage, tid))[0] for tid in by_tenant}

    def urgency(tid: str) -> tuple[int, str]:  # this conversation's tenants, then trouble, then the rest
        mine = any(same_conversation(s.conversation_id, cmd.conversation.id) for s in by_tenant[tid])
        trouble = bool(states[tid].get("last_error")) or any(not s.working for s in by_tenant[tid])
        return (0 if mine else 1 if trouble else 2, by_tenant[tid][0].tenant_name.lower())

    ordered = sorted(by_tenant, key=urgency)
    shown, more = cards.truncate_items(ordered, STATUS_TENANTS_SHOWN)
    for tid in shown:
        body += _tenant_block(by_tenant[tid], states[tid], cmd.conversation.id, now)
    if more:
        body.append(
            cards.text(
                f"and {more} more tenant(s) with subscriptions: `alerts status --tenant NAME` shows one.",
                isSubtle=True,
                spacing="Medium",
            )
        )
    return [Reply(card=cards.card(body))]


def _tenant_block(
    subs: list[st.Subscription], state: dict[str, Any], here: str, now: dt.datetime
) -> list[dict[str, Any]]:
    licence = state.get("licence")
    pending = sum(len(items) for items in state.get("pending", {}).values())
    error = f"{state['last_error']} ({when(state.get('last_error_at'))})" if state.get("last_error") else "none"
    pairs = [
        ("Licence", LICENCE_WORDS.get(licence, licence) if licence else "not checked yet"),
        ("Last successful poll", when(state.get("last_success")) if state.get("last_success") else "not yet"),
        ("Last error", safe(error, 400)),
        ("Watermark", when(state.get("watermark")) + " (newest detection seen)" if state.get("watermark") else "—"),
        ("Alerts sent (24 h)", str(st.sent_in_24h(state, now))),
        ("Waiting to be sent", str(pending)),
        ("Next poll", when(state.get("next_poll_at")) if state.get("next_poll_at") else "soon"),
    ]
    block: list[dict[str, Any]] = [
        cards.text(f"**{safe(subs[0].tenant_name)}**", size="Medium", spacing="Large", separator=True),
        cards.facts(pairs),
    ]
    ordered = sorted(subs, key=lambda s: (not same_conversation(s.conversation_id, here), s.conversation_id))
    shown, more = cards.truncate_items(ordered, SUBS_SHOWN)
    for sub in shown:
        label = _conversation_label(sub, here)
        if sub.working:
            line = f"✅ {label} — {sub.level} and above — since {when(sub.created_at)} by {safe(sub.created_by)}"
        else:
            line = (
                f"❌ {label} — NOT WORKING since {when(sub.broken_at)}: {sub.broken_reason}. Add Cordon back "
                "there and run `alerts on` again."
            )
        block.append(cards.text(line, size="Small", spacing="None"))
    if more:
        block.append(cards.text(f"and {more} more subscription(s)", size="Small", spacing="None", isSubtle=True))
    return block
