"""The DNS test server (NSD) and the fault proxy, exercised through the real `CheckResolver` over loopback."""

from __future__ import annotations

import asyncio

import dns.message
import dns.query
import pytest

from adapters.dns.resolver import CheckResolver, DnsFailure
from tests.support.dns_server import escape_character_string, zone_file

ZONE = {
    "@": [("TXT", "v=spf1 -all"), ("SPF", "v=spf1 -all"), ("MX", "10 mx.faults.test")],
    "bin": [("TXT", b'v=spf1 \xff\x00 "q" \\ -all')],
    "multi": [("TXT", ["v=spf1 ip4:192.0.2.1", " -all"])],
    "long": [("TXT", "v=spf1 " + "ip4:192.0.2.1 " * 40 + "-all")],
    "mx": [("A", "192.0.2.10"), ("AAAA", "2001:db8::10")],
    "alias": [("CNAME", "mx.faults.test")],
    "slow": [("TXT", "slow")],
    "gone": [("TXT", "gone")],
    "broken": [("TXT", "broken")],
    "refusing": [("TXT", "refusing")],
    "big": [("TXT", "big"), ("A", "192.0.2.99")],
}


@pytest.fixture(scope="module")
def server(nsd_factory):
    return nsd_factory({"faults.test": ZONE})


@pytest.fixture
def proxy(server, dns_proxy_factory):
    proxy = dns_proxy_factory(server.address)
    yield proxy
    proxy.clear()


def test_escape_character_string_uses_ddd_for_non_ascii_quotes_and_backslash():
    assert escape_character_string(b'a\xff"\\ b') == '"a\\255\\034\\092 b"'
    assert "\\" not in zone_file("x.test", {"@": [("A", "192.0.2.1")]}).replace("\\", "")


async def test_answers_txt_spf_mx_over_udp_and_tcp(server):
    resolver = CheckResolver(nameservers=[server.address], timeout=2)
    txt = await resolver.query("faults.test", "TXT")
    assert txt.status == "ok" and txt.texts == [b"v=spf1 -all"]
    legacy = await resolver.query("faults.test", "SPF")  # the legacy RR type 99 is served
    assert legacy.status == "ok" and legacy.texts == [b"v=spf1 -all"]
    binary = await resolver.query("bin.faults.test", "TXT")
    assert binary.texts == [b'v=spf1 \xff\x00 "q" \\ -all']
    multi = await resolver.query("multi.faults.test", "TXT")
    assert multi.texts == [b"v=spf1 ip4:192.0.2.1 -all"] and len(multi.rdatas[0].strings) == 2
    long = await resolver.query("long.faults.test", "TXT")
    assert len(long.texts[0]) > 255 and all(len(s) <= 255 for s in long.rdatas[0].strings)
    mx = await resolver.query("faults.test", "MX")
    assert [r.to_text() for r in mx.rdatas] == ["10 mx.faults.test."]
    tcp = dns.query.tcp(dns.message.make_query("mx.faults.test", "AAAA"), "127.0.0.1", port=server.port, timeout=2)
    assert [r.to_text() for r in tcp.answer[0]] == ["2001:db8::10"]


async def test_nxdomain_nodata_and_cname_are_answers_not_failures(server):
    resolver = CheckResolver(nameservers=[server.address], timeout=2)
    missing = await resolver.query("nothing.faults.test", "TXT")
    assert missing.status == "nxdomain" and not missing.exists
    nodata = await resolver.query("mx.faults.test", "TXT")
    assert nodata.status == "nodata" and nodata.exists
    alias = await resolver.query("alias.faults.test", "A")
    assert alias.status == "ok" and alias.canonical_name == "mx.faults.test"
    assert [r.to_text() for r in alias.rdatas] == ["192.0.2.10"]


async def test_drop_gives_timeout_failure(proxy):
    proxy.add("gone.faults.test", "TXT", drop=True)
    resolver = CheckResolver(nameservers=[proxy.address], timeout=0.3)
    with pytest.raises(DnsFailure) as failure:
        await resolver.query("gone.faults.test", "TXT")
    assert failure.value.reason == "timeout"
    assert proxy.seen[("gone.faults.test", "TXT")] >= 1
    assert (await resolver.query("faults.test", "TXT")).status == "ok"  # only that name is affected


