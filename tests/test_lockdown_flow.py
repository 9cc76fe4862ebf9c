"""The lock-down flow through the real router and gate, against the Graph stand-in, on memory, SQLite and Azure
Table storage (Azurite).

The Teams side here is a recording outbox/messenger; tests/test_lockdown_e2e.py drives the same flow through the
real HTTP endpoint.
"""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from adapters.storage import MemoryStorage, SQLiteStorage
from dialogs.contract import Actor, Conversation
from dialogs.lockdown import runner, state
from dialogs.lockdown.model import LockdownRequest, Runner
from dialogs.lockdown.runtime import runtime
from tests.support.cards import assert_valid_card
from tests.support.graph_standin import Fault
from tests.support.graph_standin.lockdown_world import (  # noqa: F401 - the world fixture
    APPROVER2_ID,
    APPROVER_ID,
    TECH_ID,
    RecordingMessenger,
    RecordingOutbox,
    world_fixture,
)

TEAMS_TENANT = "72f988bf-0000-4000-8000-00000000c0de"
TECH = Actor(TECH_ID, "tess.tech@contoso.com", "Tess Tech")
APPROVER = Actor(APPROVER_ID, "avery.approver@contoso.com", "Avery Approver")
APPROVER2 = Actor(APPROVER2_ID, "ada.approver@contoso.com", "Ada Approver")
NOBODY = Actor("33333333-3333-4333-8333-333333333333", "nora@contoso.com", "Nora Nobody")
CONV = Conversation("19:soc@thread.tacv2", "channel", TEAMS_TENANT)


@pytest.fixture(params=["memory", "sqlite", "azure"])
async def storage(request, tmp_path):
    if request.param == "azure":
        store = request.getfixturevalue("azure_store_factory")()
    else:
        store = MemoryStorage() if request.param == "memory" else SQLiteStorage(tmp_path / "cordon.db")
    yield store
    await store.close()


class Flow:
    def __init__(self, world, storage, messenger=None, config=None) -> None:
        self.world = world
        self.services = world.services(storage, messenger=messenger, config=config)
        self.router = world.router(self.services)
        self.outbox = RecordingOutbox()

    async def say(self, text: str, actor: Actor = TECH):
        return await self.router.handle_text(text, actor, TEAMS_TENANT, CONV, self.outbox)

    async def press(self, verb: str, data: dict, actor: Actor = APPROVER, tenant: str = TEAMS_TENANT):
        return await self.router.handle_action(verb, data, actor, tenant, CONV, self.outbox, "msg-1")

    async def requests(self) -> list[dict]:
        return await runner.store(self.services).all()

    async def only_request(self) -> dict:
        (request,) = await self.requests()
        return request

    async def drain(self) -> None:
        await runtime(self.services).drain()

    def cards(self) -> list[dict]:
        return [r.card for r in self.outbox.sent if r.card] + [r.card for _, r in self.outbox.updates if r.card]


def button_data(card: dict, title: str = "Approve") -> dict:
    action = next(a for a in card["actions"] if a["title"] == title)
    return dict(action["data"])


def toggles(card: dict) -> dict[str, str]:
    return {e["id"]: e["value"] for e in card["body"] if e["type"] == "Input.Toggle"}


def texts(card: dict) -> str:
    out = []
    for element in card["body"]:
        out.append(element.get("text", ""))
        out += [f"{f['title']}: {f['value']}" for f in element.get("facts", [])]
    return "\n".join(out)


