"""Benchmark: memory of N tenants' Graph clients, one shared SSL context (Cordon) against an SSL context per tenant
(the peer: what `build_client` makes without `ssl_context`, as Cordon did before), each in a child process.

Each side is measured in a fresh child process (RSS is not given back to the OS reliably); the clients are built
inside a running loop and not used, so only what a client holds is counted.

    python bench/graph_clients.py [--tenants 500]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def measure(tenants: int, shared: bool) -> dict[str, float]:
    from adapters.config import parse_config
    from adapters.graph import GraphGateway
    from adapters.graph.transport import build_client

    config = parse_config(
        {"tenants": [{"name": f"T{i}", "tenant_id": f"20000000-0000-4000-8000-{i:012d}"} for i in range(tenants)]}
    )
    gateway = GraphGateway(config)

    async def main() -> dict[str, float]:
        def make(tenant):  # noqa: ANN001, ANN202
            if shared:
                return gateway.client(tenant)
            return build_client(
                gateway.token_source(tenant),
                endpoint=gateway.graph.endpoint,
                timeout=gateway.graph.timeout_seconds,
                policy=gateway.retry_policy,
            )

        kept = [make(gateway.tenants[0])]
        gc.collect()
        start = rss_mb()
        kept += [make(t) for t in gateway.tenants[1:]]
        gc.collect()
        end = rss_mb()
        await gateway.close()
        return {"start": start, "end": end, "per_tenant_kb": (end - start) * 1024 / max(1, tenants - 1)}

    return asyncio.run(main())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=500)
    parser.add_argument("--side", choices=["shared", "own"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(measure(args.tenants, args.side == "shared")))
        return 0
    results = {}
    for side in ("shared", "own"):
        out = subprocess.run(
            [sys.executable, __file__, "--tenants", str(args.tenants), "--side", side],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results[side] = json.loads(out)
    cordon, peer = results["shared"], results["own"]
    print(f"{args.tenants} tenants' Graph clients")
    for name, r in (("one shared SSL context", cordon), ("SSL context per tenant (peer)", peer)):
        print(
            f"  {name:28} RSS {r['start']:.0f} -> {r['end']:.0f} MB  (+{r['end'] - r['start']:.1f} MB, "
            f"{r['per_tenant_kb']:.0f} KB per tenant)"
        )
    grown = max(cordon["end"] - cordon["start"], 0.1)
    print(f"  growth ratio peer/Cordon     {(peer['end'] - peer['start']) / grown:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
