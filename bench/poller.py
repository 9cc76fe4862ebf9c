"""Benchmark: one risky sign-in polling cycle over 500 tenants × 20 detections, the Graph stand-in answering every
request in 100 ms, alerts delivered through the real proactive path (BotMessenger, --dev) to a Bot Connector
stand-in, state in SQLite.

Prints, against floors and a peer measured in the same run:
- the cycle's wall time / the rate-limit floor: each tenant needs 2 Identity Protection requests (detections,
  risky users) at most 1 s apart, so ≥ 1 s + one latency per tenant, ceil(tenants / concurrency) waves of them;
- the same against a peer in the same run: a bare paced fetch (the same 2 requests per tenant, same pacing and
  concurrency, no parsing, state, enrichment or delivery);
- CPU seconds of the Cordon process per 1,000 detections (the stand-ins run in a child process, not counted);
- peak RSS of the Cordon process.

    python bench/poller.py [--tenants 500] [--detections 20] [--latency 0.1] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BOT_ID = "28:00000000-0000-0000-0000-00000000b0b0"


def tenant_id(i: int) -> str:
    return f"20000000-0000-4000-8000-{i:012d}"


def serve(tenants: int, detections: int, latency: float) -> None:
    """Child process: the Graph stand-in (Identity Protection, sign-ins) and the Bot Connector stand-in."""
    from aiohttp import web

    from tests.support.connector import ConnectorStandIn
    from tests.support.graph_standin import GraphStandin, payloads
    from tests.support.graph_standin import identity_protection as ip

    connector = ConnectorStandIn().start()

    def stats(router: web.UrlDispatcher, standin: GraphStandin) -> None:
        async def handler(request: web.Request) -> web.Response:
            return web.json_response({"graph_requests": standin.request_count, "connector_calls": len(connector.calls)})

        router.add_get("/_stats", handler)

    async def main() -> None:
        standin = GraphStandin(home_tenant=tenant_id(0), extensions=[ip.register, stats], latency=latency, record=False)
        now = dt.datetime.now(dt.UTC)
        tokens = {}
        for t in range(tenants):
            tid = tenant_id(t)
            standin.tenant(tid).skus = payloads.premium_skus("P2")
            risk = ip.data(standin, tid)
            for n in range(detections):
                user = payloads.user(f"user{n}@t{t}.example", f"User {n}")
                det = risk.add_detection(ip.risk_detection(user, detected=now - dt.timedelta(minutes=n + 1)))
                risk.add_sign_in(ip.sign_in(det))
            tokens[tid] = standin.issue_token(tid)
        await standin.start()
        print(json.dumps({"url": standin.url, "connector": connector.url, "tokens": tokens}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await standin.stop()
        connector.stop()

    asyncio.run(main())


async def stats(url: str) -> dict[str, int]:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(f"{url}/_stats") as response:
        return await response.json()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gateway_with_tokens(config: Any, tokens: dict[str, str]) -> Any:
    from adapters.graph import GraphGateway

    class Tokens:
        def __init__(self, tenant: Any) -> None:
            self.tenant = tenant
            self.acquired = 1

        async def token(self) -> str:
            return tokens[self.tenant.tenant_id]

        def forget(self) -> None:
            return None

    class Gateway(GraphGateway):
        def token_source(self, tenant: Any) -> Any:
            return self._sources.setdefault(tenant.tenant_id, Tokens(tenant))

    return Gateway(config)


async def prepare(store: Any, info: dict[str, Any], tenants: int, now: dt.datetime) -> None:
    """One channel per tenant, with its conversation reference and a `low` subscription (what `alerts on` stores)."""
    from dialogs.alerts import state as st

    for t in range(tenants):
        conv = f"19:bench-{t}@thread.tacv2"
        reference = {
            "activityId": None,
            "bot": {"id": BOT_ID, "name": "Cordon"},
            "conversation": {"id": conv, "conversationType": "channel", "isGroup": True},
            "channelId": "msteams",
            "serviceUrl": info["connector"],
            "locale": "en-US",
        }
        await store.put(
            f"convref/{conv}",
            {
                "reference": reference,
                "tenant_id": None,
                "kind": "channel",
                "team_id": conv,
                "channel_id": conv,
                "saved_at": now.isoformat(),
            },
            None,
        )
        await st.subscribe(
            store,
            st.Subscription(
                tenant_id=tenant_id(t),
                tenant_name=f"T{t}",
                conversation_id=conv,
                conversation_kind="channel",
                level="low",
                created_by="bench",
                created_at=st.iso(now),
            ),
        )


class MemoryMessenger:
    """The peer for delivery: accepts every alert at once, in process (isolates the poller's own cost)."""

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, conversation_id: str, reply: Any) -> str:
        self.calls += 1
        return f"m{self.calls}"

    async def update(self, conversation_id: str, message_id: str, reply: Any) -> None:
        self.calls += 1


