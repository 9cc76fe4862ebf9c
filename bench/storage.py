"""Storage contract operations and the lock-down approval round trip: SQLite (a file) vs Azure Table storage
(Azurite, the emulator, on this machine), in the same run. Prints ops/s and p99 per operation, and the ratios.

    python bench/storage.py [--quick]

Needs Azurite (`bash tests/run` installs it). Operations: get, CAS update under contention from 2 processes
(`update()` on one key, both at once), audit append, list (a 200-document prefix); then the lock-down approval
round trip (press Approve -> every step run, against the Graph stand-in) through the real router.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.storage import AuditEntry, Storage, update  # noqa: E402
from tests.support.azurite import azurite_table_binary, start_azurite  # noqa: E402
from tests.support.stores import CONNECTION_ENV, open_spec  # noqa: E402

_CONTENDER = """
import asyncio, json, os, sys, time
sys.path.insert(0, sys.argv[1])
from adapters.retry import RetryPolicy
from adapters.storage import update
from tests.support.stores import open_spec

async def main(spec, start, n):
    store = open_spec(spec)
    await store.ping()
    while not os.path.exists(start):
        time.sleep(0.002)
    lat = []
    PATIENT = RetryPolicy(budget_seconds=600, max_attempts=500, base_delay=0.002, max_delay=0.2, full_jitter=True)
    t0 = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        await update(store, "contended", lambda v: {"n": (v or {"n": 0})["n"] + 1}, policy=PATIENT)
        lat.append(time.perf_counter() - t)
    wall = time.perf_counter() - t0
    await store.close()
    print(json.dumps({"lat": lat, "wall": wall}))

