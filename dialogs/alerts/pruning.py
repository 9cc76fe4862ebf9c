"""Keeps alert state bounded: old card documents and idle conversation documents are deleted, hourly.

What grows and what bounds it:
  alerts/tenant/<tenant>  seen ids: pruned on every poll (state.prune_seen: kept ≥ `seen_retention_hours`, ≥ 48 h,
                          and while the query window can still return them), so de-duplication survives restarts
  alerts/outbox/<tenant>  an alert leaves it once the connector accepted it (or its subscription is gone); hourly
                          send counts older than 25 h are dropped: storm control needs 24 h
  alerts/card/<id>        one per posted card, for its buttons and the "same user within an hour" rule: deleted
                          here `alerts.card_retention_days` after it was posted (its buttons then say so)
  alerts/conv/<conv>      storm-control state of a conversation: deleted here once every part of it is older than
                          the window it is used in (10 min for the digest and the card budget, 1 h for users)
A card id starts with the day it was posted (`YYYYMMDD` + 24 random hex digits), so old cards are found by
listing one day's key range; `alerts/retention` remembers the last day done and when to run next. Every delete is
a compare-and-set at the version just read: a card pressed meanwhile is kept until the next pass.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from adapters.day_buckets import sweep_days
from adapters.storage import Conflict, Document, Storage
from dialogs.alerts.delivery import CARD_PREFIX, CONV_PREFIX, STORM_WINDOW, USER_CARD_WINDOW
from dialogs.alerts.model import iso, parse_time

log = logging.getLogger(__name__)

CURSOR_KEY = "alerts/retention"
EVERY = dt.timedelta(hours=1)
_DAY = re.compile(r"^(\d{8})[0-9a-f]{24}$")


def _card_day(card_id: str) -> dt.date | None:
    match = _DAY.match(card_id)
    if match is None:
        return None
    try:
        return dt.datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        return None


async def prune(storage: Storage, now: dt.datetime, card_retention: dt.timedelta, *, force: bool = False) -> int:
    """One pass if an hour has passed since the last one (any process); returns how many documents went."""
    cursor = await storage.get(CURSOR_KEY)
    state = dict(cursor.value) if cursor else {}
    due = parse_time(state.get("next_at"))
    if not force and due is not None and now < due:
        return 0
    state["next_at"] = iso(now + EVERY)
    try:  # claim the pass: of several processes, one prunes this hour
        version = await storage.put(CURSOR_KEY, state, cursor.version if cursor else None)
    except Conflict:
        return 0
    cutoff = now - card_retention
    last_due = cutoff.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    if "cards_done_through" not in state:  # the first pass on this store lists every card, once
        oldest_day = await _oldest_card_day(storage)
        state["cards_done_through"] = (
            min(oldest_day, last_due + dt.timedelta(days=1)) - dt.timedelta(days=1) if oldest_day else last_due
        ).isoformat()
    deleted, state["cards_done_through"] = await _old_cards(storage, state["cards_done_through"], last_due)
    deleted += await _idle_conversations(storage, now)
    try:
        await storage.put(CURSOR_KEY, state, version)
    except Conflict:
        log.info("alert pruning: another process moved the cursor; it continues next hour")
    if deleted:
        log.info("alert pruning deleted %d old documents", deleted)
    return deleted


async def _delete(storage: Storage, key: str, doc: Document) -> bool:
    try:
        await storage.delete(key, doc.version)
        return True
    except Conflict:
        return False  # written meanwhile (a press, an update): kept, looked at again next pass


async def _old_cards(storage: Storage, done_through: str, last_due: dt.date) -> tuple[int, str]:
    """Delete the cards of every day that is now wholly older than the retention; (deleted, last day done)."""
    deleted = 0

    async def purge_day(day: dt.date) -> bool:
        nonlocal deleted
        complete = True
        for key, doc in await storage.list(f"{CARD_PREFIX}{day:%Y%m%d}"):
            if _card_day(key[len(CARD_PREFIX) :]) != day:
                continue  # not a card id of this day
            if await _delete(storage, key, doc):
                deleted += 1
            else:
                complete = False
        return complete

    done = await sweep_days(dt.date.fromisoformat(done_through), last_due, purge_day)
    return deleted, done.isoformat()


async def _oldest_card_day(storage: Storage) -> dt.date | None:
    days = [_card_day(key[len(CARD_PREFIX) :]) for key, _ in await storage.list(CARD_PREFIX)]
    return min((d for d in days if d is not None), default=None)


def _idle(value: dict[str, Any], now: dt.datetime) -> bool:
    """Nothing in this storm-control document is still used: dropping it changes no decision."""

    def older(moment: str | None, window: dt.timedelta) -> bool:
        when = parse_time(moment)
        return when is None or now - when >= window

    return (
        all(older(t, STORM_WINDOW) for t in value.get("recent", []))
        and all(older(u.get("posted_at"), USER_CARD_WINDOW) for u in value.get("users", {}).values())
        and older((value.get("digest") or {}).get("started_at"), STORM_WINDOW)
    )


async def _idle_conversations(storage: Storage, now: dt.datetime) -> int:
    deleted = 0
    for key, doc in await storage.list(CONV_PREFIX):
        if _idle(doc.value, now) and await _delete(storage, key, doc):
            deleted += 1
    return deleted
