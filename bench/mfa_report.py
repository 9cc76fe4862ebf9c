"""Benchmark: `mfa report` over 50,000 synthetic users served by the Graph stand-in with 50 ms per request.

Prints, against peers measured in the same run:
- requests made vs the pages the report needs (goal: <= pages + 5);
- wall time / (pages x 50 ms), the floor for pages that come one after another through nextLink (goal: <= 1.5);
- peak RSS of this process (goal: <= 250 MB); the stand-in runs in a child process so it is not counted;
- the same listing through the typed msgraph-sdk page iterator (models for every user), as a peer.

    python bench/mfa_report.py [--users 50000] [--latency 0.05] [--no-sdk-peer]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
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
TENANT = "3f1e6f43-7d38-4b0e-9a51-1c0f3f0c7a11"
METHOD_MIX = [
    ["microsoftAuthenticatorPush"],
    ["fido2", "microsoftAuthenticatorPush"],
    ["mobilePhone"],
    [],
    ["softwareOneTimePasscode", "email"],
    ["email"],
    ["windowsHelloForBusiness"],
    ["microsoftAuthenticatorPush"],
]


def synthetic(i: int) -> dict[str, Any]:
    from tests.support.graph_standin import payloads

    user = {
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "userPrincipalName": f"user{i:06d}@contoso.com",
        "displayName": f"User {i}",
    }
    return payloads.registration(user, METHOD_MIX[i % len(METHOD_MIX)], is_admin=i % 400 == 0)


def serve(users: int, latency: float) -> None:
    """Child process: the stand-in with `users` synthetic users; prints its URL, serves until stdin closes."""
    from aiohttp import web

    from tests.support.graph_standin import GraphStandin, payloads

    def stats(router: web.UrlDispatcher, standin: GraphStandin) -> None:
        async def handler(request: web.Request) -> web.Response:
            return web.json_response({"graph_requests": standin.request_count})

        router.add_get("/_stats", handler)

    async def main() -> None:
        standin = GraphStandin(home_tenant=TENANT, extensions=[stats], latency=latency, record=False)
        items = [synthetic(i) for i in range(users)]  # made up front: the stand-in must cost ~nothing per request
        standin.state.synthetic_registration = (users, items.__getitem__)
        standin.state.ca_policies = [payloads.ca_policy("Require MFA for all users", include_users=["All"])]
        await standin.start()
        print(json.dumps({"url": standin.url, "environ": standin.environ()}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await standin.stop()

    asyncio.run(main())


async def graph_requests(url: str) -> int:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(f"{url}/_stats") as response:
        return (await response.json())["graph_requests"]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run_cordon(url: str) -> dict[str, Any]:
    from adapters.config import parse_config
    from adapters.graph import GraphGateway
    from adapters.graph.mfa_report import CSV_FIELDS, build_report, csv_row

    config = parse_config(
        {"graph": {"endpoint": url}, "tenants": [{"name": "Contoso", "tenant_id": TENANT, "domains": ["contoso.com"]}]}
    )
    gateway = GraphGateway(config)
    tenant = gateway.tenant("Contoso")
    await gateway.licence(tenant)  # warm the token and the connection, as a running server would be
    before = await graph_requests(url)
    with tempfile.NamedTemporaryFile("w", newline="", suffix=".csv") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        started = time.perf_counter()
        report = await build_report(gateway, tenant, on_row=lambda item, level: writer.writerow(csv_row(item, level)))
        elapsed = time.perf_counter() - started
    made = await graph_requests(url) - before
    await gateway.close()
    return {
        "users": report.users,
        "pages": report.pages,
        "requests": made,
        "seconds": elapsed,
        "enforcement": report.enforcement,
    }


async def run_sdk_peer(url: str) -> dict[str, Any]:
    """The same listing with typed models and msgraph-core's PageIterator (what a straightforward client does)."""
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph_core.tasks.page_iterator import PageIterator

    from adapters.config import parse_config
    from adapters.graph import GraphGateway

    config = parse_config(
        {"graph": {"endpoint": url}, "tenants": [{"name": "Contoso", "tenant_id": TENANT, "domains": ["contoso.com"]}]}
    )
    gateway = GraphGateway(config)
    client = gateway.client(gateway.tenant("Contoso"))
    builder = client.reports.authentication_methods.user_registration_details
    query = builder.UserRegistrationDetailsRequestBuilderGetQueryParameters(top=999)
    started = time.perf_counter()
    first = await builder.get(RequestConfiguration(query_parameters=query))
    counted = {"users": 0, "registered": 0}

    def count(item: Any) -> bool:
        counted["users"] += 1
        counted["registered"] += bool(item.is_mfa_registered)
        return True

    iterator = PageIterator(first, client.request_adapter)  # the factory comes from type(first)
    await iterator.iterate(count)
    elapsed = time.perf_counter() - started
    await gateway.close()
    return {"users": counted["users"], "seconds": elapsed}


async def bench(args: argparse.Namespace) -> None:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--users", str(args.users), "--latency", str(args.latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(child.stdout.readline())  # type: ignore[union-attr]
        os.environ.update(info["environ"])
        url = info["url"]
        rss_start = rss_mb()
        cordon = await run_cordon(url)
        rss_cordon = rss_mb()
        pages = math.ceil(args.users / 999)
        floor = pages * args.latency
        print(
            f"users {cordon['users']:,} · pages {cordon['pages']} (expected {pages}) · enforcement: "
            f"{cordon['enforcement']}"
        )
        print(f"requests made          {cordon['requests']}  (goal <= pages + 5 = {pages + 5})")
        print(
            f"wall time              {cordon['seconds']:.2f} s  = {cordon['seconds'] / floor:.2f} x the floor of "
            f"{pages} x {args.latency * 1000:.0f} ms ({floor:.2f} s)  (goal <= 1.5)"
        )
        print(f"peak RSS               {rss_cordon:.0f} MB  (at start {rss_start:.0f} MB; goal <= 250 MB)")
        if not args.no_sdk_peer:
            peer = await run_sdk_peer(url)
            print(
                f"peer: typed msgraph-sdk PageIterator  {peer['seconds']:.2f} s for {peer['users']:,} users = "
                f"{peer['seconds'] / floor:.2f} x the floor; Cordon takes {cordon['seconds'] / peer['seconds']:.2f} "
                f"x the peer's time (peak RSS after the peer {rss_mb():.0f} MB)"
            )
    finally:
        child.stdin.close()  # type: ignore[union-attr]
        child.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--no-sdk-peer", action="store_true")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.users, args.latency)
    else:
        asyncio.run(bench(args))


if __name__ == "__main__":
    main()
