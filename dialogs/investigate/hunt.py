"""`hunt`: from a compromised user (or IPs), find the other accounts of the tenant the same intruder reached.

One streamed pass over the tenant's sign-ins in the window (a `$select` of the few fields needed, 999 per page,
the next page fetched while this one is read): every account that signed in successfully from a seed IP, and
every account with a risky sign-in, is kept with its evidence; all others only count as "checked". Memory holds
the accounts with evidence and the set of account ids seen, never the log. Then the inbox rules of the strongest
few candidates are read for forwarding outside the tenant (at most `MAX_RULE_READS` requests).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from adapters.config import TenantConfig
from adapters.graph.containment import Containment
from adapters.graph.errors import GraphProblem
from adapters.graph.gateway import GraphGateway
from adapters.graph.incident import IncidentReader, SignIn
from dialogs.investigate import analysis
from dialogs.investigate.analysis import iso
from dialogs.lockdown import rules as rule_judge

MAX_ACCOUNTS = 200  # accounts with evidence kept (the strongest); the card shows fewer
MAX_RULE_READS = 8
MAX_SEEDS = 50
SCORES = {"seed_ip": 5, "seed_ip_failed": 1, "risky_high": 3, "risky": 2, "forwarding": 4}


class BadSeed(ValueError):
    """The text is neither a user nor an IP address (message safe to show)."""


def parse_ip(text: str) -> str | None:
    """A canonical IP address, or None when `text` is not one."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


@dataclass
class Account:
    user_id: str
    upn: str
    ips: set[str] = field(default_factory=set)
    last_seen: dt.datetime | None = None
    reasons: dict[str, int] = field(default_factory=dict)  # reason text -> score

    @property
    def score(self) -> int:
        return sum(self.reasons.values())

    def note(self, reason: str, score: int, sign_in: SignIn | None = None) -> None:
        self.reasons[reason] = score
        if sign_in is not None and (self.last_seen is None or sign_in.at > self.last_seen):
            self.last_seen = sign_in.at

    def to_json(self) -> dict[str, Any]:
        return {"user": self.upn or self.user_id, "id": self.user_id, "ips": sorted(self.ips),
                "last_seen": iso(self.last_seen) if self.last_seen else None, "score": self.score,
                "reasons": sorted(self.reasons, key=lambda r: -self.reasons[r])}


@dataclass
class Hunt:
    tenant: TenantConfig
    start: dt.datetime
    end: dt.datetime
    seed_ips: list[str]
    seed_user: str | None = None
    seed_user_id: str | None = None
    accounts: dict[str, Account] = field(default_factory=dict)
    checked: set[str] = field(default_factory=set)
    sign_ins_read: int = 0
    not_read: list[dict[str, str]] = field(default_factory=list)

    def ranked(self) -> list[Account]:
        return sorted(self.accounts.values(), key=lambda a: (-a.score, a.upn))

    def to_json(self) -> dict[str, Any]:
        """The CLI contract (`hunt --json`); keys may be added, never renamed."""
        return {"tenant": self.tenant.name, "window": {"from": iso(self.start), "to": iso(self.end)},
                "seeds": {"user": self.seed_user, "ips": self.seed_ips},
                "accounts": [a.to_json() for a in self.ranked()], "checked": len(self.checked),
                "sign_ins_read": self.sign_ins_read, "not_read": self.not_read}

    def consider(self, s: SignIn) -> None:
        """Judge one tenant sign-in (called for every row of the stream)."""
        self.sign_ins_read += 1
        key = s.user_id or s.upn
        if not key:
            return
        self.checked.add(key)
        if self.seed_user_id and key.lower() == self.seed_user_id.lower():
            return
        reasons: list[tuple[str, int]] = []
        if s.ip in self.seed_ips:
            if s.success:
                reasons.append((f"signed in from {s.ip}", SCORES["seed_ip"]))
            else:
                reasons.append((f"failed sign-in from {s.ip}", SCORES["seed_ip_failed"]))
        if analysis.risky(s):
            level = "risky_high" if s.risk_level == "high" else "risky"
            reasons.append((f"{s.risk_level}-risk sign-in ({s.risk_state})", SCORES[level]))
        if not reasons:
            return
        account = self.accounts.get(key)
        if account is None:
            if len(self.accounts) >= MAX_ACCOUNTS:
                weakest = min(self.accounts.values(), key=lambda a: a.score)
                if weakest.score >= max(score for _, score in reasons):
                    return
                del self.accounts[weakest.user_id or weakest.upn]
            account = self.accounts[key] = Account(user_id=s.user_id, upn=s.upn)
        if s.ip in self.seed_ips:
            account.ips.add(s.ip)
        for reason, score in reasons:
            account.note(reason, score, s)


async def hunt(gateway: GraphGateway, tenant: TenantConfig, seed_ips: list[str], now: dt.datetime, days: int,
               *, seed_user: str | None = None, seed_user_id: str | None = None) -> Hunt:
    """Stream the window's sign-ins; GraphProblem only when the sign-in log itself cannot be read."""
    result = Hunt(tenant=tenant, start=now - dt.timedelta(days=days), end=now, seed_ips=seed_ips[:MAX_SEEDS],
                  seed_user=seed_user, seed_user_id=seed_user_id)
    async for page in IncidentReader(gateway, tenant).tenant_sign_ins(result.start):
        for s in page:
            result.consider(s)
    await _forwarding(gateway, tenant, result)
    return result


async def _forwarding(gateway: GraphGateway, tenant: TenantConfig, result: Hunt) -> None:
    """Forwarding rules outside the tenant on the strongest candidates (bounded number of reads)."""
    containment = Containment(gateway, tenant)
    candidates = [a for a in result.ranked() if a.user_id][:MAX_RULE_READS]
    domains = list(tenant.domains)

    async def check(account: Account) -> None:
        try:
            found = await containment.inbox_rules(account.user_id)
        except GraphProblem as problem:
            if not any(p["part"] == "inbox rules" for p in result.not_read):
                result.not_read.append({"part": "inbox rules", "reason": problem.user_message, "kind": problem.kind})
            return
        for rule in found:
            verdict = rule_judge.assess(rule, domains)
            if rule.enabled and any("outside" in reason or "forward" in reason for reason in verdict.disable):
                account.note(f"inbox rule “{rule.name}” forwards outside the tenant", SCORES["forwarding"])

    await asyncio.gather(*(check(a) for a in candidates))
