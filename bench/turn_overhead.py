"""Turn overhead: `help` through Cordon's full HTTP + JWT path vs. a minimal botbuilder echo bot, in one run.

Both bots run in this process on 127.0.0.1 with the same JWT setup (inbound tokens checked against a local
OpenID/JWKS server, outbound replies posted to a local Bot Connector stand-in with a bearer token). The echo bot
is the stock `CloudAdapter.process` route with a one-line handler. Prints requests/s and p50/p99 latency for each
and the ratio (Cordon time per turn / echo time per turn; goal ≤ 1.3).

    python bench/turn_overhead.py [--requests 600] [--concurrency 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _echo_app(settings: Any, token_provider: Any) -> Any:
    """The peer: a minimal botbuilder bot, started the way the SDK samples do it."""
    from aiohttp import web
    from botbuilder.core import ActivityHandler, TurnContext
    from botbuilder.integration.aiohttp import CloudAdapter
    from botbuilder.schema import CallerIdConstants
    from botframework.connector.auth import (
        AuthenticationConfiguration,
        AuthenticationConstants,
        BotFrameworkAuthenticationFactory,
    )

    from bot.auth import TokenProviderCredentialFactory

    authentication = BotFrameworkAuthenticationFactory.create(
        validate_authority=True,
        to_channel_from_bot_login_url=AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX,
        to_channel_from_bot_oauth_scope=AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE,
        to_bot_from_channel_token_issuer=AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER,
        oauth_url=AuthenticationConstants.OAUTH_URL,
        to_bot_from_channel_open_id_metadata_url=settings.openid_metadata,
        to_bot_from_emulator_open_id_metadata_url=AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL,
        caller_id=CallerIdConstants.public_azure_channel,
        credential_factory=TokenProviderCredentialFactory(settings.app_id, token_provider),
        auth_configuration=AuthenticationConfiguration(),
    )
    adapter = CloudAdapter(authentication)

    class EchoBot(ActivityHandler):
        async def on_message_activity(self, turn_context: TurnContext) -> None:
            await turn_context.send_activity(f"echo: {turn_context.activity.text}")

    bot = EchoBot()

    async def messages(request: web.Request) -> web.Response:
        return await adapter.process(request, bot)

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    return app


async def _serve(app: Any) -> tuple[Any, str]:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/api/messages"


async def _load(url: str, body: bytes, token: str, requests: int, concurrency: int) -> tuple[float, list[float]]:
    import aiohttp

    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    remaining = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for _ in remaining:
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status >= 300:
                        raise RuntimeError(f"{url} answered {response.status}")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return requests / elapsed, latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    import logging

    logging.basicConfig(level=logging.WARNING)
    import app as entry
    from adapters.storage import SQLiteStorage
    from tests.support.botapp import APP_ID, TECH, BotApp
    from tests.support.connector import ConnectorStandIn
    from tests.support.openid import OpenIdServer

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
        echo_app = _echo_app(harness.settings, openid.outbound_token)
        cordon_runner, cordon_url = await _serve(cordon_app)
        echo_runner, echo_url = await _serve(echo_app)
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
            for url in (cordon_url, echo_url):  # warm up: keys, roster cache, first-message reference
                await _load(url, body, token, 50, args.concurrency)
            results: dict[str, list[tuple[float, list[float]]]] = {"cordon": [], "echo": []}
            for _ in range(args.rounds):
                results["cordon"].append(await _load(cordon_url, body, token, args.requests, args.concurrency))
                results["echo"].append(await _load(echo_url, body, token, args.requests, args.concurrency))
        finally:
            await cordon_runner.cleanup()
            await echo_runner.cleanup()
            await storage.close()

    def summary(name: str) -> tuple[float, float, float]:
        rps = statistics.median(r for r, _ in results[name])
        latencies = [x for _, lat in results[name] for x in lat]
        return rps, _pct(latencies, 0.50), _pct(latencies, 0.99)

    cordon, echo = summary("cordon"), summary("echo")
    print(f"turn overhead: {args.rounds} rounds x {args.requests} requests, concurrency {args.concurrency}")
    print(f"  cordon `help`  {cordon[0]:8.1f} req/s   p50 {cordon[1]:7.2f} ms   p99 {cordon[2]:7.2f} ms")
    print(f"  echo bot       {echo[0]:8.1f} req/s   p50 {echo[1]:7.2f} ms   p99 {echo[2]:7.2f} ms")
    ratio = echo[0] / cordon[0]
    print(
        f"  ratio (cordon time per turn / echo): {ratio:.2f}  (p50 {cordon[1] / echo[1]:.2f}, "
        f"p99 {cordon[2] / echo[2]:.2f}; goal <= 1.3)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