async def test_lockdown_asks_then_runs_every_step_and_updates_the_card(world, storage) -> None:
    flow = Flow(world, storage)
    assert await flow.say("lockdown alice@contoso.com phished, mailing her contacts") == []
    card = flow.outbox.sent[0].card
    assert_valid_card(card)
    request = await flow.only_request()
    assert button_data(card) == {"request_id": request["id"], "nonce": request["nonce"]}
    assert toggles(card) == {
        "step_block_sign_in": "true",
        "step_revoke_sessions": "true",
        "step_inbox_rules": "true",
        "step_confirm_compromised": "true",
        "step_reset_password": "false",
    }
    shown = texts(card)
    for fact in (
        "User: Alice Victim",
        "UPN: alice@contoso.com",
        "Enabled: yes",
        "Admin roles: none",
        "Last sign-in: 2026-11-27 21:00 UTC",
        "MFA methods: Microsoft Authenticator, phone (SMS/voice)",
        "Risk state: high (atRisk)",
        "Tess Tech",
        "phished, mailing her contacts",
        "Expires at 2026-11-27 22:30 UTC",
    ):
        assert fact.split(": ")[-1] in shown, fact
    assert request["card"] == {"conversation_id": CONV.id, "message_id": "msg-1"}

    result = await flow.press("lockdown.approve", {**button_data(card), **toggles(card), "comment": "go"})
    assert result.message is None
    assert_valid_card(result.card)
    assert "Approved by **Avery Approver (avery.approver@contoso.com)**" in texts(result.card)
    assert "actions" not in result.card
    await flow.drain()
    done = await flow.only_request()
    assert done["state"] == state.DONE, done["results"]
    assert [len(world.writes(k)) for k in ("block", "revoke", "rule", "confirm", "password")] == [1, 1, 3, 1, 0]
    assert world.standin.state.users[world.people["alice"]["id"]]["accountEnabled"] is False
    for each in flow.cards():
        assert_valid_card(each)
    final = texts(flow.outbox.updates[-1][1].card)
    assert "Done — every step succeeded" in final and "NG 2 (1 failed)" in final
    assert "User registered Mobile phone from 203.0.113.7" in final and "admin.exchange.microsoft.com" in final
    assert "~1 hour" in final
    log = [(e.command, e.outcome) for e in reversed(await storage.audit_tail(100))]
    assert ("lockdown:lockdown", "requested") in log and ("lockdown:approve", "approved") in log
    assert [c for c, _ in log if c.startswith("lockdown:step:")] == [
        "lockdown:step:block_sign_in",
        "lockdown:step:revoke_sessions",
        "lockdown:step:inbox_rules",
        "lockdown:step:confirm_compromised",
    ]
    assert log[-1] == ("lockdown:finished", "done")


async def test_fifty_concurrent_approvals_run_once(world, storage) -> None:
    flow = Flow(world, storage)
    await flow.say("lockdown alice@contoso.com")
    data = button_data(flow.outbox.sent[0].card)
    results = await asyncio.gather(
        *(flow.press("lockdown.approve", data, APPROVER if i % 2 else APPROVER2) for i in range(50))
    )
    await flow.drain()
    assert sum(1 for r in results if r.card) == 1
    refusals = [r.message for r in results if r.message]
    assert len(refusals) == 49 and all(m.startswith("Already approved by") for m in refusals)
    assert [len(world.writes(k)) for k in ("block", "revoke", "rule", "confirm")] == [1, 1, 3, 1]
    refused = [e for e in await storage.audit_tail(200) if e.outcome == "refused"]
    assert len(refused) == 49


async def test_two_processes_on_one_store_run_once(world, shared_store) -> None:
    storage = shared_store.open()
    flow = Flow(world, storage)
    await flow.say("lockdown alice@contoso.com")
    request = await flow.only_request()
    command = [
        "-m",
        "tests.support.graph_standin.lockdown_proc",
        shared_store.spec,
        world.standin.url,
        request["id"],
        request["nonce"],
        "25",
    ]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, *command, approver, stdout=asyncio.subprocess.PIPE, env=shared_store.env
        )
        for approver in (APPROVER_ID, APPROVER2_ID)
    ]
    outputs = [json.loads((await p.communicate())[0].decode().splitlines()[-1]) for p in procs]
    assert sum(o["won"] for o in outputs) == 1 and sum(o["refused"] for o in outputs) == 49
    assert (await flow.only_request())["state"] == state.DONE
    assert [len(world.writes(k)) for k in ("block", "revoke", "rule", "confirm")] == [1, 1, 3, 1]
    await storage.close()