def _timed_source() -> type:
    from adapters.graph.identity_protection import IdentityProtection

    class Timed(IdentityProtection):
        """Notes when each Identity Protection request leaves, per tenant (the rate limit the bench must keep)."""

        def __init__(self, gateway: Any, **kw: Any) -> None:
            super().__init__(gateway, **kw)
            self.sent: dict[str, list[float]] = {}

        async def _request(
            self, tenant: Any, need: Any, method: str, url: str, body: Any = None, retry_seconds: float = 0
        ) -> Any:
            if "/identityProtection/" in url:
                self.sent.setdefault(tenant.tenant_id, []).append(time.perf_counter())
            return await super()._request(tenant, need, method, url, body, retry_seconds)

        def closest_gap(self) -> float:
            gaps = [b - a for times in self.sent.values() for a, b in zip(times, times[1:], strict=False)]
            return min(gaps, default=math.inf)

    return Timed


async def run_cordon(
    info: dict[str, Any], args: argparse.Namespace, workdir: Path, memory: bool = False
) -> dict[str, Any]:
    import app as entry
    from adapters.config import BotSettings, parse_config
    from adapters.storage import SQLiteStorage
    from bot.server import SERVICES
    from dialogs.alerts.poller import Poller

    TimedSource = _timed_source()  # noqa: N806 - a class

    config = parse_config(
        {
            "graph": {"endpoint": info["url"]},
            "storage": {"path": str(workdir / "cordon.db")},
            "alerts": {"concurrency": args.concurrency},
            "tenants": [
                {"name": f"T{t}", "tenant_id": tenant_id(t), "domains": [f"t{t}.example"]} for t in range(args.tenants)
            ],
        }
    )
    settings = BotSettings(
        app_id="",
        app_password="",
        app_type="MultiTenant",
        app_tenant_id="",
        host="127.0.0.1",
        port=0,
        openid_metadata=None,
    )
    store = SQLiteStorage(config.storage.path)
    web_app = entry.build_app(settings, config, dev=True, storage=store, background=[])
    services = web_app[SERVICES]
    await services.graph.close()
    services.graph = gateway = gateway_with_tokens(config, info["tokens"])
    await prepare(store, info, args.tenants, services.clock())
    rss_built = rss_mb()
    # warm as a running server would be: tokens, connections, licence levels (cached 24 h)
    await asyncio.gather(*(gateway.licence(t) for t in gateway.tenants))
    from dialogs.contract import Reply

    await services.messenger.send("19:bench-0@thread.tacv2", Reply(text="warm-up"))  # SDK imports, connections
    if memory:
        services.messenger = MemoryMessenger()
    from adapters.shared_pacer import SharedPacer

    source = TimedSource(gateway, pacer=SharedPacer(store))  # as dialogs.alerts.runtime makes it: paced in the store
    poller = Poller(services, source)
    pool = getattr(services.messenger, "connectors", None)
    clients_before = pool.created if pool is not None else 0
    before = await stats(info["url"])
    rss_before = rss_mb()
    cpu, started = time.process_time(), time.perf_counter()
    outcomes = await poller.cycle(force=True)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    after = await stats(info["url"])
    clients = (pool.created if pool is not None else 0) - clients_before
    results = [r for o in outcomes for r in o.results or []]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    errors = [o.error for o in outcomes if o.error]
    await gateway.close()
    web_app.freeze()
    await web_app.shutdown()
    await web_app.cleanup()
    await store.close()
    return {
        "seconds": elapsed,
        "cpu": cpu,
        "alerts": len(results),
        "statuses": statuses,
        "errors": errors,
        "ip_requests": source.requests,
        "closest_gap": source.closest_gap(),
        "graph_requests": after["graph_requests"] - before["graph_requests"],
        "connector_calls": after["connector_calls"] - before["connector_calls"],
        "connector_clients": clients,
        "rss_built": rss_built,
        "rss_before": rss_before,
        "rss_peak": rss_mb(),
    }


