"""Commands every deployment has: `help` and `audit`."""

from __future__ import annotations

from dialogs import cards
from dialogs.contract import Command, DialogContext, Reply, Role
from dialogs.registry import command, registry

AUDIT_DEFAULT = 20
AUDIT_MAX = 100


@command("help", summary="List the commands you may run.", usage="help", role=Role.ANYONE, aliases=("?",))
async def help_command(cmd: Command, ctx: DialogContext) -> list[Reply]:
    from dialogs.router import help_card

    return [Reply(card=help_card(registry(), cmd.actor))]


@command("audit", summary="Show the latest audit log entries.", usage="audit 20", role=Role.TECHNICIAN)
async def audit_command(cmd: Command, ctx: DialogContext) -> list[Reply]:
    limit = AUDIT_DEFAULT
    if cmd.args:
        if not cmd.args[0].isdigit() or not 1 <= int(cmd.args[0]) <= AUDIT_MAX:
            return [Reply(text=f"`audit` takes a number of entries from 1 to {AUDIT_MAX}, e.g. `audit 20`.")]
        limit = int(cmd.args[0])
    entries = await ctx.services.storage.audit_tail(limit, tenant=cmd.tenant_id)
    if not entries:
        return [Reply(text="The audit log has no entries for this tenant yet.")]
    rows = [
        cards.text(f"`{e.at}` **{e.command}** by {e.actor} → {e.outcome}"
                   + (f" — {e.target}" if e.target else "") + (f" ({e.detail})" if e.detail else ""),
                   size="Small", spacing="Small")
        for e in entries
    ]
    return [Reply(card=cards.card(cards.title("Audit log", f"Latest {len(entries)} entries, newest first") + rows))]
