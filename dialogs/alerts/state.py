"""Alert state in the shared store: subscriptions, per-tenant poll state, and the per-tenant poller lease.

Everything that must happen once is a compare-and-set write, so several Cordon processes sharing one store poll
each tenant once and alert on each detection once. Keys:
  alerts/sub/<tenant id>/<conversation id>  a subscription (threshold, who, broken?)
  alerts/tenant/<tenant id>                 watermarks, seen ids, licence, last poll/error, next poll
  alerts/outbox/<tenant id>                 alerts not yet accepted by the connector, alerts sent per hour
  alerts/lease/<tenant id>                  who polls the tenant right now, until when
The outbox is written before the seen ids and the watermark, so a crash in between re-queues (never drops), and
each accepted send rewrites only the small outbox, not the seen ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from adapters.storage import Conflict, Storage, update
from dialogs.alerts.model import channel_of, iso, parse_time, same_conversation

log = logging.getLogger(__name__)

SUB_PREFIX = "alerts/sub/"
TENANT_PREFIX = "alerts/tenant/"
OUTBOX_PREFIX = "alerts/outbox/"
LEASE_PREFIX = "alerts/lease/"


def sub_key(tenant_id: str, conversation_id: str) -> str:
    return f"{SUB_PREFIX}{tenant_id}/{conversation_id}"


@dataclass(frozen=True)
class Subscription:
    tenant_id: str
    tenant_name: str
    conversation_id: str
    conversation_kind: str
    level: str
    created_by: str
    created_at: str
    broken_at: str | None = None
    broken_reason: str | None = None

    @property
    def working(self) -> bool:
        return self.broken_at is None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Subscription:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


async def subscribe(storage: Storage, sub: Subscription) -> Subscription | None:
    """Create or replace the subscription (clearing a broken mark); returns the previous one, if any.

    A channel is subscribed by its own id, whichever thread `alerts on` was typed in (alerts are new posts in the
    channel); one kept under a thread's id by an older version is folded into it."""
    sub = replace(sub, conversation_id=channel_of(sub.conversation_id))
    previous: list[Subscription | None] = [None]

    def change(value: dict[str, Any] | None) -> dict[str, Any]:
        previous[0] = Subscription.from_json(value) if value else None
        return asdict(sub)

    await update(storage, sub_key(sub.tenant_id, sub.conversation_id), change)
    for older in await subscriptions(storage, sub.tenant_id):
        if older.conversation_id != sub.conversation_id and same_conversation(
            older.conversation_id, sub.conversation_id
        ):
            doc = await storage.get(sub_key(older.tenant_id, older.conversation_id))
            if doc is not None:
                try:
                    await storage.delete(sub_key(older.tenant_id, older.conversation_id), doc.version)
                except Conflict:  # changed meanwhile; the next `alerts on` folds it
                    continue
                previous[0] = previous[0] or older
    return previous[0]


async def unsubscribe(storage: Storage, conversation_id: str, tenant_id: str | None = None) -> list[Subscription]:
    """Remove this conversation's subscriptions (for one tenant, or all); returns what was removed."""
    removed = []
    for sub in await subscriptions(storage):
        if not same_conversation(sub.conversation_id, conversation_id) or (tenant_id and sub.tenant_id != tenant_id):
            continue
        doc = await storage.get(sub_key(sub.tenant_id, sub.conversation_id))
        if doc is None:
            continue
        try:
            await storage.delete(sub_key(sub.tenant_id, sub.conversation_id), doc.version)
            removed.append(sub)
        except Conflict:  # changed under us (re-subscribed, marked broken): remove the fresh one too
            fresh = await storage.get(sub_key(sub.tenant_id, sub.conversation_id))
            if fresh is not None:
                await storage.delete(sub_key(sub.tenant_id, sub.conversation_id), fresh.version)
                removed.append(sub)
    return removed