async def run_peer(info: dict[str, Any], args: argparse.Namespace) -> float:
    """Bare paced fetch: the 2 Identity Protection requests per tenant, ≥ 1 s apart, same concurrency."""
    import aiohttp

    bound = asyncio.Semaphore(args.concurrency)
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def one(session: aiohttp.ClientSession, tid: str) -> None:
        headers = {"Authorization": f"Bearer {info['tokens'][tid]}"}
        async with bound:
            first = time.perf_counter()
            async with session.get(
                f"{info['url']}/v1.0/identityProtection/riskDetections",
                params={"$filter": f"detectedDateTime ge {since}", "$top": "500"},
                headers=headers,
            ) as response:
                await response.read()
            await asyncio.sleep(max(0.0, first + 1.0 - time.perf_counter()))
            async with session.get(
                f"{info['url']}/v1.0/identityProtection/riskyUsers",
                params={"$filter": f"riskLastUpdatedDateTime ge {since}", "$top": "500"},
                headers=headers,
            ) as response:
                await response.read()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(one(session, tenant_id(t)) for t in range(args.tenants)))
        return time.perf_counter() - started


async def bench(args: argparse.Namespace) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            "--tenants",
            str(args.tenants),
            "--detections",
            str(args.detections),
            "--latency",
            str(args.latency),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(child.stdout.readline())  # type: ignore[union-attr]
        with tempfile.TemporaryDirectory() as workdir:
            cordon = await run_cordon(info, args, Path(workdir))
        with tempfile.TemporaryDirectory() as workdir:
            alone = await run_cordon(info, args, Path(workdir), memory=True)
        peer = await run_peer(info, args)
    finally:
        child.stdin.close()  # type: ignore[union-attr]
        child.wait(timeout=60)
    detections = args.tenants * args.detections
    waves = math.ceil(args.tenants / args.concurrency)
    floor = waves * (1.0 + args.latency)
    print(
        f"{args.tenants} tenants x {args.detections} detections = {detections:,}; stand-in latency "
        f"{args.latency * 1000:.0f} ms; concurrency {args.concurrency}"
    )
    print(
        f"alerts: {cordon['alerts']:,} {cordon['statuses']}; errors: {len(cordon['errors'])}"
        + (f" (first: {cordon['errors'][0]})" if cordon["errors"] else "")
    )
    print(
        f"requests: {cordon['ip_requests']} Identity Protection, {cordon['graph_requests']} Graph in all "
        f"(sign-in enrichment included); {cordon['connector_calls']} Bot Connector calls through "
        f"{cordon['connector_clients']} new connector client(s) (pooled per service URL, warmed before the cycle)"
    )
    print(
        f"cycle wall time        {cordon['seconds']:.1f} s = {cordon['seconds'] / floor:.2f} x the rate-limit floor "
        f"({waves} waves x (1 s + {args.latency * 1000:.0f} ms) = {floor:.1f} s); the interval is 300 s"
    )
    print(
        f"rate limit kept        closest two Identity Protection requests to one tenant: "
        f"{min(cordon['closest_gap'], alone['closest_gap']):.3f} s apart (limit: 1 request per second)"
    )
    print(f"peer (bare paced fetch) {peer:.1f} s; Cordon takes {cordon['seconds'] / peer:.2f} x the peer's time")
    print(
        f"CPU                    {cordon['cpu']:.2f} s = {cordon['cpu'] / detections * 1000:.3f} s per 1,000 "
        "detections (Cordon process only, Bot Framework sends included)"
    )
    print(
        f"poller alone (alerts accepted in process, no Bot Framework): {alone['seconds']:.1f} s wall = "
        f"{alone['seconds'] / floor:.2f} x the floor; CPU {alone['cpu'] / detections * 1000:.3f} s per 1,000 "
        f"detections; {alone['alerts']:,} alerts {alone['statuses']}"
    )
    print(
        f"peak RSS               {cordon['rss_peak']:.0f} MB (app built {cordon['rss_built']:.0f} MB; after warming "
        f"one Graph client per tenant {cordon['rss_before']:.0f} MB; the cycle adds "
        f"{cordon['rss_peak'] - cordon['rss_before']:.0f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=500)
    parser.add_argument("--detections", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.tenants, args.detections, args.latency)
    else:
        os.environ.pop("MicrosoftAppId", None)
        asyncio.run(bench(args))


if __name__ == "__main__":
    main()
