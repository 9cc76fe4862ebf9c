"""Proactive sending: reach a stored conversation (alerts, long runs) or open a 1:1 chat with a user.

Implements `dialogs.contract.Messenger`. A proactive message is a *new* message: in a Teams channel it starts a
thread of its own (posted to the channel's id, replying to nothing), never a reply inside the thread where someone
once typed; replies within a turn stay in that thread (`bot.outbox`). Sends and updates go straight to the Bot
Connector through pooled clients (`bot.connectors`: made by `bot.auth`'s guarded factory, so `--dev` still refuses
non-loopback service URLs and no status is retried inside the SDK). Every failure is a `DeliveryError`.
"""

from __future__ import annotations

import logging
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ChannelAccount, ConversationParameters, ConversationReference

from bot.connectors import ConnectorPool
from bot.delivery import delivery_error, reply_activity
from bot.references import ReferenceStore
from dialogs.contract import DeliveryError, Reply

log = logging.getLogger(__name__)


def _gone(conversation_id: str) -> DeliveryError:
    return DeliveryError(f"no stored conversation {conversation_id!r} (the bot was never installed there)", gone=True)


def addressed(reply: Reply, reference: ConversationReference, *, message_id: str | None = None) -> Activity:
    """The activity as `TurnContext.send_activity` would address it, minus the reply-to (new message or update)."""
    activity = TurnContext.apply_conversation_reference(reply_activity(reply, message_id=message_id), reference)
    activity.reply_to_id = None
    activity.input_hint = activity.input_hint or "acceptingInput"
    return activity


class BotMessenger:
    def __init__(self, adapter: Any, app_id: str, references: ReferenceStore,
                 connectors: ConnectorPool | None = None) -> None:
        self.adapter = adapter
        self.app_id = app_id
        self.references = references
        self.connectors = connectors or ConnectorPool(adapter, app_id)

    async def send(self, conversation_id: str, reply: Reply) -> str | None:
        """Post a new message (in a channel: a new thread in the channel); returns its activity id."""
        if reply.replaces:
            await self.update(conversation_id, reply.replaces, reply)
            return reply.replaces
        reference = await self.references.for_new_post(conversation_id)
        if reference is None:
            raise _gone(conversation_id)
        activity = addressed(reply, reference)
        try:
            client = await self.connectors.client(reference.service_url)
            response = await client.conversations.send_to_conversation(reference.conversation.id, activity)
        except Exception as exc:  # noqa: BLE001 - mapped to DeliveryError for the caller to decide
            raise delivery_error(exc, f"sending to {conversation_id}") from exc
        return (response.id or None) if response else None

    async def update(self, conversation_id: str, message_id: str, reply: Reply) -> None:
        reference = await self.references.for_update(conversation_id)
        if reference is None:
            raise _gone(conversation_id)
        activity = addressed(reply, reference, message_id=message_id)
        try:
            client = await self.connectors.client(reference.service_url)
            await client.conversations.update_activity(reference.conversation.id, message_id, activity)
        except Exception as exc:  # noqa: BLE001
            raise delivery_error(exc, f"updating {message_id} in {conversation_id}") from exc

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