async def test_servfail_and_refused_are_failures_with_their_reason(proxy):
    proxy.add("broken.faults.test", None, rcode="SERVFAIL")
    proxy.add("refusing.faults.test", "TXT", rcode="REFUSED")
    resolver = CheckResolver(nameservers=[proxy.address], timeout=1)
    with pytest.raises(DnsFailure) as servfail:
        await resolver.query("broken.faults.test", "TXT")
    assert servfail.value.reason == "servfail"
    with pytest.raises(DnsFailure) as refused:
        await resolver.query("refusing.faults.test", "TXT")
    assert refused.value.reason == "refused"


async def test_truncation_makes_the_client_retry_over_tcp(proxy):
    proxy.add("big.faults.test", "TXT", truncate=True)
    resolver = CheckResolver(nameservers=[proxy.address], timeout=2)
    answer = await resolver.query("big.faults.test", "TXT")
    assert answer.texts == [b"big"]
    assert proxy.seen_tcp[("big.faults.test", "TXT")] == 1


async def test_name_wide_rule_with_passthrough_exception(proxy):
    proxy.add("big.faults.test", None, drop=True)
    proxy.add("big.faults.test", "A", passthrough=True)
    resolver = CheckResolver(nameservers=[proxy.address], timeout=0.3)
    assert [r.to_text() for r in (await resolver.query("big.faults.test", "A")).rdatas] == ["192.0.2.99"]
    with pytest.raises(DnsFailure):
        await resolver.query("big.faults.test", "TXT")


async def test_delay_is_applied_per_name_and_globally(proxy):
    proxy.add("slow.faults.test", "TXT", delay_ms=600)
    resolver = CheckResolver(nameservers=[proxy.address], timeout=0.25)
    with pytest.raises(DnsFailure) as slow:  # slower than the client's timeout: a timeout, not an absence
        await resolver.query("slow.faults.test", "TXT")
    assert slow.value.reason == "timeout"
    proxy.clear()
    proxy.delay_ms = 600
    with pytest.raises(DnsFailure):
        await CheckResolver(nameservers=[proxy.address], timeout=0.25).query("faults.test", "TXT")
    proxy.delay_ms = 0
    assert (await CheckResolver(nameservers=[proxy.address], timeout=2).query("faults.test", "TXT")).status == "ok"


async def test_each_name_and_type_is_asked_once_under_concurrency(proxy):
    proxy.delay_ms = 50  # keep the first query in flight while the others ask
    resolver = CheckResolver(nameservers=[proxy.address], timeout=2)
    names = ["faults.test", "mx.faults.test", "nothing.faults.test"]
    answers = await asyncio.gather(
        *[resolver.query(name.upper() if i % 2 else name + ".", "TXT") for i in range(10) for name in names]
    )
    assert len(answers) == 30 and resolver.queries == 3
    assert {k: v for k, v in proxy.seen.items()} == {(name, "TXT"): 1 for name in names}
    # failures are shared too: every caller sees the same failure, asked once
    proxy.add("gone.faults.test", "TXT", drop=True)
    fast = CheckResolver(nameservers=[proxy.address], timeout=0.3)
    results = await asyncio.gather(*[fast.query("gone.faults.test", "TXT") for _ in range(5)], return_exceptions=True)
    assert all(isinstance(r, DnsFailure) and r.reason == "timeout" for r in results) and fast.queries == 1


async def test_budget_stops_further_questions(server):
    resolver = CheckResolver(nameservers=[server.address], timeout=2, budget=0.0)
    with pytest.raises(DnsFailure) as failure:
        await resolver.query("faults.test", "TXT")
    assert failure.value.reason == "budget"


async def test_zone_files_in_tests_zones_are_served(dns_zones):
    resolver = CheckResolver(nameservers=[dns_zones.address], timeout=2)
    answer = await resolver.query("legacy.spf-lint.test", "SPF")
    assert answer.texts == [b"v=spf1 -all"]
