"""check_host beyond the OpenSPF suite: the deciding term, the include/redirect path, explanations, limits, and
DNS failures (temperror, never none), against NSD and the fault proxy."""

from __future__ import annotations

import pytest

from adapters.dns.resolver import CheckResolver
from adapters.emailauth.spf_eval import check_host, spf_for

ZONE: dict[str, list] = {
    "top": [("TXT", "v=spf1 ip4:198.51.100.0/24 include:mid.eval.test -all exp=why.eval.test")],
    "mid": [("TXT", "v=spf1 include:leaf.eval.test ?all")],
    "leaf": [("TXT", "v=spf1 a:host.eval.test ip6:2001:db8:1::/48 ~all")],
    "host": [("A", "192.0.2.10")],
    "why": [("TXT", "%{i} may not send for %{d} (sender %{l} at %{o})")],
    "soft-inc": [("TXT", "v=spf1 ~include:leaf.eval.test -all")],
    "redir": [("TXT", "v=spf1 ip4:203.0.113.1 redirect=top.eval.test")],
    "redir-none": [("TXT", "v=spf1 redirect=nothing.eval.test")],
    "many": [("TXT", "v=spf1 " + " ".join(f"include:i{i}.eval.test" for i in range(11)) + " -all")],
    **{f"i{i}": [("TXT", "v=spf1 ?all")] for i in range(11)},
    "voids": [("TXT", "v=spf1 a:n1.eval.test a:n2.eval.test a:n3.eval.test -all")],
    "loop": [("TXT", "v=spf1 include:loop2.eval.test -all")],
    "loop2": [("TXT", "v=spf1 include:loop.eval.test -all")],
    "mx11": [("TXT", "v=spf1 mx -all")] + [("MX", f"{i} m{i}.eval.test") for i in range(11)],
    "mx5": [("TXT", "v=spf1 mx -all")] + [("MX", f"{i} m{i}.eval.test") for i in range(5)],
    **{f"m{i}": [("A", f"192.0.2.{100 + i}")] for i in range(11)},
    "legacy": [("SPF", "v=spf1 +all")],
    "flaky": [("TXT", "v=spf1 include:broken.eval.test -all")],
    "broken": [("TXT", "v=spf1 +all")],
    "neutral-inc": [("TXT", "v=spf1 ?include:open.eval.test -all")],
    "open": [("TXT", "v=spf1 +all")],
    # RFC 7208 choices (README): what counts as a void lookup, and expanded names that cannot exist
    "mx-v4only": [("TXT", "v=spf1 mx -all")] + [("MX", f"{i} v4only{i}.eval.test") for i in range(3)],
    **{f"v4only{i}": [("A", f"192.0.2.{40 + i}")] for i in range(3)},
    "p-void": [("TXT", "v=spf1 a:n1.eval.test a:n2.eval.test exists:%{p}.ok.eval.test -all")],
    "unknown.ok": [("A", "127.0.0.2")],
    "ptr-void": [("TXT", "v=spf1 a:n1.eval.test a:n2.eval.test ptr -all")],
    "bad-target": [("TXT", "v=spf1 include:%{l}.eval.test -all")],
    "bad-names": [
        ("TXT", "v=spf1 a:n1.eval.test a:n2.eval.test exists:%{l}.eval.test a:%{l}.eval.test ip4:192.0.2.10 -all")
    ],
    "bad-redirect": [("TXT", "v=spf1 redirect=%{l}.eval.test")],
}
REVERSE = {
    "2.0.192.in-addr.arpa": {"77": [("PTR", "gone1.eval.test"), ("PTR", "gone2.eval.test"), ("PTR", "gone3.eval.test")]}
}


@pytest.fixture(scope="module")
def server(nsd_factory):
    return nsd_factory({"eval.test": ZONE, **REVERSE})


@pytest.fixture
def proxy(server, dns_proxy_factory):
    proxy = dns_proxy_factory(server.address)
    yield proxy
    proxy.clear()


def resolver_for(address) -> CheckResolver:
    return CheckResolver(nameservers=[address], timeout=1)


async def run(server, domain: str, ip: str, sender: str | None = None):
    return await check_host(
        ip,
        f"{domain}.eval.test",
        sender or f"alice@{domain}.eval.test",
        resolver_for(server.address),
        helo="mx.example.org",
    )


async def test_pass_names_the_innermost_term_and_the_include_path(server):
    result = await run(server, "top", "192.0.2.10")
    assert (result.result, result.mechanism) == ("pass", "a:host.eval.test")
    assert result.path == ["top.eval.test", "include:mid.eval.test", "include:leaf.eval.test"]
    assert result.dns_lookups == 3 and result.explanation is None
    v6 = await run(server, "top", "2001:db8:1::25")
    assert (v6.result, v6.mechanism) == ("pass", "ip6:2001:db8:1::/48")


async def test_fail_carries_the_expanded_explanation(server):
    result = await run(server, "top", "203.0.113.9")
    assert (result.result, result.mechanism, result.path) == ("fail", "-all", ["top.eval.test"])
    assert result.explanation == "203.0.113.9 may not send for top.eval.test (sender alice at top.eval.test)"


async def test_the_qualifier_of_the_include_decides_and_is_named_as_deciding(server):
    result = await run(server, "soft-inc", "192.0.2.10")
    assert (result.result, result.mechanism) == ("softfail", "~include:leaf.eval.test")
    assert result.path == ["soft-inc.eval.test"]  # the deciding term is in the record at the end of the path


