"""The Identity Protection and lock-down extensions of the Graph stand-in load together (in either order): one
owner per route, one state per tenant, seen by the alerts' and the lock-down's Graph adapters alike."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

import pytest

from adapters.graph.containment import Containment
from adapters.graph.identity_protection import IdentityProtection
from adapters.graph.investigation import Investigation
from adapters.graph.transport import RetryPolicy
from tests.support.graph_standin import GraphStandin, lockdown_routes, payloads
from tests.support.graph_standin import identity_protection as ip
from tests.support.graph_standin.fixtures import SleepRecorder
from tests.support.graph_standin.lockdown_payloads import sign_in as lockdown_sign_in
from tests.support.graph_standin.lockdown_routes import LockdownData

T0 = "10000000-0000-4000-8000-000000000000"
NOW = dt.datetime(2026, 11, 27, 21, 0, tzinfo=dt.UTC)
ORDERS = {
    "ip-first": [ip.register, lockdown_routes.register],
    "lockdown-first": [lockdown_routes.register, ip.register],
}


@pytest.fixture(params=list(ORDERS))
async def both(request: pytest.FixtureRequest):
    async with GraphStandin(home_tenant=T0, extensions=ORDERS[request.param]) as standin:
        standin.state.skus = payloads.premium_skus("P2")
        gateway = ip.standin_gateway(
            standin, ip.tenants_config(standin.url, [T0]), retry=RetryPolicy(sleep=SleepRecorder())
        )
        try:
            yield standin, gateway
        finally:
            await gateway.close()


class FakeTime:
    """Pacing without waiting: the clock moves only when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def source_for(gateway) -> IdentityProtection:
    fake = FakeTime()
    return IdentityProtection(gateway, rng=random.Random(1), sleep=fake.sleep, monotonic=fake.monotonic)


def test_every_route_has_one_owner() -> None:
    from aiohttp import web

    for order in ORDERS.values():
        standin = GraphStandin(home_tenant=T0, extensions=order)
        app: web.Application = standin.build_app()
        routes = Counter(
            (route.method, route.resource.canonical) for route in app.router.routes() if route.resource is not None
        )
        assert [key for key, n in routes.items() if n > 1] == []
        assert routes[("POST", "/v1.0/identityProtection/riskyUsers/confirmCompromised")] == 1
        assert routes[("GET", "/v1.0/auditLogs/signIns")] == 1


async def test_confirm_compromised_from_either_family_lands_in_both_books(both) -> None:
    standin, gateway = both
    alice = standin.state.add_user("alice@t0.example", display_name="Alice")
    bob = standin.state.add_user("bob@t0.example", display_name="Bob")
    risk = ip.data(standin, T0)
    for user in (alice, bob):
        risk.set_risky_user(ip.risky_user(user, changed=NOW))
    books = LockdownData.of(standin.state)
    assert books.risk is risk
    # the lock-down's containment step
    await Containment(gateway, gateway.tenant(T0)).confirm_compromised(alice["id"])
    # the alert card's Confirm compromised button
    source = source_for(gateway)
    await source.confirm_compromised(T0, [bob["id"]])
    await source.dismiss(T0, [alice["id"]])
    assert risk.actions == [
        ("confirmCompromised", [alice["id"]]),
        ("confirmCompromised", [bob["id"]]),
        ("dismiss", [alice["id"]]),
    ]
    assert books.compromised == [alice["id"], bob["id"]]
    assert [(m, p.rsplit("/", 1)[-1], b) for m, p, b in books.writes] == [
        ("POST", "confirmCompromised", {"userIds": [alice["id"]]}),
        ("POST", "confirmCompromised", {"userIds": [bob["id"]]}),
    ]  # a dismiss is not a lock-down write
    assert risk.risky_users[bob["id"]][1]["riskState"] == "confirmedCompromised"
    assert risk.risky_users[alice["id"]][1]["riskState"] == "dismissed"


async def test_one_sign_in_log_answers_the_investigation_and_the_alert_enrichment(both) -> None:
    standin, gateway = both
    alice = standin.state.add_user("alice@t0.example", display_name="Alice")
    books = LockdownData.of(standin.state)
    books.sign_ins += [
        lockdown_sign_in(alice, NOW - dt.timedelta(hours=h), ip="192.0.2.1", country="FR", app="Mail") for h in (1, 2)
    ]
    detection = ip.risk_detection(alice, detected=NOW - dt.timedelta(minutes=5))
    ip.data(standin, T0).add_sign_in(ip.sign_in(detection, app="Azure Portal"))
    assert len(books.sign_ins) == 3 and len(ip.data(standin, T0).sign_ins) == 3
    summary = await Investigation(gateway, gateway.tenant(T0)).sign_ins(alice["id"], NOW - dt.timedelta(days=1))
    assert summary.total == 3
    source = source_for(gateway)
    found = await source.detections(T0, NOW - dt.timedelta(days=1))
    assert found == []  # no detection was added to the risk data: only its sign-in
    ip.data(standin, T0).add_detection(detection)
    [det] = await source.detections(T0, NOW - dt.timedelta(days=1))
    assert det.request_id == detection["requestId"] and det.app is None
    [enriched] = await source.enrich(T0, [det])
    assert enriched.app == "Azure Portal"
