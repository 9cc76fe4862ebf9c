"""Proactive sending: reach a stored conversation (alerts, long runs) or open a 1:1 chat with a user.

Implements `dialogs.contract.Messenger`. Uses `continue_conversation` with the bot's app id (the SDK needs it);
in `--dev` the adapter's connector factory refuses non-loopback service URLs. Every failure is a `DeliveryError`.
"""

from __future__ import annotations

import logging
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import ChannelAccount, ConversationParameters, ConversationReference

from bot.delivery import delivery_error, reply_activity
from bot.references import ReferenceStore
from dialogs.contract import DeliveryError, Reply

log = logging.getLogger(__name__)


class BotMessenger:
    def __init__(self, adapter: Any, app_id: str, references: ReferenceStore) -> None:
        self.adapter = adapter
        self.app_id = app_id
        self.references = references

    async def _reference(self, conversation_id: str) -> ConversationReference:
        found = await self.references.load(conversation_id)
        if found is None:
            raise DeliveryError(f"no stored conversation {conversation_id!r} (the bot was never installed there)",
                                gone=True)
        return found[0]

    async def _continue(self, conversation_id: str, work: Any, what: str) -> None:
        reference = await self._reference(conversation_id)
        try:
            await self.adapter.continue_conversation(reference, work, bot_app_id=self.app_id)
        except Exception as exc:  # noqa: BLE001 - mapped to DeliveryError for the caller to decide
            raise delivery_error(exc, what) from exc

    async def send(self, conversation_id: str, reply: Reply) -> str | None:
        if reply.replaces:
            await self.update(conversation_id, reply.replaces, reply)
            return reply.replaces
        sent: dict[str, str | None] = {}

        async def work(context: TurnContext) -> None:
            response = await context.send_activity(reply_activity(reply))
            sent["id"] = response.id if response else None

        await self._continue(conversation_id, work, f"sending to {conversation_id}")
        return sent.get("id")

    async def update(self, conversation_id: str, message_id: str, reply: Reply) -> None:
        async def work(context: TurnContext) -> None:
            await context.update_activity(reply_activity(reply, message_id=message_id))

        await self._continue(conversation_id, work, f"updating {message_id} in {conversation_id}")

    async def send_private(self, tenant_id: str, user_aad_id: str, reply: Reply,
                           via: ConversationReference | None = None) -> str | None:
        """Post to the user's 1:1 chat with the bot, opening it if needed (`via`: a reference in that tenant)."""
        known = await self.references.private_chat(tenant_id, user_aad_id)
        if known and await self.references.load(known) is not None:
            try:
                return await self.send(known, reply)
            except DeliveryError as exc:
                if not exc.gone:
                    raise
                await self.references.remember_private_chat(tenant_id, user_aad_id, None)
        base = via or await self.references.any_in_tenant(tenant_id)
        if base is None:
            raise DeliveryError(f"no conversation with tenant {tenant_id} to open a chat from (install the app first)")
        parameters = ConversationParameters(
            is_group=False, bot=base.bot, members=[ChannelAccount(id=user_aad_id)], tenant_id=tenant_id,
            channel_data={"tenant": {"id": tenant_id}},
        )
        sent: dict[str, str | None] = {}

        async def work(context: TurnContext) -> None:
            await self.references.save(context.activity, replace=True)
            response = await context.send_activity(reply_activity(reply))
            sent["id"] = response.id if response else None
            sent["conversation"] = context.activity.conversation.id

        try:
            await self.adapter.create_conversation(self.app_id, work, parameters, channel_id=base.channel_id,
                                                   service_url=base.service_url)
        except Exception as exc:  # noqa: BLE001
            raise delivery_error(exc, f"opening a chat with {user_aad_id}") from exc
        if sent.get("conversation"):
            await self.references.remember_private_chat(tenant_id, user_aad_id, sent["conversation"])
        return sent.get("id")
