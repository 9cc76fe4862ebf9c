"""DNSSEC state from real signed zones (signed here with dnspython, served by NSD with their parent zone holding
the DS): signed and anchored, island of trust, DS without DNSKEY, unsigned — always with the reason."""

from __future__ import annotations

from typing import Any

import dns.dnssec
import dns.rdata
import dns.zone
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.dns.resolver import CheckResolver, DnsAnswer
from adapters.emailauth.dnssec import _judge, analyse_dnssec
from tests.support.dns_server import zone_file

PARENT = "dsec.test"


def _signed(origin: str, records: dict[str, Any]) -> tuple[str, str]:
    """Zone text signed with a fresh ECDSA P-256 key, and the DS record text for the parent."""
    zone = dns.zone.from_text(zone_file(origin, records), origin=origin + ".", relativize=False)
    key = ec.generate_private_key(ec.SECP256R1())
    dnskey = dns.dnssec.make_dnskey(key.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256, flags=257)
    with zone.writer() as txn:
        dns.dnssec.sign_zone(zone, txn=txn, keys=[(key, dnskey)], lifetime=86400)
    ds = dns.dnssec.make_ds(origin + ".", dnskey, "SHA256")
    return f"$ORIGIN {origin}.\n" + zone.to_text(relativize=False), ds.to_text()


@pytest.fixture(scope="module")
def server(nsd_factory):
    signed_text, signed_ds = _signed(f"signed.{PARENT}", {"@": [("TXT", "v=spf1 -all")]})
    island_text, _ = _signed(f"island.{PARENT}", {"@": [("TXT", "v=spf1 -all")]})
    _, orphan_ds = _signed(f"orphan.{PARENT}", {})
    parent = zone_file(
        PARENT,
        {
            "signed": [("NS", "ns.invalid."), ("DS", signed_ds)],
            "island": [("NS", "ns.invalid.")],
            "orphan": [("NS", "ns.invalid."), ("DS", orphan_ds)],
            "plain": [("NS", "ns.invalid.")],
        },
    )
    return nsd_factory(
        {
            PARENT: parent,
            f"signed.{PARENT}": signed_text,
            f"island.{PARENT}": island_text,
            f"orphan.{PARENT}": zone_file(f"orphan.{PARENT}", {"@": [("TXT", "v=spf1 -all")]}),
            f"plain.{PARENT}": zone_file(f"plain.{PARENT}", {"@": [("TXT", "v=spf1 -all")]}),
        }
    )


async def dnssec(server, name: str) -> dict[str, Any]:
    return await analyse_dnssec(f"{name}.{PARENT}", CheckResolver(nameservers=[server.address]))


async def test_signed_zone_with_ds_but_no_validating_resolver_is_unknown(server) -> None:
    result = await dnssec(server, "signed")
    assert (result["status"], result["signed"], result["validated"]) == ("warn", "yes", "unknown")
    assert result["findings"][0]["code"] == "dnssec.not_validated"


async def test_island_of_trust_fails_with_the_fix(server) -> None:
    result = await dnssec(server, "island")
    assert (result["status"], result["signed"]) == ("fail", "yes") and result["findings"][0]["code"] == "dnssec.no_ds"


async def test_ds_without_dnskey_fails(server) -> None:
    result = await dnssec(server, "orphan")
    assert result["status"] == "fail" and result["findings"][0]["code"] == "dnssec.ds_without_dnskey"


async def test_unsigned_zone_is_none_with_the_reason(server) -> None:
    result = await dnssec(server, "plain")
    assert (result["status"], result["signed"], result["validated"]) == ("none", "no", "no")
    assert "not signed" in result["findings"][0]["message"]


def test_validated_answers_pass() -> None:
    rdata = dns.rdata.from_text("IN", "DNSKEY", "257 3 13 " + "A" * 88)
    key = DnsAnswer("x.test.", "DNSKEY", "ok", (rdata,), authenticated=True)
    ds = DnsAnswer("x.test.", "DS", "ok", (), authenticated=True)
    assert _judge("x.test", key, ds)["validated"] == "yes" and _judge("x.test", key, ds)["status"] == "pass"
