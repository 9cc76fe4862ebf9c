"""Keeps lock-down state bounded: ended requests are deleted `lockdown.retention_days` after they ended.

The sweep never lists requests. It reads ended ones only through `lockdown/ended/<YYYY-MM-DD>/<id>`, one day
at a time, and only once that whole day is older than the retention; `lockdown/retention` remembers the last day
done, so a sweep that finds nothing due lists nothing at all. Each delete is a compare-and-set at the version
just read, so a request written meanwhile is kept (and tried again next sweep). The audit log keeps the history
of every request; Cordon never prunes it.

A store written by a version without these indexes is indexed once (`lockdown/index`), by one full listing.
"""

from __future__ import annotations

import datetime as dt
import logging

from adapters.day_buckets import sweep_days
from adapters.storage import Conflict, Storage
from dialogs.lockdown import state
from dialogs.lockdown.model import LockdownRequest
from dialogs.lockdown.state import RequestStore

log = logging.getLogger(__name__)

INDEX_KEY = "lockdown/index"  # present once every stored request has its live or ended marker
CURSOR_KEY = "lockdown/retention"  # {"done_through": "YYYY-MM-DD"}: ended-days already purged


async def ensure_indexed(st: RequestStore) -> bool:
    """Give every request of an older store its marker (once per store); True if it indexed now."""
    storage = st.storage
    if await storage.get(INDEX_KEY) is not None:
        return False
    for key, doc in await storage.list(state.REQUEST_PREFIX):
        request = LockdownRequest.from_document(doc.value)
        request_id = key[len(state.REQUEST_PREFIX) :]
        marker = (
            (st.live_key(request_id), {"since": state.iso(st.clock())})
            if request.state in state.LIVE
            else (state.ended_key(request_id, state.ended_at(request)), {"request_id": request_id})
        )
        try:
            await storage.put(*marker, None)
        except Conflict:
            pass  # indexed by its own transition, or by another process doing this too
    try:
        await storage.put(INDEX_KEY, {"version": 1, "at": state.iso(st.clock())}, None)
    except Conflict:
        pass
    return True


def _day(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


async def _first_cursor(storage: Storage, last_due: dt.date) -> dt.date:
    """Where purging starts on a store that never purged: the day before its oldest filed request (one listing
    of the small day markers, once)."""
    days = [_day(key[len(state.ENDED_PREFIX) :].split("/", 1)[0]) for key, _ in await storage.list(state.ENDED_PREFIX)]
    return min([*days, last_due + dt.timedelta(days=1)]) - dt.timedelta(days=1)


async def purge_ended(st: RequestStore, retention: dt.timedelta) -> int:
    """Delete requests that ended more than `retention` ago; returns how many were deleted."""
    storage = st.storage
    cutoff = st.clock() - retention
    last_due = cutoff.astimezone(dt.UTC).date() - dt.timedelta(days=1)  # every request ended that day is due
    cursor = await storage.get(CURSOR_KEY)
    if cursor is None:
        first = await _first_cursor(storage, last_due)
        try:
            await storage.put(CURSOR_KEY, {"done_through": first.isoformat()}, None)
        except Conflict:
            pass  # another process started purging at the same moment
        cursor = await storage.get(CURSOR_KEY)
        if cursor is None:
            return 0
    version = cursor.version
    deleted = 0

    async def purge_day(day: dt.date) -> bool:
        nonlocal deleted, version
        complete = True
        for key, marker in await storage.list(f"{state.ENDED_PREFIX}{day.isoformat()}/"):
            outcome = await _purge_one(st, key, marker.version, key.rsplit("/", 1)[-1], cutoff)
            deleted += outcome == "deleted"
            complete = complete and outcome != "busy"
        if not complete:
            return False  # a request changed under us: this day again next sweep
        try:
            version = await storage.put(CURSOR_KEY, {"done_through": day.isoformat()}, version)
        except Conflict:
            return False  # another process purges too; it moved the cursor
        return True

    await sweep_days(_day(cursor.value["done_through"]), last_due, purge_day)
    if deleted:
        log.info("lock-down: deleted %d requests ended more than %s ago", deleted, retention)
    return deleted


async def _purge_one(
    st: RequestStore, marker_key: str, marker_version: int, request_id: str, cutoff: dt.datetime
) -> str:
    """deleted | kept (re-filed, or not ended) | gone | busy (written meanwhile: try again)."""
    storage = st.storage
    doc = await storage.get(st.key(request_id))
    outcome = "gone"
    if doc is not None:
        request = LockdownRequest.from_document(doc.value)
        if request.state not in state.TERMINAL:
            outcome = "kept"  # cannot happen (only ended requests are filed); its live marker covers it
        elif state.ended_at(request) > cutoff:
            outcome = "kept"
            try:
                await storage.put(
                    state.ended_key(request_id, state.ended_at(request)), {"request_id": request_id}, None
                )
            except Conflict:
                pass
        else:
            try:
                await storage.delete(st.key(request_id), doc.version)
            except Conflict:
                return "busy"
            outcome = "deleted"
            await _drop_user_index(storage, st, request)
    try:
        await storage.delete(marker_key, marker_version)
    except Conflict:
        pass
    return outcome


async def _drop_user_index(storage: Storage, st: RequestStore, request: LockdownRequest) -> None:
    """The user's index entry goes with its request, unless a newer request took it meanwhile."""
    key = st.active_key(request.tenant_id, request.target.id)
    index = await storage.get(key)
    if index is not None and index.value.get("request_id") == request.id:
        try:
            await storage.delete(key, index.version)
        except Conflict:
            pass
