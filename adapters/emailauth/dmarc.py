"""DMARC discovery and judgement: the RFC 9989 tree walk, the PSL organisational domain, report destinations.

All levels of the tree walk are asked at once (one round trip); the report destinations' authorisation records
and MX are asked together in a second round.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from adapters.dns.resolver import CheckResolver, DnsAnswer, DnsFailure
from adapters.emailauth.dmarc_record import (
    DmarcRecord,
    is_dmarc,
    judge_policy,
    near_miss,
    parse_dmarc,
    suggested_record,
)
from adapters.emailauth.findings import Finding, could_not_check, decode_record, finding, quote, status_from
from adapters.emailauth.orgdomain import org_domain, same_org

EMPTY = {"record": None, "policy": None, "subdomain_policy": None, "pct": None, "org_domain": None}


def walk_levels(domain: str) -> list[str]:
    """The names the RFC 9989 tree walk asks, from the domain up to its top-level domain (at most 8)."""
    labels = domain.split(".")
    start = max(1, len(labels) - 7)
    return [domain] + [".".join(labels[i:]) for i in range(start, len(labels))]


async def _level(resolver: CheckResolver, name: str) -> DnsAnswer | DnsFailure:
    try:
        return await resolver.query(f"_dmarc.{name}", "TXT")
    except DnsFailure as exc:
        return exc


def _records(answer: DnsAnswer) -> list[str]:
    return [text for text in (decode_record(t) for t in answer.texts) if is_dmarc(text)]


def tree_walk_org_domain(domain: str, found: dict[str, DmarcRecord]) -> str | None:
    """RFC 9989 §4.10.2: psd=n marks the organisational domain, psd=y the one below it, else the shortest."""
    levels = walk_levels(domain)
    for index, name in enumerate(levels):
        record = found.get(name)
        if record is None:
            continue
        if record.psd == "n":
            return name
        if record.psd == "y" and name != domain:
            return levels[index - 1] if index > 0 else domain
    with_records = [name for name in levels if name in found]
    return min(with_records, key=lambda n: n.count(".")) if with_records else None


async def analyse_dmarc(domain: str, resolver: CheckResolver) -> dict[str, Any]:
    levels = walk_levels(domain)
    psl, *asked = await asyncio.gather(asyncio.to_thread(org_domain, domain), *(_level(resolver, n) for n in levels))
    psl_org = cast(str | None, psl)
    answers = dict(zip(levels, cast(list[DnsAnswer | DnsFailure], asked), strict=True))
    findings: list[Finding] = []
    parsed: dict[str, DmarcRecord] = {}
    policy_at: str | None = None
    failure: DnsFailure | None = None
    ignored: list[tuple[str, str, Finding]] = []  # (level, text, finding): meant as DMARC, ignored by receivers
    for name in levels:
        answer = answers[name]
        if isinstance(answer, DnsFailure):
            is_public_suffix = psl_org is not None and len(name) < len(psl_org)
            if policy_at is None and failure is None and not is_public_suffix:
                failure = answer  # the record may be there: nothing below this can be trusted
            continue
        records = _records(answer)
        if not records:
            texts = [decode_record(t) for t in answer.texts]
            misses = [(text, f) for text in texts if (f := near_miss(text, name)) is not None]
            if misses and policy_at is None and failure is None:
                ignored.append((name, *misses[0]))
            continue
        record = parse_dmarc(records[0])
        if len(records) > 1:
            record.valid = False
            record.findings.insert(
                0,
                finding(
                    "error",
                    "dmarc.multiple",
                    f"_dmarc.{name} has {len(records)} DMARC records; receivers then apply none of them.",
                    "Delete all but one record.",
                ),
            )
        parsed[name] = record
        if policy_at is None and failure is None:
            policy_at = name
    walk_org = tree_walk_org_domain(domain, {n: r for n, r in parsed.items() if r.valid})
    result: dict[str, Any] = {**EMPTY, "org_domain": psl_org or walk_org}
    if walk_org and psl_org and walk_org != psl_org:
        findings.append(
            finding(
                "info",
                "dmarc.org_domain_disagree",
                f"The public suffix list gives {psl_org} as "
                f"the organisational domain, the DMARC tree walk (RFC 9989) gives {walk_org}; "
                "receivers using different methods may apply different policies.",
                None,
            )
        )
    if failure is not None:
        return {**could_not_check("dmarc", failure, **result), "org_domain": result["org_domain"]}
    findings[0:0] = [f for _, _, f in ignored]
    if policy_at is None and ignored:
        return {**result, "record": quote(ignored[0][1], 2000), "status": "fail", "findings": findings}
    if policy_at is None:
        fix = suggested_record(None, domain)
        findings.insert(
            0,
            finding(
                "error",
                "dmarc.missing",
                "No DMARC record: receivers have no policy for mail "
                "that fails SPF and DKIM, so the domain can be spoofed.",
                f"Publish TXT at _dmarc.{domain}: `{fix}` (start with p=none if you first want reports).",
            ),
        )
        return {**result, "status": "none", "findings": findings}
    record = parsed[policy_at]
    result.update(record=quote(record.raw, 2000), policy=record.p, subdomain_policy=record.sp, pct=record.pct)
    findings.extend(record.findings)
    if not record.valid:
        return {**result, "status": "fail", "findings": findings}
    inherited = policy_at != domain
    if inherited:
        effective = record.sp or record.p or "none"
        findings.append(
            finding(
                "info",
                "dmarc.inherited",
                f"No record at _dmarc.{domain}: the record of "
                f"{policy_at} applies, with its sub-domain policy ({effective}).",
                None,
            )
        )
        judged = DmarcRecord(
            raw=record.raw,
            p=effective,
            pct=record.pct,
            rua=record.rua,
            testing=record.testing,
            ignored_rua=record.ignored_rua,
        )
    else:
        judged = record
    findings.extend(judge_policy(judged, domain, inherited_from=policy_at if inherited else None))
    findings.extend(await _report_destinations(resolver, policy_at, record))
    return {**result, "status": status_from(findings), "findings": findings}


async def _report_destinations(resolver: CheckResolver, policy_domain: str, record: DmarcRecord) -> list[Finding]:
    """External rua/ruf need `<domain>._report._dmarc.<dest>` (RFC 7489 §7.1); every destination needs MX."""
    destinations = sorted({u.domain for u in (*record.rua, *record.ruf) if u.domain})[:10]
    external = [d for d in destinations if not same_org(d, policy_domain)]
    auth = [_authorisation(resolver, policy_domain, d) for d in external]
    mx = [_has_mx(resolver, d) for d in destinations]
    results = await asyncio.gather(*auth, *mx)
    return [f for group in results for f in group]


async def _authorisation(resolver: CheckResolver, domain: str, dest: str) -> list[Finding]:
    name = f"{domain}._report._dmarc.{dest}"
    try:
        answer = await resolver.query(name, "TXT")
    except DnsFailure as exc:
        return [
            finding(
                "info",
                "dmarc.report_auth_unknown",
                f"Could not check that {dest} accepts reports for {domain}: {exc}.",
                None,
            )
        ]
    if _records(answer):
        return []
    return [
        finding(
            "warning",
            "dmarc.report_unauthorised",
            f"Report destination {dest} has not authorised reports for {domain}: receivers will not send them there.",
            f"The operator of {dest} must publish TXT at {name}: `v=DMARC1;`",
        )
    ]


async def _has_mx(resolver: CheckResolver, dest: str) -> list[Finding]:
    try:
        answer = await resolver.query(dest, "MX")
    except DnsFailure as exc:
        return [finding("info", "dmarc.report_mx_unknown", f"Could not check the MX of {dest}: {exc}.", None)]
    hosts = [r.exchange.to_text() for r in answer.rdatas if hasattr(r, "exchange")]
    if answer.status == "ok" and hosts and hosts != ["."]:
        return []
    why = "does not exist" if answer.status == "nxdomain" else "accepts no mail (null MX)" if hosts else "has no MX"
    return [
        finding(
            "warning",
            "dmarc.report_no_mx",
            f"Report destination {dest} {why}: reports cannot be delivered.",
            "Use a report address at a domain that receives mail.",
        )
    ]
