"""TLS-RPT (RFC 8460): `_smtp._tls.<domain>` must be one `v=TLSRPTv1` record with mailto:/https: rua= URIs."""

from __future__ import annotations

import re
from typing import Any

from adapters.dns.resolver import CheckResolver, DnsFailure
from adapters.emailauth.findings import Finding, could_not_check, decode_record, finding, quote, status_from
from adapters.emailauth.tags import parse_tags

_URI = re.compile(r"(mailto:[^@\s,]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+|https://[^\s,]+)\Z", re.IGNORECASE)


def is_tls_rpt(text: str) -> bool:
    return text.lstrip().startswith("v=TLSRPTv1")


def judge_tls_rpt_record(text: str, domain: str = "example.com") -> list[Finding]:
    tags = parse_tags(text)
    out = [finding("error", "tls_rpt.syntax", f"Syntax error: {e}.", None) for e in tags.errors]
    if not tags.order or tags.order[0] != "v" or tags.tags.get("v") != "TLSRPTv1":
        out.append(finding("error", "tls_rpt.version", "The record must start with v=TLSRPTv1.", None))
    rua = tags.get("rua")
    fix = f"v=TLSRPTv1; rua=mailto:tls-reports@{domain}"
    if rua is None:
        out.append(finding("error", "tls_rpt.no_rua", "The record has no rua= (where reports go).", fix))
        return out
    uris = [u.strip() for u in rua.split(",")]
    bad = [u for u in uris if not _URI.match(u)]
    for uri in bad[:5]:
        out.append(finding("error", "tls_rpt.bad_rua", f"rua: '{quote(uri, 80)}' is not a mailto: or https: URI.", fix))
    return out


async def analyse_tls_rpt(domain: str, resolver: CheckResolver) -> dict[str, Any]:
    try:
        answer = await resolver.query(f"_smtp._tls.{domain}", "TXT")
    except DnsFailure as exc:
        return could_not_check("tls_rpt", exc, record=None)
    records = [t for t in (decode_record(r) for r in answer.texts) if is_tls_rpt(t)]
    if not records:
        return {
            "status": "none",
            "record": None,
            "findings": [
                finding(
                    "info",
                    "tls_rpt.missing",
                    "No TLS-RPT record: you get no reports when senders cannot deliver over TLS.",
                    f"Publish TXT at _smtp._tls.{domain}: `v=TLSRPTv1; rua=mailto:tls-reports@{domain}`",
                )
            ],
        }
    findings: list[Finding] = []
    if len(records) > 1:
        findings.append(
            finding(
                "error",
                "tls_rpt.multiple",
                f"{len(records)} TLS-RPT records: senders ignore all of them.",
                "Keep one record.",
            )
        )
    findings.extend(judge_tls_rpt_record(records[0], domain))
    return {"status": status_from(findings), "record": quote(records[0], 2000), "findings": findings}
