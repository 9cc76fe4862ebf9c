"""One turn of the Teams bot: turn an activity into a plain command or card action for the router.

Messages lose the bot's @mention (channel, group chat, personal; case-insensitive), the sender is identified by
`from.aadObjectId` with UPN and name from the Teams roster (cached; a failing roster call never stops the turn),
`adaptiveCard/action` invokes and `Action.Submit` messages reach the same action handlers, and conversation
references are saved on install and on the first message.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.schema import Activity, ActivityTypes

from adapters.safe_text import for_log
from bot.outbox import TurnOutbox
from bot.posted_cards import PostedCards, RecordingMessenger, RecordingOutbox
from bot.proactive import BotMessenger
from bot.references import ReferenceStore, as_dict, conversation_of, tenant_of
from dialogs.contract import ActionResult, Actor, DeliveryError, Reply
from dialogs.router import Router

log = logging.getLogger(__name__)

CARD_ACTION_INVOKE = "adaptiveCard/action"
ROSTER_TTL_SECONDS = 600.0
ROSTER_MAX = 5000
ROSTER_TIMEOUT_SECONDS = 3.0  # the SDK retries a failing roster GET with backoff; do not hold the turn for it
_AT_TAG = re.compile(r"<at\b[^>]*>(.*?)</at>", re.IGNORECASE | re.DOTALL)


def strip_mention(activity: Activity) -> str:
    """The message text without the bot's own @mention(s); other mentions keep their plain name."""
    text = activity.text or ""
    bot_id = activity.recipient.id if activity.recipient else None
    for entity in activity.entities or []:
        if (entity.type or "").lower() != "mention":
            continue
        props = entity.additional_properties or {}
        mentioned = props.get("mentioned") or {}
        if mentioned.get("id") != bot_id:
            continue
        mention_text = props.get("text") or f"<at>{mentioned.get('name', '')}</at>"
        for candidate in {mention_text, html.unescape(mention_text)}:
            text = re.sub(re.escape(candidate), " ", text, flags=re.IGNORECASE)
    text = _AT_TAG.sub(lambda m: m.group(1), text)  # someone else's mention: keep the name
    return " ".join(html.unescape(text).split())


