"""Identity Protection over the real Graph gateway and the stand-in: paging, pacing (≤ 1 request/s per tenant),
429 without Retry-After (exponential backoff with jitter), licence refusals, sign-in enrichment, the POST actions."""

from __future__ import annotations

import asyncio
import datetime as dt
import random

import pytest

from adapters.graph import GraphProblem
from adapters.graph.identity_protection import IdentityProtection, Pacer
from adapters.graph.transport import RetryPolicy
from tests.support.graph_standin import Fault, GraphStandin, payloads
from tests.support.graph_standin import identity_protection as ip

T0 = "10000000-0000-4000-8000-000000000000"
T1 = "10000000-0000-4000-8000-000000000001"
NOW = dt.datetime(2026, 11, 27, 21, 0, tzinfo=dt.UTC)


class FakeTime:
    """A monotonic clock that only moves when someone sleeps on it (records every wait)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
async def standin() -> GraphStandin:
    async with GraphStandin(home_tenant=T0, extensions=[ip.register]) as graph:
        for tenant in (T0, T1):
            graph.tenant(tenant).skus = payloads.premium_skus("P2")
        yield graph


@pytest.fixture
async def source(standin: GraphStandin):
    fake = FakeTime()
    gateway = ip.standin_gateway(
        standin, ip.tenants_config(standin.url, [T0, T1]), retry=RetryPolicy(sleep=fake.sleep, monotonic=fake.monotonic)
    )
    yield IdentityProtection(gateway, rng=random.Random(3), sleep=fake.sleep, monotonic=fake.monotonic), fake
    await gateway.close()


def _users(n: int, domain: str = "t0.example") -> list[dict]:
    return [payloads.user(f"user{i}@{domain}", f"User {i}") for i in range(n)]


async def test_detections_follow_next_links_over_several_pages_one_paced_request_each(standin, source) -> None:
    ips, fake = source
    risk = ip.data(standin, T0)
    for i, user in enumerate(_users(1203)):
        risk.add_detection(ip.risk_detection(user, detected=NOW + dt.timedelta(seconds=i)))
    risk.add_detection(ip.risk_detection(_users(1)[0], detected=NOW - dt.timedelta(hours=3), id="too-old"))
    found = await ips.detections(T0, NOW - dt.timedelta(minutes=30))
    assert len(found) == 1203 and len({d.id for d in found}) == 1203 and "too-old" not in {d.id for d in found}
    calls = standin.graph_requests("/identityProtection/riskDetections")
    assert len(calls) == 3  # 500 + 500 + 203
    assert "%24top=500" in calls[0].query or "$top=500" in calls[0].query
    assert "detectedDateTime" in calls[0].query
    assert fake.waits == [1.0, 1.0]  # the 2nd and 3rd pages waited for the tenant's next second
    first = found[0]
    assert first.tenant_id == T0 and first.upn == "user0@t0.example" and first.city == "Stockholm"


async def test_two_tenants_do_not_wait_for_each_other_but_one_tenant_does(standin, source) -> None:
    ips, fake = source
    await asyncio.gather(ips.risky_users(T0, NOW), ips.risky_users(T1, NOW), ips.risky_users(T0, NOW))
    assert fake.waits == [1.0]  # only T0's second request waited
    assert len(standin.graph_requests("/identityProtection/riskyUsers")) == 3


async def test_429_without_retry_after_backs_off_exponentially_with_jitter_then_succeeds(standin, source) -> None:
    ips, fake = source
    ip.data(standin, T0).add_detection(ip.risk_detection(_users(1)[0], detected=NOW))
    standin.add_fault(Fault.throttle("/identityProtection/riskDetections", times=3))
    found = await ips.detections(T0, NOW - dt.timedelta(minutes=30))
    assert len(found) == 1
    assert len(standin.graph_requests("/identityProtection/riskDetections")) == 4  # no hidden gateway retries
    backoffs = fake.waits
    assert len(backoffs) == 3
    for attempt, wait in enumerate(backoffs, start=1):  # equal jitter: between half and all of 2 s × 2^(n-1)
        ceiling = 2.0 * 2 ** (attempt - 1)
        assert ceiling / 2 <= wait <= ceiling
    assert len(set(backoffs)) == 3


async def test_throttling_beyond_the_budget_is_a_clear_problem(standin, source) -> None:
    ips, fake = source
    ips.budget = 10
    standin.add_fault(Fault.throttle("/identityProtection/riskDetections", times=-1))
    with pytest.raises(GraphProblem) as caught:
        await ips.detections(T0, NOW)
    assert caught.value.kind == "throttled" and "T0" in caught.value.user_message
    assert sum(fake.waits) <= 10


async def test_a_tenant_without_p2_is_a_licence_problem_and_its_level_is_read(standin, source) -> None:
    ips, _ = source
    standin.tenant(T1).skus = payloads.premium_skus("P1")
    with pytest.raises(GraphProblem) as caught:
        await ips.detections(T1, NOW)
    assert caught.value.kind == "licence" and "P2" in caught.value.user_message
    assert await ips.licence(T1) == "P1" and await ips.licence(T0) == "P2"


async def test_enrichment_finds_the_app_from_the_sign_in_by_request_or_correlation_id(standin, source) -> None:
    ips, _ = source
    risk = ip.data(standin, T0)
    alice, bob, carol = _users(3)
    by_request = risk.add_detection(ip.risk_detection(alice, detected=NOW))
    risk.add_sign_in(ip.sign_in(by_request, app="Microsoft Teams"))
    by_correlation = ip.risk_detection(bob, detected=NOW, request_id="not-a-sign-in-id'or'1'eq'1")
    risk.add_detection(by_correlation)
    risk.add_sign_in({**ip.sign_in(by_correlation, app="Azure Portal"), "id": payloads.new_id()})
    risk.add_detection(ip.risk_detection(carol, detected=NOW))  # no sign-in logged
    found = await ips.detections(T0, NOW - dt.timedelta(minutes=1))
    enriched = {d.upn: d.app for d in await ips.enrich(T0, found)}
    assert enriched == {
        "user0@t0.example": "Microsoft Teams",
        "user1@t0.example": "Azure Portal",
        "user2@t0.example": None,
    }
    for call in standin.graph_requests("/auditLogs/signIns"):
        assert "or'1'" not in call.query  # an id that is not an id never reaches the filter


async def test_confirm_compromised_and_dismiss_post_the_user_ids(standin, source) -> None:
    ips, _ = source
    risk = ip.data(standin, T0)
    alice = _users(1)[0]
    risk.set_risky_user(ip.risky_user(alice, changed=NOW))
    await ips.confirm_compromised(T0, [alice["id"]])
    await ips.dismiss(T1, ["someone"])
    assert risk.actions == [("confirmCompromised", [alice["id"]])]
    assert ip.data(standin, T1).actions == [("dismiss", ["someone"])]
    assert risk.risky_users[alice["id"]][1]["riskState"] == "confirmedCompromised"


async def test_pacer_holds_a_tenant_back_after_a_429() -> None:
    fake = FakeTime()
    pacer = Pacer(monotonic=fake.monotonic, sleep=fake.sleep)
    await pacer.acquire("a")
    pacer.hold_off("a", 8.0)
    await pacer.acquire("a")
    await pacer.acquire("b")
    assert fake.waits == [8.0]
