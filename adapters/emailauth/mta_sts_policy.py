"""MTA-STS (RFC 8461): the `_mta-sts` TXT record and the policy file, parsed and judged. Pure: no network."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from adapters.emailauth.findings import Finding, finding, quote
from adapters.emailauth.tags import parse_tags

MAX_AGE_LIMIT = 31_557_600
SMALL_MAX_AGE = 86_400  # a day: shorter caches leave senders unprotected between fetches
_ID = re.compile(r"[A-Za-z0-9]{1,32}\Z")
_PATTERN = re.compile(r"(\*\.)?([A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?\.)*[A-Za-z0-9_-]+\.?\Z")


def judge_sts_record(text: str) -> list[Finding]:
    tags = parse_tags(text)
    out = [finding("error", "mta_sts.record_syntax", f"_mta-sts record: {e}.", None) for e in tags.errors]
    if not tags.order or tags.order[0] != "v" or tags.tags.get("v") != "STSv1":
        out.append(finding("error", "mta_sts.record_version", "The _mta-sts record must start with v=STSv1.", None))
    record_id = tags.get("id")
    if record_id is None or not _ID.match(record_id):
        out.append(
            finding(
                "error",
                "mta_sts.record_id",
                "The _mta-sts record needs id= of 1 to 32 letters and digits (change it whenever the policy changes).",
                "v=STSv1; id=20240101000000",
            )
        )
    return out


@dataclass
class StsPolicy:
    version: str | None = None
    mode: str | None = None
    max_age: int | None = None
    mx: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def parse_policy(text: str) -> StsPolicy:
    policy = StsPolicy()
    add = policy.findings.append
    seen: set[str] = set()
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if not sep or not key:
            add(
                finding(
                    "error",
                    "mta_sts.policy_syntax",
                    f"Policy line {number} is not `key: value` ({quote(line, 60)}).",
                    None,
                )
            )
            continue
        if key == "mx":
            if _PATTERN.match(value):
                policy.mx.append(value.lower().rstrip("."))
            else:
                add(
                    finding(
                        "error", "mta_sts.policy_mx", f"mx: {quote(value, 60)} is not a host name or *.pattern.", None
                    )
                )
            continue
        if key in seen and key in ("version", "mode", "max_age"):
            add(finding("error", "mta_sts.policy_duplicate", f"`{key}` appears more than once in the policy.", None))
            continue
        seen.add(key)
        if key == "version":
            policy.version = value
        elif key == "mode":
            policy.mode = value if value in ("enforce", "testing", "none") else None
            if policy.mode is None:
                add(
                    finding(
                        "error",
                        "mta_sts.policy_mode",
                        f"mode: {quote(value, 30)} is not enforce, testing or none.",
                        None,
                    )
                )
        elif key == "max_age":
            if value.isdigit() and len(value) <= 10 and int(value) <= MAX_AGE_LIMIT:
                policy.max_age = int(value)
            else:
                add(
                    finding(
                        "error",
                        "mta_sts.policy_max_age",
                        f"max_age: {quote(value, 30)} is not a number of seconds up to {MAX_AGE_LIMIT}.",
                        None,
                    )
                )
    if policy.version != "STSv1":
        add(finding("error", "mta_sts.policy_version", "The policy must contain `version: STSv1`.", None))
    if policy.mode is None and not any(f["code"] == "mta_sts.policy_mode" for f in policy.findings):
        add(finding("error", "mta_sts.policy_mode", "The policy has no `mode:` line.", None))
    if policy.max_age is None and not any(f["code"] == "mta_sts.policy_max_age" for f in policy.findings):
        add(finding("error", "mta_sts.policy_max_age", "The policy has no `max_age:` line.", None))
    if not policy.mx and policy.mode in ("enforce", "testing"):
        add(finding("error", "mta_sts.policy_no_mx", "The policy lists no `mx:` hosts, so no MX can match it.", None))
    return policy


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 §4.1: a leading `*.` stands for exactly one label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host


def judge_policy(policy: StsPolicy, mx_hosts: list[str], domain: str) -> list[Finding]:
    out: list[Finding] = []
    suggested = policy_text("enforce", policy.mx or mx_hosts, max(policy.max_age or 0, 604_800))
    if policy.mode == "testing":
        out.append(
            finding(
                "warning",
                "mta_sts.testing",
                "mode: testing — senders report TLS failures but still "
                "deliver without TLS, so mail can be intercepted.",
                f"When TLS-RPT reports are clean, serve:\n{suggested}",
            )
        )
    elif policy.mode == "none":
        out.append(
            finding("warning", "mta_sts.mode_none", "mode: none — the policy is switched off.", f"Serve:\n{suggested}")
        )
    if policy.max_age is not None and policy.max_age < SMALL_MAX_AGE:
        out.append(
            finding(
                "warning",
                "mta_sts.small_max_age",
                f"max_age is {policy.max_age} s: senders forget the "
                "policy quickly and a downgrade attack works in between.",
                "Use max_age: 604800 (a week) or more once the policy is stable.",
            )
        )
    real_mx = [h for h in mx_hosts if h not in ("", ".")]
    if policy.mx and real_mx:
        uncovered = [h for h in real_mx if not any(mx_matches(p, h) for p in policy.mx)]
        if uncovered:
            out.append(
                finding(
                    "error" if policy.mode == "enforce" else "warning",
                    "mta_sts.mx_not_covered",
                    "MX host(s) not covered by the policy: "
                    + ", ".join(uncovered[:5])
                    + ". Senders enforcing the policy will not deliver to them.",
                    "Add to the policy: " + " ".join(f"`mx: {h}`" for h in uncovered[:5]),
                )
            )
        unused = [p for p in policy.mx if not any(mx_matches(p, h) for h in real_mx)]
        if unused:
            out.append(
                finding(
                    "info",
                    "mta_sts.pattern_unused",
                    "Policy mx pattern(s) matching no MX of "
                    f"{domain}: " + ", ".join(quote(p, 60) for p in unused[:5]) + ".",
                    "Remove stale mx: lines.",
                )
            )
    return out


def policy_text(mode: str, mx: list[str], max_age: int) -> str:
    lines = [
        "version: STSv1",
        f"mode: {mode}",
        *(f"mx: {h}" for h in mx[:10] if h not in ("", ".")),
        f"max_age: {max_age}",
    ]
    return "\n".join(lines)
