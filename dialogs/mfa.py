"""`mfa <user>` and `mfa report [tenant]`: is MFA set up, with what, and is it actually enforced?

The per-user answer reads the live methods (current) as well as the registration report (lags by hours), and
checks enforcement through security defaults and Conditional Access. The tenant report pages through the whole
registration report in constant memory, showing progress by updating one card in place.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from dialogs.contract import Command, DialogContext, Reply, Role
from dialogs.registry import command

log = logging.getLogger(__name__)

USAGE = "mfa alice@contoso.com [--tenant NAME]  ·  mfa report [TENANT]"
PROGRESS_EVERY_SECONDS = 2.0
NO_GRAPH = (
    "Microsoft Graph is not set up for Cordon: set MicrosoftAppTenantId (managed identity) or add "
    "[[tenants]] to cordon.toml."
)


def split_tenant_option(args: list[str]) -> tuple[list[str], str | None]:
    """Remove `--tenant NAME` (or `--tenant=NAME`) from the words; ValueError when NAME is missing."""
    rest: list[str] = []
    tenant: str | None = None
    words = iter(args)
    for word in words:
        if word.lower() == "--tenant":
            tenant = next(words, None)
            if not tenant:
                raise ValueError("`--tenant` needs a tenant name, e.g. `--tenant Contoso`.")
        elif word.lower().startswith("--tenant="):
            tenant = word.split("=", 1)[1] or None
            if not tenant:
                raise ValueError("`--tenant=` needs a tenant name.")
        else:
            rest.append(word)
    return rest, tenant


async def user_status(
    gateway: Any, user_text: str, tenant_name: str | None, conversation_tenant: str | None, now: Any
) -> Any:
    """Resolve, read and judge one user (BadUserInput / GraphProblem propagate)."""
    from adapters.graph.mfa_data import fetch_user_facts
    from dialogs.mfa_status import UserStatus

    tenant, user = gateway.directory.resolve_user(user_text, tenant_name, conversation_tenant)
    facts = await fetch_user_facts(gateway, tenant, user)
    return UserStatus.build(facts, now)


@command(
    "mfa",
    summary="MFA registration and enforcement for a user, or a report for a whole tenant.",
    usage=USAGE,
    role=Role.TECHNICIAN,
    slow=True,
)
async def mfa_command(cmd: Command, ctx: DialogContext) -> list[Reply]:
    from adapters.graph.errors import GraphProblem
    from adapters.graph.inputs import BadUserInput

    gateway = ctx.services.graph
    if gateway is None:
        return [Reply(text=NO_GRAPH)]
    try:
        words, tenant_name = split_tenant_option(list(cmd.args))
    except ValueError as exc:
        return [Reply(text=str(exc))]
    if not words:
        return [Reply(text=f"Which user? Usage: `{USAGE}`")]
    if words[0].lower() == "report":
        if len(words) > 2 or (len(words) == 2 and tenant_name):
            return [Reply(text=f"`mfa report` takes at most one tenant name. Usage: `{USAGE}`")]
        return await report_command(words[1] if len(words) == 2 else tenant_name, cmd, ctx)
    if len(words) > 1:
        return [Reply(text=f"`mfa` takes one user (a sign-in name or object id). Usage: `{USAGE}`")]
    from dialogs.mfa_cards import user_card

    try:
        status = await user_status(gateway, words[0], tenant_name, cmd.tenant_id, ctx.services.clock())
    except BadUserInput as exc:
        return [Reply(text=str(exc))]
    except GraphProblem as problem:
        return [Reply(text=problem.user_message)]
    return [Reply(card=user_card(status))]


async def report_command(tenant_name: str | None, cmd: Command, ctx: DialogContext) -> list[Reply]:
    from adapters.graph.errors import GraphProblem
    from adapters.graph.inputs import BadUserInput
    from adapters.graph.mfa_report import TenantReport, build_report
    from dialogs.mfa_cards import report_card

    gateway = ctx.services.graph
    if gateway is None:
        return [Reply(text=NO_GRAPH)]
    try:
        tenant = gateway.directory.by_name(tenant_name) if tenant_name else gateway.directory.default(cmd.tenant_id)
    except BadUserInput as exc:
        return [Reply(text=str(exc))]
    message_id = await _quietly(ctx.outbox.send(Reply(card=report_card(TenantReport(tenant.name), running=True))))
    last = time.monotonic()

    async def progress(report: TenantReport) -> None:
        nonlocal last
        if message_id and time.monotonic() - last >= PROGRESS_EVERY_SECONDS:
            last = time.monotonic()
            await _quietly(ctx.outbox.update(message_id, Reply(card=report_card(report, running=True))))

    try:
        report = await build_report(gateway, tenant, on_progress=progress)
        final = Reply(card=report_card(report))
    except GraphProblem as problem:
        final = Reply(text=problem.user_message)
    if message_id:
        try:
            await ctx.outbox.update(message_id, final)
            return []
        except Exception:  # noqa: BLE001 - the update failed: post the result as a new message instead
            log.warning("could not update the MFA report card in place", exc_info=True)
    return [final]


async def _quietly(work: Any) -> Any:
    """Progress messages are a courtesy: their failure must not fail the report."""
    try:
        return await work
    except Exception:  # noqa: BLE001
        log.debug("progress message failed", exc_info=True)
        return None
