"""The overall grade: a weighted score of the areas, capped by what matters most for spoofing.

Weights favour what stops spoofing (DMARC, SPF, DKIM); "error" scores like "none" because a grade must never be
better than what was actually verified. Grades are A, B, C, D and F — but only when there is something to grade:
when neither SPF nor DMARC could be checked (DNS timeouts everywhere) an F would be alarming and wrong, so the
headline is "could not check" with no letter; a domain that does not exist (NXDOMAIN) gets no letter either.
"""

from __future__ import annotations

from typing import Any

WEIGHTS = {"dmarc": 35, "spf": 25, "dkim": 20, "mx": 5, "mta_sts": 5, "tls_rpt": 3, "dnssec": 7, "bimi": 0}
FACTOR = {"pass": 1.0, "warn": 0.6, "fail": 0.0, "none": 0.0, "error": 0.0}
BANDS = ((90, "A"), (80, "B"), (65, "C"), (50, "D"))
ORDER = "ABCDF"
CHECKED, COULD_NOT_CHECK, NXDOMAIN = "checked", "could_not_check", "nxdomain"


def _cap(grade: str, worst_allowed: str) -> str:
    return max(grade, worst_allowed, key=ORDER.index)


def is_null_mx(checks: dict[str, Any]) -> bool:
    return any(f.get("code") == "mx.null" for f in checks.get("mx", {}).get("findings", []))


def grade(checks: dict[str, Any]) -> str:
    null_mx = is_null_mx(checks)
    score = 0.0
    for area, weight in WEIGHTS.items():
        status = checks.get(area, {}).get("status", "error")
        if null_mx and area in ("dkim", "mta_sts", "tls_rpt") and status == "none":
            status = "pass"  # a domain that receives and sends no mail needs none of these
        score += weight * FACTOR.get(status, 0.0)
    letter = next((g for floor, g in BANDS if score >= floor), "F")
    spf, dmarc = checks.get("spf", {}), checks.get("dmarc", {})
    if spf.get("status") in ("none", "fail") and dmarc.get("status") in ("none", "fail"):
        return "F"
    if dmarc.get("status") in ("none", "fail", "error") or spf.get("status") in ("none", "fail", "error"):
        letter = _cap(letter, "D")
    if dmarc.get("policy") in (None, "none"):
        letter = _cap(letter, "C")
    if checks.get("dkim", {}).get("status") in ("none", "fail", "error") and not null_mx:
        letter = _cap(letter, "B")
    return letter


def headline(checks: dict[str, Any], *, exists: bool = True) -> tuple[str, str | None]:
    """(status, grade): ("checked", letter), ("could_not_check", None) or ("nxdomain", None)."""
    if not exists:
        return NXDOMAIN, None
    if all(checks.get(area, {}).get("status", "error") == "error" for area in ("spf", "dmarc")):
        return COULD_NOT_CHECK, None
    return CHECKED, grade(checks)
