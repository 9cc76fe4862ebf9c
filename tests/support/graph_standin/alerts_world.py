"""The alert tests' world: the real Cordon app (BotApp: JWT, Bot Connector stand-in), the Graph stand-in with
Identity Protection for several tenants, SQLite state, and a wall clock the test moves.

    async with alerts_world(tmp_path, tenants=2) as w:
        await w.subscribe("alerts on medium --tenant T0")
        w.risk(0).add_detection(ip.risk_detection(w.user(0, 1), detected=w.clock.now))
        results = await w.poll()
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.botapp import TECH, BotApp, Chat, User, channel_chat
from tests.support.graph_standin import GraphStandin, payloads
from tests.support.graph_standin import identity_protection as ip

START = dt.datetime(2026, 11, 27, 21, 0, tzinfo=dt.UTC)


def tenant_id(i: int) -> str:
    return f"10000000-0000-4000-8000-{i:012d}"


class Clock:
    """The wall clock of Services and of the stand-in's arrivals; only the test moves it."""

    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


class FastSleep:
    """Records requested waits and only yields (backoff and pacing without waiting)."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)


@dataclass
class World:
    bot: BotApp
    graph: GraphStandin
    gateway: Any
    clock: Clock
    sleep: FastSleep
    tenant_ids: list[str]
    channel: Chat = field(default_factory=channel_chat)
    users: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)

    @property
    def services(self) -> Any:
        return self.bot.services

    @property
    def source(self) -> Any:
        from dialogs.alerts.runtime import runtime

        return runtime(self.services).source

    def risk(self, i: int) -> ip.RiskData:
        return ip.data(self.graph, self.tenant_ids[i], now=self.clock)

    def user(self, tenant: int, n: int) -> dict[str, Any]:
        """User n of a tenant, also in the stand-in's directory (so a lock-down can look them up)."""
        if (tenant, n) not in self.users:
            directory = self.graph.tenant(self.tenant_ids[tenant])
            self.users[(tenant, n)] = directory.add_user(
                f"user{n}@t{tenant}.example", display_name=f"User {n} of T{tenant}"
            )
        return self.users[(tenant, n)]

    def detect(
        self, tenant: int, n: int, *, minutes_ago: float = 0, arrives_in: float | None = None, **fields: Any
    ) -> dict[str, Any]:
        """A detection for user n of tenant `tenant`, with its sign-in logged."""
        detected = self.clock.now - dt.timedelta(minutes=minutes_ago)
        payload = ip.risk_detection(self.user(tenant, n), detected=detected, **fields)
        arrives = None if arrives_in is None else self.clock.now + dt.timedelta(minutes=arrives_in)
        self.risk(tenant).add_detection(payload, arrives=arrives)
        self.risk(tenant).add_sign_in(ip.sign_in(payload, app="Office 365 Exchange Online"))
        return payload

    async def say(self, text: str, *, actor: User = TECH, conversation: Chat | None = None) -> Any:
        result = await self.bot.send_message(text, actor=actor, conversation=conversation or self.channel)
        assert result.status in (200, 201), result
        return result

    def poller(self, **kw: Any) -> Any:
        from dialogs.alerts.poller import Poller

        return Poller(self.services, self.source, sleep=self.sleep, rng=random.Random(5), **kw)

    async def poll(self, **kw: Any) -> list[Any]:
        """One forced cycle of a fresh poller; the send results."""
        outcomes = await self.poller().cycle(force=True, **kw)
        return [r for o in outcomes for r in o.results or []]

    def cards(self, conversation: Chat | None = None) -> list[dict[str, Any]]:
        conv = (conversation or self.channel).id
        return [card for call in self.bot.replies(conv) for card in call.cards]


@asynccontextmanager
async def alerts_world(
    tmp_path: Path,
    *,
    tenants: int = 1,
    levels: tuple[str, ...] = ("P2",),
    alerts: dict[str, Any] | None = None,
    storage: Any = None,
    clock: Clock | None = None,
    domains: dict[int, list[str]] | None = None,
) -> AsyncIterator[World]:
    """`domains` overrides the `domains` listed for tenant i in cordon.toml (default: `t{i}.example`)."""
    from adapters.graph.identity_protection import IdentityProtection, Pacer
    from adapters.graph.transport import RetryPolicy
    from adapters.storage import SQLiteStorage
    from dialogs.alerts.runtime import runtime

    ids = [tenant_id(i) for i in range(tenants)]
    clock = clock or Clock()
    async with GraphStandin(home_tenant=ids[0], extensions=[ip.register]) as graph:
        for i, tid in enumerate(ids):
            graph.tenant(tid).skus = payloads.premium_skus(levels[i] if i < len(levels) else levels[-1])
            ip.data(graph, tid, now=clock)
        config = BotApp.config(
            graph={"endpoint": graph.url},
            tenants=[
                {"name": f"T{i}", "tenant_id": tid, "domains": (domains or {}).get(i, [f"t{i}.example"])}
                for i, tid in enumerate(ids)
            ],
            alerts={"interval_seconds": 60, **(alerts or {})},
        )
        store = storage if storage is not None else SQLiteStorage(tmp_path / "cordon.db")
        async with BotApp.started(config=config, storage=store, clock=clock) as bot:
            sleep = FastSleep()
            gateway = ip.standin_gateway(graph, config, retry=RetryPolicy(sleep=sleep, monotonic=sleep.monotonic))
            bot.services.graph = gateway
            runtime(bot.services).source = IdentityProtection(
                gateway,
                pacer=Pacer(sleep=sleep, monotonic=sleep.monotonic),
                sleep=sleep,
                monotonic=sleep.monotonic,
                rng=random.Random(9),
            )
            world = World(bot, graph, gateway, clock, sleep, ids)
            await bot.install(world.channel)
            try:
                yield world
            finally:
                await gateway.close()
                if storage is None:
                    await store.close()
