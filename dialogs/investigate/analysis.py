"""The judgement of `investigate`: what in a user's recent activity points to a compromise. Pure: records in,
findings out, no Graph and no clock, so every rule is tested with plain data.

A sign-in is judged against the user's own baseline (the 30 days before the window): a country, IP or app never
seen there is "new". Impossible travel needs two *successful* sign-ins with known coordinates more than
`MIN_TRAVEL_KM` apart whose speed would exceed 900 km/h (IP geolocation is coarse: nearby cities are not travel).
The verdict names the strongest evidence and how the events follow each other.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from adapters.graph.containment import InboxRule
from adapters.graph.incident import AuditEvent, Device, Grant, SignIn
from dialogs.lockdown import rules as rule_judge

Severity = Literal["high", "medium", "low", "info"]
MAX_SPEED_KMH = 900.0
MIN_TRAVEL_KM = 300.0
MODERN_CLIENTS = frozenset({"browser", "mobile apps and desktop clients", ""})
ANONYMISER_EVENTS = frozenset(
    {"anonymizedIPAddress", "maliciousIPAddress", "nationStateIP", "tor", "suspiciousIPAddress"}
)
RISKY_LEVELS = frozenset({"low", "medium", "high"})
RISKY_STATES = frozenset({"atRisk", "confirmedCompromised"})
STORY = frozenset(
    {
        "signin.new_country",
        "signin.impossible_travel",
        "rule.suspicious",
        "audit.mfa_added",
        "audit.consent",
        "consent.new",
        "audit.role",
    }
)
SEVERITY_ORDER: dict[str, int] = {"high": 0, "medium": 1, "low": 2, "info": 3}
# directory audit activities, by what they mean for an intruder (matched case-insensitively, by substring)
AUDIT_KINDS: tuple[tuple[str, str, Severity], ...] = (
    ("registered security info", "mfa_added", "high"),
    ("deleted security info", "mfa_removed", "medium"),
    ("changed default security info", "mfa_changed", "medium"),
    ("consent to application", "consent", "high"),
    ("delegated permission grant", "consent", "medium"),
    ("app role assignment", "consent", "medium"),
    ("reset password", "password", "medium"),
    ("reset user password", "password", "medium"),
    ("change password", "password", "low"),
    ("change user password", "password", "low"),
    ("register device", "device", "medium"),
    ("add registered owner to device", "device", "low"),
    ("add member to role", "role", "high"),
    ("remove member from role", "role", "medium"),
    ("add eligible member to role", "role", "high"),
)


@dataclass(frozen=True)
class Finding:
    code: str  # stable: signin.new_country, rule.forwarding, audit.mfa_added, ...
    severity: Severity
    message: str
    at: dt.datetime | None = None
    ref: dict[str, str] = field(default_factory=dict)  # what a button acts on: rule id, grant id, ip

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "at": iso(self.at) if self.at else None,
        }


@dataclass
class Baseline:
    """What the user normally does (countries, IPs, apps of the 30 days before the window); built page by page."""

    countries: set[str] = field(default_factory=set)
    ips: set[str] = field(default_factory=set)
    apps: set[str] = field(default_factory=set)
    sign_ins: int = 0

    def add(self, sign_in: SignIn) -> None:
        self.sign_ins += 1
        if sign_in.success:  # a failed attempt from somewhere is not the user's habit
            self.countries.add(sign_in.country)
            self.ips.add(sign_in.ip)
            self.apps.add(sign_in.app)


@dataclass(frozen=True)
class Travel:
    earlier: SignIn
    later: SignIn
    km: float
    kmh: float

    def to_json(self) -> dict[str, Any]:
        return {
            "from": {
                "at": iso(self.earlier.at),
                "ip": self.earlier.ip,
                "country": self.earlier.country,
                "city": self.earlier.city,
            },
            "to": {
                "at": iso(self.later.at),
                "ip": self.later.ip,
                "country": self.later.country,
                "city": self.later.city,
            },
            "km": round(self.km),
            "kmh": round(self.kmh),
        }


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def distance_km(a: SignIn, b: SignIn) -> float:
    """Great-circle distance (haversine, mean Earth radius)."""
    assert a.latitude is not None and a.longitude is not None and b.latitude is not None and b.longitude is not None
    lat1, lon1, lat2, lon2 = map(math.radians, (a.latitude, a.longitude, b.latitude, b.longitude))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(min(1.0, h)))


def impossible_travel(sign_ins: Iterable[SignIn]) -> list[Travel]:
    """Consecutive successful, located sign-ins that no airliner could connect."""
    located = sorted((s for s in sign_ins if s.success and s.latitude is not None), key=lambda s: s.at)
    found: list[Travel] = []
    for earlier, later in zip(located, located[1:], strict=False):
        km = distance_km(earlier, later)
        if km < MIN_TRAVEL_KM:
            continue
        hours = max((later.at - earlier.at).total_seconds() / 3600, 1 / 60)  # a minute: same-time log rows
        if km / hours > MAX_SPEED_KMH:
            found.append(Travel(earlier, later, km, km / hours))
    return found


def legacy(sign_in: SignIn) -> bool:
    return sign_in.client.lower() not in MODERN_CLIENTS


def risky(sign_in: SignIn) -> bool:
    return sign_in.risk_level in RISKY_LEVELS or sign_in.risk_state in RISKY_STATES


def anonymised(sign_in: SignIn) -> bool:
    return bool(ANONYMISER_EVENTS & set(sign_in.risk_events))


def audit_kind(event: AuditEvent) -> tuple[str, Severity] | None:
    name = event.activity.lower()
    for words, kind, severity in AUDIT_KINDS:
        if words in name:
            return kind, severity
    return None


def sign_in_findings(window: list[SignIn], baseline: Baseline) -> list[Finding]:
    findings: list[Finding] = []
    first_seen: dict[tuple[str, str], SignIn] = {}
    for s in sorted(window, key=lambda s: s.at):
        if not s.success:
            continue
        for kind, value, known in (
            ("country", s.country, baseline.countries),
            ("ip", s.ip, baseline.ips),
            ("app", s.app, baseline.apps),
        ):
            if value != "unknown" and value not in known and (kind, value) not in first_seen:
                first_seen[(kind, value)] = s
    for (kind, value), s in first_seen.items():
        if kind == "country":
            place = f"{s.city}, {value}" if s.city else value
            findings.append(
                Finding(
                    "signin.new_country",
                    "high",
                    f"first successful sign-in from {place} ({s.ip}, {s.app})",
                    s.at,
                    {"ip": s.ip, "country": value},
                )
            )
        elif kind == "ip":
            findings.append(Finding("signin.new_ip", "low", f"new IP {value} ({s.country})", s.at, {"ip": value}))
        else:
            findings.append(Finding("signin.new_app", "low", f"first sign-in to {value}", s.at))
    for travel in impossible_travel(window):
        findings.append(
            Finding(
                "signin.impossible_travel",
                "high",
                f"impossible travel: {travel.earlier.country} → {travel.later.country}, {round(travel.km):,} km in "
                f"{_duration(travel.later.at - travel.earlier.at)} ({round(travel.kmh):,} km/h)",
                travel.later.at,
                {"ip": travel.later.ip},
            )
        )
    risky_ones = [s for s in window if risky(s)]
    if risky_ones:
        last = max(risky_ones, key=lambda s: s.at)
        findings.append(
            Finding(
                "signin.risky",
                "high" if any(s.risk_level == "high" for s in risky_ones) else "medium",
                f"{len(risky_ones)} sign-in(s) rated risky by Identity Protection "
                f"(latest {last.risk_level}, {last.ip})",
                last.at,
                {"ip": last.ip},
            )
        )
    anonymous = [s for s in window if anonymised(s)]
    if anonymous:
        last = max(anonymous, key=lambda s: s.at)
        findings.append(
            Finding(
                "signin.anonymiser",
                "high",
                f"{len(anonymous)} sign-in(s) from an anonymiser or "
                f"VPN ({', '.join(sorted(set(last.risk_events)))}; {last.ip})",
                last.at,
                {"ip": last.ip},
            )
        )
    legacy_ok = [s for s in window if legacy(s) and s.success]
    if legacy_ok:
        clients = Counter(s.client for s in legacy_ok)
        findings.append(
            Finding(
                "signin.legacy_client",
                "medium",
                "successful sign-ins with legacy protocols "
                "(no MFA possible): " + ", ".join(f"{c} {n}" for c, n in clients.most_common(4)),
                max(s.at for s in legacy_ok),
            )
        )
    failures = sum(1 for s in window if not s.success)
    if failures >= 10 and failures > len(window) // 2:
        findings.append(
            Finding(
                "signin.many_failures",
                "medium",
                f"{failures} failed sign-ins of {len(window)} (password spraying or guessing?)",
                max(s.at for s in window if not s.success),
            )
        )
    return findings


def audit_findings(events: list[AuditEvent]) -> list[Finding]:
    findings = []
    for event in events:
        kind = audit_kind(event)
        if kind is None:
            continue
        code, severity = kind
        what = event.detail or event.activity
        by = f" by {event.by}" if event.by else ""
        ip = f" from {event.by_ip}" if event.by_ip else ""
        target = f" ({event.target})" if code in ("consent", "role", "device") and event.target else ""
        findings.append(Finding(f"audit.{code}", severity, f"{event.activity}: {what}{target}{by}{ip}", event.at))
    return findings


def rule_findings(found: list[InboxRule], domains: list[str]) -> list[Finding]:
    findings = []
    for rule in found:
        verdict = rule_judge.assess(rule, domains)
        if verdict.disable and rule.enabled:
            findings.append(
                Finding(
                    "rule.suspicious",
                    "high",
                    f"inbox rule “{rule.name}”: " + "; ".join(verdict.disable),
                    None,
                    {"rule_id": rule.id, "rule": rule.name},
                )
            )
        elif verdict.review and rule.enabled:
            findings.append(
                Finding(
                    "rule.review",
                    "low",
                    f"inbox rule “{rule.name}”: " + "; ".join(verdict.review),
                    None,
                    {"rule_id": rule.id, "rule": rule.name},
                )
            )
    return findings


def grant_findings(grants: list[Grant], events: list[AuditEvent]) -> list[Finding]:
    """Grants named by a consent event in the window are new; all others are listed as low."""
    consented = {e.target.lower() for e in events if (audit_kind(e) or ("",))[0] == "consent"}
    findings = []
    for grant in grants:
        new = grant.app.lower() in consented or grant.client_id.lower() in consented
        wide = any(s in grant.scope for s in ("Mail.", "Files.", "offline_access", "MailboxSettings"))
        severity: Severity = "high" if new and wide else "medium" if new or wide else "info"
        findings.append(
            Finding(
                "consent.new" if new else "consent.existing",
                severity,
                f"{'new ' if new else ''}consent to {grant.app}: {grant.scope or '(no scope)'}",
                None,
                {"grant_id": grant.id, "app": grant.app},
            )
        )
    return findings


def device_findings(devices: list[Device], now: dt.datetime) -> list[Finding]:
    findings = []
    for d in devices:
        if d.compliance.lower() == "noncompliant":
            findings.append(Finding("device.noncompliant", "medium", f"device {d.name} is not compliant", d.last_sync))
        if d.windows and (d.last_quick_scan is None or now - d.last_quick_scan > dt.timedelta(days=7)):
            when = d.last_quick_scan.date().isoformat() if d.last_quick_scan else "never seen"
            findings.append(
                Finding(
                    "device.scan_due",
                    "low",
                    f"{d.name}: last Defender quick scan {when}",
                    d.last_sync,
                    {"device_id": d.id},
                )
            )
    return findings


def _duration(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60:02d} min"


def ordered(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then newest first (undated last)."""
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], -(f.at.timestamp() if f.at else 0)))


