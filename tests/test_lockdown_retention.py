"""Lock-down state stays bounded: the sweep reads only live requests, and deletes ended ones after the retention.

Real storage (memory and SQLite), the real router and the Graph stand-in; storage calls are counted by a wrapper.
"""

from __future__ import annotations

import datetime as dt

import pytest

from adapters.storage import MemoryStorage, SQLiteStorage
from dialogs.lockdown import background, retention, state
from dialogs.lockdown.model import Decision, LockdownRequest
from dialogs.lockdown.runtime import runtime, store
from tests.support.graph_standin.lockdown_world import world_fixture  # noqa: F401 - the world fixture
from tests.test_lockdown_flow import APPROVER, Flow


@pytest.fixture(params=["memory", "sqlite", "azure"])
async def storage(request, tmp_path):
    if request.param == "azure":
        store = request.getfixturevalue("azure_store_factory")()
    else:
        store = MemoryStorage() if request.param == "memory" else SQLiteStorage(tmp_path / "cordon.db")
    yield store
    await store.close()


class Counting:
    """Storage that records every read: ("get", key) and ("list", prefix)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str]] = []
        self.on_get = None  # async hook(key) run before a get returns (to interleave a concurrent writer)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def get(self, key):
        self.calls.append(("get", key))
        doc = await self.inner.get(key)
        if self.on_get is not None:
            await self.on_get(key)
        return doc

    async def list(self, prefix):
        self.calls.append(("list", prefix))
        return await self.inner.list(prefix)

    def request_reads(self) -> set[str]:
        """Ids of requests read one by one, plus "*" if requests were listed."""
        ids = {
            key[len(state.REQUEST_PREFIX) :]
            for op, key in self.calls
            if op == "get" and key.startswith(state.REQUEST_PREFIX)
        }
        listed = any(op == "list" and state.REQUEST_PREFIX.startswith(p) for op, p in self.calls)
        return ids | ({"*"} if listed else set())


async def ended_request(flow: Flow, user: str = "alice@contoso.com") -> str:
    """Ask, then cancel: an ended request, made the way a technician makes one."""
    await flow.say(f"lockdown {user}")
    live = [r for r in await flow.requests() if r["state"] == state.PENDING]
    request_id = next(r["id"] for r in live if r["target"]["upn"] == user)
    await flow.say(f"lockdown cancel {request_id}")
    assert (await store(flow.services).get(request_id)).request.state == state.CANCELLED
    return request_id


async def test_the_sweep_reads_no_ended_request(world, storage) -> None:
    counting = Counting(storage)
    flow = Flow(world, counting)
    await background.sweep(flow.services)  # the server's first sweep on a new store
    ended = [await ended_request(flow) for _ in range(3)]
    await flow.say("lockdown bob@contoso.com")
    (bob,) = [r for r in await flow.requests() if r["state"] == state.PENDING]
    counting.calls.clear()
    await background.sweep(flow.services)
    assert counting.request_reads() == {bob["id"]}
    world.clock.advance(minutes=31)  # bob's request is due to expire: the sweep still finds it
    counting.calls.clear()
    await background.sweep(flow.services)
    assert (await store(flow.services).get(bob["id"])).request.state == state.EXPIRED
    assert not counting.request_reads() & set(ended)
    counting.calls.clear()
    await background.sweep(flow.services)
    assert counting.request_reads() == set()  # nothing live is left: not one request is read
    assert ("list", state.LIVE_PREFIX) in counting.calls


async def test_ended_requests_are_deleted_after_the_retention_and_younger_ones_kept(world, storage) -> None:
    counting = Counting(storage)
    flow = Flow(world, counting)
    await background.sweep(flow.services)
    old = await ended_request(flow)
    world.clock.advance(days=2)
    young = await ended_request(flow)
    world.clock.advance(days=89, hours=1)  # `old` ended 91 days ago, `young` 89 days ago (retention: 90 days)
    assert flow.services.config.lockdown.retention_days == 90
    await background.sweep(flow.services)
    assert await store(flow.services).get(old) is None
    assert (await store(flow.services).get(young)).request.state == state.CANCELLED
    assert "There is no lock-down request" in (await flow.say(f"lockdown cancel {old}"))[0].text
    counting.calls.clear()
    await background.sweep(flow.services)  # the same day again: no day is due, nothing ended is listed
    assert [p for op, p in counting.calls if op == "list"] == [state.LIVE_PREFIX]
    world.clock.advance(days=2)
    await background.sweep(flow.services)
    assert await store(flow.services).get(young) is None
    left = sorted(k for k, _ in await storage.list("lockdown/"))
    assert left == [retention.INDEX_KEY, retention.CURSOR_KEY]  # no request, marker or user index is left
    assert [e.command for e in await storage.audit_tail(100)].count("lockdown:cancel") == 2  # the audit stays


async def test_a_request_ended_concurrently_with_the_sweep_is_not_lost(world, storage) -> None:
    counting = Counting(storage)
    flow = Flow(world, counting)
    await background.sweep(flow.services)
    await flow.say("lockdown alice@contoso.com")
    (request,) = await flow.requests()
    other = state.RequestStore(storage, world.clock)  # a second process, deciding while the sweep runs
    world.clock.advance(minutes=31)

    async def reject_meanwhile(key: str) -> None:
        if key == state.REQUEST_PREFIX + request["id"]:
            counting.on_get = None
            await other.transition(request["id"], {state.PENDING}, state.REJECTED)

    counting.on_get = reject_meanwhile  # the sweep reads the request as pending and due, then it is rejected
    await background.sweep(flow.services)
    current = (await store(flow.services).get(request["id"])).request
    assert current.state == state.REJECTED  # the sweep's expiry lost the compare-and-set; nothing overwritten
    assert await storage.get(state.LIVE_PREFIX + request["id"]) is None
    assert await storage.get(state.ended_key(request["id"], state.ended_at(current))) is not None

    world.clock.advance(days=92)

    async def annotate_meanwhile(key: str) -> None:
        if key == state.REQUEST_PREFIX + request["id"]:
            counting.on_get = None
            await other.annotate(request["id"], lambda r: setattr(r, "note", "written during the purge"))

    counting.on_get = annotate_meanwhile  # a write between the purge's read and its delete
    await background.sweep(flow.services)
    kept = await store(flow.services).get(request["id"])
    assert kept is not None and kept.request.note == "written during the purge"  # not deleted under a writer
    await background.sweep(flow.services)  # the day was left open, so the next sweep deletes it
    assert await store(flow.services).get(request["id"]) is None


def approve_without_running(request: LockdownRequest) -> None:
    """As if the process crashed right after the approval, before its run started."""
    request.decision = Decision.model_validate(
        {
            "verdict": "approve",
            "at": request.created_at,
            "comment": "",
            "steps": ["block_sign_in"],
            "by": {"aad_id": APPROVER.aad_id, "upn": APPROVER.upn, "name": APPROVER.name, "tenant_id": None},
        }
    )


async def test_resume_after_restart_reads_only_live_requests(world, shared_store) -> None:
    first = Flow(world, shared_store.open())
    await background.sweep(first.services)
    ended = [await ended_request(first) for _ in range(3)]
    await first.say("lockdown alice@contoso.com")
    (pending,) = [r for r in await first.requests() if r["state"] == state.PENDING]
    await store(first.services).transition(pending["id"], {state.PENDING}, state.APPROVED, approve_without_running)
    await first.services.storage.close()

    counting = Counting(shared_store.open())  # the restarted process
    second = Flow(world, counting)
    await background.sweep(second.services)
    await runtime(second.services).drain()
    done = (await store(second.services).get(pending["id"])).request
    assert done.state == state.DONE and done.results["block_sign_in"]["status"] == "ok"
    assert len(world.writes("block")) == 1
    assert not counting.request_reads() & set(ended) and "*" not in counting.request_reads()
    await counting.close()


async def test_a_store_from_before_the_indexes_is_indexed_once_and_resumed(world, storage) -> None:
    """Requests written by a version without live/ended markers: the first sweep indexes them (one listing),
    resumes the approved one, and later sweeps read only live requests."""
    old = Flow(world, storage)
    ended = await ended_request(old)
    await old.say("lockdown bob@contoso.com")
    (pending,) = [r for r in await old.requests() if r["state"] == state.PENDING]
    await store(old.services).transition(pending["id"], {state.PENDING}, state.APPROVED, approve_without_running)
    for key, doc in await storage.list("lockdown/"):  # what an older Cordon left: requests and user indexes only
        if not key.startswith((state.REQUEST_PREFIX, state.ACTIVE_PREFIX)):
            await storage.delete(key, doc.version)

    counting = Counting(storage)
    restarted = Flow(world, counting)
    await background.sweep(restarted.services)
    await runtime(restarted.services).drain()
    assert (await store(restarted.services).get(pending["id"])).request.state == state.DONE
    counting.calls.clear()
    await background.sweep(restarted.services)
    assert counting.request_reads() == set()
    world.clock.advance(days=92)
    await background.sweep(restarted.services)
    assert (
        await store(restarted.services).get(ended) is None
        and await store(restarted.services).get(pending["id"]) is None
    )
    assert dt.timedelta(days=restarted.services.config.lockdown.retention_days) == dt.timedelta(days=90)
