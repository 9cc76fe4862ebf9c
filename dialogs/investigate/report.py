"""`investigate`: read everything about one user in parallel, judge it, and keep it as one report.

Each part (sign-ins, audits, rules, consents, devices) is read on its own: a part Graph refuses (licence,
permission) is listed in `not_read` with the reason, and the others still count. The window's sign-ins and
its baseline's (the 30 days before) are read as two streams at once: the baseline keeps only sets, the window keeps
its records (bounded by `MAX_WINDOW_SIGN_INS`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from adapters.config import TenantConfig
from adapters.graph.containment import Containment, InboxRule
from adapters.graph.errors import GraphProblem
from adapters.graph.gateway import GraphGateway
from adapters.graph.incident import AuditEvent, Device, Grant, IncidentReader, SignIn
from dialogs.investigate import analysis
from dialogs.investigate.analysis import Baseline, Finding, iso
from dialogs.lockdown import rules as rule_judge

DEFAULT_DAYS, MAX_DAYS = 7, 30
BASELINE_DAYS = 30
MAX_WINDOW_SIGN_INS = 50_000  # beyond this the window is summarised from what was read, and says so


@dataclass
class Report:
    user_id: str
    upn: str
    name: str
    tenant: TenantConfig
    start: dt.datetime
    end: dt.datetime
    window: list[SignIn] = field(default_factory=list)
    baseline: Baseline = field(default_factory=Baseline)
    audits: list[AuditEvent] = field(default_factory=list)
    rules: list[InboxRule] = field(default_factory=list)
    grants: list[Grant] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    not_read: list[dict[str, str]] = field(default_factory=list)
    truncated: bool = False

    @property
    def verdict(self) -> str:
        return analysis.verdict(self.findings)

    def suspicious_ips(self) -> list[str]:
        """The seeds for `hunt`: IPs of new countries, impossible travel, risky or anonymiser sign-ins first,
        then new IPs."""
        strong = [f.ref["ip"] for f in self.findings if "ip" in f.ref and f.code != "signin.new_ip"]
        weak = [f.ref["ip"] for f in self.findings if f.code == "signin.new_ip"]
        return list(dict.fromkeys(strong + weak))

    def to_json(self) -> dict[str, Any]:
        """The CLI contract (`investigate --json`); keys may be added, never renamed."""
        ok = [s for s in self.window if s.success]
        countries = Counter(s.country for s in self.window)
        ips = Counter(s.ip for s in self.window)
        ip_country = {s.ip: s.country for s in self.window}
        return {
            "user": self.upn,
            "id": self.user_id,
            "tenant": self.tenant.name,
            "window": {"from": iso(self.start), "to": iso(self.end)},
            "verdict": self.verdict,
            "sign_ins": {
                "total": len(self.window),
                "failures": len(self.window) - len(ok),
                "truncated": self.truncated,
                "baseline_total": self.baseline.sign_ins,
                "countries": [
                    {"country": c, "count": n, "new": c not in self.baseline.countries}
                    for c, n in countries.most_common()
                ],
                "ips": [
                    {"ip": i, "count": n, "country": ip_country[i], "new": i not in self.baseline.ips}
                    for i, n in ips.most_common(50)
                ],
                "apps": [
                    {"app": a, "count": n, "new": a not in self.baseline.apps}
                    for a, n in Counter(s.app for s in self.window).most_common(20)
                ],
                "legacy_clients": sorted({s.client for s in self.window if analysis.legacy(s)}),
                "risky": sum(1 for s in self.window if analysis.risky(s)),
                "impossible_travel": [t.to_json() for t in analysis.impossible_travel(self.window)],
            },
            "audits": [
                {
                    "at": iso(e.at),
                    "activity": e.activity,
                    "by": e.by or None,
                    "ip": e.by_ip or None,
                    "target": e.target or None,
                    "detail": e.detail or None,
                }
                for e in self.audits
            ],
            "inbox_rules": [self._rule(r) for r in self.rules],
            "consents": [
                {"id": g.id, "app": g.app, "client_id": g.client_id, "scope": g.scope, "consent_type": g.consent_type}
                for g in self.grants
            ],
            "devices": [
                {
                    "id": d.id,
                    "name": d.name,
                    "os": d.os,
                    "os_version": d.os_version,
                    "compliance": d.compliance,
                    "last_sync": iso(d.last_sync) if d.last_sync else None,
                    "last_quick_scan": iso(d.last_quick_scan) if d.last_quick_scan else None,
                    "last_full_scan": iso(d.last_full_scan) if d.last_full_scan else None,
                    "scan_action": d.scan_action,
                }
                for d in self.devices
            ],
            "findings": [f.to_json() for f in self.findings],
            "suspicious_ips": self.suspicious_ips(),
            "not_read": self.not_read,
        }

    def _rule(self, rule: InboxRule) -> dict[str, Any]:
        verdict = rule_judge.assess(rule, list(self.tenant.domains))
        return {
            "id": rule.id,
            "name": rule.name,
            "enabled": rule.enabled,
            "does": rule_judge.describe(rule),
            "suspicious": list(verdict.disable),
            "review": list(verdict.review),
        }

    def timeline(self) -> list[tuple[dt.datetime, str, str]]:
        """(when, severity, what) for every dated finding and audit event, newest first."""
        rows = [(f.at, f.severity, f.message) for f in self.findings if f.at is not None]
        noted = {m for _, _, m in rows}
        for e in self.audits:
            line = f"{e.activity}" + (f": {e.detail}" if e.detail else "") + (f" by {e.by}" if e.by else "")
            if analysis.audit_kind(e) is None and line not in noted:
                rows.append((e.at, "info", line))
        return sorted(rows, key=lambda r: r[0], reverse=True)


async def investigate(
    gateway: GraphGateway,
    tenant: TenantConfig,
    user_id: str,
    upn: str,
    name: str,
    now: dt.datetime,
    days: int = DEFAULT_DAYS,
) -> Report:
    """Read and judge; never raises GraphProblem (each refusal lands in `not_read`)."""
    reader = IncidentReader(gateway, tenant)
    start = now - dt.timedelta(days=days)
    report = Report(user_id=user_id, upn=upn, name=name, tenant=tenant, start=start, end=now)

    async def part(label: str, work: Any) -> None:
        try:
            await work
        except GraphProblem as problem:
            report.not_read.append({"part": label, "reason": problem.user_message, "kind": problem.kind})

    async def window() -> None:
        async for page in reader.user_sign_ins(user_id, start):
            for s in page:
                if len(report.window) < MAX_WINDOW_SIGN_INS:
                    report.window.append(s)
                else:
                    report.truncated = True

    async def baseline() -> None:
        async for page in reader.user_sign_ins(user_id, start - dt.timedelta(days=BASELINE_DAYS), start):
            for s in page:
                report.baseline.add(s)

    async def sign_ins() -> None:
        """The window and its baseline as two streams at once: the longer one sets the time, not their sum."""
        await asyncio.gather(window(), baseline())

    async def audits() -> None:
        report.audits = await reader.audits(user_id, start)

    async def rules() -> None:
        report.rules = await Containment(gateway, tenant).inbox_rules(user_id)

    async def grants() -> None:
        report.grants = await reader.grants(user_id)

    async def devices() -> None:
        report.devices = await reader.devices(user_id)

    await asyncio.gather(
        part("sign-ins", sign_ins()),
        part("directory audits", audits()),
        part("inbox rules", rules()),
        part("OAuth consents", grants()),
        part("managed devices", devices()),
    )
    report.window.sort(key=lambda s: s.at)
    findings = analysis.sign_in_findings(report.window, report.baseline)
    findings += analysis.audit_findings(report.audits)
    findings += analysis.rule_findings(report.rules, list(tenant.domains))
    findings += analysis.grant_findings(report.grants, report.audits)
    findings += analysis.device_findings(report.devices, now)
    if report.baseline.sign_ins == 0 and report.window and not any(p["part"] == "sign-ins" for p in report.not_read):
        findings.append(
            Finding(
                "signin.no_baseline",
                "info",
                f"no sign-ins in the {BASELINE_DAYS} days before the window: every country, IP and app counts as new",
            )
        )
    report.findings = analysis.ordered(findings)
    return report


def refused_everything(report: Report) -> bool:
    """Graph refused every part (CLI exit 3)."""
    return len(report.not_read) >= 5 and all(
        p["kind"] in ("licence", "permission", "credentials") for p in report.not_read
    )