async def test_neutral_through_a_question_mark_include_names_the_include_not_the_inner_all(server):
    result = await run(server, "neutral-inc", "203.0.113.50")
    assert (result.result, result.mechanism, result.path) == (
        "neutral",
        "?include:open.eval.test",
        ["neutral-inc.eval.test"],
    )


async def test_a_plain_include_still_names_the_innermost_term(server):
    result = await run(server, "top", "2001:db8:1::25")
    assert (result.result, result.mechanism) == ("pass", "ip6:2001:db8:1::/48")


async def test_mx_host_address_lookups_are_not_void_lookups(server):
    # an IPv6 client and three IPv4-only MX hosts: three empty AAAA answers, which must not make a permerror
    result = await run(server, "mx-v4only", "2001:db8:9::1")
    assert (result.result, result.void_lookups) == ("fail", 0)
    assert (await run(server, "mx-v4only", "192.0.2.41")).result == "pass"


async def test_the_ptr_lookup_of_p_macro_is_not_a_void_lookup(server):
    # two void a: terms, then %{p} of an address without PTR ("unknown"): still two voids, the exists matches
    result = await run(server, "p-void", "192.0.2.99")
    assert (result.result, result.mechanism, result.void_lookups) == ("pass", "exists:%{p}.ok.eval.test", 2)


async def test_ptr_name_address_lookups_are_not_void_lookups(server):
    # the PTR answer has three names, none with an address: the ptr term does not match, and is not void
    result = await run(server, "ptr-void", "192.0.2.77")
    assert (result.result, result.void_lookups) == ("fail", 2)
    no_ptr = await run(server, "ptr-void", "192.0.2.78")  # no PTR at all: the ptr term's own question is void
    assert (no_ptr.result, no_ptr.void_lookups) == ("permerror", 3)


@pytest.mark.parametrize("domain", ["bad-target", "bad-redirect"])
async def test_an_expanded_target_that_cannot_exist_is_a_permerror_not_a_temperror(server, domain):
    result = await run(server, domain, "192.0.2.10", sender=f"a..b@{domain}.eval.test")
    assert result.result == "permerror" and "no SPF record" in (result.reason or "")


async def test_redirect_is_followed_and_shown_in_the_path(server):
    result = await run(server, "redir", "192.0.2.10")
    assert result.result == "pass"
    assert result.path == [
        "redir.eval.test",
        "redirect=top.eval.test",
        "include:mid.eval.test",
        "include:leaf.eval.test",
    ]
    missing = await run(server, "redir-none", "192.0.2.10")
    assert missing.result == "permerror" and "no SPF record" in missing.reason


async def test_ipv4_mapped_address_is_evaluated_as_ipv4(server):
    assert (await run(server, "top", "::ffff:198.51.100.7")).mechanism == "ip4:198.51.100.0/24"


@pytest.mark.parametrize(
    ("domain", "reason"),
    [("many", "more than 10 DNS"), ("voids", "void lookups"), ("loop", "loop"), ("mx11", "MX hosts")],
)
async def test_limits_and_loops_give_permerror(server, domain, reason):
    result = await run(server, domain, "192.0.2.200")
    assert result.result == "permerror" and reason in result.reason


async def test_legacy_spf_rr_is_not_evaluated(server):
    result = await run(server, "legacy", "192.0.2.1")
    assert result.result == "none"


async def test_mx_hosts_are_resolved_in_parallel(proxy):
    proxy.delay_ms = 40
    result = await check_host("192.0.2.104", "mx5.eval.test", "a@mx5.eval.test", resolver_for(proxy.address))
    assert (result.result, result.mechanism) == ("pass", "mx")
    assert proxy.max_in_flight >= 5


@pytest.mark.parametrize("fault", [{"drop": True}, {"rcode": "SERVFAIL"}, {"rcode": "REFUSED"}])
async def test_dns_failures_are_temperror_never_none(proxy, fault):
    proxy.add("top.eval.test", "TXT", **fault)
    result = await check_host(
        "192.0.2.1", "top.eval.test", "a@top.eval.test", CheckResolver(nameservers=[proxy.address], timeout=0.3)
    )
    assert result.result == "temperror" and "top.eval.test" in result.reason


async def test_failure_inside_an_include_is_temperror_with_its_path(proxy):
    proxy.add("broken.eval.test", "TXT", rcode="SERVFAIL")
    result = await check_host("192.0.2.1", "flaky.eval.test", "a@flaky.eval.test", resolver_for(proxy.address))
    assert result.result == "temperror" and result.path == ["flaky.eval.test", "include:broken.eval.test"]


async def test_empty_sender_uses_the_helo_name(server):
    result = await spf_for("192.0.2.10", "", "top.eval.test", resolver_for(server.address))
    assert result.result == "pass" and result.path[0] == "top.eval.test"


async def test_invalid_domain_is_none_without_a_query(server):
    resolver = resolver_for(server.address)
    result = await check_host("192.0.2.1", "nodot", "a@nodot", resolver)
    assert result.result == "none" and resolver.queries == 0


async def test_an_expanded_name_that_cannot_exist_matches_nothing_and_is_not_a_void_lookup(server):
    # "a..b" expands to a name with an empty label: nothing is asked, so two void a: terms stay two
    result = await run(server, "bad-names", "192.0.2.10", sender="a..b@bad-names.eval.test")
    assert (result.result, result.mechanism, result.void_lookups) == ("pass", "ip4:192.0.2.10", 2)
    other = await run(server, "bad-names", "192.0.2.11", sender="a..b@bad-names.eval.test")
    assert (other.result, other.void_lookups) == ("fail", 2)
