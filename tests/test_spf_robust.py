"""Robustness over real DNS: generated hostile SPF trees (random terms, includes between them, binary bytes,
oversized records) served by NSD; neither `check_host` nor `analyse_spf` may raise, whatever they meet."""

from __future__ import annotations

import asyncio
import random

import pytest

from adapters.dns.resolver import CheckResolver
from adapters.emailauth.spf_eval import RESULTS, check_host
from adapters.emailauth.spf_lint import analyse_spf

COUNT = 120
PIECES = [
    "a",
    "mx",
    "ptr",
    "all",
    "-all",
    "~all",
    "?all",
    "+all",
    "ip4:192.0.2.0/24",
    "ip6:2001:db8::/32",
    "exists:%{i}.x.fuzz.test",
    "a:%{d}",
    "mx:%{o}/24",
    "ptr:%{p}",
    "a/0",
    "ip4:0.0.0.0/0",
    "%{",
    "}",
    "=",
    "exp=e.fuzz.test",
    "redirect=r{n}.fuzz.test",
    "include:r{n}.fuzz.test",
    "include:r{n}.fuzz.test",
    "include:%{l}.fuzz.test",
    "a:r{n}.fuzz.test",
    "mx:r{n}.fuzz.test",
    "x-mod=%{s}",
    "a:foo..fuzz.test",
    "include:" + "l" * 63 + ".fuzz.test",
    "a:%{d}%{d}%{d}%{d}%{d}%{d}",
    ":",
    "/",
    "//64",
]


def _record(rng: random.Random) -> bytes:
    words = [rng.choice(PIECES).replace("{n}", str(rng.randrange(COUNT))) for _ in range(rng.randrange(0, 14))]
    text = ("v=spf1 " + " ".join(words)).encode()
    if rng.random() < 0.1:
        text += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 20)))
    if rng.random() < 0.05:
        text += b" ip4:192.0.2.1" * 60
    return text


def _zone(seed: int) -> dict[str, list]:
    rng = random.Random(seed)
    zone: dict[str, list] = {f"r{i}": [("TXT", _record(rng))] for i in range(COUNT)}
    for i in range(0, COUNT, 7):
        zone[f"r{i}"].append(("TXT", _record(rng)))  # some names publish two records
    for i in range(0, COUNT, 5):
        zone[f"r{i}"] += [("A", f"192.0.2.{i % 250}"), ("MX", f"10 r{(i * 3) % COUNT}.fuzz.test")]
    zone["e"] = [("TXT", "%{i} %{c} %{r} %{t} %{p} %{Z} %")]
    return zone


@pytest.fixture(scope="module")
def server(nsd_factory):
    return nsd_factory({"fuzz.test": _zone(7208)})


async def test_check_host_and_lint_never_raise_on_generated_trees(server):
    resolver_args = {"nameservers": [server.address], "timeout": 1, "budget": 30}
    outcomes: set[str] = set()

    async def one(i: int) -> None:
        for ip in ("192.0.2.7", "2001:db8::7"):
            result = await check_host(ip, f"r{i}.fuzz.test", f"u{i}@r{i}.fuzz.test", CheckResolver(**resolver_args))
            assert result.result in RESULTS
            outcomes.add(result.result)
        report = await analyse_spf(f"r{i}.fuzz.test", CheckResolver(**resolver_args))
        assert report["status"] in ("pass", "warn", "fail", "none", "error") and report["status"] != "error"
        assert report["findings"] or report["status"] == "pass"

    await asyncio.gather(*(one(i) for i in range(COUNT)))
    assert {"pass", "fail", "permerror"} <= outcomes  # the corpus really reaches the interesting paths
