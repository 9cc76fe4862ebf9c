"""`investigate <user> [days]` and `hunt <user | ip> [days]` (technicians), shared by chat and the CLI.

Both only read. Whatever they find is acted on through the card's buttons (`actions.py`), each of which opens a
lock-down request that an approver other than the presser must approve.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import quote

from adapters.config import TenantConfig
from adapters.graph import permissions as needs
from adapters.graph.errors import GraphProblem
from adapters.graph.gateway import GraphGateway
from adapters.graph.inputs import BadUserInput
from dialogs.contract import Command, DialogContext, Reply, Role
from dialogs.investigate import refs
from dialogs.investigate.cards import MAX_ACCOUNTS, hunt_card, investigation_card
from dialogs.investigate.hunt import Hunt, hunt, parse_ip
from dialogs.investigate.report import DEFAULT_DAYS, MAX_DAYS, Report, investigate
from dialogs.registry import command

USAGE = {"investigate": "investigate alice@contoso.com 7", "hunt": "hunt alice@contoso.com 7  (or: hunt 203.0.113.7)"}


@dataclass(frozen=True)
class Target:
    tenant: TenantConfig
    user_id: str
    upn: str
    name: str


def parse_days(text: str | None) -> int:
    """1..30 days (default 7); BadUserInput says why otherwise."""
    if text is None:
        return DEFAULT_DAYS
    value = text.strip().lower().removesuffix("d")
    if not value.isdigit() or not 1 <= int(value) <= MAX_DAYS:
        raise BadUserInput(f"`{text[:20]}` is not a number of days from 1 to {MAX_DAYS}.")
    return int(value)


def split_args(args: tuple[str, ...]) -> tuple[str | None, str | None, str | None]:
    """(subject, days, tenant) from `subject [days] [--tenant T]`."""
    words = list(args)
    tenant = None
    if "--tenant" in words:
        at = words.index("--tenant")
        if at + 1 >= len(words):
            raise BadUserInput("`--tenant` needs a tenant name.")
        tenant = words[at + 1]
        del words[at : at + 2]
    if len(words) > 2:
        raise BadUserInput("Too many words: name one user or IP, then optionally the number of days.")
    return (words[0] if words else None), (words[1] if len(words) > 1 else None), tenant


async def find_user(
    gateway: GraphGateway, text: str, tenant_name: str | None, conversation_tenant_id: str | None
) -> Target:
    """The user in the tenant that owns it; BadUserInput / GraphProblem(not_found) otherwise."""
    tenant, user = gateway.directory.resolve_user(
        text, tenant_name=tenant_name, conversation_tenant_id=conversation_tenant_id
    )
    found = await gateway.get_json(
        tenant, needs.USER, f"/users/{quote(user.key, safe='@')}", {"$select": "id,displayName,userPrincipalName"}
    )
    return Target(
        tenant,
        str(found.get("id") or user.key),
        str(found.get("userPrincipalName") or user.key),
        str(found.get("displayName") or ""),
    )


async def run_investigation(
    gateway: GraphGateway,
    text: str,
    days: int,
    now: dt.datetime,
    *,
    tenant_name: str | None = None,
    conversation_tenant_id: str | None = None,
) -> Report:
    target = await find_user(gateway, text, tenant_name, conversation_tenant_id)
    return await investigate(gateway, target.tenant, target.user_id, target.upn, target.name, now, days)


async def run_hunt(
    gateway: GraphGateway,
    text: str,
    days: int,
    now: dt.datetime,
    *,
    tenant_name: str | None = None,
    conversation_tenant_id: str | None = None,
) -> tuple[Hunt, Report | None]:
    """From an IP: that IP is the seed. From a user: the suspicious IPs their investigation found."""
    ip = parse_ip(text)
    if ip is not None:
        tenant = (
            gateway.directory.by_name(tenant_name) if tenant_name else gateway.directory.default(conversation_tenant_id)
        )
        return await hunt(gateway, tenant, [ip], now, days), None
    report = await run_investigation(
        gateway, text, days, now, tenant_name=tenant_name, conversation_tenant_id=conversation_tenant_id
    )
    return await hunt_from_report(gateway, report, now, days), report


async def hunt_from_report(gateway: GraphGateway, report: Report, now: dt.datetime, days: int) -> Hunt:
    return await hunt(
        gateway, report.tenant, report.suspicious_ips(), now, days, seed_user=report.upn, seed_user_id=report.user_id
    )


def _not_configured(ctx: DialogContext) -> list[Reply] | None:
    if ctx.services.graph is None:
        return [
            Reply(
                text="Microsoft Graph is not configured, so Cordon cannot investigate. See the README "
                "(`[[tenants]]` in cordon.toml)."
            )
        ]
    return None


async def investigation_reply(ctx: DialogContext, report: Report, home_tenant: str | None) -> Reply:
    """The card, with its buttons' server-side reference stored (`home_tenant`: where it is posted; a press
    from another organisation is refused)."""
    ref = await refs.save(
        ctx.services.storage,
        ctx.services.clock(),
        {
            "kind": "investigation",
            "home_tenant": home_tenant,
            "tenant_id": report.tenant.tenant_id,
            "user_id": report.user_id,
            "upn": report.upn,
            "days": (report.end - report.start).days or DEFAULT_DAYS,
            "rules": [{"id": r.id, "name": r.name} for r in report.rules],
            "grants": [{"id": g.id, "app": g.app, "scope": g.scope} for g in report.grants],
            "ips": report.suspicious_ips(),
            "verdict": report.verdict[:300],
        },
    )
    return Reply(card=investigation_card(report, ref))


async def hunt_reply(ctx: DialogContext, result: Hunt, home_tenant: str | None) -> Reply:
    """The hunt card; one stored reference for all its buttons (`item` names the account)."""
    ranked = result.ranked()[:MAX_ACCOUNTS]
    ref = await refs.save(
        ctx.services.storage,
        ctx.services.clock(),
        {
            "kind": "hunt",
            "home_tenant": home_tenant,
            "tenant_id": result.tenant.tenant_id,
            "days": max((result.end - result.start).days, 1),
            "accounts": [{"user_id": a.user_id, "upn": a.upn, "verdict": "; ".join(a.reasons)[:300]} for a in ranked],
        },
    )
    return Reply(card=hunt_card(result, ref))


@command(
    "investigate",
    summary="What happened to an account lately: new countries/IPs/apps, impossible travel, "
    "risky sign-ins, MFA and consent changes, inbox rules, devices — with buttons to act.",
    usage=USAGE["investigate"],
    role=Role.TECHNICIAN,
    slow=True,
)
async def investigate_command(cmd: Command, ctx: DialogContext) -> list[Reply]:
    refusal, graph = _not_configured(ctx), ctx.services.graph
    if refusal is not None or graph is None:
        return refusal or []
    try:
        subject, days_text, tenant_name = split_args(cmd.args)
        if subject is None:
            return [Reply(text=f"Name the user: `{USAGE['investigate']}` (days: 1–{MAX_DAYS}, default 7).")]
        days = parse_days(days_text)
        report = await run_investigation(
            graph, subject, days, ctx.services.clock(), tenant_name=tenant_name, conversation_tenant_id=cmd.tenant_id
        )
    except BadUserInput as exc:
        return [Reply(text=str(exc))]
    except GraphProblem as problem:
        return [Reply(text=problem.user_message)]
    return [await investigation_reply(ctx, report, cmd.tenant_id)]


@command(
    "hunt",
    summary="Find the other accounts an intruder reached: sign-ins from the same IPs, risky sign-ins, "
    "forwarding rules.",
    usage=USAGE["hunt"],
    role=Role.TECHNICIAN,
    slow=True,
)
async def hunt_command(cmd: Command, ctx: DialogContext) -> list[Reply]:
    refusal, graph = _not_configured(ctx), ctx.services.graph
    if refusal is not None or graph is None:
        return refusal or []
    try:
        subject, days_text, tenant_name = split_args(cmd.args)
        if subject is None:
            return [Reply(text=f"Name a compromised user or an IP: `{USAGE['hunt']}`.")]
        days = parse_days(days_text)
        result, report = await run_hunt(
            graph, subject, days, ctx.services.clock(), tenant_name=tenant_name, conversation_tenant_id=cmd.tenant_id
        )
    except BadUserInput as exc:
        return [Reply(text=str(exc))]
    except GraphProblem as problem:
        return [Reply(text=problem.user_message)]
    replies: list[Reply] = []
    if report is not None and not result.seed_ips:
        replies.append(
            Reply(
                text=f"{report.upn}'s investigation found no suspicious IP, so the hunt looked for "
                "risky sign-ins only. Give an IP to hunt from it: `hunt 203.0.113.7`."
            )
        )
    return [*replies, await hunt_reply(ctx, result, cmd.tenant_id)]
