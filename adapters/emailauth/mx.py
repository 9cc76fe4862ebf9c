"""MX: null MX (RFC 7505), aliases and IP literals as exchanges, hosts without addresses, implicit MX."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from adapters.dns.resolver import CheckResolver, DnsAnswer, DnsFailure
from adapters.emailauth.dnsutil import follow
from adapters.emailauth.findings import Finding, could_not_check, finding, quote, status_from

MAX_HOSTS = 20


async def _addresses(resolver: CheckResolver, host: str) -> tuple[list[DnsAnswer], list[DnsFailure]]:
    results = await asyncio.gather(*(follow(resolver, host, t) for t in ("A", "AAAA")), return_exceptions=True)
    answers = [r for r in results if isinstance(r, DnsAnswer)]
    failures = [r for r in results if isinstance(r, DnsFailure)]
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, DnsFailure):
            raise r
    return answers, failures


async def analyse_mx(domain: str, resolver: CheckResolver) -> dict[str, Any]:
    try:
        answer = await resolver.query(domain, "MX")
    except DnsFailure as exc:
        return could_not_check("mx", exc, hosts=[])
    rdatas: list[Any] = list(answer.rdatas)  # MX rdata (dnspython types them as the base class)
    records = sorted(
        ((int(r.preference), r.exchange.to_text().rstrip(".").lower()) for r in rdatas if hasattr(r, "exchange")),
        key=lambda pair: pair,
    )
    hosts = [{"name": name or ".", "preference": pref} for pref, name in records]
    if answer.status == "nxdomain":
        return {
            "status": "fail",
            "hosts": [],
            "findings": [
                finding(
                    "error",
                    "mx.domain_missing",
                    f"{domain} does not exist (NXDOMAIN).",
                    "Check the spelling of the domain.",
                )
            ],
        }
    if not records:
        return await _implicit(domain, resolver)
    if any(name in ("", ".") for _, name in records):
        if len(records) == 1 and records[0][0] == 0:
            return {
                "status": "pass",
                "hosts": hosts,
                "findings": [
                    finding(
                        "info",
                        "mx.null",
                        "Null MX (RFC 7505): this domain declares it receives no mail. Its SPF should be "
                        "`v=spf1 -all` and its DMARC p=reject so nobody can send as it.",
                        None,
                    )
                ],
            }
        return {
            "status": "fail",
            "hosts": hosts,
            "findings": [
                finding(
                    "error",
                    "mx.null_mixed",
                    'A null MX (".") is published next to other MX records or with a preference '
                    "other than 0; senders may treat the domain as receiving no mail.",
                    f"Either publish only `{domain}. MX 0 .` (no mail) or remove the null MX.",
                )
            ],
        }
    findings: list[Finding] = []
    names = list(dict.fromkeys(name for _, name in records))[:MAX_HOSTS]
    checks = await asyncio.gather(*(_host(resolver, name) for name in names))
    unreachable = 0
    failed = 0
    for host_findings, reachable, could_not in checks:
        findings.extend(host_findings)
        unreachable += not reachable and not could_not
        failed += could_not
    if failed == len(names):
        return {
            **could_not_check(
                "mx", DnsFailure(names[0], "A", "error", "no MX host address could be looked up"), hosts=hosts
            )
        }
    status = status_from(findings)
    if unreachable == len(names):
        status = "fail"
    elif unreachable and status == "fail":
        status = "warn"  # some hosts still receive mail
    return {"status": status, "hosts": hosts, "findings": findings}


async def _host(resolver: CheckResolver, name: str) -> tuple[list[Finding], bool, bool]:
    """Findings for one exchange, whether it has an address, and whether it could not be checked."""
    try:
        ipaddress.ip_address(name)
        return (
            [
                finding(
                    "error",
                    "mx.ip_literal",
                    f"MX {quote(name, 60)} is an IP address; an MX must name a host (RFC 5321 §5.1).",
                    f"Publish an A record such as `mx.<domain> A {quote(name, 60)}` and point the MX at that name.",
                )
            ],
            True,
            False,
        )
    except ValueError:
        pass
    answers, failures = await _addresses(resolver, name)
    findings: list[Finding] = []
    if failures and not any(a.status == "ok" for a in answers):
        return (
            [
                finding(
                    "warning", "mx.host_unchecked", f"Could not look up MX host {quote(name, 80)}: {failures[0]}.", None
                )
            ],
            False,
            True,
        )
    if any(a.canonical_name for a in answers):
        target = next(a.canonical_name for a in answers if a.canonical_name)
        findings.append(
            finding(
                "warning",
                "mx.cname",
                f"MX host {quote(name, 80)} is an alias (CNAME) of {target}; "
                "an MX must point at a host name with addresses (RFC 2181 §10.3).",
                f"Point the MX at {target} directly.",
            )
        )
    if not any(a.status == "ok" for a in answers):
        why = "does not exist" if answers and all(a.status == "nxdomain" for a in answers) else "has no A/AAAA"
        findings.append(
            finding(
                "error",
                "mx.host_no_address",
                f"MX host {quote(name, 80)} {why}: mail to it cannot be delivered.",
                "Publish its A/AAAA records or remove the MX.",
            )
        )
        return findings, False, False
    return findings, True, False


async def _implicit(domain: str, resolver: CheckResolver) -> dict[str, Any]:
    answers, failures = await _addresses(resolver, domain)
    if any(a.status == "ok" for a in answers):
        message = (
            f"No MX record: mail for {domain} goes to its A/AAAA address (implicit MX, RFC 5321 §5.1), "
            "which is rarely intended."
        )
        fix = f"Publish the MX of your mail service, or `{domain}. MX 0 .` if the domain sends and receives no mail."
        return {"status": "none", "hosts": [], "findings": [finding("warning", "mx.implicit", message, fix)]}
    if failures:
        return could_not_check("mx", failures[0], hosts=[])
    return {
        "status": "none",
        "hosts": [],
        "findings": [
            finding(
                "warning",
                "mx.missing",
                f"No MX record and no address: {domain} cannot receive mail.",
                f"Publish the MX of your mail service, or `{domain}. MX 0 .` (null MX) if it receives no mail.",
            )
        ],
    }
