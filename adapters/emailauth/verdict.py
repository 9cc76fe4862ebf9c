"""One-line verdicts per area, shared by the Teams card and the CLI's text output."""

from __future__ import annotations

from typing import Any

from adapters.emailauth.findings import quote

LABELS = {
    "spf": "SPF",
    "dmarc": "DMARC",
    "dkim": "DKIM",
    "mx": "MX",
    "mta_sts": "MTA-STS",
    "tls_rpt": "TLS-RPT",
    "bimi": "BIMI",
    "dnssec": "DNSSEC",
}
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def ordered_findings(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The area's findings (DKIM's per-selector ones included), errors first."""
    findings = list(result.get("findings", []))
    for selector in (result.get("selectors") or {}).values():
        findings.extend(selector.get("findings", []))
    return sorted(findings, key=lambda f: _SEVERITY_ORDER.get(f.get("severity"), 3))


def verdict(area: str, result: dict[str, Any], limit: int = 160) -> str:
    status = result.get("status")
    findings = ordered_findings(result)
    if status in ("warn", "fail", "error", "none") and findings:
        serious = [f for f in findings if f["severity"] != "info"] or findings
        more = len(serious) - 1
        text = str(serious[0]["message"]) + (f" (+{more} more)" if more > 0 else "")
        return quote(text, limit)
    return quote(_summary(area, result) or "Not published.", limit)


def _summary(area: str, r: dict[str, Any]) -> str:
    if area == "spf":
        return f"{r.get('record') or ''} ({r.get('dns_lookups', 0)}/10 DNS lookups)".strip()
    if area == "dmarc":
        parts = [f"p={r.get('policy')}"]
        if r.get("subdomain_policy"):
            parts.append(f"sp={r['subdomain_policy']}")
        if r.get("pct") is not None:
            parts.append(f"pct={r['pct']}")
        return "Policy " + ", ".join(parts)
    if area == "dkim":
        keys = [
            f"{name} ({s.get('key_type')} {s.get('key_bits')})"
            for name, s in r.get("selectors", {}).items()
            if s.get("status") == "pass"
        ]
        return "Keys at " + ", ".join(keys[:4]) + (" …" if len(keys) > 4 else "") if keys else ""
    if area == "mx":
        hosts = r.get("hosts", [])
        if hosts == [{"name": ".", "preference": 0}]:
            return "Null MX: receives no mail (RFC 7505)"
        return ", ".join(f"{h['name']} ({h['preference']})" for h in hosts[:4]) + (" …" if len(hosts) > 4 else "")
    if area == "mta_sts":
        return f"mode {r.get('mode')}, max_age {r.get('max_age')} s"
    if area == "dnssec":
        return f"Signed: {r.get('signed')}, validated: {r.get('validated')}"
    return str(r.get("record") or "")


def headline(report: dict[str, Any]) -> str:
    """What the report says first: the grade, "could not check" (no letter), or that the domain does not exist."""
    status = report.get("status", "checked")
    if status == "nxdomain":
        return (
            f"{report.get('domain')} does not exist (NXDOMAIN): there is nothing to check — is the name spelled right?"
        )
    if status == "could_not_check" or report.get("grade") is None:
        return "could not check"
    return f"grade {report['grade']}"


def unchecked_note(report: dict[str, Any]) -> str | None:
    """Said next to the grade when some areas could not be checked: the grade then counts them as unprotected."""
    if report.get("status") == "nxdomain":
        return None
    failed = [LABELS[a] for a, r in report.get("checks", {}).items() if r.get("status") == "error" and a in LABELS]
    if not failed:
        return None
    if report.get("status") == "could_not_check":
        return (
            f"Could not check {', '.join(failed)} (DNS failed or timed out), so there is no grade — this says "
            "nothing about the domain's protection. Check again."
        )
    return (
        f"Could not check {', '.join(failed)} (DNS failed or timed out); the grade counts them as unprotected "
        "— check again."
    )
