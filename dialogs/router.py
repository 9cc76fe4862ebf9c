"""Routes a typed command or a card action to its dialog, through one role gate.

The Teams bot and the console both call `Router`; handlers never check roles themselves (errbot's cmdfilter).
Every refusal is polite and audited; an exception in a dialog becomes a short error card with a correlation id
while the details go to the log only.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import shlex
import uuid
from typing import Any

from adapters.roles import RoleResolver
from adapters.safe_text import for_log
from adapters.storage import AuditEntry
from dialogs import cards
from dialogs.contract import (
    ActionResult,
    Actor,
    CardAction,
    Command,
    Conversation,
    DialogContext,
    Outbox,
    Reply,
    Role,
    Services,
)
from dialogs.registry import Registry, registry

log = logging.getLogger(__name__)

ROLE_NAMES = {Role.TECHNICIAN: "technicians", Role.APPROVER: "approvers"}


def split_command(text: str) -> tuple[str, tuple[str, ...]]:
    """First word (lower-cased) and the arguments; quotes group words, a stray quote is taken literally.

    Arguments are made inert (`cards.inert`) here, once for every dialog: whatever a dialog echoes back — an
    error about a malformed domain, a lock-down reason on a card — cannot carry a disguised link."""
    text = " ".join(text.split())
    if not text:
        return "", ()
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    if not words:
        return "", ()
    return words[0].lower(), tuple(cards.inert(word) for word in words[1:])


class Router:
    def __init__(self, services: Services, roles: RoleResolver, commands: Registry | None = None) -> None:
        self.services = services
        self.roles = roles
        self.registry = commands or registry()

    async def _with_roles(self, actor: Actor, tenant_id: str | None) -> Actor:
        return dataclasses.replace(actor, roles=await self.roles.roles(actor.aad_id, tenant_id))

    async def _audit(
        self,
        actor: Actor,
        tenant_id: str | None,
        conversation: Conversation,
        what: str,
        outcome: str,
        target: str | None = None,
        detail: str | None = None,
    ) -> None:
        try:
            await self.services.storage.append_audit(
                AuditEntry(
                    actor=actor.aad_id or actor.label,
                    tenant=tenant_id,
                    conversation=conversation.id,
                    command=what,
                    target=target,
                    outcome=outcome,
                    detail=detail,
                    actor_name=actor.audit_name,
                )
            )
        except Exception:  # noqa: BLE001 - the audit failing must be loud in the log, not crash the turn
            log.exception("could not write the audit log")

    async def handle_text(
        self,
        text: str,
        actor: Actor,
        tenant_id: str | None,
        conversation: Conversation,
        outbox: Outbox,
        message_id: str | None = None,
    ) -> list[Reply]:
        word, args = split_command(text)
        actor = await self._with_roles(actor, tenant_id)
        if not word:
            word = "help"
        spec = self.registry.find(word)
        if spec is None:
            return [self._unknown(word, actor)]
        command = Command(
            name=spec.name,
            args=args,
            text=text,
            actor=actor,
            tenant_id=tenant_id,
            conversation=conversation,
            message_id=message_id,
        )
        target = " ".join(args)[:200] or None
        if not actor.has(spec.role):
            await self._audit(actor, tenant_id, conversation, spec.name, "refused", target, f"needs {spec.role.value}")
            return [Reply(text=self._refusal(spec.name, spec.role))]
        if spec.slow:
            try:
                await outbox.typing()
            except Exception:  # noqa: BLE001 - a lost typing indicator is not worth failing the command
                log.debug("typing indicator failed", exc_info=True)
        try:
            replies = await spec.handler(command, DialogContext(self.services, outbox)) or []
        except Exception:  # noqa: BLE001 - the user gets a correlation id, the log gets the details
            correlation = uuid.uuid4().hex[:12]
            log.exception("command %s failed (correlation id %s)", spec.name, correlation)
            await self._audit(actor, tenant_id, conversation, spec.name, "error", target, correlation)
            return [
                Reply(
                    card=cards.error_card(
                        f"`{spec.name}` failed unexpectedly. Nothing was changed by this "
                        "message; tell your Cordon admin the id below.",
                        correlation,
                    )
                )
            ]
        if spec.role is not Role.ANYONE:
            await self._audit(actor, tenant_id, conversation, spec.name, "ok", target)
        return replies

    async def handle_action(
        self,
        verb: str,
        data: dict[str, Any],
        actor: Actor,
        tenant_id: str | None,
        conversation: Conversation,
        outbox: Outbox,
        card_message_id: str | None = None,
    ) -> ActionResult:
        actor = await self._with_roles(actor, tenant_id)
        spec = self.registry.actions.get(verb)
        if spec is None:
            log.warning("unknown card action verb %s from %s", for_log(verb, 80), for_log(actor.label, 80))
            # a message for the presser only: an unknown verb must never put an error card in place of a card
            return ActionResult(
                message="This button is not known to this version of Cordon (the card may be from "
                "an older release). Type `help` to start again."
            )
        target = str(data.get("request_id") or data.get("target") or "")[:200] or None
        if not actor.has(spec.role):
            await self._audit(
                actor, tenant_id, conversation, f"action:{verb}", "refused", target, f"needs {spec.role.value}"
            )
            return ActionResult(message=self._refusal(verb, spec.role, button=True))
        data = {key: cards.inert(value) if isinstance(value, str) else value for key, value in data.items()}
        action = CardAction(
            verb=verb,
            data=data,
            actor=actor,
            tenant_id=tenant_id,
            conversation=conversation,
            card_message_id=card_message_id,
        )
        try:
            return await spec.handler(action, DialogContext(self.services, outbox))
        except Exception:  # noqa: BLE001
            correlation = uuid.uuid4().hex[:12]
            log.exception("card action %s failed (correlation id %s)", for_log(verb, 80), correlation)
            await self._audit(actor, tenant_id, conversation, f"action:{verb}", "error", target, correlation)
            return ActionResult(card=cards.error_card("That button failed unexpectedly.", correlation))

    def _refusal(self, name: str, role: Role, *, button: bool = False) -> str:
        what = "press this button" if button else f"run `{name}`"
        group = ROLE_NAMES.get(role, role.value)
        return (
            f"Sorry, only Cordon {group} may {what}. If you need it, ask your Cordon admin to add you to the "
            f"{group} in cordon.toml. This attempt was recorded."
        )

    def _unknown(self, word: str, actor: Actor) -> Reply:
        close = difflib.get_close_matches(word, self.registry.words(), n=1, cutoff=0.6)
        hint = f"Did you mean `{close[0]}`? " if close else ""
        typed = cards.plain(word, 40)
        return Reply(
            text=f"I don't know the command `{typed}`. {hint}Type `help` to see what I can do.",
            card=help_card(self.registry, actor),
        )


def help_card(commands: Registry, actor: Actor) -> dict[str, Any]:
    """The commands this person may run, with a usage example each."""
    rows = [
        {
            "type": "Container",
            "items": [
                cards.text(f"**{spec.name}**" + (f"  (also: {', '.join(spec.aliases)})" if spec.aliases else "")),
                cards.text(spec.summary, spacing="None"),
                cards.text(f"`{spec.usage}`", isSubtle=True, spacing="None", size="Small"),
            ],
        }
        for spec in commands.visible()
        if actor.has(spec.role)
    ]
    hidden = sum(1 for spec in commands.visible() if not actor.has(spec.role))
    body = cards.title("Cordon — what I can do", "Mention me in a channel, or write to me in a chat.") + rows
    if hidden:
        body.append(cards.text(f"{hidden} more command(s) need the technician or approver role.", isSubtle=True))
    return cards.card(body)
