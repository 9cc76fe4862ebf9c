"""The per-turn `Outbox`: what a dialog uses to post, update and show typing while it works on one message."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ActivityTypes

from bot.delivery import delivery_error, reply_activity
from bot.proactive import BotMessenger
from bot.references import tenant_of
from dialogs.contract import DeliveryError, Reply

if TYPE_CHECKING:
    from bot.posted_cards import RecordingMessenger


class TurnOutbox:
    """Sends into the conversation of this turn; other conversations and 1:1 chats go through the messenger."""

    def __init__(self, context: TurnContext, messenger: BotMessenger | RecordingMessenger) -> None:
        self.context = context
        self.messenger = messenger

    def _here(self, conversation_id: str | None) -> bool:
        return conversation_id is None or conversation_id == self.context.activity.conversation.id

    async def send(self, reply: Reply, conversation_id: str | None = None) -> str | None:
        if reply.replaces:
            await self.update(reply.replaces, reply, conversation_id)
            return reply.replaces
        if not self._here(conversation_id):
            return await self.messenger.send(conversation_id, reply)  # type: ignore[arg-type]
        try:
            response = await self.context.send_activity(reply_activity(reply))
        except Exception as exc:  # noqa: BLE001
            raise delivery_error(exc, "replying") from exc
        return (response.id or None) if response else None

    async def update(self, message_id: str, reply: Reply, conversation_id: str | None = None) -> None:
        if not self._here(conversation_id):
            await self.messenger.update(conversation_id, message_id, reply)  # type: ignore[arg-type]
            return
        try:
            await self.context.update_activity(reply_activity(reply, message_id=message_id))
        except Exception as exc:  # noqa: BLE001
            raise delivery_error(exc, f"updating {message_id}") from exc

    async def typing(self) -> None:
        try:
            await self.context.send_activity(Activity(type=ActivityTypes.typing))
        except Exception as exc:  # noqa: BLE001
            raise delivery_error(exc, "typing") from exc

    async def send_private(self, user_aad_id: str, reply: Reply) -> str | None:
        tenant = tenant_of(self.context.activity)
        if not tenant:
            raise DeliveryError("cannot open a 1:1 chat: the message carried no tenant id")
        via = TurnContext.get_conversation_reference(self.context.activity)
        return await self.messenger.send_private(tenant, user_aad_id, reply, via=via)
