"""SPF lint (`analyse_spf`) against zones served by NSD: findings, fixes, costs per include, failures, concurrency."""

from __future__ import annotations

import pytest

from adapters.dns.resolver import CheckResolver
from adapters.emailauth.spf_lint import analyse_spf
from adapters.emailauth.spf_parse import parse_record

KEYS = {"status", "record", "dns_lookups", "void_lookups", "findings"}


def _includes(prefix: str, count: int, body: str = "ip4:192.0.2.1 ?all") -> dict[str, list]:
    return {f"{prefix}{i}": [("TXT", f"v=spf1 {body}")] for i in range(count)}


ZONE: dict[str, list] = {
    "good": [("TXT", "v=spf1 ip4:192.0.2.0/24 include:_inc.good.lint.test -all"), ("MX", "10 mx.good.lint.test")],
    "_inc.good": [("TXT", "v=spf1 a:mx.good.lint.test ~all")],
    "mx.good": [("A", "192.0.2.25")],
    "plusall": [("TXT", "v=spf1 mx +all"), ("MX", "10 mx.good.lint.test")],
    "neutral": [("TXT", "v=spf1 ip4:192.0.2.1 ?all")],
    "noall": [("TXT", "v=spf1 ip4:192.0.2.1")],
    "ptr": [("TXT", "v=spf1 ptr ip4:192.0.2.1 -all")],
    "broad4": [("TXT", "v=spf1 ip4:10.0.0.0/8 -all")],
    "broad6": [("TXT", "v=spf1 ip6:2001::/16 -all")],
    "narrow": [("TXT", "v=spf1 ip4:10.0.0.0/9 ip6:2001:db8::/32 -all")],
    "broad-a": [("TXT", "v=spf1 a/0 -all")],
    "redir-all": [("TXT", "v=spf1 ip4:192.0.2.1 redirect=good.lint.test ~all")],
    "redir": [("TXT", "v=spf1 redirect=good.lint.test")],
    "syntax": [("TXT", "v=spf1 ip4:192.0.2.1 foo:bar -all")],
    "two": [("TXT", "v=spf1 -all"), ("TXT", "v=spf1 ~all")],
    "long": [("TXT", "v=spf1 " + " ".join(f"ip4:192.0.2.{i}" for i in range(40)) + " -all")],
    "legacy": [("TXT", "v=spf1 -all"), ("SPF", "v=spf1 +all")],
    "legacy-only": [("SPF", "v=spf1 -all")],
    "void": [("TXT", "v=spf1 a:nothing.lint.test mx:nothing2.lint.test exists:nothing3.lint.test -all")],
    "one-void": [("TXT", "v=spf1 a:nothing.lint.test -all")],
    "missing-inc": [("TXT", "v=spf1 include:nothing.lint.test -all")],
    "loop": [("TXT", "v=spf1 include:loop2.lint.test -all")],
    "loop2": [("TXT", "v=spf1 include:loop.lint.test ?all")],
    "near": [("TXT", "v=spf1 " + " ".join(f"include:n{i}.lint.test" for i in range(8)) + " -all")],
    **_includes("n", 8),
    "over": [("TXT", "v=spf1 include:big.lint.test include:n0.lint.test include:n1.lint.test -all")],
    "big": [("TXT", "v=spf1 " + " ".join(f"include:b{i}.lint.test" for i in range(9)) + " ?all")],
    **_includes("b", 9),
    "wide": [("TXT", "v=spf1 " + " ".join(f"include:w{i}.lint.test" for i in range(5)) + " -all")],
    **{f"w{i}": [("TXT", f"v=spf1 include:ww{i}.lint.test ?all")] for i in range(5)},
    **_includes("ww", 5),
    "inc-plusall": [("TXT", "v=spf1 include:plusall.lint.test -all")],
    "slow-inc": [("TXT", "v=spf1 include:gone.lint.test -all")],
    "gone": [("TXT", "v=spf1 -all")],
    "mx-many": [("TXT", "v=spf1 mx -all")] + [("MX", f"{i} m{i}.lint.test") for i in range(11)],
    "binary": [("TXT", b"v=spf1 \xff\xfe\x00 include:\x01 -all")],
    "macro": [("TXT", "v=spf1 exists:%{i}._spf.lint.test include:%{d2}.x.lint.test -all")],
    "mail": [("MX", "10 mx.good.lint.test")],
}


