"""Issue 9: how many `check`/`spf` runs start — a per-user rate limit and a per-process cap with a queue, then
"busy" — through the real router and dialogs against NSD, and the throttle's own bookkeeping."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from adapters.config import CordonConfig, RolesConfig
from adapters.emailauth.report import CheckOptions
from adapters.roles import RoleResolver
from adapters.storage import MemoryStorage
from dialogs.contract import Actor, Conversation, Reply, Services
from dialogs.router import Router
from dialogs.throttle import BUSY, Busy, Throttle, ThrottleSettings

ANN = Actor(aad_id="aaaaaaaa-0000-0000-0000-00000000000a", upn="ann@example.com")
BOB = Actor(aad_id="bbbbbbbb-0000-0000-0000-00000000000b", upn="bob@example.com")
CAT = Actor(aad_id="cccccccc-0000-0000-0000-00000000000c", upn="cat@example.com")
CONVERSATION = Conversation(id="19:throttle@thread.tacv2", kind="channel", tenant_id="t-1")
ZONE = {
    "@": [("TXT", "v=spf1 ip4:192.0.2.0/24 -all"), ("MX", "10 mx.throttle.test")],
    "mx": [("A", "192.0.2.25")],
}


class Outbox:
    async def send(self, reply: Reply, conversation_id: str | None = None) -> str | None:
        return "m-1"

    async def update(self, message_id: str, reply: Reply, conversation_id: str | None = None) -> None:
        return None

    async def typing(self) -> None:
        return None

    async def send_private(self, user_aad_id: str, reply: Reply) -> str | None:
        return None


@pytest.fixture(scope="module")
def server(nsd_factory):
    return nsd_factory({"throttle.test": ZONE})


@pytest.fixture
def proxy(server, dns_proxy_factory):
    proxy = dns_proxy_factory(server.address)
    yield proxy
    proxy.clear()


def router_for(address: tuple[str, int], settings: ThrottleSettings) -> Router:
    services = Services(
        config=CordonConfig(),
        storage=MemoryStorage(),
        check_options=CheckOptions(nameservers=[address], query_timeout=2, budget=20),
    )
    services.runtimes.put(Throttle(settings))
    return Router(services, RoleResolver(RolesConfig()))


async def say(router: Router, actor: Actor, text: str) -> list[Reply]:
    return await router.handle_text(text, actor, "t-1", CONVERSATION, Outbox())


def card_text(card: dict[str, Any] | None) -> str:
    return json.dumps(card, ensure_ascii=False)


# ---------------------------------------------------------------- the throttle itself


def test_a_user_may_start_per_user_runs_per_window_and_others_are_not_affected() -> None:
    now = [1000.0]
    throttle = Throttle(ThrottleSettings(per_user=3, window_seconds=60), clock=lambda: now[0])
    assert [throttle.refuse_user(ANN) for _ in range(3)] == [None, None, None]
    now[0] += 20
    refusal = throttle.refuse_user(ANN)
    assert refusal is not None and "3 checks in the last 60 s" in refusal and "try again in 40 s" in refusal
    assert throttle.refuse_user(BOB) is None  # someone else is not limited by Ann's runs
    now[0] += 40  # Ann's first three starts leave the window
    assert throttle.refuse_user(ANN) is None


async def test_runs_beyond_the_cap_queue_then_are_told_busy() -> None:
    throttle = Throttle(ThrottleSettings(max_running=1, max_waiting=1, wait_seconds=30))
    release = asyncio.Event()
    order: list[str] = []

    async def run(name: str) -> None:
        async with throttle.slot():
            order.append(name)
            await release.wait()

    first = asyncio.ensure_future(run("first"))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(run("second"))  # queued behind the first
    await asyncio.sleep(0)
    assert throttle.running == 1 and throttle.waiting == 1 and order == ["first"]
    with pytest.raises(Busy) as busy:  # the queue is full: told at once, not queued
        async with throttle.slot():
            pass
    assert str(busy.value) == BUSY
    release.set()
    await asyncio.gather(first, second)
    assert order == ["first", "second"] and throttle.running == 0 and throttle.waiting == 0


async def test_a_wait_longer_than_wait_seconds_is_busy_and_frees_its_place() -> None:
    throttle = Throttle(ThrottleSettings(max_running=1, max_waiting=4, wait_seconds=0.05))
    hold = asyncio.Event()

    async def holder() -> None:
        async with throttle.slot():
            await hold.wait()

    task = asyncio.ensure_future(holder())
    await asyncio.sleep(0)
    with pytest.raises(Busy):
        async with throttle.slot():
            pass
    assert throttle.waiting == 0
    hold.set()
    await task
    async with throttle.slot():  # the slot is free again
        assert throttle.running == 1
    assert throttle.running == 0


# ---------------------------------------------------------------- through the router and the dialogs


async def test_check_beyond_the_process_cap_says_busy_while_help_still_answers(proxy):
    proxy.delay_ms = 150  # the first check is still running when the others arrive
    router = router_for(proxy.address, ThrottleSettings(max_running=1, max_waiting=0))
    first = asyncio.ensure_future(say(router, ANN, "check throttle.test"))
    while not proxy.seen:
        await asyncio.sleep(0.01)
    busy = await say(router, BOB, "check throttle.test")
    assert busy[-1].text == BUSY and busy[-1].card is None
    spf_busy = await say(router, CAT, "spf throttle.test 192.0.2.1")
    assert spf_busy[-1].text == BUSY
    helped = await say(router, CAT, "help")
    assert helped[-1].card is not None and not first.done()
    done = await first
    assert done[-1].card is not None and "throttle.test" in card_text(done[-1].card)
    again = await say(router, BOB, "check throttle.test")  # the slot is free again
    assert again[-1].card is not None


async def test_one_user_is_rate_limited_across_check_spf_and_the_buttons(server):
    router = router_for(server.address, ThrottleSettings(per_user=3, window_seconds=60))
    assert (await say(router, ANN, "check throttle.test"))[-1].card is not None
    assert (await say(router, ANN, "spf throttle.test 192.0.2.1"))[-1].card is not None
    pressed = await router.handle_action(
        "spf.recheck",
        {"domain": "throttle.test", "ip": "192.0.2.9"},
        ANN,
        "t-1",
        CONVERSATION,
        Outbox(),
        card_message_id="m-1",
    )
    assert pressed.card is not None
    limited = await say(router, ANN, "check throttle.test")
    assert limited[-1].card is None and "try again in" in (limited[-1].text or "")
    button = await router.handle_action(
        "emailauth.recheck", {"domain": "throttle.test"}, ANN, "t-1", CONVERSATION, Outbox(), card_message_id="m-1"
    )
    assert button.card is None and "try again in" in (button.message or "")
    assert (await say(router, BOB, "check throttle.test"))[-1].card is not None  # Bob is not limited by Ann
    bad = await say(router, ANN, "check not_a_domain")  # bad input is answered, and costs nothing
    assert "no dot" in (bad[-1].text or "")
