"""Conversation references: what proactive sends need to reach a conversation again.

Stored under `convref/<conversation id>` as `{"reference": <serialised ConversationReference>, "tenant_id",
"kind", "team_id", "channel_id", "saved_at"}`. Saved on install and on the first message in a conversation;
1:1 chats the bot opened with a user are also remembered under `chat/<tenant id>/<user aad id>`.
"""

from __future__ import annotations

import logging
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ConversationReference

from adapters.storage import Conflict, Storage
from dialogs.contract import Clock, Conversation, ConversationKind

log = logging.getLogger(__name__)

PREFIX = "convref/"
CHAT_PREFIX = "chat/"


def tenant_of(activity: Activity) -> str | None:
    """The tenant is in channelData.tenant.id (conversation.tenant_id is always None in this SDK)."""
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = data.get("tenant") if isinstance(data.get("tenant"), dict) else {}
    value = tenant.get("id") or (activity.conversation.tenant_id if activity.conversation else None)
    return str(value).lower() if value else None


def conversation_of(activity: Activity) -> Conversation:
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    team = data.get("team") if isinstance(data.get("team"), dict) else {}
    channel = data.get("channel") if isinstance(data.get("channel"), dict) else {}
    conv = activity.conversation
    kind_text = (conv.conversation_type if conv else None) or ("groupChat" if conv and conv.is_group else "personal")
    kind: ConversationKind = kind_text if kind_text in ("personal", "groupChat", "channel") else "personal"
    return Conversation(id=conv.id if conv else "", kind=kind, tenant_id=tenant_of(activity),
                        team_id=team.get("id"), channel_id=channel.get("id"))


def reference_document(activity: Activity, clock: Clock) -> dict[str, Any]:
    conversation = conversation_of(activity)
    reference = TurnContext.get_conversation_reference(activity)
    return {
        "reference": reference.serialize(),
        "tenant_id": conversation.tenant_id,
        "kind": conversation.kind,
        "team_id": conversation.team_id,
        "channel_id": conversation.channel_id,
        "saved_at": clock().isoformat(timespec="seconds"),
    }


class ReferenceStore:
    def __init__(self, storage: Storage, clock: Clock) -> None:
        self.storage = storage
        self.clock = clock
        self._known: set[str] = set()  # conversations already saved by this process

    async def save(self, activity: Activity, *, replace: bool) -> None:
        """Save the reference; `replace=False` keeps an existing one (first message), True refreshes it (install)."""
        conv_id = activity.conversation.id if activity.conversation else None
        if not conv_id or (not replace and conv_id in self._known):
            return
        key = PREFIX + conv_id
        document = reference_document(activity, self.clock)
        for _ in range(5):
            current = await self.storage.get(key)
            if current is not None and not replace:
                break
            try:
                await self.storage.put(key, document, current.version if current else None)
                log.info("saved the conversation reference for %s (%s)", conv_id, document["kind"])
                break
            except Conflict:
                continue
        self._known.add(conv_id)

    async def load(self, conversation_id: str) -> tuple[ConversationReference, dict[str, Any]] | None:
        doc = await self.storage.get(PREFIX + conversation_id)
        if doc is None:
            return None
        return ConversationReference().deserialize(doc.value["reference"]), doc.value

    async def any_in_tenant(self, tenant_id: str) -> ConversationReference | None:
        """Some stored reference in this tenant (its service URL and bot account open new 1:1 chats)."""
        for _, doc in await self.storage.list(PREFIX):
            if (doc.value.get("tenant_id") or "").lower() == tenant_id.lower():
                return ConversationReference().deserialize(doc.value["reference"])
        return None

    async def private_chat(self, tenant_id: str, user_aad_id: str) -> str | None:
        doc = await self.storage.get(f"{CHAT_PREFIX}{tenant_id.lower()}/{user_aad_id.lower()}")
        return doc.value.get("conversation_id") if doc else None

    async def remember_private_chat(self, tenant_id: str, user_aad_id: str, conversation_id: str | None) -> None:
        key = f"{CHAT_PREFIX}{tenant_id.lower()}/{user_aad_id.lower()}"
        for _ in range(5):
            current = await self.storage.get(key)
            try:
                if conversation_id is None:
                    if current is not None:
                        await self.storage.delete(key, current.version)
                    return
                await self.storage.put(key, {"conversation_id": conversation_id},
                                       current.version if current else None)
                return
            except Conflict:
                continue
