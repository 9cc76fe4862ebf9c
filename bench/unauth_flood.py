"""Unauthenticated flood: a technician's `help` alone vs. under 16 unauthenticated clients posting near-limit bodies.

Cordon runs in this process as `serve` runs it (the guarded server, real JWT validation against a local
OpenID/JWKS server, replies to a local Bot Connector stand-in). The flooders run in another process: 16 connections,
each posting a ~250 KB conversationUpdate (20,000 `membersAdded`) with no Authorization header (or a garbage bearer
token), again and again. One legitimate client sends `help` one request at a time and its latency is measured alone,
then under the flood. The peer in the same run is the stock botbuilder route (`CloudAdapter.process`, which parses
and deserialises the body before it looks at the header) under the same flood. Prints p50/p99 and the ratio loaded
p50 / unloaded p50 (goal ≤ 2).

    python bench/unauth_flood.py [--requests 200] [--flooders 16] [--peer-requests 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FLOOD_MEMBERS = 20_000


def flood_body() -> bytes:
    activity = {
        "type": "conversationUpdate",
        "id": "x",
        "channelId": "msteams",
        "serviceUrl": "https://smba.trafficmanager.net/amer/",
        "conversation": {"id": "19:x@thread.tacv2"},
        "from": {"id": "29:x"},
        "recipient": {"id": "28:x"},
        "membersAdded": [{"id": str(n % 10)} for n in range(FLOOD_MEMBERS)],
    }
    return json.dumps(activity, separators=(",", ":")).encode()


def _flood_process(url: str, flooders: int, stop: Any, counter: Any) -> None:
    """Runs in its own process, so the flooders' client work does not share the server's event loop; at the lowest
    CPU priority, because on this 2-core machine an attacker's own CPU would otherwise be counted against the server
    (a real attacker is on another host)."""
    import os

    import aiohttp

    os.nice(19)

    body = flood_body()

    async def one(n: int) -> None:
        headers = {"Content-Type": "application/json"}
        if n % 2:
            headers["Authorization"] = "Bearer garbage"
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not stop.is_set():
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                    with counter.get_lock():
                        counter.value += 1
                except (aiohttp.ClientError, TimeoutError):
                    await asyncio.sleep(0.01)

    async def main() -> None:
        await asyncio.gather(*(one(n) for n in range(flooders)))

    asyncio.run(main())


async def _legit(url: str, body: bytes, token: str, requests: int) -> list[float]:
    import aiohttp

    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    async with aiohttp.ClientSession() as session:
        for _ in range(requests):
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status >= 300:
                    raise RuntimeError(f"{url} answered {response.status}")
            latencies.append(time.perf_counter() - started)
    return latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _flooded(url: str, flooders: int, measure: Any) -> tuple[Any, float]:
    """Run `measure()` while the flood runs; returns its result and the flood's requests per second."""
    context = multiprocessing.get_context("spawn")
    stop, counter = context.Event(), context.Value("i", 0)
    process = context.Process(target=_flood_process, args=(url, flooders, stop, counter), daemon=True)
    process.start()
    try:
        while counter.value < flooders:  # every flooder has had an answer: the flood is on
            await asyncio.sleep(0.05)
            if not process.is_alive():
                raise RuntimeError("the flood process died")
        start_count, started, cpu = counter.value, time.perf_counter(), time.process_time()
        result = await measure()
        elapsed = time.perf_counter() - started
        rate = (counter.value - start_count) / elapsed
        print(
            f"    (server process CPU {100 * (time.process_time() - cpu) / elapsed:.0f} % of a core during the "
            f"flood, {counter.value - start_count} flood requests)"
        )
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.terminate()
    return result, rate


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--flooders", type=int, default=16)
    parser.add_argument("--peer-requests", type=int, default=5)  # each takes seconds under the flood
    args = parser.parse_args(argv)

    import logging

    logging.basicConfig(level=logging.ERROR)  # 401 warnings and access lines would only measure the terminal
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # the peer's 500 tracebacks for every 401
    import app as entry
    from adapters.storage import SQLiteStorage
    from bench.turn_overhead import _echo_app
    from bot.http_guard import GuardedAppRunner
    from bot.server import MAX_BODY
    from tests.support.botapp import APP_ID, TECH, BotApp
    from tests.support.connector import ConnectorStandIn
    from tests.support.openid import OpenIdServer

    assert len(flood_body()) <= MAX_BODY, "the flood body must be under the limit"
    with (
        OpenIdServer() as openid,
        ConnectorStandIn(expected_app_id=APP_ID, openid=openid) as connector,
        tempfile.TemporaryDirectory() as tmp,
    ):
        harness = BotApp(
            config=BotApp.config(), storage=None, clock=None, dev=False, background=[], app_id=APP_ID, tenant=""
        )
        harness.openid, harness.connector = openid, connector
        connector.add_member(TECH.aad_id, TECH.upn, TECH.name, tenant_id=TECH.tenant)
        storage = SQLiteStorage(Path(tmp) / "bench.db")
        cordon_app = entry.build_app(
            harness.settings, harness.config, dev=False, storage=storage, token_provider=openid.outbound_token
        )
        runners = []
        urls = {}
        from aiohttp import web

        for name, app, runner_class in (
            ("cordon", cordon_app, GuardedAppRunner),
            ("peer", _echo_app(harness.settings, openid.outbound_token), web.AppRunner),
        ):
            runner = runner_class(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            runners.append(runner)
            urls[name] = f"http://127.0.0.1:{runner.addresses[0][1]}/api/messages"
        at = "<at>Cordon</at>"
        activity = harness.activity(
            "message",
            actor=TECH,
            text=f"{at} help",
            textFormat="plain",
            entities=[{"type": "mention", "mentioned": {"id": f"28:{APP_ID}", "name": "Cordon"}, "text": at}],
        )
        body = json.dumps(activity).encode()
        token = openid.channel_token(APP_ID, connector.url)
        try:
            for url in urls.values():
                await _legit(url, body, token, 30)  # warm up: keys, roster cache, first-message reference
            alone = await _legit(urls["cordon"], body, token, args.requests)
            loaded, rate = await _flooded(
                urls["cordon"], args.flooders, lambda: _legit(urls["cordon"], body, token, args.requests)
            )
            peer_alone = await _legit(urls["peer"], body, token, args.peer_requests)
            peer_loaded, peer_rate = await _flooded(
                urls["peer"], args.flooders, lambda: _legit(urls["peer"], body, token, args.peer_requests)
            )
        finally:
            for runner in runners:
                await runner.cleanup()
            await storage.close()

    def line(name: str, values: list[float]) -> str:
        return f"p50 {_pct(values, 0.5):8.1f} ms   p99 {_pct(values, 0.99):8.1f} ms   (n={len(values)})"

    print(
        f"unauthenticated flood: {args.flooders} flooders, {len(flood_body()) // 1024} KB bodies "
        f"({FLOOD_MEMBERS} membersAdded), legit `help` one at a time"
    )
    print(f"  cordon alone         {line('alone', alone)}")
    print(f"  cordon under flood   {line('loaded', loaded)}   flood answered {rate:7.0f} req/s")
    print(f"  peer alone           {line('peer', peer_alone)}")
    print(f"  peer under flood     {line('peer', peer_loaded)}   flood answered {peer_rate:7.0f} req/s")
    ratio = statistics.median(loaded) / statistics.median(alone)
    peer_ratio = statistics.median(peer_loaded) / statistics.median(peer_alone)
    print(f"  ratio loaded/alone p50: cordon {ratio:.2f} (goal <= 2), stock botbuilder route {peer_ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