@pytest.fixture(scope="module")
def server(nsd_factory):
    return nsd_factory({"lint.test": ZONE})


@pytest.fixture
def proxy(server, dns_proxy_factory):
    proxy = dns_proxy_factory(server.address)
    yield proxy
    proxy.clear()


async def lint(server, name: str) -> dict:
    result = await analyse_spf(f"{name}.lint.test", CheckResolver(nameservers=[server.address], timeout=2))
    assert set(result) == KEYS
    for item in result["findings"]:
        assert set(item) == {"severity", "code", "message", "fix"} and item["code"].startswith("spf.")
        assert item["severity"] in ("error", "warning", "info")
    return result


def codes(result: dict) -> set[str]:
    return {f["code"] for f in result["findings"]}


def fix_of(result: dict, code: str) -> str:
    return next(f["fix"] for f in result["findings"] if f["code"] == code)


async def test_good_record_passes_with_counted_lookups(server):
    result = await lint(server, "good")
    assert result["status"] == "pass" and result["findings"] == []
    assert result["record"] == "v=spf1 ip4:192.0.2.0/24 include:_inc.good.lint.test -all"
    assert result["dns_lookups"] == 2 and result["void_lookups"] == 0


async def test_plus_all_fails_and_the_fix_ends_in_minus_all(server):
    result = await lint(server, "plusall")
    assert result["status"] == "fail" and "spf.plus_all" in codes(result)
    assert '"v=spf1 mx -all"' in fix_of(result, "spf.plus_all")


@pytest.mark.parametrize(
    ("name", "code", "fixed"),
    [
        ("neutral", "spf.neutral_all", "v=spf1 ip4:192.0.2.1 -all"),
        ("noall", "spf.no_all", "v=spf1 ip4:192.0.2.1 -all"),
        ("ptr", "spf.ptr", "v=spf1 ip4:192.0.2.1 -all"),
        ("redir-all", "spf.redirect_with_all", "v=spf1 ip4:192.0.2.1 -all"),
    ],
)
async def test_weak_policies_warn_with_the_record_to_publish(server, name, code, fixed):
    result = await lint(server, name)
    assert result["status"] == "warn" and code in codes(result)
    assert f'"{fixed}"' in fix_of(result, code)
    parse_record(fixed)  # the suggested record is itself valid


@pytest.mark.parametrize("name", ["broad4", "broad6", "broad-a"])
async def test_over_broad_ranges_fail(server, name):
    result = await lint(server, name)
    assert result["status"] == "fail" and "spf.broad_range" in codes(result)


async def test_ranges_below_the_thresholds_pass(server):
    assert (await lint(server, "narrow"))["status"] == "pass"


async def test_redirect_alone_is_a_policy(server):
    result = await lint(server, "redir")
    assert result["status"] == "pass" and result["dns_lookups"] == 3  # redirect + include + a


async def test_syntax_error_reports_the_position(server):
    result = await lint(server, "syntax")
    assert result["status"] == "fail" and codes(result) == {"spf.syntax_error"}
    assert "character 22" in result["findings"][0]["message"] and "foo" in result["findings"][0]["message"]


async def test_several_records_fail(server):
    result = await lint(server, "two")
    assert result["status"] == "fail" and codes(result) == {"spf.multiple_records"} and result["record"] is None


async def test_too_long_record_warns(server):
    result = await lint(server, "long")
    assert "spf.record_too_long" in codes(result) and result["status"] == "warn"


async def test_legacy_spf_rr_is_reported_not_evaluated(server):
    result = await lint(server, "legacy")
    assert result["status"] == "warn" and "spf.legacy_spf_rr" in codes(result)
    assert "spf.plus_all" not in codes(result)  # the type 99 record's +all is not the policy
    only = await lint(server, "legacy-only")
    assert only["status"] == "none" and {"spf.missing", "spf.legacy_spf_rr"} <= codes(only)


async def test_missing_record_suggests_one_from_mx(server):
    mail = await lint(server, "mail")
    assert mail["status"] == "none" and '"v=spf1 mx -all"' in fix_of(mail, "spf.missing")
    nothing = await lint(server, "nothing")
    assert nothing["status"] == "none" and '"v=spf1 -all"' in fix_of(nothing, "spf.missing")


