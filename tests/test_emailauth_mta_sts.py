"""MTA-STS policy fetching over real HTTPS (a local CA trusted through the injectable SSL context): certificate
verified, no redirects, 200 only, text/plain, size cap; the policy host resolved through the check's resolver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.dns.resolver import CheckResolver
from adapters.emailauth.mta_sts import MAX_POLICY_BYTES, HttpsOptions, analyse_mta_sts
from tests.support.policy_server import Policy, PolicyServer
from tests.support.tls_ca import LocalCA

ZONE = "sts-cases.test"
CASES = ("ok", "redirect", "ctype", "notfound", "big", "nohost", "badcert", "expired", "uncovered")
# policy hosts whose only address is an IPv6 form embedding a non-public IPv4 address (loopback or private)
EMBEDDED_V4 = {
    "v6compat": "::7f00:1",
    "v6nat64": "64:ff9b::7f00:1",
    "v6nat64private": "64:ff9b::a00:1",
    "v6sixtofour": "2002:7f00:1::1",
    "v6teredo": "2001:0:4136:e378:8000:63bf:80ff:fffe",
}
GOOD = "version: STSv1\nmode: enforce\nmx: mx.{d}\nmax_age: 604800\n"


def _zone() -> dict[str, list[tuple[str, Any]]]:
    records: dict[str, list[tuple[str, Any]]] = {}
    for case in CASES:
        records[case] = [("MX", f"10 mx.{case}.{ZONE}")]
        records[f"mx.{case}"] = [("A", "192.0.2.1")]
        records[f"_mta-sts.{case}"] = [("TXT", "v=STSv1; id=1")]
        if case != "nohost":
            records[f"mta-sts.{case}"] = [("A", "127.0.0.1")]
    for case, address in EMBEDDED_V4.items():
        records[case] = [("MX", f"10 mx.ok.{ZONE}")]
        records[f"_mta-sts.{case}"] = [("TXT", "v=STSv1; id=1")]
        records[f"mta-sts.{case}"] = [("AAAA", address)]
    return records


@pytest.fixture(scope="module")
def setup(nsd_factory, dns_proxy_factory) -> Iterator[dict[str, Any]]:
    server = nsd_factory({ZONE: _zone()})
    proxy = dns_proxy_factory(server.address)
    ca, other_ca = LocalCA(), LocalCA("Someone else's CA")
    hosts = [f"mta-sts.{c}.{ZONE}" for c in CASES]
    d = {c: f"{c}.{ZONE}" for c in CASES}
    policies = {
        f"mta-sts.{d['ok']}": Policy(GOOD.format(d=d["ok"])),
        f"mta-sts.{d['redirect']}": Policy("", status=301, headers={"Location": "https://elsewhere.test/p.txt"}),
        f"mta-sts.{d['ctype']}": Policy(GOOD.format(d=d["ctype"]), content_type="text/html"),
        f"mta-sts.{d['big']}": Policy(GOOD.format(d=d["big"]) + "#" * (MAX_POLICY_BYTES + 10)),
        f"mta-sts.{d['uncovered']}": Policy("version: STSv1\nmode: enforce\nmx: *.elsewhere.test\nmax_age: 86400\n"),
    }
    main = PolicyServer(ca.server_context(hosts), policies).start()
    wrong_ca = PolicyServer(other_ca.server_context(hosts), {f"mta-sts.{d['badcert']}": Policy(GOOD)}).start()
    expired = PolicyServer(ca.server_context(hosts, expired=True), {f"mta-sts.{d['expired']}": Policy(GOOD)}).start()
    yield {"proxy": proxy, "ca": ca, "main": main, "wrong_ca": wrong_ca, "expired": expired}
    for s in (main, wrong_ca, expired):
        s.stop()


async def sts(setup: dict[str, Any], case: str, server: str = "main", allow_private: bool = True) -> dict[str, Any]:
    resolver = CheckResolver(nameservers=[setup["proxy"].address], timeout=2.0)
    options = HttpsOptions(
        ssl_context=setup["ca"].client_context(), port=setup[server].port, allow_private=allow_private
    )
    return await analyse_mta_sts(f"{case}.{ZONE}", resolver, options)


def codes(result: dict[str, Any]) -> set[str]:
    return {f["code"] for f in result["findings"]}


async def test_valid_policy_is_fetched_through_the_checks_own_resolver(setup) -> None:
    result = await sts(setup, "ok")
    assert (result["status"], result["mode"], result["max_age"]) == ("pass", "enforce", 604800)
    assert setup["proxy"].seen[(f"mta-sts.ok.{ZONE}", "A")] >= 1  # resolved by NSD, not by the system resolver


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("redirect", "mta_sts.policy_redirect"),
        ("ctype", "mta_sts.policy_content_type"),
        ("notfound", "mta_sts.policy_status"),
        ("big", "mta_sts.policy_too_large"),
        ("nohost", "mta_sts.policy_dns"),
    ],
)
async def test_every_way_the_policy_host_can_be_wrong_fails(setup, case, code) -> None:
    result = await sts(setup, case)
    assert result["status"] == "fail" and code in codes(result)
    assert "version: STSv1" in next(f["fix"] for f in result["findings"] if f["code"] == code)


async def test_certificates_are_verified(setup) -> None:
    for case, server in (("badcert", "wrong_ca"), ("expired", "expired")):
        result = await sts(setup, case, server)
        assert result["status"] == "fail" and "mta_sts.policy_tls" in codes(result), case


async def test_mx_not_covered_by_an_enforced_policy_is_an_error(setup) -> None:
    result = await sts(setup, "uncovered")
    assert result["status"] == "fail"
    assert {"mta_sts.mx_not_covered", "mta_sts.pattern_unused"} <= codes(result)


async def test_unreachable_policy_dns_is_could_not_check(setup) -> None:
    setup["proxy"].add(f"mta-sts.ok.{ZONE}", rcode="SERVFAIL")
    try:
        result = await sts(setup, "ok")
    finally:
        setup["proxy"].clear()
    assert result["status"] == "error" and "SERVFAIL" in result["findings"][0]["message"]


async def test_a_policy_host_on_a_private_address_is_not_fetched(setup) -> None:
    """A domain's owner must not be able to aim Cordon at its own loopback or internal network."""
    before = len(setup["main"].requests)
    result = await sts(setup, "ok", allow_private=False)
    assert result["status"] == "fail" and "mta_sts.policy_private" in codes(result)
    assert "127.0.0.1" in next(f["message"] for f in result["findings"] if f["code"] == "mta_sts.policy_private")
    assert len(setup["main"].requests) == before  # no connection was made


@pytest.mark.parametrize("case", sorted(EMBEDDED_V4))
async def test_ipv6_forms_embedding_a_non_public_ipv4_address_are_not_fetched(setup, case) -> None:
    """IPv4-compatible, NAT64, 6to4 and Teredo addresses carry an IPv4 address a gateway would connect to: one
    embedding 127.0.0.1 or 10.0.0.1 is as private as the address itself."""
    before = len(setup["main"].requests)
    result = await sts(setup, case, allow_private=False)
    assert "mta_sts.policy_private" in codes(result), result
    assert "non-public" in next(f["message"] for f in result["findings"] if f["code"] == "mta_sts.policy_private")
    assert len(setup["main"].requests) == before


def test_public_ipv6_and_embedded_public_ipv4_stay_fetchable() -> None:
    from adapters.http_fetch import is_public_address

    for address in ("2606:4700::1111", "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8", "8.8.8.8"):
        assert is_public_address(address), address
    for address in ("::1", "::ffff:127.0.0.1", "fe80::1", "fc00::1", "10.0.0.1", "100.64.0.1", "ff02::1"):
        assert not is_public_address(address), address
