"""Storm control and proactive delivery of alert cards.

One card per user per hour (later detections update it in place), at most N new cards per conversation per ten
minutes (the rest folded into one digest card), and retries with backoff when the connector throttles or fails.
State (`alerts/conv/<conversation id>`, `alerts/card/<card id>`) is in the shared store so the buttons and other
processes see the same cards.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import os
import random
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

from adapters.storage import update
from dialogs.alerts.cards import alert_card, digest_card
from dialogs.alerts.documents import AlertCard
from dialogs.alerts.model import Detection, iso, parse_time, rank
from dialogs.contract import DeliveryError, Reply, Services

log = logging.getLogger(__name__)

Outcome = Literal["sent", "updated", "digest", "retry", "gone", "undeliverable", "dropped"]
Settle = Callable[[list[str], Outcome], Awaitable[None]]

CONV_PREFIX = "alerts/conv/"
DIGEST_LOCK_PREFIX = "alerts/digestlock/"  # one digest writer per conversation across every instance
DIGEST_LOCK_SECONDS = 180.0  # longer than a fold can take (connector retries: 3 waits of at most MAX_DELAY)
DIGEST_LOCK_WAIT = 10.0  # then the folded alerts stay pending for the next cycle
CARD_PREFIX = "alerts/card/"
USER_CARD_WINDOW = dt.timedelta(hours=1)
STORM_WINDOW = dt.timedelta(minutes=10)
ATTEMPTS = 4
BASE_DELAY = 1.0
MAX_DELAY = 30.0
RECENT_KEPT = 5
IDS_KEPT = 100
DIGEST_KEPT = 50


def card_key(card_id: str) -> str:
    return f"{CARD_PREFIX}{card_id}"


def new_card_id(now: dt.datetime) -> str:
    """32 hex digits as before (the buttons' format), the first 8 the posting day (`YYYYMMDD`), so that
    dialogs/alerts/pruning.py finds a day's old cards by one key range instead of reading every card."""
    return f"{now.astimezone(dt.UTC):%Y%m%d}{secrets.token_hex(12)}"


class GiveUp(Exception):
    """The connector kept failing within this cycle; the alert stays pending for the next one."""


def new_card(card_id: str, tenant_name: str, conv: str, dets: list[Detection], now: dt.datetime) -> AlertCard:
    first = dets[0]
    doc: dict[str, Any] = {
        "id": card_id,
        "tenant_id": first.tenant_id,
        "tenant_name": tenant_name,
        "conversation_id": conv,
        "message_id": None,
        "user_id": first.user_id,
        "upn": first.upn,
        "user_name": first.user_name,
        "posted_at": iso(now),
        "count": 1,
        "ids": [first.id],
        "latest": first.to_json(),
        "recent": [first.to_json()],
        "events": [],
        "confirmed": None,
        "dismissed": None,
        "lockdown": None,
    }
    return add_detections(AlertCard.from_document(doc), dets[1:])


def new_card_doc(card_id: str, tenant_name: str, conv: str, dets: list[Detection], now: dt.datetime) -> dict[str, Any]:
    """A new card as the JSON stored."""
    return new_card(card_id, tenant_name, conv, dets, now).to_document()


def add_detections(card: AlertCard, dets: list[Detection]) -> AlertCard:
    """Fold more detections into a user's card, as a new object (idempotent: a re-sent detection is not counted
    twice)."""
    card = card.model_copy(deep=True)
    for det in dets:
        if det.id in card.ids:
            continue
        card.ids = [*card.ids, det.id][-IDS_KEPT:]
        card.count = card.count + 1
        recent = sorted([det.to_json(), *card.recent], key=lambda d: d["detected_at"], reverse=True)
        card.recent = recent[:RECENT_KEPT]
        if _shows_better(det, Detection.from_json(card.latest)):
            card.latest = det.to_json()
    return card


def _shows_better(det: Detection, shown: Detection) -> bool:
    """Whether `det` should head the card instead of `shown`. A sign-in detection carries what a technician acts on
    (IP, place, app); the user's risk changing after it (usually because of it) is listed below, not in its place."""
    if det.kind != shown.kind:
        return det.kind == "detection"
    return det.detected >= shown.detected or rank(det.risk_level) > rank(shown.risk_level)


class Deliverer:
    """Delivers one conversation's pending alerts: grouped by user, then the rest folded into the digest."""

    def __init__(
        self,
        services: Services,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.services = services
        self.storage = services.storage
        self.sleep = sleep
        self.rng = rng or random.Random()
        self._locks: dict[str, asyncio.Lock] = {}
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    @contextlib.asynccontextmanager
    async def _digest_lock(self, conv: str) -> AsyncIterator[bool]:
        """The conversation's digest across instances (pollers of other tenants may fold into the same digest
        from another instance): a lease in storage, waited for up to DIGEST_LOCK_WAIT s; yields False if not had."""
        from dialogs.alerts.state import Lease

        lease = Lease(self.storage, conv, self.owner, DIGEST_LOCK_SECONDS, key=f"{DIGEST_LOCK_PREFIX}{conv}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DIGEST_LOCK_WAIT
        while not await lease.acquire(self.services.clock()):
            if loop.time() >= deadline:
                log.info("digest of %s is being written by another instance; folding next cycle", conv)
                yield False
                return
            await asyncio.sleep(self.rng.uniform(0.02, 0.2))  # real time: the other instance really works
        try:
            yield True
        finally:
            await lease.release()

    @property
    def messenger(self) -> Any:
        return self.services.messenger

    async def deliver(self, tenant_name: str, conv: str, dets: list[Detection], settle: Settle) -> None:
        """Post or fold `dets` (oldest first); `settle(ids, outcome)` is awaited as soon as each group is done.

        Outcomes: sent / updated / digest (accepted by the connector), retry (stays pending), gone (bot removed).
        """
        groups: dict[str, list[Detection]] = {}
        for det in dets:
            groups.setdefault(det.user_id, []).append(det)
        lock = self._locks.setdefault(conv, asyncio.Lock())  # one digest/rate decision at a time per conversation
        async with lock:
            folded: list[Detection] = []
            remaining = list(groups.values())
            while remaining:
                group = remaining.pop(0)
                outcome = await self._guard(conv, functools.partial(self._user_group, tenant_name, conv, group))
                if outcome is None:
                    folded.extend(group)
                    continue
                await settle([d.id for d in group], outcome)
                if outcome in ("gone", "retry"):  # the conversation is unreachable: leave the rest for later
                    for rest in remaining:
                        await settle([d.id for d in rest], outcome)
                    remaining = []
                    break
            if folded:
                async with self._digest_lock(conv) as held:
                    outcome = await self._guard(conv, lambda: self._fold_into_digest(conv, folded)) if held else "retry"
                await settle([d.id for d in folded], outcome or "digest")

    async def _guard(self, conv: str, step: Callable[[], Awaitable[Outcome | None]]) -> Outcome | None:
        try:
            return await step()
        except DeliveryError as exc:
            if exc.gone:
                return "gone"
            log.warning("alerts to %s not delivered: %s", conv, exc)
            return "retry"
        except GiveUp as exc:
            log.warning("alerts to %s not delivered, will retry next cycle: %s", conv, exc)
            return "retry"

    async def _call(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """Run a connector call, retrying 429/5xx/transport failures with backoff (gone: raised at once)."""
        for attempt in range(ATTEMPTS):
            try:
                return await make()
            except DeliveryError as exc:
                if exc.gone:
                    raise
                if exc.status is not None and exc.status != 429 and exc.status < 500:
                    raise GiveUp(str(exc)) from exc  # e.g. 401: a configuration problem, not worth hammering
                if exc.retry_after is not None and exc.retry_after > MAX_DELAY * 2:
                    raise GiveUp(f"connector asked to wait {exc.retry_after:.0f} s") from exc
                reason: BaseException = exc
                wait = exc.retry_after
            except (OSError, TimeoutError, ConnectionError) as exc:
                reason, wait = exc, None
            if attempt == ATTEMPTS - 1:
                raise GiveUp(str(reason)) from reason
            if wait is None:
                wait = min(MAX_DELAY, BASE_DELAY * 2**attempt) * self.rng.uniform(0.5, 1.0)
            await self.sleep(wait)
        raise GiveUp("unreachable")

    async def _user_group(self, tenant_name: str, conv: str, dets: list[Detection]) -> Outcome | None:
        """Update the user's card of the last hour, or post a new one if the storm budget allows (None: fold)."""
        now = self.services.clock()
        first = dets[0]
        key = f"{first.tenant_id}/{first.user_id}"
        conv_doc = await self.storage.get(CONV_PREFIX + conv)
        entry = (conv_doc.value if conv_doc else {}).get("users", {}).get(key)
        posted = parse_time(entry.get("posted_at")) if entry else None
        if entry and posted and now - posted < USER_CARD_WINDOW:
            if await self._update_user_card(conv, entry["card_id"], dets):
                return "updated"
        card_id = new_card_id(now)
        if not await self._reserve(conv, key, card_id, now):
            return None
        try:
            await self._new_card(card_id, tenant_name, conv, dets, now)
        except BaseException:
            await self._release(conv, key, card_id, now)
            raise
        return "sent"

    async def _update_user_card(self, conv: str, card_id: str, dets: list[Detection]) -> bool:
        doc = await self.storage.get(card_key(card_id))
        card = AlertCard.from_document(doc.value) if doc else None
        message_id = card.message_id if card else None
        if card is None or not message_id:  # never accepted by the connector (a crash mid-send): post anew
            return False
        if card.dismissed is not None and card.dismissed.state == "done":
            return False  # an approver called it a false alarm: a later detection is news, not a silent edit
        value = add_detections(card, dets)
        try:
            await self._call(lambda: self.messenger.update(conv, message_id, Reply(card=alert_card(value))))
        except DeliveryError as exc:
            if not exc.gone:
                raise
            log.info("alert card %s is gone from %s; posting a new one", card_id, conv)
            return False  # the message was deleted (or the bot removed: the new send will say so)
        await update(
            self.storage,
            card_key(card_id),
            lambda v: add_detections(AlertCard.from_document(v) if v else value, dets).to_document(),
        )
        return True

    async def _reserve(self, conv: str, user_key: str, card_id: str, now: dt.datetime) -> bool:
        """Take one of the conversation's new-card slots and name the user's card, in one write (False: none left)."""
        limit = self.services.config.alerts.max_cards_per_10_minutes
        granted = [False]

        def change(value: dict[str, Any] | None) -> dict[str, Any]:
            value = dict(value or {})
            recent = [t for t in value.get("recent", []) if (p := parse_time(t)) and now - p < STORM_WINDOW]
            granted[0] = len(recent) < limit
            users = {
                k: u
                for k, u in value.get("users", {}).items()
                if (p := parse_time(u.get("posted_at"))) and now - p < USER_CARD_WINDOW
            }
            if granted[0]:
                recent.append(iso(now))
                users[user_key] = {"card_id": card_id, "posted_at": iso(now)}
            value["recent"], value["users"] = recent, users
            return value

        await update(self.storage, CONV_PREFIX + conv, change)
        return granted[0]

    async def _release(self, conv: str, user_key: str, card_id: str, now: dt.datetime) -> None:
        """The send failed: give the slot back and forget the card that was never posted."""

        def change(value: dict[str, Any] | None) -> dict[str, Any]:
            value = dict(value or {})
            recent = list(value.get("recent", []))
            if iso(now) in recent:
                recent.remove(iso(now))
            users = dict(value.get("users", {}))
            if users.get(user_key, {}).get("card_id") == card_id:
                del users[user_key]
            value["recent"], value["users"] = recent, users
            return value

        await update(self.storage, CONV_PREFIX + conv, change)

    async def _new_card(
        self, card_id: str, tenant_name: str, conv: str, dets: list[Detection], now: dt.datetime
    ) -> None:
        card = new_card(card_id, tenant_name, conv, dets, now)
        await self.storage.put(card_key(card_id), card.to_document(), None)  # before sending: a press may come at once
        message_id = await self._call(lambda: self.messenger.send(conv, Reply(card=alert_card(card))))

        def posted(value: dict[str, Any] | None) -> dict[str, Any]:
            stored = AlertCard.from_document(value) if value else card.model_copy()
            stored.message_id = message_id
            return stored.to_document()

        await update(self.storage, card_key(card_id), posted)

    async def _fold_into_digest(self, conv: str, dets: list[Detection]) -> Outcome:
        now = self.services.clock()
        doc = await self.storage.get(CONV_PREFIX + conv)
        digest = dict((doc.value if doc else {}).get("digest") or {})
        started = parse_time(digest.get("started_at"))
        current = bool(digest.get("message_id")) and started is not None and now - started < STORM_WINDOW
        if not current:
            digest = {"started_at": iso(now), "message_id": None, "count": 0, "items": [], "ids": []}
        fresh = [d for d in dets if d.id not in digest.get("ids", [])]  # a re-send after a crash folds nothing twice
        if not fresh and current:
            return "digest"
        digest["count"] = int(digest.get("count", 0)) + len(fresh)
        digest["items"] = [*digest.get("items", []), *(d.to_json() for d in fresh)][-DIGEST_KEPT:]
        digest["ids"] = [*digest.get("ids", []), *(d.id for d in fresh)][-IDS_KEPT * 5 :]
        if current:
            message_id = digest["message_id"]
            try:
                await self._call(lambda: self.messenger.update(conv, message_id, Reply(card=digest_card(digest))))
            except DeliveryError as exc:
                if not exc.gone:
                    raise
                current = False  # the digest message was deleted: start a new one
        if not current:
            digest = {**digest, "started_at": iso(now)}
            digest["message_id"] = await self._call(lambda: self.messenger.send(conv, Reply(card=digest_card(digest))))
        await update(self.storage, CONV_PREFIX + conv, lambda v: {**(v or {}), "digest": digest})
        return "digest"