async def test_void_lookups_are_counted_and_limited(server):
    result = await lint(server, "void")
    assert result["void_lookups"] == 3 and result["status"] == "fail"
    assert "spf.too_many_void_lookups" in codes(result)
    one = await lint(server, "one-void")
    assert one["void_lookups"] == 1 and one["status"] == "warn" and "spf.void_lookup" in codes(one)


async def test_include_without_record_and_loops_fail(server):
    assert "spf.include_missing" in codes(await lint(server, "missing-inc"))
    loop = await lint(server, "loop")
    assert loop["status"] == "fail" and "spf.loop" in codes(loop)


async def test_near_the_limit_warns(server):
    result = await lint(server, "near")
    assert result["dns_lookups"] == 8 and result["status"] == "warn" and "spf.lookups_near_limit" in codes(result)


async def test_over_the_limit_names_the_include_to_flatten(server):
    result = await lint(server, "over")
    assert result["dns_lookups"] == 12 and result["status"] == "fail"
    message = next(f["message"] for f in result["findings"] if f["code"] == "spf.too_many_lookups")
    assert "`include:big.lint.test` costs 10" in message
    assert "include:big.lint.test" in fix_of(result, "spf.too_many_lookups")


async def test_plus_all_inside_an_include_fails(server):
    result = await lint(server, "inc-plusall")
    assert result["status"] == "fail" and "spf.plus_all" in codes(result)


async def test_mx_with_more_than_ten_hosts_fails(server):
    assert "spf.mx_too_many" in codes(await lint(server, "mx-many"))


async def test_macro_targets_are_counted_not_followed(server):
    result = await lint(server, "macro")
    assert result["dns_lookups"] == 2 and "spf.macro_target" in codes(result)


async def test_binary_record_is_a_syntax_error_not_an_exception(server):
    result = await lint(server, "binary")
    assert result["status"] == "fail" and codes(result) == {"spf.syntax_error"}


async def test_timeout_or_servfail_is_error_never_none(proxy):
    proxy.add("good.lint.test", "TXT", drop=True)
    result = await analyse_spf("good.lint.test", CheckResolver(nameservers=[proxy.address], timeout=0.3))
    assert result["status"] == "error" and codes(result) == {"spf.dns_error"}
    proxy.add("neutral.lint.test", "TXT", rcode="SERVFAIL")
    result = await analyse_spf("neutral.lint.test", CheckResolver(nameservers=[proxy.address], timeout=1))
    assert result["status"] == "error" and "SERVFAIL" in result["findings"][0]["message"]


async def test_failing_include_makes_the_whole_check_error(proxy):
    proxy.add("gone.lint.test", "TXT", rcode="REFUSED")
    result = await analyse_spf("slow-inc.lint.test", CheckResolver(nameservers=[proxy.address], timeout=1))
    assert result["status"] == "error" and "spf.include_dns_error" in codes(result)


async def test_tree_is_walked_breadth_first_in_parallel_asking_each_name_once(proxy):
    proxy.delay_ms = 40  # every answer waits, so queries of one level overlap at the proxy
    resolver = CheckResolver(nameservers=[proxy.address], timeout=2)
    result = await analyse_spf("wide.lint.test", resolver)
    assert result["dns_lookups"] == 10 and "spf.lookups_near_limit" in codes(result)
    assert proxy.max_in_flight >= 5  # the five includes of one level were asked together
    assert all(count == 1 for count in proxy.seen.values())
    assert resolver.queries == len(proxy.seen)


async def test_tests_zones_file_is_linted(dns_zones):
    result = await analyse_spf("plusall.spf-lint.test", CheckResolver(nameservers=[dns_zones.address], timeout=2))
    assert result["status"] == "fail" and "spf.plus_all" in codes(result)


async def test_a_redirect_that_all_overrides_is_not_counted_or_followed(server):
    result = await lint(server, "redir-all")
    assert result["dns_lookups"] == 0


async def test_nonexistent_domain_is_named_as_such(server):
    result = await lint(server, "nothing")
    assert "does not exist" in result["findings"][0]["message"]