class RosterCache:
    """UPN and display name per (tenant, user) from `TeamsInfo.get_member`, kept for a few minutes."""

    def __init__(self, ttl: float = ROSTER_TTL_SECONDS, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.now = monotonic
        self._entries: OrderedDict[tuple[str, str], tuple[float, str | None, str | None]] = OrderedDict()

    async def lookup(self, context: TurnContext, tenant: str | None, aad_id: str) -> tuple[str | None, str | None]:
        key = (tenant or "", aad_id.lower())
        hit = self._entries.get(key)
        if hit and self.now() - hit[0] < self.ttl:
            return hit[1], hit[2]
        from botbuilder.core.teams import TeamsInfo

        try:
            member = await asyncio.wait_for(
                TeamsInfo.get_member(context, context.activity.from_property.id), ROSTER_TIMEOUT_SECONDS
            )
        except Exception as exc:  # noqa: BLE001 - carry on with what the activity has
            log.warning(
                "roster lookup for %s failed (%s); using the name in the message",
                for_log(aad_id, 80),
                type(exc).__name__,
            )
            return None, None
        upn = getattr(member, "user_principal_name", None) or getattr(member, "email", None)
        name = getattr(member, "name", None)
        self._entries[key] = (self.now(), upn, name)
        self._entries.move_to_end(key)
        while len(self._entries) > ROSTER_MAX:
            self._entries.popitem(last=False)
        return upn, name


def action_response(result: ActionResult) -> dict[str, Any]:
    """The Universal Actions invoke response body."""
    if result.card is not None:
        return {"statusCode": 200, "type": "application/vnd.microsoft.card.adaptive", "value": result.card}
    return {"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": result.message or "Done."}


class CordonBot:
    """The SDK's `Bot`: `on_turn(context)` for every authenticated, tenant-checked activity."""

    def __init__(
        self,
        router: Router,
        references: ReferenceStore,
        messenger: BotMessenger | RecordingMessenger,
        *,
        dev: bool,
        roster: RosterCache | None = None,
        posted: PostedCards | None = None,
    ) -> None:
        self.posted = posted
        self.router = router
        self.references = references
        self.messenger = messenger
        self.dev = dev
        self.roster = roster or RosterCache()

    async def on_turn(self, context: TurnContext) -> None:
        activity = context.activity
        if activity.type == ActivityTypes.message:
            await self._message(context)
        elif activity.type == ActivityTypes.invoke:
            await self._invoke(context)
        elif activity.type == ActivityTypes.conversation_update:
            bot_id = activity.recipient.id if activity.recipient else None
            if any(member.id == bot_id for member in activity.members_added or []):
                await self._save_reference(activity, replace=True)
        elif activity.type == ActivityTypes.installation_update:
            if (activity.action or "add").startswith("add"):
                await self._save_reference(activity, replace=True)

    async def _actor(self, context: TurnContext) -> Actor:
        sender = context.activity.from_property
        aad_id = getattr(sender, "aad_object_id", None) if sender else None
        if not aad_id and self.dev and sender is not None:
            aad_id = sender.id  # the Emulator has no Entra ids; --dev only
        name = sender.name if sender else None
        upn = None
        if aad_id and sender is not None and sender.aad_object_id:
            upn, roster_name = await self.roster.lookup(context, tenant_of(context.activity), aad_id)
            name = roster_name or name
        return Actor(aad_id=aad_id.lower() if aad_id else None, upn=upn, name=name)

    async def _save_reference(self, activity: Activity, *, replace: bool) -> None:
        try:
            await self.references.save(activity, replace=replace)
        except Exception:  # noqa: BLE001 - a storage hiccup must not cost the user their answer
            log.exception("could not save the conversation reference for %s", for_log(activity.conversation.id))

    async def _message(self, context: TurnContext) -> None:
        activity = context.activity
        await self._save_reference(activity, replace=False)
        outbox = self._outbox(context)
        if isinstance(activity.value, dict) and isinstance(activity.value.get("verb"), str):
            await self._submit(context, outbox)
            return
        replies = await self.router.handle_text(
            strip_mention(activity),
            await self._actor(context),
            tenant_of(activity),
            conversation_of(activity),
            outbox,
            message_id=activity.id,
        )
        for reply in replies:
            await self._post(outbox, reply)

    async def _post(self, outbox: TurnOutbox, reply: Reply) -> None:
        try:
            await outbox.send(reply)
        except DeliveryError as exc:
            log.warning("could not deliver a reply: %s", for_log(exc, 300))

    def _outbox(self, context: TurnContext) -> TurnOutbox:
        return (
            RecordingOutbox(context, self.messenger, self.posted)
            if self.posted
            else TurnOutbox(context, self.messenger)
        )

    async def _own_card(self, activity: Activity, verb: str, data: dict[str, Any]) -> str | None:
        """The pressed card's message id, if Cordon posted it for this verb's family and request (see
        `bot.posted_cards`); None otherwise, so nothing replaces a card that is not the press's own."""
        card_id = activity.reply_to_id
        if not card_id or self.posted is None:
            return card_id if self.posted is None else None
        if await self.posted.may_replace(conversation_of(activity).id, card_id, verb, data):
            return card_id
        log.warning(
            "a %s press named message %s, which is not a card Cordon posted for it: it will not be updated",
            for_log(verb, 60),
            for_log(card_id, 80),
        )
        return None

    async def _submit(self, context: TurnContext, outbox: TurnOutbox) -> None:
        """Action.Submit (older clients): the card's data arrives as a message `value` holding `verb`."""
        activity = context.activity
        data = dict(activity.value)
        verb = data.pop("verb")
        card_id = await self._own_card(activity, verb, data)
        result = await self.router.handle_action(
            verb,
            data,
            await self._actor(context),
            tenant_of(activity),
            conversation_of(activity),
            outbox,
            card_message_id=card_id,
        )
        if result.card is not None and card_id:
            try:
                await outbox.update(card_id, Reply(card=result.card))
                return
            except DeliveryError as exc:
                log.warning(
                    "could not update card %s in place (%s); posting it instead",
                    for_log(card_id, 80),
                    for_log(exc, 300),
                )
        reply = Reply(card=result.card) if result.card is not None else Reply(text=result.message or "Done.")
        await self._post(outbox, reply)

    async def _invoke(self, context: TurnContext) -> None:
        activity = context.activity
        await self._save_reference(activity, replace=False)  # also the presser's Teams id, for a 1:1 chat later
        if activity.name != CARD_ACTION_INVOKE:
            await _answer(context, InvokeResponse(status=501))
            return
        action = as_dict(as_dict(activity.value).get("action"))
        verb = action.get("verb")
        data = as_dict(action.get("data"))
        if not isinstance(verb, str) or not verb:
            body = {
                "statusCode": 400,
                "type": "application/vnd.microsoft.error",
                "value": {"code": "BadRequest", "message": "the card action has no verb"},
            }
            await _answer(context, InvokeResponse(status=200, body=body))
            return
        result = await self.router.handle_action(
            verb,
            data,
            await self._actor(context),
            tenant_of(activity),
            conversation_of(activity),
            self._outbox(context),
            card_message_id=await self._own_card(activity, verb, data),
        )
        await _answer(context, InvokeResponse(status=200, body=action_response(result)))


async def _answer(context: TurnContext, response: InvokeResponse) -> None:
    await context.send_activity(Activity(type=ActivityTypes.invoke_response, value=response))
