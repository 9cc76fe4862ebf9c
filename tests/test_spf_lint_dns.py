"""The SPF lint when part of the tree does not resolve: a SERVFAIL or timeout is "could not check", never a silent
pass. Judged against Cordon's `check_host` over the generated scenarios of the differential test (NSD, SERVFAIL
from the fault proxy), then on explicit zones, then through `python app.py check --json`."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.dns.resolver import CheckResolver
from adapters.emailauth.spf_eval import check_host
from adapters.emailauth.spf_lint import analyse_spf
from adapters.emailauth.spf_probe import MAX_MX_HOST_NAMES
from tests.support.spf_scenarios import Scenario, generate, zone_records

ROOT = Path(__file__).resolve().parents[1]
SEED = 7208
COUNT = 300
OTHER_CLIENTS = ("192.0.2.254", "2001:db8:dead::1")  # match no term: the evaluation goes as far as it can
STOPPED = {"spf.too_many_lookups", "spf.too_many_void_lookups", "spf.tree_truncated"}


def dns_findings(result: dict) -> list[dict]:
    return [f for f in result["findings"] if f["code"].endswith("dns_error")]


def naming(result: dict, name: str) -> list[dict]:
    """The DNS-failure findings whose message names `name` (as a whole name, not the tail of a longer one)."""
    return [f for f in dns_findings(result) if f" {name}" in f" {f['message']}".replace("`", " ").replace(":", " ")]


# ---------------------------------------------------------------- the generated scenarios


@dataclass
class Linted:
    scenario: Scenario
    lint: dict
    asked_failing: set[str]  # names of the scenario that SERVFAIL and that the lint asked
    temperrors: dict[str, str]  # client → check_host's reason, for the clients that got temperror


@pytest.fixture(scope="module")
def linted(nsd_factory, dns_proxy_factory) -> list[Linted]:
    scenarios = generate(COUNT, SEED)
    server = nsd_factory({".": zone_records(scenarios)})
    proxy = dns_proxy_factory(server.address)
    for scenario in scenarios:
        for name in scenario.servfail:
            proxy.add(name, None, rcode="SERVFAIL")

    async def one(scenario: Scenario) -> Linted:
        before = Counter(proxy.seen)
        result = await analyse_spf(scenario.domain, CheckResolver(nameservers=[proxy.address], timeout=5))
        asked = {name for name, _ in Counter(proxy.seen) - before}
        temperrors = {}
        for client in (scenario.ip, *OTHER_CLIENTS):
            outcome = await check_host(
                client,
                scenario.domain,
                f"x@{scenario.domain}",
                CheckResolver(nameservers=[proxy.address], timeout=5),
                helo=scenario.helo,
            )
            if outcome.result == "temperror":
                temperrors[client] = outcome.reason or ""
        return Linted(scenario, result, asked & {n.lower() for n in scenario.servfail}, temperrors)

    async def run() -> list[Linted]:
        return [await one(scenario) for scenario in scenarios]

    return asyncio.run(run())


def failing_name(row: Linted, reason: str) -> str:
    names = [
        n
        for n in row.scenario.servfail
        if f" {n.lower()}." in f" {reason.lower()}" or f" {n.lower()}:" in f" {reason.lower()}"
    ]
    assert len(names) == 1, (reason, row.scenario.describe())
    return names[0].lower()


def test_whenever_check_host_gives_temperror_the_lint_names_what_failed(linted: list[Linted]) -> None:
    bad = []
    for row in linted:
        for client, reason in row.temperrors.items():
            name = failing_name(row, reason)
            found = naming(row.lint, name)
            could_not = [f for f in found if f["code"] != "spf.mx_host_dns_error"]
            if row.lint["status"] == "pass" or not found or (could_not and row.lint["status"] != "error"):
                bad.append(
                    f"{row.scenario.describe()}\n  client {client}: temperror ({reason})\n"
                    f"  lint {row.lint['status']} {[f['code'] for f in row.lint['findings']]}"
                )
    assert not bad, f"{len(bad)} temperrors the lint does not report:\n" + "\n\n".join(bad[:6])
    # not vacuous: the scenarios fail in every way the lint tells apart
    codes = {f["code"] for row in linted if row.temperrors for f in dns_findings(row.lint)}
    assert {"spf.dns_error", "spf.include_dns_error", "spf.mx_host_dns_error"} <= codes
    assert sum(1 for row in linted if row.temperrors) >= 30


def test_whenever_a_question_of_the_tree_failed_the_lint_is_not_pass_and_names_it(linted: list[Linted]) -> None:
    bad = []
    for row in linted:
        codes = {f["code"] for f in row.lint["findings"]}
        if codes & STOPPED:
            continue  # a question asked before the walk learnt it lies past where an evaluator stops
        for name in sorted(row.asked_failing):
            if row.lint["status"] == "pass" or not naming(row.lint, name):
                bad.append(
                    f"{row.scenario.describe()}\n  {name} failed; lint {row.lint['status']} "
                    f"{[f['message'] for f in dns_findings(row.lint)]}"
                )
    assert not bad, f"{len(bad)} failed questions the lint does not report:\n" + "\n\n".join(bad[:6])
    assert sum(1 for row in linted if row.asked_failing) >= 30


def test_scenario_261_an_mx_host_that_servfails_is_a_warning_naming_it(linted: list[Linted]) -> None:
    row = linted[261]
    assert "mxh2.s261.diff.test" in row.scenario.servfail and row.temperrors
    assert row.lint["status"] == "warn"
    [found] = naming(row.lint, "mxh2.s261.diff.test")
    assert found["code"] == "spf.mx_host_dns_error" and found["severity"] == "warning"
    assert "`mx:mxd1.s261.diff.test`" in found["message"] and "temperror" in found["message"]
    assert "SERVFAIL" in found["message"]


# ---------------------------------------------------------------- explicit zones

ZONE: dict[str, list] = {
    "a-fail": [("TXT", "v=spf1 ip4:192.0.2.1 a:host.dead.dns.test -all")],
    "mx-fail": [("TXT", "v=spf1 mx:mxset.dead.dns.test -all")],
    "exists-slow": [("TXT", "v=spf1 exists:probe.dead.dns.test -all")],
    "inc-fail": [("TXT", "v=spf1 include:spf.dead.dns.test -all")],
    "redir-fail": [("TXT", "v=spf1 ip4:192.0.2.1 redirect=spf.dead.dns.test")],
    "mxhost": [("TXT", "v=spf1 mx -all"), ("MX", "10 m1.dns.test"), ("MX", "20 m2.dns.test")],
    "m1": [("A", "192.0.2.10"), ("AAAA", "2001:db8::10")],
    "m2": [("A", "192.0.2.20"), ("AAAA", "2001:db8::20")],
    "after-all": [("TXT", "v=spf1 ip4:192.0.2.1 -all a:host.dead.dns.test")],
    "bad-a": [("TXT", "v=spf1 a:foo..dns.test ip4:192.0.2.1 -all")],
    "bad-inc": [("TXT", "v=spf1 include:foo..dns.test -all")],
    "ok": [("TXT", "v=spf1 a:m1.dns.test mx:mxhost.dns.test -all")],
    "many-mx": [("TXT", "v=spf1 " + " ".join(f"mx:set{k}.dns.test" for k in range(4)) + " -all")],
    **{f"set{k}": [("MX", f"{i} h{k}x{i}.dns.test") for i in range(10)] for k in range(4)},
    **{f"h{k}x{i}": [("A", f"192.0.2.{100 + 10 * k + i}")] for k in range(4) for i in range(10)},
}


@pytest.fixture(scope="module")
def server(nsd_factory):
    return nsd_factory({"dns.test": ZONE})


@pytest.fixture
def proxy(server, dns_proxy_factory):
    proxy = dns_proxy_factory(server.address)
    for name in ("host", "mxset", "spf"):
        proxy.add(f"{name}.dead.dns.test", None, rcode="SERVFAIL")
    proxy.add("probe.dead.dns.test", None, drop=True)
    yield proxy
    proxy.clear()


async def lint(proxy, name: str, timeout: float = 1) -> dict:
    return await analyse_spf(f"{name}.dns.test", CheckResolver(nameservers=[proxy.address], timeout=timeout))


@pytest.mark.parametrize(
    ("name", "term", "failed", "says"),
    [
        ("a-fail", "a:host.dead.dns.test", "host.dead.dns.test", "SERVFAIL"),
        ("mx-fail", "mx:mxset.dead.dns.test", "mxset.dead.dns.test", "SERVFAIL"),
        ("exists-slow", "exists:probe.dead.dns.test", "probe.dead.dns.test", "timed out"),
    ],
)
async def test_a_term_whose_own_question_fails_is_could_not_check(proxy, name, term, failed, says):
    result = await lint(proxy, name, timeout=0.5)
    assert result["status"] == "error"
    [found] = dns_findings(result)
    assert found["code"] == "spf.dns_error" and found["severity"] == "error"
    assert f"`{term}`" in found["message"] and failed in found["message"] and says in found["message"]
    assert "temperror" in found["message"] and failed in found["fix"]
    assert "spf.void_lookup" not in {f["code"] for f in result["findings"]}  # unknown, not void
    client = await check_host(
        "198.51.100.1", f"{name}.dns.test", "x@example.test", CheckResolver(nameservers=[proxy.address], timeout=0.5)
    )
    assert client.result == "temperror"  # what the finding says receivers get


@pytest.mark.parametrize(
    ("name", "term"), [("inc-fail", "include:spf.dead.dns.test"), ("redir-fail", "redirect=spf.dead.dns.test")]
)
async def test_an_include_or_redirect_that_cannot_be_fetched_is_could_not_check(proxy, name, term):
    result = await lint(proxy, name)
    assert result["status"] == "error"
    [found] = dns_findings(result)
    assert found["code"] == "spf.include_dns_error" and f"`{term}`" in found["message"]
    assert "spf.dead.dns.test" in found["message"] and "temperror" in found["message"]


async def test_an_mx_host_whose_address_lookup_fails_is_a_warning_naming_it(proxy):
    proxy.add("m2.dns.test", "A", rcode="SERVFAIL")
    result = await lint(proxy, "mxhost")
    assert result["status"] == "warn"
    [found] = dns_findings(result)
    assert found["code"] == "spf.mx_host_dns_error" and found["severity"] == "warning"
    assert "m2.dns.test" in found["message"] and "`mx`" in found["message"]
    assert "IPv4 senders" in found["message"] and "IPv6" not in found["message"]
    # as the finding says: an IPv4 client no earlier host matches gets temperror; m1 still matches, IPv6 is whole
    resolver = CheckResolver(nameservers=[proxy.address], timeout=1)
    results = {
        ip: (await check_host(ip, "mxhost.dns.test", "x@mxhost.dns.test", resolver)).result
        for ip in ("198.51.100.1", "192.0.2.10", "2001:db8::99")
    }
    assert results == {"198.51.100.1": "temperror", "192.0.2.10": "pass", "2001:db8::99": "fail"}


async def test_an_mx_host_failing_in_both_families_names_both(proxy):
    proxy.add("m1.dns.test", None, rcode="SERVFAIL")
    [found] = dns_findings(await lint(proxy, "mxhost"))
    assert "m1.dns.test" in found["message"] and "IPv4 and IPv6 senders" in found["message"]


async def test_terms_after_all_are_not_asked_so_their_failure_is_not_reported(proxy):
    result = await lint(proxy, "after-all")
    assert dns_findings(result) == [] and proxy.seen[("host.dead.dns.test", "A")] == 0
    assert result["status"] == "warn" and "spf.terms_after_all" in {f["code"] for f in result["findings"]}


async def test_a_name_that_cannot_exist_is_not_asked_and_is_not_a_dns_error(proxy):
    """`foo..dns.test` has an empty label: check_host asks nothing (no match; for include, permerror), so the
    lint must not call it "could not check" either."""
    resolver = CheckResolver(nameservers=[proxy.address], timeout=1)
    result = await analyse_spf("bad-a.dns.test", resolver)
    assert result["status"] == "warn" and dns_findings(result) == []
    assert [f["code"] for f in result["findings"]] == ["spf.invalid_name"]
    assert (await check_host("192.0.2.1", "bad-a.dns.test", "x@bad-a.dns.test", resolver)).result == "pass"
    result = await analyse_spf("bad-inc.dns.test", resolver)
    assert result["status"] == "fail" and dns_findings(result) == []
    [missing] = result["findings"]
    assert missing["code"] == "spf.include_missing" and "is not a valid domain name" in missing["message"]
    assert (await check_host("192.0.2.1", "bad-inc.dns.test", "x@bad-inc.dns.test", resolver)).result == "permerror"
    assert not [name for name, _ in proxy.seen if name.startswith("foo")]


async def test_a_tree_that_resolves_still_passes(proxy):
    result = await lint(proxy, "ok")
    assert result["status"] == "pass" and result["findings"] == []
    assert proxy.seen[("m2.dns.test", "AAAA")] == 1  # the MX hosts' addresses were looked up, each once


async def test_mx_host_lookups_are_bounded_per_tree_and_the_rest_is_said(proxy):
    resolver = CheckResolver(nameservers=[proxy.address], timeout=1)
    result = await analyse_spf("many-mx.dns.test", resolver)
    hosts = {name for name, _ in proxy.seen if name.startswith("h")}
    assert len(hosts) == MAX_MX_HOST_NAMES
    assert resolver.queries <= 3 + 4 + 2 * MAX_MX_HOST_NAMES
    unchecked = [f for f in result["findings"] if f["code"] == "spf.mx_hosts_unchecked"]
    counts = [int(re.search(r"The addresses of (\d+) MX host", f["message"])[1]) for f in unchecked]
    assert sum(counts) == 4 * 10 - MAX_MX_HOST_NAMES and all(f["severity"] == "info" for f in unchecked)
    assert result["status"] == "pass"


# ---------------------------------------------------------------- through the CLI


def check_json(proxy, domain: str) -> dict:
    done = subprocess.run(
        [sys.executable, "app.py", "check", domain, "--nameserver", f"127.0.0.1:{proxy.port}", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["checks"]["spf"]


def test_cli_json_a_failing_term_is_error_with_the_name(proxy) -> None:
    spf = check_json(proxy, "a-fail.dns.test")
    assert spf["status"] == "error" and spf["record"] == "v=spf1 ip4:192.0.2.1 a:host.dead.dns.test -all"
    assert any(f["code"] == "spf.dns_error" and "host.dead.dns.test" in f["message"] for f in spf["findings"])


def test_cli_json_a_failing_mx_host_is_a_warning_with_the_name(proxy) -> None:
    proxy.add("m2.dns.test", None, rcode="SERVFAIL")
    spf = check_json(proxy, "mxhost.dns.test")
    assert spf["status"] == "warn"
    assert [f["code"] for f in spf["findings"] if "m2.dns.test" in f["message"]] == ["spf.mx_host_dns_error"]
