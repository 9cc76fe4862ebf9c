"""Proactive sending: reach a stored conversation (alerts, long runs) or open a 1:1 chat with a user.

Implements `dialogs.contract.Messenger`. A proactive message is a *new* message: in a Teams channel it starts a
thread of its own (posted to the channel's id, replying to nothing), never a reply inside the thread where someone
once typed; replies within a turn stay in that thread (`bot.outbox`). Sends and updates go straight to the Bot
Connector through pooled clients (`bot.connectors`: made by `bot.auth`'s guarded factory, so `--dev` still refuses
non-loopback service URLs and no status is retried inside the SDK). Every failure is a `DeliveryError`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ChannelAccount, ConversationParameters, ConversationReference

from bot.connectors import ConnectorPool
from bot.delivery import delivery_error, reply_activity
from bot.references import ReferenceStore
from dialogs.contract import DeliveryError, Reply

log = logging.getLogger(__name__)

ROSTER_TIMEOUT_SECONDS = 3.0  # a roster read must not hold a lock-down step for long


def _gone(conversation_id: str) -> DeliveryError:
    return DeliveryError(f"no stored conversation {conversation_id!r} (the bot was never installed there)", gone=True)


def addressed(reply: Reply, reference: ConversationReference, *, message_id: str | None = None) -> Activity:
    """The activity as `TurnContext.send_activity` would address it, minus the reply-to (new message or update)."""
    activity = TurnContext.apply_conversation_reference(reply_activity(reply, message_id=message_id), reference)
    activity.reply_to_id = None
    activity.input_hint = activity.input_hint or "acceptingInput"
    return activity


class BotMessenger:
    def __init__(
        self, adapter: Any, app_id: str, references: ReferenceStore, connectors: ConnectorPool | None = None
    ) -> None:
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

    async def send_private(
        self, tenant_id: str, user_aad_id: str, reply: Reply, via: ConversationReference | None = None
    ) -> str | None:
        """Post to the user's 1:1 chat with the bot (`via`: a reference in that tenant, to open one from).

        A stored personal chat is reused; otherwise a new chat is opened with the user's Teams id (`29:…`, seen in
        one of their activities or read from the roster), the Entra object id only when neither is known (the
        Agents Playground opens a chat for an object id but answers its messages `UserNotFound`). A chat whose
        opening or first message failed is never remembered."""
        known = await self.references.private_chat(tenant_id, user_aad_id)
        if not known:
            known = await self.references.personal_reference(tenant_id, user_aad_id)
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
        member_id = await self._member_id(tenant_id, user_aad_id, base)
        parameters = ConversationParameters(
            is_group=False,
            bot=base.bot,
            members=[ChannelAccount(id=member_id)],
            tenant_id=tenant_id,
            channel_data={"tenant": {"id": tenant_id}},
        )
        sent: dict[str, Any] = {}

        async def work(context: TurnContext) -> None:
            response = await context.send_activity(reply_activity(reply))
            sent["id"] = response.id if response else None
            sent["activity"] = context.activity  # remembered only once the message went through

        try:
            await self.adapter.create_conversation(
                self.app_id, work, parameters, channel_id=base.channel_id, service_url=base.service_url
            )
        except Exception as exc:  # noqa: BLE001
            raise _open_error(exc, member_id) from exc
        activity = sent.get("activity")
        if activity is not None and activity.conversation and activity.conversation.id:
            try:
                await self.references.save(activity, replace=True)
                await self.references.remember_private_chat(tenant_id, user_aad_id, activity.conversation.id)
            except Exception:  # noqa: BLE001 - the message was delivered; the next one opens a chat again
                log.exception("could not remember the 1:1 chat %s", activity.conversation.id)
        return sent.get("id")

    async def _member_id(self, tenant_id: str, user_aad_id: str, base: ConversationReference) -> str:
        """The id to open a chat with: the stored Teams id, else the roster's (cached), else the object id."""
        stored = await self.references.teams_id(tenant_id, user_aad_id)
        if stored:
            return stored
        conversation = base.conversation.id if base.conversation else None
        if conversation and base.service_url:
            try:
                client = await self.connectors.client(base.service_url)
                member = await asyncio.wait_for(
                    client.conversations.get_conversation_member(conversation, user_aad_id), ROSTER_TIMEOUT_SECONDS
                )
            except Exception as exc:  # noqa: BLE001 - fall back to the object id
                log.info(
                    "roster lookup of %s in %s failed (%s); opening the chat with the object id",
                    user_aad_id,
                    conversation,
                    type(exc).__name__,
                )
            else:
                teams_id = getattr(member, "id", None)
                if teams_id and teams_id.lower() != user_aad_id.lower():
                    await self.references.remember_teams_id(tenant_id, user_aad_id, teams_id)
                    return teams_id
        return user_aad_id


def _open_error(exc: BaseException, member_id: str) -> DeliveryError:
    """A failed createConversation, with the channel's error code (`UserNotFound`: the id is not one it knows)."""
    error = delivery_error(exc, f"opening a chat with {member_id}")
    if error.status not in (400, 404):
        return error
    code = getattr(getattr(getattr(exc, "error", None), "error", None), "code", None)
    return DeliveryError(
        f"opening a chat with {member_id}: the channel does not know that user (HTTP {error.status}"
        + (f" {code})" if code else ")"),
        status=error.status,
    )
