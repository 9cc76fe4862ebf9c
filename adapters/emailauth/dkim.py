"""DKIM: try every candidate selector at once, follow CNAMEs (Microsoft 365 delegates its selectors), judge keys.

Selectors the user named are always reported; of the common list only those that exist are.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from adapters.dns.resolver import CheckResolver, DnsAnswer, DnsFailure
from adapters.emailauth.dkim_key import DkimKey, judge_selector_records
from adapters.emailauth.dkim_selectors import (
    COMMON_SELECTORS,
    M365_FORMAT_NOTE,
    infer_providers,
    microsoft_365_cnames,
    spf_includes,
)
from adapters.emailauth.dnsutil import follow
from adapters.emailauth.findings import Finding, decode_record, finding, status_from, worst

M365_TARGETS = ("onmicrosoft.com", "dkim.mail.microsoft")


@dataclass
class SelectorLookup:
    selector: str
    texts: list[str] = field(default_factory=list)
    target: str | None = None  # where the selector's CNAME chain ends
    failure: DnsFailure | None = None


async def _lookup(resolver: CheckResolver, domain: str, selector: str) -> SelectorLookup:
    result = SelectorLookup(selector)
    try:
        answer = await follow(resolver, f"{selector}._domainkey.{domain}", "TXT")
    except DnsFailure as exc:
        result.failure = exc
        return result
    result.target = answer.canonical_name
    result.texts = [decode_record(t) for t in answer.texts]
    return result


def _load_key_parser() -> None:
    """Keys are likely: load the RSA parser (cryptography) in a thread while the selector queries travel."""
    import cryptography.hazmat.primitives.serialization  # noqa: F401


async def _names(resolver: CheckResolver, name: str, rdtype: str) -> list[str]:
    try:
        answer = await resolver.query(name, rdtype)
    except DnsFailure:
        return []
    if rdtype == "MX":
        return [r.exchange.to_text().rstrip(".") for r in answer.rdatas if hasattr(r, "exchange")]
    return [decode_record(t) for t in answer.texts]


async def analyse_dkim(
    domain: str, resolver: CheckResolver, selectors: tuple[str, ...] = (), m365_initial_domain: str | None = None
) -> dict[str, Any]:
    """`m365_initial_domain` (the tenant's `*.onmicrosoft.com`, when the deployment knows it) completes the
    Microsoft 365 CNAMEs to publish."""
    user = tuple(dict.fromkeys(s.lower() for s in selectors))

    async def probe() -> DnsAnswer | DnsFailure:
        try:
            return await resolver.query(f"_domainkey.{domain}", "TXT")
        except DnsFailure as exc:
            return exc

    async def common() -> list[SelectorLookup]:
        """The common list, unless `_domainkey` is NXDOMAIN: then no name exists below it (RFC 8020)."""
        answer = await probe()
        if isinstance(answer, DnsAnswer) and answer.status == "nxdomain":
            return []
        rest = [s for s in COMMON_SELECTORS if s not in user]
        found, _ = await asyncio.gather(
            asyncio.gather(*(_lookup(resolver, domain, s) for s in rest)), asyncio.to_thread(_load_key_parser)
        )
        return list(found)

    mine = asyncio.gather(*(_lookup(resolver, domain, s) for s in user))
    probe_answer, mx_hosts, txt, given, found = await asyncio.gather(
        probe(), _names(resolver, domain, "MX"), _names(resolver, domain, "TXT"), mine, common()
    )
    lookups = [*given, *found]
    candidates = (*user, *(s for s in COMMON_SELECTORS if s not in user))
    providers = infer_providers(mx_hosts, spf_includes(txt))
    findings: list[Finding] = []
    report: dict[str, dict[str, Any]] = {}
    statuses = []
    failed = [lk.selector for lk in lookups if lk.failure is not None]
    targets = {lk.selector: lk.target for lk in lookups if lk.target}
    for lk in lookups:
        if lk.failure is not None:
            if lk.selector in user:
                report[lk.selector] = _entry(
                    "error",
                    None,
                    [
                        finding(
                            "error", "dkim.dns_error", f"Could not check selector {lk.selector}: {lk.failure}.", None
                        )
                    ],
                )
            continue
        if lk.texts:
            key = judge_selector_records(lk.texts, lk.selector)
            report[lk.selector] = _entry(key.status, key, key.findings)
            if key.status != "none":
                statuses.append(key.status)
        elif lk.target:
            report[lk.selector] = _entry("fail", None, [_cname_without_key(lk, domain)])
        elif lk.selector in user:
            report[lk.selector] = _entry(
                "none",
                None,
                [
                    finding(
                        "warning", "dkim.selector_missing", f"No DKIM key at {lk.selector}._domainkey.{domain}.", None
                    )
                ],
            )
    provider_findings = _provider_findings(domain, providers, report, targets, failed, m365_initial_domain)
    findings.extend(provider_findings)
    if statuses:
        status = worst(*statuses, status_from(provider_findings))  # e.g. a sender that signs with no key: warn
        if failed:
            findings.append(
                finding(
                    "info",
                    "dkim.partly_checked",
                    f"{len(failed)} selector(s) could not be checked ({', '.join(failed[:5])}).",
                    None,
                )
            )
    elif any(entry["status"] == "fail" for entry in report.values()):
        status = "fail"
    elif failed or isinstance(probe_answer, DnsFailure):
        status = "error"
        findings.insert(
            0,
            finding(
                "error",
                "dkim.dns_error",
                f"Could not check {len(failed)} selector(s) ({', '.join(failed[:5])}); a key may be there.",
                "Try again.",
            ),
        )
    else:
        status = "none"
        findings.insert(0, _nothing_found(domain, probe_answer, len(candidates)))
    return {"status": status, "selectors": report, "findings": findings}


def _entry(status: str, key: DkimKey | None, findings: list[Finding]) -> dict[str, Any]:
    return {
        "status": status,
        "key_type": key.key_type if key else None,
        "key_bits": key.key_bits if key else None,
        "testing": key.testing if key else False,
        "findings": findings,
    }


def _cname_without_key(lk: SelectorLookup, domain: str) -> Finding:
    target = (lk.target or "").lower()
    if any(t in target for t in M365_TARGETS):
        return finding(
            "error",
            "dkim.m365_not_enabled",
            f"{lk.selector}._domainkey.{domain} points to Microsoft 365 "
            f"({lk.target}) but there is no key there: DKIM is not enabled in Microsoft 365.",
            f"In Microsoft Defender (Email & collaboration → Policies → Email authentication settings → "
            f"DKIM), select {domain} and enable signing.",
        )
    return finding(
        "error",
        "dkim.cname_no_key",
        f"{lk.selector}._domainkey.{domain} is an alias of {lk.target}, which has no DKIM key.",
        "Fix the alias target or ask the provider to publish the key.",
    )


def _provider_findings(
    domain: str,
    providers: list[Any],
    report: dict[str, dict[str, Any]],
    targets: dict[str, str],
    failed: list[str],
    m365_initial: str | None,
) -> list[Finding]:
    out: list[Finding] = []
    for provider in providers:
        if provider.name == "Microsoft 365" or any(s in report for s in provider.selectors):
            continue
        out.append(
            finding(
                "info",
                "dkim.provider_selector_missing",
                f"{provider.name} is used (seen in MX or "
                f"SPF) but none of its usual selectors ({', '.join(provider.selectors)}) has a key.",
                f"Enable DKIM signing for {domain} in {provider.name} and publish the records it gives.",
            )
        )
    uses_m365 = any(p.name == "Microsoft 365" for p in providers)
    return out + _m365_findings(domain, uses_m365, report, targets, failed, m365_initial)


def _m365_findings(
    domain: str,
    uses_m365: bool,
    report: dict[str, dict[str, Any]],
    targets: dict[str, str],
    failed: list[str],
    m365_initial: str | None,
) -> list[Finding]:
    """Microsoft 365 needs both selector CNAMEs: it signs with one and switches to the other when keys rotate."""
    pair = ("selector1", "selector2")
    if any(s in failed for s in pair):
        return []  # could not check: say nothing rather than ask for a record that may be there
    m365_targets = {s: t for s, t in targets.items() if s in pair and any(m in t.lower() for m in M365_TARGETS)}
    present = [s for s in pair if s in m365_targets or report.get(s, {}).get("status") not in (None, "none")]
    if not (uses_m365 or m365_targets) or len(present) == 2:
        return []
    cnames = microsoft_365_cnames(domain, m365_targets, m365_initial)
    exact = bool(m365_targets)
    note = "" if exact else " " + M365_FORMAT_NOTE
    if not present:
        return [
            finding(
                "warning",
                "dkim.m365_missing",
                "Mail goes through Microsoft 365 but its DKIM selectors (selector1, selector2) are not published.",
                "Publish " + " and ".join(f"`{c}`" for c in cnames.values()) + ", then enable DKIM for "
                f"{domain} in Microsoft Defender (Email authentication settings → DKIM).{note}",
            )
        ]
    missing = next(s for s in pair if s not in present)
    return [
        finding(
            "warning",
            "dkim.m365_selector_missing",
            f"{present[0]} is published but {missing} is not: "
            f"Microsoft 365 switches to {missing} when it rotates the DKIM keys, and mail then fails DKIM.",
            f"Publish `{cnames[missing]}`.{note}",
        )
    ]


def _nothing_found(domain: str, probe: DnsAnswer | DnsFailure, tried: int) -> Finding:
    fix = "Enable DKIM signing at every service that sends as this domain and publish the keys they give."
    if isinstance(probe, DnsAnswer) and not probe.exists:
        return finding(
            "warning",
            "dkim.none_found",
            f"No DKIM key: `_domainkey.{domain}` does not exist, so no selector is published under it.",
            fix,
        )
    return finding(
        "warning",
        "dkim.none_found",
        f"No DKIM key found at the {tried} selectors tried, although "
        f"`_domainkey.{domain}` exists: keys may be under other selectors. Give the selector from a "
        f"message's DKIM-Signature header (s=) to check it: `check {domain} <selector>`.",
        fix,
    )
