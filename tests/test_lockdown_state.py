"""The lock-down request state machine over real storage (memory and SQLite): one winner per transition."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from adapters.storage import MemoryStorage, SQLiteStorage
from dialogs.lockdown import state
from dialogs.lockdown.model import Decision, LockdownRequest
from dialogs.lockdown.state import RequestStore
from tests.support.graph_standin.lockdown_world import START, Clock

TENANT = "3f1e6f43-7d38-4b0e-9a51-1c0f3f0c7a11"


@pytest.fixture(params=["memory", "sqlite", "azure"])
async def storage(request, tmp_path):
    if request.param == "azure":
        store = request.getfixturevalue("azure_store_factory")()
    else:
        store = MemoryStorage() if request.param == "memory" else SQLiteStorage(tmp_path / "cordon.db")
    yield store
    await store.close()


def new_document(user_id: str = "u-1", minutes: int = 30) -> dict:
    return {
        "id": state.new_request_id(),
        "nonce": state.new_nonce(),
        "kind": "lockdown",
        "state": state.PENDING,
        "tenant_id": TENANT,
        "tenant_name": "Contoso",
        "target": {"id": user_id, "upn": f"{user_id}@contoso.com", "name": user_id},
        "requester": {"aad_id": "r"},
        "requested_in": {},
        "offered": {"block_sign_in": True},
        "created_at": state.iso(START),
        "expires_at": state.iso(START + dt.timedelta(minutes=minutes)),
    }


def new_request(user_id: str = "u-1", minutes: int = 30) -> LockdownRequest:
    return LockdownRequest.from_document(new_document(user_id, minutes))


async def test_requests_are_stored_in_a_versioned_format_and_malformed_ones_are_refused(storage) -> None:
    from pydantic import ValidationError

    st = RequestStore(storage, Clock())
    created = await st.create(new_request())
    stored = await storage.get(st.key(created.id))
    assert stored is not None and stored.value["format"] == 1
    typed = (await st.get(created.id)).request
    assert typed.requester.aad_id == "r" and typed.state == "pending" and typed.decision is None
    broken = {**new_document("u-2"), "requester": None}  # no requester: four eyes could not be checked
    with pytest.raises(ValidationError):
        LockdownRequest.from_document(broken)
    with pytest.raises(ValidationError):
        typed.requester = None  # a change in code is checked where it is made
    with pytest.raises(ValidationError):
        typed.state = "approved-by-card"
    await storage.put(st.key(broken["id"]), broken, None)
    with pytest.raises(ValidationError):
        await st.get(broken["id"])  # and a malformed stored one where it is read
    later = {**new_document("u-3"), "id": state.new_request_id(), "format": 2}
    await storage.put(st.key(later["id"]), later, None)
    with pytest.raises(ValueError, match="format 2"):
        await st.get(later["id"])


def test_request_ids_are_random_typeable_and_validated() -> None:
    ids = {state.new_request_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(state.valid_request_id(i) for i in ids)
    assert not state.valid_request_id("../../etc") and not state.valid_request_id("A" * 16)
    assert not state.valid_request_id(None) and state.new_nonce() != state.new_nonce()


async def test_one_live_request_per_user_and_concurrent_asks_make_one(storage) -> None:
    st = RequestStore(storage, Clock())
    outcomes = await asyncio.gather(*(st.create(new_request()) for _ in range(20)), return_exceptions=True)
    created = [o for o in outcomes if isinstance(o, LockdownRequest)]
    refused = [o for o in outcomes if isinstance(o, state.AlreadyActive)]
    assert len(created) == 1 and len(refused) == 19
    assert all(r.request.id == created[0].id for r in refused)
    assert (await st.live_for(TENANT, "U-1")).id == created[0].id  # object ids compared case-insensitively
    await st.create(new_request("u-2"))  # another user is independent


async def test_a_slow_first_asker_is_not_overtaken_by_a_second(storage) -> None:
    """The user's index only ever names a request that can already be read, so a second asker who sees the
    index while the first is still writing is refused instead of taking the user over."""

    claimed, resume = asyncio.Event(), asyncio.Event()

    class SlowAfterIndex:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        async def put(self, key, value, expected_version):
            version = await self.inner.put(key, value, expected_version)
            if key.startswith("lockdown/active/"):
                claimed.set()
                await resume.wait()  # the first asker stalls right after claiming the index
            return version

    st = RequestStore(SlowAfterIndex(storage), Clock())
    first = asyncio.create_task(st.create(new_request()))
    await asyncio.wait_for(claimed.wait(), 10)
    with pytest.raises(state.AlreadyActive):
        await RequestStore(storage, Clock()).create(new_request())
    resume.set()
    created = await first
    assert (await st.live_for(TENANT, "u-1")).id == created.id
    assert len(await storage.list(state.REQUEST_PREFIX)) == 1  # the loser left nothing behind


async def test_an_ended_or_expired_request_frees_the_user(storage) -> None:
    clock = Clock()
    st = RequestStore(storage, clock)
    first = await st.create(new_request())
    await st.transition(first.id, {state.PENDING}, state.REJECTED)
    second = await st.create(new_request())
    clock.advance(minutes=31)
    assert await st.live_for(TENANT, "u-1") is None
    third = await st.create(new_request(minutes=60))
    assert len({first.id, second.id, third.id}) == 3


async def test_only_allowed_moves_happen(storage) -> None:
    st = RequestStore(storage, Clock())
    request = await st.create(new_request())
    with pytest.raises(state.WrongState):
        await st.transition(request.id, {state.APPROVED}, state.RUNNING)
    with pytest.raises(ValueError, match="cannot go from pending to done"):
        await st.transition(request.id, {state.PENDING}, state.DONE)
    done = await st.transition(request.id, {state.PENDING}, state.CANCELLED)
    assert done.state == state.CANCELLED and [h.state for h in done.history] == [state.CANCELLED]
    stored = await storage.get(st.key(request.id))  # the history appended to a request stored without one
    assert [h["state"] for h in stored.value["history"]] == [state.CANCELLED]
    for target in (state.APPROVED, state.REJECTED, state.EXPIRED):
        with pytest.raises(state.WrongState):
            await st.transition(request.id, {state.PENDING}, target)
    with pytest.raises(state.WrongState):
        await st.transition("aaaaaaaaaaaaaaaa", {state.PENDING}, state.APPROVED)


async def test_fifty_concurrent_approvals_one_winner(storage) -> None:
    st = RequestStore(storage, Clock())
    request = await st.create(new_request())

    async def press(i: int) -> str:
        try:
            await st.transition(
                request.id,
                {state.PENDING},
                state.APPROVED,
                lambda r: setattr(
                    r,
                    "decision",
                    Decision.model_validate(
                        {"verdict": "approve", "at": state.iso(START), "by": {"aad_id": f"approver-{i}"}}
                    ),
                ),
            )
            return "won"
        except state.WrongState:
            return "lost"

    results = await asyncio.gather(*(press(i) for i in range(50)))
    assert results.count("won") == 1
    stored = (await st.get(request.id)).request
    winner = f"approver-{results.index('won')}"
    assert stored.state == state.APPROVED and stored.decision.by.aad_id == winner


async def test_two_storage_instances_on_one_store_one_winner(shared_store) -> None:
    a, b = shared_store.open(), shared_store.open()
    try:
        first, second = RequestStore(a, Clock()), RequestStore(b, Clock())
        request = await first.create(new_request())

        async def press(st: RequestStore, name: str) -> str | None:
            try:
                await st.transition(request.id, {state.PENDING}, state.APPROVED, lambda r: setattr(r, "by", name))
                return name
            except state.WrongState:
                return None

        winners = [
            w for w in await asyncio.gather(*(press(first if i % 2 else second, f"p{i}") for i in range(40))) if w
        ]
        assert len(winners) == 1
        assert (await second.get(request.id)).request.by == winners[0]  # a key the model does not list is kept
        assert (await first.get(request.id)).request.state == state.APPROVED
    finally:
        await a.close()
        await b.close()


async def test_expiry_follows_the_clock(storage) -> None:
    clock = Clock()
    st = RequestStore(storage, clock)
    request = await st.create(new_request(minutes=30))
    clock.advance(minutes=29, seconds=59)
    assert not state.is_expired(request, clock())
    clock.advance(seconds=1)
    assert state.is_expired(request, clock())
    with pytest.raises(state.WrongState):
        await st.transition(
            request.id, {state.PENDING}, state.APPROVED, guard=lambda r: not state.is_expired(r, clock())
        )


async def test_a_format_1_document_is_read_and_written_back_byte_for_byte(storage) -> None:
    """The stored format does not change with the model: a document as older Cordons wrote it (keys in its own
    order, keys no model lists) is the same JSON after a write that changes one field, but for that field."""
    import json

    st = RequestStore(storage, Clock())
    document = {
        **new_document(),
        "history": [{"state": state.PENDING, "at": state.iso(START), "by_hand": True}],
        "note": {"from": "a later Cordon"},
        "target": {"id": "u-1", "upn": "u-1@contoso.com", "name": "u-1", "department": "Sales"},
    }
    await storage.put(st.key(document["id"]), document, None)
    before = LockdownRequest.from_document(document).to_document()
    await st.annotate(document["id"], lambda r: None)
    after = (await storage.get(st.key(document["id"]))).value
    assert json.dumps(after, sort_keys=True) == json.dumps({**document, "format": 1}, sort_keys=True)
    assert json.dumps(after) == json.dumps(before)
    await st.annotate(document["id"], lambda r: setattr(r.target, "enabled", False))
    changed = (await storage.get(st.key(document["id"]))).value
    assert changed == {**document, "format": 1, "target": {**document["target"], "enabled": False}}
