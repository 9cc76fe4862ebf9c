"""The whole e-mail check against real DNS: NSD serving tests/zones/check-*.zone, with a fault-injecting proxy in
front for timeouts, SERVFAIL, REFUSED and truncation, and a local HTTPS server for MTA-STS policies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.emailauth.mta_sts import HttpsOptions
from adapters.emailauth.report import AREAS, CheckOptions, check_domain
from tests.support.policy_server import Policy, PolicyServer
from tests.support.tls_ca import LocalCA

CONTRACT = {
    "spf": {"status", "record", "dns_lookups", "void_lookups", "findings"},
    "dmarc": {"status", "record", "policy", "subdomain_policy", "pct", "org_domain", "findings"},
    "dkim": {"status", "selectors", "findings"},
    "mx": {"status", "hosts", "findings"},
    "mta_sts": {"status", "mode", "max_age", "findings"},
    "tls_rpt": {"status", "record", "findings"},
    "bimi": {"status", "record", "findings"},
    "dnssec": {"status", "findings"},
}


@pytest.fixture(scope="module")
def https() -> Iterator[HttpsOptions]:
    ca = LocalCA()
    hosts = ["mta-sts.ea-good.test", "mta-sts.ea-weak.test"]
    server = PolicyServer(
        ca.server_context(hosts),
        {
            "mta-sts.ea-good.test": Policy(
                "version: STSv1\r\nmode: enforce\r\nmx: *.ea-good.test\r\nmax_age: 1209600\r\n"
            ),
            "mta-sts.ea-weak.test": Policy(
                "version: STSv1\nmode: testing\nmx: other.ea-weak.test\nmax_age: 3600\n",
                content_type="text/plain; charset=utf-8",
            ),
        },
    ).start()
    yield HttpsOptions(ssl_context=ca.client_context(), port=server.port, allow_private=True)
    server.stop()


async def run(address: tuple[str, int], domain: str, https: HttpsOptions | None = None, **options: Any) -> dict:
    opts = CheckOptions(nameservers=[address], https=https or HttpsOptions(port=1), **options)
    return await check_domain(domain, opts)


def codes(result: dict) -> set[str]:
    found = {f["code"] for f in result["findings"]}
    for selector in result.get("selectors", {}).values():
        found |= {f["code"] for f in selector["findings"]}
    return found


def assert_contract(report: dict) -> None:
    assert set(report) == {"domain", "checked_at", "duration_ms", "dns_queries", "status", "grade", "checks"}
    assert report["status"] == "checked"
    assert report["grade"] in {"A", "B", "C", "D", "F"} and report["checked_at"].endswith("Z")
    assert isinstance(report["duration_ms"], int) and report["dns_queries"] > 0
    assert tuple(report["checks"]) == AREAS
    for area, keys in CONTRACT.items():
        result = report["checks"][area]
        assert keys <= set(result), (area, set(result))
        assert result["status"] in {"pass", "warn", "fail", "none", "error"}
        for f in result["findings"]:
            assert set(f) == {"severity", "code", "message", "fix"} and f["code"].startswith(area + ".")
            assert f["severity"] in {"error", "warning", "info"}


async def test_sound_domain_passes_every_area_it_publishes(dns_proxy, https) -> None:
    report = await run(dns_proxy.address, "ea-good.test", https)
    assert_contract(report)
    c = report["checks"]
    assert (c["dmarc"]["status"], c["dmarc"]["policy"], c["dmarc"]["org_domain"]) == ("pass", "reject", "ea-good.test")
    assert c["dkim"]["status"] == "pass"
    assert {k: (v["key_type"], v["key_bits"]) for k, v in c["dkim"]["selectors"].items()} == {
        "selector1": ("rsa", 2048),
        "google": ("ed25519", 256),
    }
    assert c["mx"] == {
        "status": "pass",
        "hosts": [{"name": "mx1.ea-good.test", "preference": 10}, {"name": "mx2.ea-good.test", "preference": 20}],
        "findings": [],
    }
    assert (c["mta_sts"]["status"], c["mta_sts"]["mode"], c["mta_sts"]["max_age"]) == ("pass", "enforce", 1209600)
    assert c["tls_rpt"]["status"] == "pass" and c["bimi"]["status"] == "pass"
    assert (c["dnssec"]["status"], c["dnssec"]["signed"]) == ("none", "no")


async def test_each_name_and_type_is_asked_once(dns_proxy, https) -> None:
    report = await run(dns_proxy.address, "ea-good.test", https)
    assert dns_proxy.seen and max(dns_proxy.seen.values()) == 1
    assert report["dns_queries"] == sum(dns_proxy.seen.values())


async def test_user_selectors_are_always_reported(dns_proxy) -> None:
    report = await run(dns_proxy.address, "ea-good.test", selectors=("custom2024", "nosuch"))
    selectors = report["checks"]["dkim"]["selectors"]
    assert selectors["custom2024"]["status"] == "pass" and selectors["custom2024"]["key_bits"] == 2048
    assert selectors["nosuch"]["status"] == "none"
    assert selectors["nosuch"]["findings"][0]["code"] == "dkim.selector_missing"


async def test_weak_domain_is_flagged_area_by_area(dns_proxy, https) -> None:
    report = await run(dns_proxy.address, "ea-weak.test", https)
    assert_contract(report)
    c = report["checks"]
    assert c["dmarc"]["status"] == "warn" and c["dmarc"]["pct"] == 50
    assert {"dmarc.policy_none", "dmarc.pct_partial", "dmarc.testing", "dmarc.report_unauthorised"} <= codes(c["dmarc"])
    selectors = c["dkim"]["selectors"]
    assert (selectors["selector1"]["status"], selectors["selector1"]["key_bits"]) == ("warn", 1024)
    assert selectors["s1"]["status"] == "fail" and selectors["s1"]["testing"] is True
    assert selectors["k1"]["status"] == "none" and "dkim.revoked" in codes(selectors["k1"] | {"selectors": {}})
    assert "dkim.sha1_only" in codes(selectors["mail"] | {"selectors": {}})
    assert c["dkim"]["status"] == "fail"
    assert c["mta_sts"]["mode"] == "testing" and c["mta_sts"]["max_age"] == 3600
    assert {"mta_sts.testing", "mta_sts.small_max_age", "mta_sts.mx_not_covered"} <= codes(c["mta_sts"])
    assert c["tls_rpt"]["status"] == "fail" and "bimi.dmarc_not_enforced" in codes(c["bimi"])
    assert report["grade"] in ("D", "F")


async def test_nothing_published_is_none_with_records_to_publish(dns_proxy) -> None:
    report = await run(dns_proxy.address, "ea-none.test")
    c = report["checks"]
    assert c["dmarc"]["status"] == "none" and "v=DMARC1; p=quarantine" in c["dmarc"]["findings"][0]["fix"]
    assert c["dkim"]["status"] == "none" and "dkim.none_found" in codes(c["dkim"])
    assert c["mx"]["status"] == "none" and "mx.implicit" in codes(c["mx"])
    assert c["mta_sts"]["status"] == "none" and c["tls_rpt"]["status"] == "none" and c["bimi"]["status"] == "none"
    assert report["grade"] == "F"


async def test_null_mx_domain_needs_no_dkim(dns_proxy) -> None:
    c = (await run(dns_proxy.address, "ea-nullmx.test"))["checks"]
    assert c["mx"]["status"] == "pass" and "mx.null" in codes(c["mx"]) and c["mx"]["hosts"][0]["name"] == "."
    assert "dkim.not_needed" in codes(c["dkim"])


async def test_microsoft_365_cname_without_key_means_dkim_not_enabled(dns_proxy) -> None:
    c = (await run(dns_proxy.address, "ea-m365.test"))["checks"]
    assert c["dkim"]["status"] == "fail"
    for name in ("selector1", "selector2"):
        assert c["dkim"]["selectors"][name]["findings"][0]["code"] == "dkim.m365_not_enabled"
    enabled = (await run(dns_proxy.address, "ea-m365ok.test"))["checks"]["dkim"]
    assert enabled["status"] == "pass" and enabled["selectors"]["selector2"]["key_bits"] == 2048


async def test_microsoft_365_selector_missing_gets_the_exact_cname(dns_proxy) -> None:
    dkim = (await run(dns_proxy.address, "ea-m365half.test"))["checks"]["dkim"]
    assert dkim["selectors"]["selector1"]["status"] == "pass" and "selector2" not in dkim["selectors"]
    assert dkim["status"] == "warn"  # signing works until Microsoft rotates to selector2
    missing = next(f for f in dkim["findings"] if f["code"] == "dkim.m365_selector_missing")
    assert missing["fix"] == (
        "Publish `selector2._domainkey.ea-m365half.test CNAME "
        "selector2-ea-m365half-test._domainkey.eam365.onmicrosoft.com`."
    )


async def test_microsoft_365_without_selectors_uses_the_tenants_initial_domain(dns_proxy) -> None:
    unknown = (await run(dns_proxy.address, "ea-m365new.test"))["checks"]["dkim"]
    assert unknown["status"] == "none"
    assert "<tenant>.onmicrosoft.com" in next(f for f in unknown["findings"] if f["code"] == "dkim.m365_missing")["fix"]
    known = await run(dns_proxy.address, "ea-m365new.test", m365_initial_domain="eam365.onmicrosoft.com")
    fix = next(f for f in known["checks"]["dkim"]["findings"] if f["code"] == "dkim.m365_missing")["fix"]
    for n in (1, 2):
        assert (
            f"`selector{n}._domainkey.ea-m365new.test CNAME selector{n}-ea-m365new-test._domainkey."
            "eam365.onmicrosoft.com`" in fix
        )


async def test_subdomain_inherits_the_organisational_policy(dns_proxy) -> None:
    dmarc = (await run(dns_proxy.address, "shop.ea-good.test"))["checks"]["dmarc"]
    assert (dmarc["policy"], dmarc["org_domain"]) == ("reject", "ea-good.test") and "dmarc.inherited" in codes(dmarc)


async def test_tree_walk_and_public_suffix_list_disagreeing_is_reported(dns_proxy) -> None:
    dmarc = (await run(dns_proxy.address, "a.b.ea-psd.test"))["checks"]["dmarc"]
    assert dmarc["policy"] == "reject" and dmarc["record"] == "v=DMARC1; p=reject; psd=n"
    disagree = next(f for f in dmarc["findings"] if f["code"] == "dmarc.org_domain_disagree")
    assert "b.ea-psd.test" in disagree["message"] and "ea-psd.test" in disagree["message"]


async def test_external_report_destinations_need_authorisation_and_mx(dns_proxy) -> None:
    dmarc = (await run(dns_proxy.address, "ea-ext.test"))["checks"]["dmarc"]
    unauthorised = [f for f in dmarc["findings"] if f["code"] == "dmarc.report_unauthorised"]
    assert len(unauthorised) == 1 and "ea-nomx.test" in unauthorised[0]["message"]
    assert "ea-ext.test._report._dmarc.ea-nomx.test" in unauthorised[0]["fix"]
    assert [f for f in dmarc["findings"] if f["code"] == "dmarc.report_no_mx"][0]["message"].count("ea-nomx.test")


async def test_many_problems_and_hostile_records_never_raise(dns_proxy) -> None:
    many = await run(dns_proxy.address, "ea-many.test")
    assert_contract(many)
    c = many["checks"]
    assert {"mx.ip_literal", "mx.cname", "mx.host_no_address"} <= codes(c["mx"]) and c["mx"]["status"] == "warn"
    assert c["dmarc"]["status"] == "fail" and len(c["dmarc"]["findings"]) > 10
    hostile = await run(dns_proxy.address, "ea-hostile.test")
    assert_contract(hostile)
    for area in ("dmarc", "dkim", "mta_sts", "tls_rpt", "bimi"):
        assert hostile["checks"][area]["status"] == "fail", area
    assert all(ch.isprintable() for ch in hostile["checks"]["dmarc"]["record"])


# ---------------------------------------------------------------- failures are "error", never "none"


async def test_timeout_is_could_not_check_not_missing(dns_proxy, https) -> None:
    dns_proxy.add("_dmarc.ea-good.test", "TXT", drop=True)
    report = await run(dns_proxy.address, "ea-good.test", https, query_timeout=0.4)
    dmarc = report["checks"]["dmarc"]
    assert dmarc["status"] == "error" and dmarc["findings"][0]["code"] == "dmarc.dns_error"
    assert "timed out" in dmarc["findings"][0]["message"]
    assert report["checks"]["mx"]["status"] == "pass"
    assert report["checks"]["bimi"]["status"] != "fail"  # BIMI cannot blame a DMARC it could not see


@pytest.mark.parametrize(
    ("name", "rdtype", "rcode", "area"),
    [
        ("ea-good.test", "MX", "SERVFAIL", "mx"),
        ("_smtp._tls.ea-good.test", "TXT", "REFUSED", "tls_rpt"),
        ("_mta-sts.ea-good.test", "TXT", "SERVFAIL", "mta_sts"),
        ("default._bimi.ea-good.test", "TXT", "SERVFAIL", "bimi"),
        ("ea-good.test", "DNSKEY", "SERVFAIL", "dnssec"),
    ],
)
async def test_servfail_and_refused_are_errors_with_the_reason(dns_proxy, https, name, rdtype, rcode, area) -> None:
    dns_proxy.add(name, rdtype, rcode=rcode)
    result = (await run(dns_proxy.address, "ea-good.test", https))["checks"][area]
    assert result["status"] == "error"
    assert rcode in result["findings"][0]["message"]


async def test_dkim_selector_failures_are_errors_when_nothing_else_is_found(dns_proxy) -> None:
    dns_proxy.add("selector1._domainkey.ea-m365ok.test", "TXT", rcode="SERVFAIL")
    dns_proxy.add("selector2._domainkey.ea-m365ok.test", "TXT", rcode="SERVFAIL")
    dkim = (await run(dns_proxy.address, "ea-m365ok.test", selectors=("selector1",)))["checks"]["dkim"]
    assert dkim["status"] == "error" and dkim["selectors"]["selector1"]["status"] == "error"
    dns_proxy.clear()
    dns_proxy.add("selector1._domainkey.ea-good.test", "TXT", rcode="SERVFAIL")
    partly = (await run(dns_proxy.address, "ea-good.test"))["checks"]["dkim"]
    assert partly["status"] == "pass" and "dkim.partly_checked" in codes(partly)


async def test_truncated_answers_are_retried_over_tcp(dns_proxy) -> None:
    dns_proxy.add("selector1._domainkey.ea-good.test", "TXT", truncate=True)
    dkim = (await run(dns_proxy.address, "ea-good.test"))["checks"]["dkim"]
    assert dkim["selectors"]["selector1"]["key_bits"] == 2048
    assert dns_proxy.seen_tcp[("selector1._domainkey.ea-good.test", "TXT")] == 1


async def test_time_budget_keeps_what_finished_and_marks_the_rest_error(dns_proxy, https) -> None:
    dns_proxy.add("_dmarc.ea-good.test", "TXT", delay_ms=3000)
    report = await run(dns_proxy.address, "ea-good.test", https, budget=1.0, query_timeout=2.0)
    assert report["checks"]["dmarc"]["status"] == "error"
    assert report["checks"]["mx"]["status"] == "pass" and report["checks"]["tls_rpt"]["status"] == "pass"
