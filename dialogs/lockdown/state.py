"""The lock-down request as a state machine in storage; every transition is one compare-and-set write.

pending → approved → running → done | partial | failed, or pending → rejected | expired | cancelled.
The store hands out and takes `model.LockdownRequest` objects: JSON exists only where a document is read or
written (validated both ways, in the versioned stored format). The state
check happens inside the CAS write, so 50 concurrent Approve presses, or two Cordon processes sharing
one SQLite file, see exactly one winner. A per-user index document makes "one live request per user" a CAS too.

Two more indexes keep the background sweep from reading every request ever made: `lockdown/live/<id>` exists
while a request may still change (written before the request, removed after it ended), and
`lockdown/ended/<YYYY-MM-DD>/<id>` files an ended request under the day it ended, so the sweep deletes it after
`lockdown.retention_days` by listing one day at a time (`dialogs/lockdown/retention.py`). Storage has no
multi-key transaction, so each index write is ordered to fail safe: a crash leaves at worst a marker the sweep
tidies up, never a live request the sweep cannot see.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from adapters.storage import Conflict, Storage
from dialogs.lockdown.model import HistoryEntry, LockdownRequest, State

log = logging.getLogger(__name__)

PENDING, APPROVED, RUNNING = "pending", "approved", "running"
DONE, PARTIAL, FAILED = "done", "partial", "failed"
REJECTED, EXPIRED, CANCELLED = "rejected", "expired", "cancelled"
LIVE = frozenset({PENDING, APPROVED, RUNNING})
TERMINAL = frozenset({DONE, PARTIAL, FAILED, REJECTED, EXPIRED, CANCELLED})

# The only moves the machine allows; `running → running` is a runner recording a step or taking over a dead lease.
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({APPROVED, REJECTED, EXPIRED, CANCELLED}),
    APPROVED: frozenset({RUNNING}),
    RUNNING: frozenset({RUNNING, DONE, PARTIAL, FAILED}),
}

REQUEST_PREFIX = "lockdown/request/"
ACTIVE_PREFIX = "lockdown/active/"
LIVE_PREFIX = "lockdown/live/"
ENDED_PREFIX = "lockdown/ended/"
LEASE = dt.timedelta(minutes=5)  # a runner that has not written for this long is presumed dead
ORPHAN_GRACE = LEASE  # a live marker whose request is missing this long is from a create that crashed halfway
_ID_ALPHABET = set("abcdefghijklmnopqrstuvwxyz234567")


def new_request_id() -> str:
    """80 random bits, lower-case base32: unguessable, and easy to type in `lockdown cancel <id>`."""
    return base64.b32encode(secrets.token_bytes(10)).decode().lower()


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def valid_request_id(value: object) -> bool:
    return isinstance(value, str) and len(value) == 16 and set(value) <= _ID_ALPHABET


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")


def parse_iso(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


class AlreadyActive(Exception):
    """A live request exists for this user; `request` is it."""

    def __init__(self, request: LockdownRequest) -> None:
        super().__init__(request.id)
        self.request = request


class WrongState(Exception):
    """The request is not in a state that allows this move (someone else decided first, or it ended)."""

    def __init__(self, request: LockdownRequest | None) -> None:
        super().__init__(request.state if request else "missing")
        self.request = request


@dataclass(frozen=True)
class Stored:
    request: LockdownRequest  # read from the stored document, validated
    version: int


def same_id(a: str | None, b: str | None) -> bool:
    """Two Entra ids (of people or tenants) are the same: compared case-insensitively; a missing id matches none."""
    return bool(a and b and a.strip().lower() == b.strip().lower())


def is_expired(request: LockdownRequest, now: dt.datetime) -> bool:
    return request.state == PENDING and now >= parse_iso(request.expires_at)


def ended_at(request: LockdownRequest) -> dt.datetime:
    """When the request reached its final state (the last history entry; `updated_at` for an older request)."""
    final = [h.at for h in request.history if h.state in TERMINAL and h.at]
    return parse_iso(final[-1] if final else request.updated_at or request.created_at)


def ended_key(request_id: str, when: dt.datetime) -> str:
    return f"{ENDED_PREFIX}{when.astimezone(dt.UTC):%Y-%m-%d}/{request_id}"


def lease_expired(request: LockdownRequest, now: dt.datetime) -> bool:
    until = request.runner.lease_until if request.runner else None
    return until is None or now >= parse_iso(until)


class RequestStore:
    """Reads and CAS-writes lock-down requests. Holds no state of its own: any number may share one storage."""

    def __init__(self, storage: Storage, clock: Callable[[], dt.datetime]) -> None:
        self.storage = storage
        self.clock = clock

    @staticmethod
    def key(request_id: str) -> str:
        return REQUEST_PREFIX + request_id

    @staticmethod
    def live_key(request_id: str) -> str:
        return LIVE_PREFIX + request_id

    @staticmethod
    def active_key(tenant_id: str, user_id: str) -> str:
        return f"{ACTIVE_PREFIX}{tenant_id}/{user_id.lower()}"

    async def get(self, request_id: str) -> Stored | None:
        if not valid_request_id(request_id):
            return None
        doc = await self.storage.get(self.key(request_id))
        return None if doc is None else Stored(LockdownRequest.from_document(doc.value), doc.version)

    async def live_for(self, tenant_id: str, user_id: str) -> LockdownRequest | None:
        """The live request for this user, if any (an expired pending one does not count)."""
        index = await self.storage.get(self.active_key(tenant_id, user_id))
        if index is None:
            return None
        stored = await self.get(index.value.get("request_id", ""))
        if stored is None or stored.request.state not in LIVE or is_expired(stored.request, self.clock()):
            return None
        return stored.request

    async def create(self, request: LockdownRequest) -> LockdownRequest:
        """Store a new pending request, unless a live one exists for the same user (raises `AlreadyActive`)."""
        index_key = self.active_key(request.tenant_id, request.target.id)
        # The live marker comes first: a request the sweep cannot find would never expire or resume.
        await self.storage.put(self.live_key(request.id), {"since": iso(self.clock())}, None)
        # The request is stored before the index points to it: an index entry always names a readable request,
        # so a concurrent asker never mistakes a half-made request for a free user.
        try:
            document = request.checked()
            await self.storage.put(self.key(request.id), document, None)
        except BaseException:
            await self._drop_live_marker(request.id)
            raise
        request = LockdownRequest.from_document(document)
        for _ in range(20):
            index = await self.storage.get(index_key)
            if index is not None:
                existing = await self.live_for(request.tenant_id, request.target.id)
                if existing is not None:
                    await self._discard(request.id)
                    raise AlreadyActive(existing)
            try:
                await self.storage.put(index_key, {"request_id": request.id}, None if index is None else index.version)
            except Conflict:
                continue  # someone asked for the same user at the same moment: look again
            return request
        await self._discard(request.id)
        raise Conflict(index_key)

    async def _discard(self, request_id: str) -> None:
        """Remove a request that never became live (it lost the race for the user's index)."""
        doc = await self.storage.get(self.key(request_id))
        if doc is not None:
            try:
                await self.storage.delete(self.key(request_id), doc.version)
            except Conflict:
                return  # written meanwhile: keep its marker, the sweep decides
        await self._drop_live_marker(request_id)

    async def _drop_live_marker(self, request_id: str, version: int | None = None) -> None:
        """Remove the live marker (at the version read, when given); a concurrent change wins."""
        if version is None:
            doc = await self.storage.get(self.live_key(request_id))
            if doc is None:
                return
            version = doc.version
        try:
            await self.storage.delete(self.live_key(request_id), version)
        except Conflict:
            pass

    async def file_ended(self, request_id: str, request: LockdownRequest, marker_version: int | None = None) -> None:
        """File an ended request under its day, then drop its live marker (in that order: a crash in between
        leaves a marker the sweep files again, never an ended request nothing will delete)."""
        try:
            await self.storage.put(ended_key(request_id, ended_at(request)), {"request_id": request_id}, None)
        except Conflict:
            pass  # filed already (the sweep and the transition may both get here)
        await self._drop_live_marker(request_id, marker_version)

    async def live(self) -> list[Stored]:
        """The requests that may still change, read through the live markers (never an ended request, except one
        whose ending was interrupted before its marker went: that one is filed now)."""
        found = []
        for key, marker in await self.storage.list(LIVE_PREFIX):
            request_id = key[len(LIVE_PREFIX) :]
            stored = await self.get(request_id)
            if stored is None:
                since = marker.value.get("since")
                if not valid_request_id(request_id) or since is None or self.clock() - parse_iso(since) > ORPHAN_GRACE:
                    await self._drop_live_marker(request_id, marker.version)
                continue
            if stored.request.state in TERMINAL:
                await self.file_ended(request_id, stored.request, marker.version)
                continue
            found.append(stored)
        return found

    async def transition(
        self,
        request_id: str,
        allowed_from: Iterable[str],
        to: str,
        change: Callable[[LockdownRequest], None] | None = None,
        guard: Callable[[LockdownRequest], bool] | None = None,
    ) -> LockdownRequest:
        """Move the request to `to` if it is in one of `allowed_from` (and `guard` holds), as one CAS write.

        A conflicting write by someone else makes us re-read and re-check, so a lost race ends in `WrongState`.
        """
        allowed = frozenset(allowed_from)
        for _ in range(50):
            stored = await self.get(request_id)
            if stored is None:
                raise WrongState(None)
            request = stored.request
            state = request.state
            if state not in allowed or (guard is not None and not guard(request)):
                raise WrongState(request)
            if to not in TRANSITIONS.get(state, frozenset()):
                raise ValueError(f"lock-down request cannot go from {state} to {to}")
            now = iso(self.clock())
            if to != state:
                request.history = [*request.history, HistoryEntry(state=cast(State, to), at=now)]
            request.state = cast(State, to)  # checked on assignment: the model validates it
            request.updated_at = now
            if change is not None:
                change(request)
            document = request.checked()
            try:
                await self.storage.put(self.key(request_id), document, stored.version)
            except Conflict:
                continue
            request = LockdownRequest.from_document(document)
            if to in TERMINAL:
                try:
                    await self.file_ended(request_id, request)
                except Exception:  # noqa: BLE001 - the move happened; the sweep files it from its live marker
                    log.warning("lock-down %s ended but could not be filed; the sweep will", request_id, exc_info=True)
            return request
        raise Conflict(self.key(request_id))

    async def annotate(self, request_id: str, change: Callable[[LockdownRequest], None]) -> LockdownRequest | None:
        """A CAS write that does not change the state (e.g. remember the card's message id)."""
        for _ in range(50):
            stored = await self.get(request_id)
            if stored is None:
                return None
            change(stored.request)
            document = stored.request.checked()
            try:
                await self.storage.put(self.key(request_id), document, stored.version)
                return LockdownRequest.from_document(document)
            except Conflict:
                continue
        raise Conflict(self.key(request_id))

    async def all(self) -> list[dict[str, Any]]:
        """Every stored request as its stored JSON document (tests, which check the stored format; the sweep reads
        `live()`)."""
        return [doc.value for _, doc in await self.storage.list(REQUEST_PREFIX)]