async def subscriptions(storage: Storage, tenant_id: str | None = None) -> list[Subscription]:
    prefix = SUB_PREFIX + (f"{tenant_id}/" if tenant_id else "")
    return [Subscription.from_json(doc.value) for _, doc in await storage.list(prefix)]


async def mark_broken(storage: Storage, conversation_id: str, reason: str, now: dt.datetime) -> int:
    """The bot was removed from the conversation: every subscription there (any thread of a channel) stops until
    `alerts on` again."""
    count = 0
    for sub in await subscriptions(storage):
        if not same_conversation(sub.conversation_id, conversation_id) or not sub.working:
            continue
        key = sub_key(sub.tenant_id, sub.conversation_id)
        for _ in range(20):
            doc = await storage.get(key)
            if doc is None or doc.value.get("broken_at"):  # removed or already marked meanwhile
                break
            try:
                await storage.put(key, {**doc.value, "broken_at": iso(now), "broken_reason": reason}, doc.version)
                count += 1
                break
            except Conflict:
                continue
    return count


def empty_tenant_state() -> dict[str, Any]:
    return {
        "watermark": None,  # newest detectedDateTime seen
        "user_watermark": None,  # newest riskLastUpdatedDateTime seen
        "seen": {},  # detection id -> [first seen (wall clock), detectedDateTime]
        "licence": None,  # "P2" | "P1" | "Free" | "refused" (403 non-premium) | None (unknown)
        "licence_checked_at": None,
        "last_success": None,
        "last_error": None,
        "last_error_at": None,
        "next_poll_at": None,
    }


def empty_outbox() -> dict[str, Any]:
    return {
        "pending": {},  # conversation id -> [detection json] accepted by no connector yet
        "sent_hours": {},  # "YYYY-MM-DDTHH" -> alerts accepted by the connector in that hour
    }


async def tenant_state(storage: Storage, tenant_id: str) -> tuple[dict[str, Any], int | None]:
    """The tenant's poll state with its outbox merged in (read-only view: `pending`, `sent_hours` included)."""
    doc = await storage.get(TENANT_PREFIX + tenant_id)
    box = await storage.get(OUTBOX_PREFIX + tenant_id)
    state = {**empty_tenant_state(), **(doc.value if doc else {}), **empty_outbox(), **(box.value if box else {})}
    return state, None if doc is None else doc.version


async def change_tenant_state(storage: Storage, tenant_id: str, change: Any) -> dict[str, Any]:
    """Read-modify-write of a tenant's poll state (retries on a concurrent writer)."""

    def apply(value: dict[str, Any] | None) -> dict[str, Any]:
        state = {**empty_tenant_state(), **(value or {})}
        change(state)
        return {k: v for k, v in state.items() if k not in ("pending", "sent_hours")}

    value, _ = await update(storage, TENANT_PREFIX + tenant_id, apply)
    return value


async def change_outbox(storage: Storage, tenant_id: str, change: Any) -> dict[str, Any]:
    """Read-modify-write of a tenant's outbox (retries on a concurrent writer)."""

    def apply(value: dict[str, Any] | None) -> dict[str, Any]:
        box = {**empty_outbox(), **(value or {})}
        change(box)
        box["pending"] = {conv: items for conv, items in box["pending"].items() if items}
        return box

    value, _ = await update(storage, OUTBOX_PREFIX + tenant_id, apply)
    return value


def prune_seen(state: dict[str, Any], now: dt.datetime, keep: dt.timedelta, overlap: dt.timedelta) -> None:
    """Forget ids seen more than `keep` ago, but only once the query window can no longer return them.

    A detection stays inside `detectedDateTime ge watermark - overlap` for as long as nothing newer arrives, so
    dropping its id by age alone would alert on it again two days later.
    """
    floors = {}
    for kind, key in (("detection", "watermark"), ("user", "user_watermark")):
        mark = parse_time(state.get(key))
        floors[kind] = (mark - overlap) if mark else None
    kept = {}
    for det_id, (seen_at, detected_at) in state["seen"].items():
        seen, detected = parse_time(seen_at), parse_time(detected_at)
        floor = floors["user" if det_id.startswith("user:") else "detection"]
        old = seen is not None and now - seen > keep
        reachable = floor is None or detected is None or detected >= floor
        if not old or reachable:
            kept[det_id] = [seen_at, detected_at]
    state["seen"] = kept


