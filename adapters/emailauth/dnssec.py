"""DNSSEC: is the zone signed (DNSKEY), anchored in its parent (DS), and did the resolver validate it (AD bit)?

Answers say yes/no/unknown with the reason: a resolver that does not validate cannot prove anything, so the
result is "unknown" there rather than a guessed boolean.
"""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.dns.resolver import CheckResolver, DnsAnswer, DnsFailure
from adapters.emailauth.findings import could_not_check, finding
from adapters.emailauth.orgdomain import org_domain


async def _ask(resolver: CheckResolver, name: str, rdtype: str) -> DnsAnswer | DnsFailure:
    try:
        return await resolver.query(name, rdtype)
    except DnsFailure as exc:
        return exc


async def analyse_dnssec(domain: str, resolver: CheckResolver) -> dict[str, Any]:
    # The public suffix list may still be loading (~70 ms of CPU on a cold start): never on the event loop.
    org = await asyncio.to_thread(org_domain, domain)
    zones = list(dict.fromkeys([domain, org or domain]))
    asked = await asyncio.gather(*(_ask(resolver, z, t) for z in zones for t in ("DNSKEY", "DS")))
    pairs = {z: (asked[2 * i], asked[2 * i + 1]) for i, z in enumerate(zones)}
    empty = {"signed": "unknown", "validated": "unknown"}
    for zone in zones:
        dnskey, ds = pairs[zone]
        if isinstance(dnskey, DnsFailure):
            return {**could_not_check("dnssec", dnskey, **empty)}
        if dnskey.status == "ok" or (isinstance(ds, DnsAnswer) and ds.status == "ok"):
            return _judge(zone, dnskey, ds)
    dnskey, ds = pairs[zones[-1]]
    if isinstance(ds, DnsFailure):
        return {**could_not_check("dnssec", ds, **empty)}
    return {
        "status": "none",
        "signed": "no",
        "validated": "no",
        "findings": [
            finding(
                "info",
                "dnssec.unsigned",
                f"The zone of {domain} is not signed (no DNSKEY, no DS): answers about it, "
                "including its MX and these records, can be forged by a network attacker.",
                "Enable DNSSEC at your DNS host, then publish the DS record it gives at your registrar.",
            )
        ],
    }


def _judge(zone: str, dnskey: DnsAnswer, ds: DnsAnswer | DnsFailure) -> dict[str, Any]:
    validated = dnskey.authenticated or (isinstance(ds, DnsAnswer) and ds.authenticated)
    if isinstance(ds, DnsFailure):
        return {
            "status": "warn",
            "signed": "yes",
            "validated": "yes" if validated else "unknown",
            "findings": [
                finding(
                    "warning",
                    "dnssec.ds_unchecked",
                    f"{zone} publishes DNSKEY, but its DS could not be looked up ({ds}).",
                    None,
                )
            ],
        }
    if dnskey.status != "ok":
        return {
            "status": "fail",
            "signed": "no",
            "validated": "no",
            "findings": [
                finding(
                    "error",
                    "dnssec.ds_without_dnskey",
                    f"The parent publishes DS for {zone} but the zone has no DNSKEY: "
                    "validating resolvers will refuse to answer for the whole domain.",
                    "Remove the DS at your registrar, or re-enable signing at your DNS host.",
                )
            ],
        }
    if ds.status != "ok":
        return {
            "status": "fail",
            "signed": "yes",
            "validated": "no",
            "findings": [
                finding(
                    "error",
                    "dnssec.no_ds",
                    f"{zone} is signed (DNSKEY) but its parent has no DS record, so nobody can "
                    "validate the signatures (an island of trust).",
                    "Publish the zone's DS record at your registrar (your DNS host shows it).",
                )
            ],
        }
    if validated:
        return {
            "status": "pass",
            "signed": "yes",
            "validated": "yes",
            "findings": [
                finding(
                    "info",
                    "dnssec.validated",
                    f"{zone} is signed, anchored by DS in its parent, and the resolver validated the answers (AD bit).",
                    None,
                )
            ],
        }
    return {
        "status": "warn",
        "signed": "yes",
        "validated": "unknown",
        "findings": [
            finding(
                "warning",
                "dnssec.not_validated",
                f"{zone} publishes DNSKEY and DS, but the resolver did not set the AD "
                "bit: either it does not validate DNSSEC or it could not; validity is unknown.",
                "Check with a validating resolver (e.g. --nameserver 1.1.1.1).",
            )
        ],
    }
