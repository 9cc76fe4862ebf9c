"""Commands every deployment has: `help` and `audit`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from dialogs import cards
from dialogs.contract import Command, DialogContext, Reply, Role
from dialogs.registry import command, registry

if TYPE_CHECKING:
    from adapters.storage import AuditEntry

AUDIT_DEFAULT = 20
AUDIT_MAX = 100
AUDIT_FIELD_CHARS = 80  # targets may be 200 characters of typed text; 100 such rows would not fit a message


@command("help", summary="List the commands you may run.", usage="help", role=Role.ANYONE, aliases=("?",))
async def help_command(cmd: Command, ctx: DialogContext) -> list[Reply]:
    from dialogs.router import help_card

    return [Reply(card=help_card(registry(), cmd.actor))]


@command("audit", summary="Show the latest audit log entries.", usage="audit 20 [ids]", role=Role.TECHNICIAN)
async def audit_command(cmd: Command, ctx: DialogContext) -> list[Reply]:
    limit = AUDIT_DEFAULT
    args = [a.lower() for a in cmd.args]
    with_ids = "ids" in args
    numbers = [a for a in args if a != "ids"]
    if numbers:
        if len(numbers) > 1 or not re.fullmatch(r"[0-9]{1,3}", numbers[0]) or not 1 <= int(numbers[0]) <= AUDIT_MAX:
            return [
                Reply(
                    text=f"`audit` takes a number of entries from 1 to {AUDIT_MAX}, e.g. `audit 20` "
                    "(`audit 20 ids` adds the Entra object ids)."
                )
            ]
        limit = int(numbers[0])
    entries = await ctx.services.storage.audit_tail(limit, tenant=cmd.tenant_id)
    if not entries:
        return [Reply(text="The audit log has no entries for this tenant yet.")]
    rows: list[dict[str, Any]] = []
    budget = cards.MAX_CARD_BYTES - 3_000  # room for the title, the note and Teams' envelope
    for e in entries:
        row = cards.text(
            f"`{e.at}` **{_plain(e.command)}** by {_who(e, with_ids)} → {_plain(e.outcome)}"
            + (f" — {_plain(e.target)}" if e.target else "")
            + (f" ({_plain(e.detail)})" if e.detail else ""),
            size="Small",
            spacing="Small",
        )
        budget -= cards.size_of(row) + 1
        if budget < 0:
            break
        rows.append(row)
    subtitle = f"Latest {len(rows)} entries, newest first" + (
        ", with Entra object ids" if with_ids else " (`audit ids` adds the Entra object ids)"
    )
    body = cards.title("Audit log", subtitle) + rows
    if len(rows) < len(entries):
        body.append(
            cards.text(
                f"{len(entries) - len(rows)} older entries left out to fit one Teams message; "
                "ask for fewer, e.g. `audit 20`.",
                isSubtle=True,
            )
        )
    return [Reply(card=cards.card(body))]


def _who(entry: AuditEntry, with_ids: bool) -> str:
    """The person by name and UPN as stored with the entry; the object id only when asked (or all there is)."""
    if not entry.actor_name:
        return _plain(entry.actor)
    return _plain(entry.actor_name) + (
        f" ({_plain(entry.actor)})" if with_ids and entry.actor != entry.actor_name else ""
    )


def _plain(value: str) -> str:
    return cards.plain(value, AUDIT_FIELD_CHARS)