async def test_a_second_process_resumes_after_a_crash_and_repeats_nothing_done(world, shared_store) -> None:
    storage = shared_store.open()
    flow = Flow(world, storage)
    await flow.say("lockdown alice@contoso.com")
    request = await flow.only_request()
    world.standin.add_fault(Fault.slow("/revokeSignInSessions", seconds=4))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.graph_standin.lockdown_proc",
        shared_store.spec,
        world.standin.url,
        request["id"],
        request["nonce"],
        "1",
        APPROVER_ID,
        stdout=asyncio.subprocess.PIPE,
        env=shared_store.env,
    )
    for _ in range(600):  # until the first process is inside step 2
        current = await flow.only_request()
        if (current.get("results") or {}).get("revoke_sessions", {}).get("status") == "started":
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"the first process never reached step 2: {current}")
    proc.kill()
    await proc.wait()
    assert current["state"] == state.RUNNING and current["results"]["block_sign_in"]["status"] == "ok"

    second = Flow(world, shared_store.open())  # a new process: new runtime identity, same store
    assert await runner.resume_interrupted(second.services) == 0  # the dead runner's lease has not run out yet
    world.clock.advance(minutes=6)
    assert await runner.resume_interrupted(second.services) == 1
    await second.drain()
    final = await second.only_request()
    assert final["state"] == state.DONE, final["results"]
    assert len(world.writes("block")) == 1 and len(world.writes("rule")) == 3 and len(world.writes("confirm")) == 1
    assert "tried again after Cordon restarted" in final["results"]["revoke_sessions"]["detail"]
    assert "tried again" not in final["results"]["block_sign_in"]["detail"]
    assert ("lockdown:resume", "ok") in [(e.command, e.outcome) for e in await storage.audit_tail(50)]
    await second.services.storage.close()
    await storage.close()


async def test_a_password_reset_interrupted_midway_is_marked_not_run(world, storage) -> None:
    flow = Flow(world, storage)
    await flow.say("lockdown alice@contoso.com")
    card = flow.outbox.sent[0].card
    await flow.press("lockdown.approve", {**button_data(card), "step_reset_password": "true"})
    rt = runtime(flow.services)
    for task in list(rt.tasks):  # the process dies before the runner even starts
        task.cancel()
    await flow.drain()

    def crashed_in_reset(r: LockdownRequest) -> None:  # what storage holds if a runner died inside the reset step
        r.state = state.RUNNING
        r.runner = Runner(owner="dead", lease_until=state.iso(world.clock()))
        r.results = {k: {"status": "ok", "detail": "x"} for k in r.decision.steps if k != "reset_password"}
        r.results["reset_password"] = {"status": "started"}

    request = await flow.only_request()
    await runner.store(flow.services).annotate(request["id"], crashed_in_reset)
    world.clock.advance(seconds=1)
    assert await runner.run(flow.services, request["id"]) is not None
    final = await flow.only_request()
    assert final["results"]["reset_password"]["status"] == "not_run"
    assert "cannot tell whether it took effect" in final["results"]["reset_password"]["detail"]
    assert final["state"] == state.PARTIAL and world.writes("password") == [] and world.writes("block") == []


@pytest.mark.parametrize(
    ("fault", "final", "shown"),
    [
        (Fault.permission("/revokeSignInSessions"), state.PARTIAL, "User.RevokeSessions.All"),
        (Fault.throttle("/revokeSignInSessions", retry_after=1), state.DONE, "Sessions revoked"),
        (Fault.unavailable("/revokeSignInSessions", status=500, times=-1), state.PARTIAL, "HTTP 500"),
    ],
)
async def test_step_failures_make_a_partial_run_shown_on_the_card(world, fault, final, shown) -> None:
    flow = Flow(world, MemoryStorage())
    world.standin.add_fault(fault)
    await flow.say("lockdown alice@contoso.com")
    await flow.press("lockdown.approve", button_data(flow.outbox.sent[0].card))
    await flow.drain()
    assert (await flow.only_request())["state"] == final
    card = flow.outbox.updates[-1][1].card
    assert_valid_card(card)
    assert shown in texts(card)
    if final == state.PARTIAL:
        assert "❌ **Revoke sessions**: failed" in texts(card) and "Partly done" in texts(card)


async def test_a_run_where_every_step_fails_is_failed(world) -> None:
    flow = Flow(world, MemoryStorage())
    await flow.say("lockdown alice@contoso.com")
    world.standin.add_fault(
        Fault(r"/users/[^/]+(/revokeSignInSessions|/mailFolders/inbox/messageRules)?$", 403, times=-1)
    )
    world.standin.add_fault(Fault("/riskyUsers/confirmCompromised", 403, times=-1))
    await flow.press("lockdown.approve", button_data(flow.outbox.sent[0].card))
    await flow.drain()
    request = await flow.only_request()
    assert request["state"] == state.FAILED
    assert {r["status"] for r in request["results"].values()} == {"failed"}
    card = flow.outbox.updates[-1][1].card
    assert_valid_card(card)
    assert "Failed — no step succeeded" in texts(card) and "IdentityRiskyUser.ReadWrite.All" in texts(card)