asyncio.run(main(sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


async def timed(n: int, op: Callable[[int], Awaitable[Any]]) -> dict[str, float]:
    lat: list[float] = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        await op(i)
        lat.append(time.perf_counter() - t)
    wall = time.perf_counter() - start
    return {"ops_s": n / wall, "p99_ms": p99(lat) * 1000, "p50_ms": statistics.median(lat) * 1000}


async def contention(spec: str, env: dict[str, str], n: int, tmp: Path) -> dict[str, float]:
    script = tmp / "contender.py"
    script.write_text(_CONTENDER, encoding="utf-8")
    start = tmp / f"go-{time.monotonic_ns()}"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(ROOT), spec, str(start), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    await asyncio.sleep(1.0)
    start.write_text("go")
    lat: list[float] = []
    walls = []
    for proc in procs:
        out, err = await asyncio.to_thread(proc.communicate, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(err)
        result = json.loads(out)
        lat += result["lat"]
        walls.append(result["wall"])
    store = open_spec(spec)
    doc = await store.get("contended")
    await store.close()
    assert doc is not None and doc.value["n"] == 2 * n, doc  # no increment lost
    return {"ops_s": 2 * n / max(walls), "p99_ms": p99(lat) * 1000, "p50_ms": statistics.median(lat) * 1000}


async def storage_ops(spec: str, env: dict[str, str], tmp: Path, scale: int) -> dict[str, dict[str, float]]:
    store: Storage = open_spec(spec)
    await store.ping()
    results: dict[str, dict[str, float]] = {}
    for i in range(200):
        await store.put(f"list/{i:04d}", {"i": i, "pad": "x" * 200}, None)
    await store.put("read-me", {"state": "pending", "pad": "y" * 500}, None)
    results["get"] = await timed(60 * scale, lambda i: store.get("read-me"))
    results["audit append"] = await timed(
        40 * scale,
        lambda i: store.append_audit(
            AuditEntry(actor="bench", command="lockdown:step", outcome="ok", tenant="t", target=f"u{i}")
        ),
    )
    results["list (200 docs)"] = await timed(4 * scale, lambda i: store.list("list/"))
    results["CAS update, 1 process"] = await timed(
        40 * scale, lambda i: update(store, "solo", lambda v: {"n": (v or {"n": 0})["n"] + 1})
    )
    await store.close()
    results["CAS update, 2 processes on 1 key"] = await contention(spec, env, 20 * scale, tmp)
    return results


async def approval_round_trips(spec: str, rounds: int) -> dict[str, float]:
    """Press Approve on a fresh request, then wait for the run: the technician's wait, through the real router."""
    from dialogs.lockdown import state
    from tests.support.graph_standin.fixtures import CONTOSO
    from tests.support.graph_standin.lockdown_routes import register
    from tests.support.graph_standin.lockdown_world import World, lockdown_config, populate
    from tests.support.graph_standin.server import GraphStandin
    from tests.test_lockdown_flow import Flow, button_data

    lat: list[float] = []
    async with GraphStandin(home_tenant=CONTOSO, extensions=[register], record=False) as standin:
        os.environ.update(standin.environ())
        data, people = populate(standin)
        world = World(standin, data, people, lockdown_config(standin.url))
        store = open_spec(spec)
        try:
            flow = Flow(world, store)
            for _ in range(rounds):
                flow.outbox.sent.clear()
                await flow.say("lockdown alice@contoso.com")
                card = flow.outbox.sent[-1].card
                started = time.perf_counter()
                await flow.press("lockdown.approve", button_data(card))
                await flow.drain()
                lat.append(time.perf_counter() - started)
                done = [r for r in await flow.requests() if r["state"] == state.DONE]
                assert done, "the run did not finish"
                standin.state.users[people["alice"]["id"]]["accountEnabled"] = True  # ready for the next round
        finally:
            await store.close()
            await world.close()
    return {"ops_s": len(lat) / sum(lat), "p99_ms": p99(lat) * 1000, "p50_ms": statistics.median(lat) * 1000}


async def main(quick: bool) -> int:
    binary = azurite_table_binary()
    if binary is None:
        print("bench/storage.py: Azurite is not installed (`bash tests/run` installs it)", file=sys.stderr)
        return 2
    scale = 1 if quick else 5
    rounds = 3 if quick else 10
    with tempfile.TemporaryDirectory(prefix="cordon-bench-") as tmp_name:
        tmp = Path(tmp_name)
        azurite = start_azurite(binary, tmp_name)
        try:
            env = {**os.environ, CONNECTION_ENV: azurite.connection_string}
            os.environ[CONNECTION_ENV] = azurite.connection_string
            specs = {"SQLite": f"sqlite:{tmp / 'bench.db'}", "Azurite": f"azure:{azurite.new_prefix()}"}
            table: dict[str, dict[str, dict[str, float]]] = {}
            for name, spec in specs.items():
                if name == "SQLite":
                    open_spec(spec)  # the schema, as the server makes it at start
                table[name] = await storage_ops(spec, env, tmp, scale)
                table[name]["lock-down approval round trip"] = await approval_round_trips(
                    spec if name == "SQLite" else f"azure:{azurite.new_prefix()}", rounds
                )
        finally:
            azurite.process.terminate()
            azurite.process.wait(10)
    print(
        f"{'operation':36} {'SQLite ops/s':>12} {'p99 ms':>8} {'Azurite ops/s':>14} {'p99 ms':>8} "
        f"{'ops/s ratio':>11} {'p99 ratio':>9}"
    )
    for op in table["SQLite"]:
        s, a = table["SQLite"][op], table["Azurite"][op]
        print(
            f"{op:36} {s['ops_s']:12.1f} {s['p99_ms']:8.2f} {a['ops_s']:14.1f} {a['p99_ms']:8.2f} "
            f"{a['ops_s'] / s['ops_s']:11.2f} {a['p99_ms'] / s['p99_ms']:9.2f}"
        )
    print("ratio = Azurite / SQLite (ops/s below 1: Azurite slower; p99 above 1: Azurite slower)")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer operations (a smoke run)")
    sys.exit(asyncio.run(main(parser.parse_args().quick)))