def count_sent(state: dict[str, Any], now: dt.datetime, count: int = 1) -> None:
    hour = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H")
    hours = state.setdefault("sent_hours", {})
    hours[hour] = hours.get(hour, 0) + count
    cutoff = (now - dt.timedelta(hours=25)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H")
    for key in [k for k in hours if k < cutoff]:
        del hours[key]


def sent_in_24h(state: dict[str, Any], now: dt.datetime) -> int:
    cutoff = (now - dt.timedelta(hours=24)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H")
    return sum(n for hour, n in state.get("sent_hours", {}).items() if hour > cutoff)


class Lease:
    """Exclusive right to poll one tenant, with an expiry so a crashed process does not block it for ever."""

    def __init__(self, storage: Storage, tenant_id: str, owner: str, seconds: float, *, key: str | None = None) -> None:
        self.storage = storage
        self.key = key or f"{LEASE_PREFIX}{tenant_id}"  # `key`: the same lease guarding something else
        self.owner = owner
        self.seconds = seconds
        self.version: int | None = None
        self.taken_at: dt.datetime | None = None
        self._writing = asyncio.Lock()  # the background renewal and the poller's own `keep` share `version`

    async def acquire(self, now: dt.datetime) -> bool:
        doc = await self.storage.get(self.key)
        if doc is not None and doc.value.get("owner") != self.owner:
            expires = parse_time(doc.value.get("expires_at"))
            if expires is not None and expires > now:
                return False
        value = {"owner": self.owner, "expires_at": iso(now + dt.timedelta(seconds=self.seconds))}
        try:
            self.version = await self.storage.put(self.key, value, None if doc is None else doc.version)
        except Conflict:
            return False
        self.taken_at = now
        return True

    async def renew(self, now: dt.datetime) -> bool:
        """Extend the lease; False if it was lost (expired and taken by another process)."""
        async with self._writing:
            if self.version is None:
                return False
            value = {"owner": self.owner, "expires_at": iso(now + dt.timedelta(seconds=self.seconds))}
            try:
                self.version = await self.storage.put(self.key, value, self.version)
            except Conflict:
                self.version = None
                return False
            self.taken_at = now
            return True

    @contextlib.asynccontextmanager
    async def kept(self, clock: Callable[[], dt.datetime]) -> AsyncIterator[None]:
        """Renew the lease every third of its length while the body runs: a throttled tenant's poll (429 backoff,
        many pages) may outlast `seconds`, and another process must not start polling it meanwhile."""
        done = asyncio.Event()

        async def renew() -> None:
            while True:
                try:
                    await asyncio.wait_for(done.wait(), self.seconds / 3)
                    return
                except TimeoutError:
                    pass
                if not await self.renew(clock()):
                    log.warning("lease %s was lost during a poll", self.key)
                    return

        task = asyncio.get_running_loop().create_task(renew())
        try:
            yield
        finally:
            done.set()  # not cancelled: a renewal half-written would leave `version` stale
            await task

    async def keep(self, now: dt.datetime) -> bool:
        """Renew only when a third of the lease has passed (fewer writes); False if it was lost."""
        if (
            self.version is not None
            and self.taken_at is not None
            and (now - self.taken_at).total_seconds() < self.seconds / 3
        ):
            return True
        return await self.renew(now)

    async def release(self) -> None:
        if self.version is None:
            return
        try:
            await self.storage.delete(self.key, self.version)
        except Conflict:
            log.info("lease %s was already taken over", self.key)
        self.version = None

    async def holder(self) -> dict[str, Any] | None:
        doc = await self.storage.get(self.key)
        return None if doc is None else doc.value
