"""Benchmark: `investigate` over 10,000 sign-ins in the window and `hunt` over a tenant log of 200,000 sign-ins,
served by the Graph stand-in (in a child process, so its memory is not counted) with 50 ms per request.

The hunt's `$filter`s are applied to the tenant log by the stand-in's own parser (tests/support/graph_standin/
sign_in_filter.py), so Graph returns only the matching sign-ins: the seed IP's (a spray of ~3,300 failures and a
few successes) and the risky ones. Prints, for each:
- requests made vs the sign-in pages needed (goal: <= pages + 10; for the hunt, the pages of the filtered results,
  counted by the stand-in from the filters it was sent);
- wall time / (pages x 50 ms), the floor for pages that can only come one after another through nextLink
  (investigate reads the window and the baseline as two streams at once: the longer one is the floor; the hunt's
  streams run side by side: the longest one is the floor);
- peak RSS of this process (goal: <= 200 MB).

    python bench/investigate.py [--window 10000] [--tenant-sign-ins 200000] [--latency 0.05]
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
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TENANT = "3f1e6f43-7d38-4b0e-9a51-1c0f3f0c7a11"
NOW = dt.datetime(2026, 11, 27, 22, 0, tzinfo=dt.UTC)
BASELINE_SIGN_INS = 3_000
USERS = 5_000
SEED_IP = "203.0.113.66"


def serve(window: int, tenant_rows: int, latency: float) -> None:
    """Child process: the stand-in with a victim of `window` sign-ins and a tenant log of `tenant_rows`."""
    import re

    from aiohttp import web

    from tests.support.graph_standin import GraphStandin, incident_routes, lockdown_payloads, payloads
    from tests.support.graph_standin import incident_payloads as ip
    from tests.support.graph_standin.lockdown_routes import LockdownData
    from tests.support.graph_standin.server import graph_error
    from tests.support.graph_standin.sign_in_filter import FilterError, compile_filter

    victim = payloads.user("victim@contoso.com", id="00000000-0000-4000-8000-000000000001")
    places = ["paris", "lyon", "stockholm", "newyork"]
    window_rows = [
        ip.sign_in(
            victim,
            NOW - dt.timedelta(minutes=1 + i * 7 * 24 * 60 / window),
            ip=f"198.51.100.{i % 50}",
            place=places[i % 4 if i % 97 == 0 else 0],
            client="IMAP4" if i % 501 == 0 else "Browser",
        )
        for i in range(window)
    ]
    baseline_rows = [
        ip.sign_in(
            victim,
            NOW - dt.timedelta(days=7, minutes=1 + i * 30 * 24 * 60 / BASELINE_SIGN_INS),
            ip=f"198.51.100.{i % 20}",
        )
        for i in range(BASELINE_SIGN_INS)
    ]
    select = "id,createdDateTime,userId,userPrincipalName,ipAddress,status,riskLevelDuringSignIn,riskState,location"

    def tenant_row(i: int) -> dict[str, Any]:
        full = ip.sign_in(
            {
                "id": f"00000000-0000-4000-8000-{i % USERS:012d}",
                "userPrincipalName": f"user{i % USERS:05d}@contoso.com",
                "displayName": "",
            },
            NOW - dt.timedelta(seconds=i * 3),
            ip=SEED_IP if i % 20_011 == 0 or i % 61 == 0 else f"198.51.{i % 200}.9",
            error_code=50126 if i % 61 == 0 and i % 20_011 else 0,
            risk_level="high" if i % 50_021 == 0 else "medium" if i % 9_973 == 0 else "none",
        )
        return {k: full[k] for k in select.split(",")}

    tenant = [tenant_row(i) for i in range(tenant_rows)]  # made up front: the stand-in costs ~nothing per request
    by_user = re.compile(r"^userId eq '([0-9a-f-]{36})' and createdDateTime ge ")
    filtered: dict[str, list[dict[str, Any]]] = {}  # the tenant log through each filter the hunt sent
    filtering = [0.0]  # seconds the stand-in spent applying them (Graph does that on its side)

    def routes(router: web.UrlDispatcher, standin: GraphStandin) -> None:
        async def sign_ins(request: web.Request) -> web.Response:
            text = request.query.get("$filter", "")
            if by_user.match(text):
                rows = baseline_rows if " lt " in text else window_rows
            elif text not in filtered:
                try:
                    keep = compile_filter(text)
                except FilterError:
                    return graph_error(400, "BadRequest", "Invalid filter clause")
                started = time.perf_counter()
                rows = filtered[text] = [r for r in tenant if keep(r)]
                filtering[0] += time.perf_counter() - started
            else:
                rows = filtered[text]
            return standin.page(request, len(rows), lambda start, size: rows[start : start + size])

        async def stats(request: web.Request) -> web.Response:
            return web.json_response(
                {
                    "graph_requests": standin.request_count,
                    "filtered": {text: len(rows) for text, rows in filtered.items()},
                    "filtering_seconds": filtering[0],
                }
            )

        async def nothing(request: web.Request) -> web.Response:
            return web.json_response({"value": []})

        router.add_get("/v1.0/identityProtection/riskDetections", nothing)  # keeps the stand-in's own log out
        router.add_get("/v1.0/auditLogs/signIns", sign_ins)
        router.add_get("/_stats", stats)

    async def main() -> None:
        standin = GraphStandin(
            home_tenant=TENANT, extensions=[routes, incident_routes.register], latency=latency, record=False
        )
        state = standin.state
        state.users[victim["id"]] = victim
        state.skus = payloads.premium_skus("P2")
        data = LockdownData.of(state)
        data.audits = [ip.audit("User registered security info", NOW - dt.timedelta(hours=3), target=victim)]
        data.rules[victim["id"]] = [lockdown_payloads.message_rule("x", forward_to=["a@evil.example"])]
        incident = incident_routes.IncidentData.of(state)
        for name in ("Mail Sync", "Office"):
            app = ip.service_principal(name)
            incident.add_grant(victim, app, ip.grant(victim, app, "Mail.Read"))
        incident.add_device(victim, ip.managed_device(victim, "PC", synced=NOW), ip.protection_state(quick=NOW))
        await standin.start()
        print(json.dumps({"url": standin.url, "environ": standin.environ()}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await standin.stop()

    asyncio.run(main())


async def stats(url: str) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(f"{url}/_stats") as response:
        return dict(await response.json())


async def graph_requests(url: str) -> int:
    return int((await stats(url))["graph_requests"])


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(url: str, args: argparse.Namespace) -> None:
    from adapters.config import parse_config
    from adapters.graph import GraphGateway
    from dialogs.investigate.commands import run_investigation
    from dialogs.investigate.hunt import hunt

    config = parse_config(
        {"graph": {"endpoint": url}, "tenants": [{"name": "Contoso", "tenant_id": TENANT, "domains": ["contoso.com"]}]}
    )
    gateway = GraphGateway(config)
    tenant = gateway.tenant("Contoso")
    await gateway.licence(tenant)  # warm the token and the connection, as a running server would be
    # and msgraph's models: the first typed call (inbox rules) imports ~1,200 model modules once per process
    from adapters.graph.containment import Containment

    await Containment(gateway, tenant).inbox_rules("00000000-0000-4000-8000-000000000001")
    rss_start = rss_mb()

    before = await graph_requests(url)
    started = time.perf_counter()
    report = await run_investigation(gateway, "victim@contoso.com", 7, NOW)
    seconds = time.perf_counter() - started
    made = await graph_requests(url) - before
    pages = math.ceil(args.window / 999) + math.ceil(BASELINE_SIGN_INS / 999)
    floor = max(math.ceil(args.window / 999), math.ceil(BASELINE_SIGN_INS / 999)) * args.latency  # two streams
    print(
        f"investigate: {len(report.window):,} sign-ins in the window, {report.baseline.sign_ins:,} in the baseline, "
        f"{len(report.findings)} findings, not read: {len(report.not_read)}"
    )
    print(f"  requests made   {made}  (sign-in pages {pages}; goal <= pages + 10 = {pages + 10})")
    print(
        f"  wall time       {seconds:.2f} s = {seconds / floor:.2f} x the floor ({floor:.2f} s: the window's "
        f"{math.ceil(args.window / 999)} pages one after another, the baseline's beside them)"
    )
    print(f"  peak RSS        {rss_mb():.0f} MB (at start {rss_start:.0f} MB; goal <= 200 MB)")

    before = await graph_requests(url)
    started = time.perf_counter()
    result = await hunt(gateway, tenant, [SEED_IP], NOW, 7)
    seconds = time.perf_counter() - started
    made = await graph_requests(url) - before
    served = await stats(url)
    streams = [math.ceil(n / 999) or 1 for n in served["filtered"].values()]  # each asked once at least
    pages = sum(streams)
    floor = max(streams) * args.latency
    print(
        f"hunt: {args.tenant_sign_ins:,} sign-ins in the tenant log, {result.sign_ins_read:,} sent by Graph through "
        f"{len(streams)} filters, {len(result.checked):,} accounts checked, {len(result.accounts)} with evidence, "
        f"cut short: {len(result.cut_short)}"
    )
    print(f"  requests made   {made}  (pages of the filtered results {pages}; goal <= pages + 10 = {pages + 10})")
    print(
        f"  wall time       {seconds:.2f} s = {seconds / floor:.2f} x the floor of {max(streams)} x "
        f"{args.latency * 1000:.0f} ms ({floor:.2f} s: the longest stream's pages one after another); the stand-in "
        f"spent {served['filtering_seconds']:.2f} s of it filtering the log (Graph's side)"
    )
    print(f"  peak RSS        {rss_mb():.0f} MB (goal <= 200 MB)")
    await gateway.close()


async def bench(args: argparse.Namespace) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            "--window",
            str(args.window),
            "--tenant-sign-ins",
            str(args.tenant_sign_ins),
            "--latency",
            str(args.latency),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(child.stdout.readline())  # type: ignore[union-attr]
        os.environ.update(info["environ"])
        await run(info["url"], args)
    finally:
        child.stdin.close()  # type: ignore[union-attr]
        child.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--window", type=int, default=10_000)
    parser.add_argument("--tenant-sign-ins", type=int, default=200_000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.window, args.tenant_sign_ins, args.latency)
    else:
        asyncio.run(bench(args))


if __name__ == "__main__":
    main()
