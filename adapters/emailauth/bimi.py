"""BIMI: `default._bimi.<domain>` (v=BIMI1; l= SVG logo; a= mark certificate), which mailbox providers honour
only when DMARC is enforced (quarantine or reject, on all mail)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from adapters.dns.resolver import CheckResolver, DnsFailure
from adapters.emailauth.findings import Finding, could_not_check, decode_record, finding, quote, status_from
from adapters.emailauth.tags import parse_tags


def is_bimi(text: str) -> bool:
    return text.lstrip().startswith("v=BIMI1")


def judge_bimi_record(text: str) -> tuple[list[Finding], bool]:
    """Findings, and whether the record declines BIMI (empty l= and a=)."""
    tags = parse_tags(text)
    out = [finding("error", "bimi.syntax", f"Syntax error: {e}.", None) for e in tags.errors]
    if not tags.order or tags.order[0] != "v" or tags.tags.get("v") != "BIMI1":
        out.append(finding("error", "bimi.version", "The record must start with v=BIMI1.", None))
    logo, cert = tags.get("l"), tags.get("a")
    if logo is None:
        out.append(
            finding(
                "error",
                "bimi.no_logo",
                "The record has no l= tag (the logo's URL).",
                "v=BIMI1; l=https://<your site>/logo.svg; a=https://<your site>/vmc.pem",
            )
        )
        return out, False
    if logo == "" and not cert:
        return out, True
    for name, value, ext in (("l", logo, ".svg"), ("a", cert, ".pem")):
        if not value:
            continue
        if not value.lower().startswith("https://"):
            out.append(
                finding(
                    "error", f"bimi.{name}_not_https", f"{name}= must be an https:// URL ('{quote(value, 80)}').", None
                )
            )
        elif not value.lower().split("?")[0].endswith(ext):
            out.append(
                finding(
                    "warning",
                    f"bimi.{name}_extension",
                    f"{name}= usually points to a {ext} file ('{quote(value, 80)}').",
                    None,
                )
            )
    if not cert:
        out.append(
            finding(
                "info",
                "bimi.no_certificate",
                "No a= (mark certificate): Gmail and Apple Mail show the logo only with a VMC or CMC.",
                None,
            )
        )
    return out, False


def dmarc_findings(dmarc: dict[str, Any]) -> list[Finding]:
    """BIMI needs DMARC at quarantine or reject, applied to all mail."""
    policy, pct = dmarc.get("policy"), dmarc.get("pct")
    if dmarc.get("status") == "error":
        return [
            finding("info", "bimi.dmarc_unknown", "DMARC could not be checked, so BIMI eligibility is unknown.", None)
        ]
    if policy not in ("quarantine", "reject"):
        return [
            finding(
                "error",
                "bimi.dmarc_not_enforced",
                f"BIMI needs DMARC p=quarantine or p=reject (it is {policy or 'missing'}); logos are not shown.",
                "Raise the DMARC policy to quarantine.",
            )
        ]
    out = []
    if pct is not None and pct < 100:
        out.append(finding("error", "bimi.dmarc_pct", f"BIMI needs DMARC on all mail (pct={pct}).", "Remove pct="))
    if dmarc.get("subdomain_policy") == "none":
        out.append(
            finding(
                "warning", "bimi.dmarc_sp_none", "DMARC sp=none: some providers refuse BIMI then.", "Remove sp=none."
            )
        )
    return out


async def analyse_bimi(domain: str, resolver: CheckResolver, dmarc: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    try:
        answer = await resolver.query(f"default._bimi.{domain}", "TXT")
    except DnsFailure as exc:
        return could_not_check("bimi", exc, record=None)
    records = [t for t in (decode_record(r) for r in answer.texts) if is_bimi(t)]
    if not records:
        return {"status": "none", "record": None, "findings": []}
    findings: list[Finding] = []
    if len(records) > 1:
        findings.append(
            finding(
                "error", "bimi.multiple", f"{len(records)} BIMI records at default._bimi.{domain}.", "Keep one record."
            )
        )
    record_findings, declined = judge_bimi_record(records[0])
    findings.extend(record_findings)
    if declined:
        findings.append(finding("info", "bimi.declined", "The record declines BIMI (empty l=).", None))
        return {"status": "none", "record": quote(records[0], 2000), "findings": findings}
    findings.extend(dmarc_findings(await dmarc))
    return {"status": status_from(findings), "record": quote(records[0], 2000), "findings": findings}
