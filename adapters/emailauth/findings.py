"""The shapes every area's result shares: statuses, findings with a code and a fix, and "could not check".

Statuses are ordered so that the worst one wins when an area combines several judgements. "error" means the
check could not be made (timeout, SERVFAIL, REFUSED): it is never folded into "none" (not published).
"""

from __future__ import annotations

from typing import Any, Literal

Status = Literal["pass", "warn", "fail", "none", "error"]
Severity = Literal["error", "warning", "info"]
Finding = dict[str, Any]

# Worse statuses first; "none" ranks below "fail" because a broken record is worse than an absent one only in
# that it looks like protection while giving none.
_RANK = {"pass": 0, "none": 1, "warn": 2, "fail": 3, "error": 4}
MAX_FIELD = 600  # characters of a record quoted back in a message: records can be hostile and long


def finding(severity: Severity, code: str, message: str, fix: str | None = None) -> Finding:
    return {"severity": severity, "code": code, "message": message, "fix": fix}


def worst(*statuses: Status) -> Status:
    return max(statuses, key=lambda s: _RANK[s]) if statuses else "none"


def status_from(findings: list[Finding], *, default: Status = "pass") -> Status:
    """pass unless a finding says otherwise: an error finding fails, a warning warns."""
    severities = {f["severity"] for f in findings}
    if "error" in severities:
        return "fail"
    if "warning" in severities:
        return worst(default, "warn")
    return default


def quote(value: str, limit: int = 120) -> str:
    """A record fragment safe to quote in a message: printable, single-line, bounded."""
    cleaned = "".join(ch if ch.isprintable() else "\ufffd" for ch in value)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def decode_record(raw: bytes) -> str:
    """TXT bytes as text; bytes that are not UTF-8 become U+FFFD so parsers see (and report) them."""
    return raw.decode("utf-8", errors="replace")


def could_not_check(area: str, exc: BaseException, **empty: Any) -> dict[str, Any]:
    """The result of an area whose lookups failed: status "error", with the reason."""
    return {
        "status": "error",
        **empty,
        "findings": [
            finding(
                "error",
                f"{area}.dns_error",
                f"Could not check: {quote(str(exc), 200)}.",
                "Try again; if it persists, check the domain's name servers answer this query.",
            )
        ],
    }
