"""Conversation references: what proactive sends need to reach a conversation again.

Stored under `convref/<conversation id>` as `{"reference": <serialised ConversationReference>, "tenant_id",
"kind", "team_id", "channel_id", "saved_at"}`. Saved on install and on the first message in a conversation;
1:1 chats with a user (opened by the bot, or a personal chat the user wrote in) are also remembered under
`chat/<tenant id>/<user aad id>`, and each user's Teams id (`29:…`, the id the Bot Connector knows them by) under
`member/<tenant id>/<user aad id>`: a new 1:1 chat is opened with that id, since Microsoft 365 Agents Playground
answers `UserNotFound` to the messages of a chat opened with an Entra object id.

In a Teams channel every thread is its own conversation id (`<channel id>;messageid=<root post>`). A message in a
thread therefore also stores the channel's reference under `convref/<channel id>` (conversation = the channel,
no activity to reply to): that is what a proactive *new* post uses, so it starts a thread of its own.
"""

from __future__ import annotations

import logging
from copy import copy
from typing import Any, cast

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ConversationAccount, ConversationReference

from adapters.safe_text import for_log
from adapters.storage import Storage, delete_if_present, update
from dialogs.contract import Clock, Conversation, ConversationKind

log = logging.getLogger(__name__)

PREFIX = "convref/"
CHAT_PREFIX = "chat/"
MEMBER_PREFIX = "member/"


def as_dict(value: object) -> dict[str, Any]:
    """A JSON object from an activity field, or {} for anything else (the sender controls these fields)."""
    return value if isinstance(value, dict) else {}


def tenant_of(activity: Activity) -> str | None:
    """The tenant is in channelData.tenant.id (conversation.tenant_id is always None in this SDK)."""
    data = as_dict(activity.channel_data)
    tenant = as_dict(data.get("tenant"))
    value = tenant.get("id") or (activity.conversation.tenant_id if activity.conversation else None)
    return str(value).lower() if value else None


def conversation_of(activity: Activity) -> Conversation:
    data = as_dict(activity.channel_data)
    team = as_dict(data.get("team"))
    channel = as_dict(data.get("channel"))
    conv = activity.conversation
    kind_text = (conv.conversation_type if conv else None) or ("groupChat" if conv and conv.is_group else "personal")
    kind: ConversationKind = "personal"
    if kind_text in ("personal", "groupChat", "channel"):
        kind = cast(ConversationKind, kind_text)
    return Conversation(
        id=conv.id if conv else "",
        kind=kind,
        tenant_id=tenant_of(activity),
        team_id=team.get("id"),
        channel_id=channel.get("id"),
    )


def channel_root(conversation_id: str) -> str:
    """`19:x@thread.tacv2;messageid=17…` (a thread) -> `19:x@thread.tacv2` (the channel); other ids unchanged."""
    return conversation_id.split(";messageid=", 1)[0]


def new_post_reference(reference: ConversationReference, conversation_id: str | None = None) -> ConversationReference:
    """A copy addressed to `conversation_id` (default: its own) that replies to nothing: a new message there."""
    fresh = copy(reference)
    if conversation_id is not None:
        fresh.conversation = copy(reference.conversation) if reference.conversation else ConversationAccount()
        fresh.conversation.id = conversation_id
    fresh.activity_id = None
    return fresh


