"""Which cards Cordon posted, so a button press can replace only its own card.

A press names the message it came from (`replyToId`), but anyone can send Action.Submit data with any verb and any
`replyToId`: without this record, a check card (a verb anyone may use) or an error card could replace a pending
lock-down approval card, and its Approve/Reject buttons would vanish. So every card with buttons Cordon posts or
updates is recorded under `postedcard/<conversation>/<message id>` with the families of its verbs (`lockdown`,
`alerts`, ...) and the requests it shows (`request_id`, alert `card` ids). A press's card id is passed on — to be
updated in place by the turn or by the handler — only when that record exists for this conversation, the verb's
family is among the card's, and the press's request (if it names one) is the card's. Otherwise the handler runs
with no card id: its answer goes to the presser, or is posted as a new message.

Records expire (alert cards after `alerts.card_retention_days`, others after two days: lock-down requests expire
within one) and are pruned at most hourly, when a card is recorded.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

from adapters.safe_text import for_log
from adapters.storage import Conflict, Storage, update
from bot.outbox import TurnOutbox
from bot.references import channel_root
from dialogs.contract import Clock, Reply

log = logging.getLogger(__name__)

PREFIX = "postedcard/"
SUBJECT_KEYS = ("request_id", "card")  # what names the request a button acts on (lock-down, alert card)
DEFAULT_RETENTION = dt.timedelta(days=2)
PRUNE_EVERY = dt.timedelta(hours=1)


def family(verb: str) -> str:
    return verb.split(".", 1)[0].lower()


def _actions(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("type"), str) and node["type"].startswith("Action."):
            yield node
        for value in node.values():
            yield from _actions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _actions(value)


def buttons(card: dict[str, Any] | None) -> tuple[set[str], set[str]]:
    """The verb families and the request subjects of a card's Action.Execute / Action.Submit buttons."""
    families: set[str] = set()
    subjects: set[str] = set()
    for action in _actions(card or {}):
        raw = action.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        verb = action.get("verb") if isinstance(action.get("verb"), str) else data.get("verb")
        if isinstance(verb, str) and verb:
            families.add(family(verb))
            subjects |= subjects_of(data)
    return families, subjects


def subjects_of(data: dict[str, Any]) -> set[str]:
    return {str(data[key]) for key in SUBJECT_KEYS if isinstance(data.get(key), str | int) and data.get(key) != ""}


def _key(conversation_id: str, message_id: str) -> str:
    return f"{PREFIX}{channel_root(conversation_id)}/{message_id}"


class PostedCards:
    def __init__(self, storage: Storage, clock: Clock, retention: dict[str, dt.timedelta] | None = None) -> None:
        self.storage = storage
        self.clock = clock
        self.retention = retention or {}
        self._pruned_at: dt.datetime | None = None

    async def record(self, conversation_id: str, message_id: str | None, card: dict[str, Any] | None) -> None:
        """Remember a card Cordon posted (or put in place of another) if it has buttons."""
        families, subjects = buttons(card)
        if not message_id or not families:
            return
        now = self.clock()
        keep = max(self.retention.get(name, DEFAULT_RETENTION) for name in families)
        value = {
            "conversation": channel_root(conversation_id),
            "families": sorted(families),
            "subjects": sorted(subjects),
            "expires_at": (now + keep).isoformat(timespec="seconds"),
        }
        key = _key(conversation_id, message_id)
        try:
            await update(self.storage, key, lambda _: value)
            if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
                self._pruned_at = now
                await self.prune()
        except Exception:  # noqa: BLE001 - without the record a press posts a new card instead: degraded, safe
            log.warning("could not record posted card %s", for_log(message_id, 80), exc_info=True)

    async def may_replace(self, conversation_id: str, message_id: str | None, verb: str, data: dict[str, Any]) -> bool:
        """Whether a press of `verb` (with `data`) may update the message `message_id` in this conversation."""
        if not message_id:
            return False
        doc = await self.storage.get(_key(conversation_id, message_id))
        if doc is None:
            return False
        value = doc.value
        if _expired(value, self.clock()) or value.get("conversation") != channel_root(conversation_id):
            return False
        if family(verb) not in value.get("families", []):
            return False
        return subjects_of(data) <= set(value.get("subjects", []))

    async def prune(self) -> int:
        now = self.clock()
        deleted = 0
        for key, doc in await self.storage.list(PREFIX):
            if doc is not None and _expired(doc.value, now):
                try:
                    await self.storage.delete(key, doc.version)
                    deleted += 1
                except Conflict:
                    continue
        return deleted


def _expired(value: dict[str, Any], now: dt.datetime) -> bool:
    try:
        return dt.datetime.fromisoformat(value["expires_at"]) <= now
    except (KeyError, TypeError, ValueError):
        return True


class RecordingOutbox(TurnOutbox):
    """The turn's outbox, recording the cards it posts or puts in place."""

    def __init__(self, context: Any, messenger: Any, posted: PostedCards) -> None:
        super().__init__(context, messenger)
        self.posted = posted

    async def send(self, reply: Reply, conversation_id: str | None = None) -> str | None:
        message_id = await super().send(reply, conversation_id)
        if self._here(conversation_id) and not reply.replaces:  # elsewhere: the messenger records it
            await self.posted.record(self.context.activity.conversation.id, message_id, reply.card)
        return message_id

    async def update(self, message_id: str, reply: Reply, conversation_id: str | None = None) -> None:
        await super().update(message_id, reply, conversation_id)
        if self._here(conversation_id):
            await self.posted.record(self.context.activity.conversation.id, message_id, reply.card)


class RecordingMessenger:
    """The proactive messenger (`bot.proactive.BotMessenger`), recording the cards it posts or updates."""

    def __init__(self, inner: Any, posted: PostedCards) -> None:
        self.inner = inner
        self.posted = posted

    async def send(self, conversation_id: str, reply: Reply) -> str | None:
        message_id = await self.inner.send(conversation_id, reply)
        await self.posted.record(conversation_id, message_id, reply.card)
        return message_id

    async def update(self, conversation_id: str, message_id: str, reply: Reply) -> None:
        await self.inner.update(conversation_id, message_id, reply)
        await self.posted.record(conversation_id, message_id, reply.card)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # send_private, connectors, references, ... unchanged