def verdict(findings: list[Finding]) -> str:
    """One line: how likely a compromise is, and the evidence in the order it happened, timed from the first
    foreign sign-in ("likely compromised: new country SE + suspicious inbox rule + MFA method added 3 h 00 min
    after the first foreign sign-in")."""
    high = [f for f in findings if f.severity == "high"]
    medium = [f for f in findings if f.severity == "medium"]
    if not high and not medium:
        return "nothing suspicious found in the window"
    label = "likely compromised" if len(high) >= 2 or (high and medium) else "suspicious"
    latest = dt.datetime.max.replace(tzinfo=dt.UTC)
    foreign = min((f for f in high if f.code == "signin.new_country"), key=lambda f: f.at or latest, default=None)
    # the story in order: the first foreign sign-in, the intruder's moves as they happened (undated rules last),
    # then the supporting signs while room is left
    story = sorted(high + medium, key=lambda f: (f is not foreign, f.code not in STORY, f.at or latest))
    evidence: list[str] = []
    named: set[str] = set()
    for f in story:
        name = _short(f)
        if name in named:
            continue
        named.add(name)
        if foreign is not None and f is not foreign and f.at and foreign.at and f.at > foreign.at:
            name += f" {_duration(f.at - foreign.at)} after the first foreign sign-in"
        evidence.append(name)
        if len(evidence) == 5:
            break
    return f"{label}: " + " + ".join(evidence)


def _short(f: Finding) -> str:
    names = {
        "signin.new_country": f"new country {f.ref.get('country', '')}".strip(),
        "rule.suspicious": "suspicious inbox rule",
        "audit.mfa_added": "MFA method added",
        "audit.consent": "new app consent",
        "consent.new": "new app consent",
        "signin.impossible_travel": "impossible travel",
        "signin.risky": "risky sign-ins",
        "signin.anonymiser": "anonymiser/VPN sign-in",
        "audit.role": "role change",
        "signin.legacy_client": "legacy protocol sign-ins",
        "audit.mfa_removed": "MFA method removed",
        "audit.password": "password changed",
        "audit.device": "device registered",
    }
    return names.get(f.code, f.message[:60])