def reference_document(activity: Activity, clock: Clock, *, channel: bool = False) -> dict[str, Any]:
    """The stored form; `channel=True`: the channel's own reference, made from a message in one of its threads."""
    conversation = conversation_of(activity)
    reference = TurnContext.get_conversation_reference(activity)
    if channel:
        reference = new_post_reference(reference, channel_root(conversation.id))
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
        self._noted: set[tuple[str, str, str, str]] = set()  # (kind, tenant, user, id) already remembered

    async def save(self, activity: Activity, *, replace: bool) -> None:
        """Save the reference; `replace=False` keeps an existing one (first message), True refreshes it (install).
        In a channel, the channel's own reference (for new posts) is saved or refreshed alongside."""
        conv_id = activity.conversation.id if activity.conversation else None
        if not conv_id:
            return
        documents = {conv_id: reference_document(activity, self.clock)}
        if conversation_of(activity).kind == "channel":
            documents[channel_root(conv_id)] = reference_document(activity, self.clock, channel=True)
        for key, document in documents.items():
            if replace or key not in self._known:
                await self._put(key, document, replace=replace)
                self._known.add(key)
        await self._note_sender(activity)

    async def _note_sender(self, activity: Activity) -> None:
        """Remember the sender's Teams id, and their personal chat with the bot (once per process)."""
        sender = activity.from_property
        aad_id = (getattr(sender, "aad_object_id", None) or "").lower() if sender else ""
        tenant = tenant_of(activity)
        if not aad_id or not tenant or sender is None:
            return
        if sender.id and sender.id.lower() != aad_id and ("member", tenant, aad_id, sender.id) not in self._noted:
            await self._put_plain(f"{MEMBER_PREFIX}{tenant}/{aad_id}", {"teams_id": sender.id})
            self._noted.add(("member", tenant, aad_id, sender.id))
        conversation = conversation_of(activity)
        if (
            conversation.kind == "personal"
            and conversation.id
            and ("chat", tenant, aad_id, conversation.id) not in self._noted
        ):
            await self.remember_private_chat(tenant, aad_id, conversation.id)
            self._noted.add(("chat", tenant, aad_id, conversation.id))

    async def _put_plain(self, key: str, value: dict[str, Any]) -> None:
        current = await self.storage.get(key)
        if current is None or current.value != value:
            await update(self.storage, key, lambda _: value)

    async def teams_id(self, tenant_id: str, user_aad_id: str) -> str | None:
        """The user's Teams id (`29:…`) as last seen in one of their activities, if any."""
        doc = await self.storage.get(f"{MEMBER_PREFIX}{tenant_id.lower()}/{user_aad_id.lower()}")
        return doc.value.get("teams_id") if doc else None

    async def remember_teams_id(self, tenant_id: str, user_aad_id: str, teams_id: str) -> None:
        await self._put_plain(f"{MEMBER_PREFIX}{tenant_id.lower()}/{user_aad_id.lower()}", {"teams_id": teams_id})

    async def personal_reference(self, tenant_id: str, user_aad_id: str) -> str | None:
        """A stored personal chat in which this user wrote to the bot (saved before `chat/` keys were kept)."""
        for key, doc in await self.storage.list(PREFIX):
            value = doc.value
            if value.get("kind") != "personal" or (value.get("tenant_id") or "").lower() != tenant_id.lower():
                continue
            user = (value.get("reference") or {}).get("user") or {}
            if str(user.get("aadObjectId") or "").lower() == user_aad_id.lower():
                return key[len(PREFIX) :]
        return None

    async def _put(self, conv_id: str, document: dict[str, Any], *, replace: bool) -> None:
        key = PREFIX + conv_id
        if not replace and await self.storage.get(key) is not None:
            return
        # replace=False and someone saved it meanwhile: theirs stays (rewritten unchanged)
        await update(self.storage, key, lambda current: document if replace or current is None else current)
        log.info("saved the conversation reference for %s (%s)", for_log(conv_id), document["kind"])

    async def load(self, conversation_id: str) -> tuple[ConversationReference, dict[str, Any]] | None:
        doc = await self.storage.get(PREFIX + conversation_id)
        if doc is None:
            return None
        return ConversationReference().deserialize(doc.value["reference"]), doc.value

    async def for_new_post(self, conversation_id: str) -> ConversationReference | None:
        """Where a proactive new message to `conversation_id` goes. A channel (or any of its threads) gets a new
        post in the channel itself: the channel's conversation id, replying to nothing."""
        root = channel_root(conversation_id)
        found = await self.load(root)
        if found is None:
            return None
        reference, doc = found
        is_channel = doc.get("kind") == "channel" or root != conversation_id
        return new_post_reference(reference, root if is_channel else None)

    async def for_update(self, conversation_id: str) -> ConversationReference | None:
        """Where an update of a message posted in `conversation_id` goes (that conversation, as recorded)."""
        found = await self.load(conversation_id) or await self.load(channel_root(conversation_id))
        return new_post_reference(found[0], conversation_id) if found else None

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
        if conversation_id is None:
            await delete_if_present(self.storage, key)
        else:
            await update(self.storage, key, lambda _current: {"conversation_id": conversation_id})
