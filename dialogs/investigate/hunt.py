"""`hunt`: from a compromised user (or IPs), find the other accounts of the tenant the same intruder reached.

Graph is asked for what the hunt needs, never for the whole tenant log: the sign-ins of the window from the seed IPs
(`ipAddress eq` with a server-side `$filter`, `IPS_PER_REQUEST` IPs per stream joined with `or`) and the sign-ins
Identity Protection rated medium or high risk (`riskLevelDuringSignIn`, Entra ID P2). Each stream is paged and
bounded (`MAX_PAGES`); when the sign-ins from some IPs overflow it (a password spray), their successful sign-ins are
asked for on their own, so failures cannot crowd out the evidence. At most `MAX_SEEDS` IPs are hunted. Every bound
that cut the hunt short is said in `cut_short`. Memory holds the accounts with evidence (at most `MAX_ACCOUNTS`) and
the ids of the accounts seen in the rows read. Then the inbox rules of the strongest few candidates are read for
forwarding outside the tenant (at most `MAX_RULE_READS` requests).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from adapters.config import TenantConfig
from adapters.graph import incident as graph_reads
from adapters.graph.containment import Containment
from adapters.graph.errors import GraphProblem
from adapters.graph.gateway import GraphGateway
from adapters.graph.incident import IncidentReader, SignIn
from dialogs.investigate import analysis
from dialogs.investigate.analysis import iso
from dialogs.lockdown import rules as rule_judge

MAX_ACCOUNTS = 200  # accounts with evidence kept (the strongest); the card shows fewer
MAX_RULE_READS = 8
MAX_SEEDS = 20  # seed IPs hunted (the strongest first); more are named in `cut_short`
IPS_PER_REQUEST = 5  # `(ipAddress eq 'a' or ipAddress eq 'b' ...)`: the adapter's signIns filters join ids the same way
MAX_PAGES = 10  # pages read per stream (9,990 sign-ins); a fuller stream is cut short and said so
STREAMS_AT_ONCE = 4
SCORES = {"seed_ip": 5, "seed_ip_failed": 1, "risky_high": 3, "risky": 2, "forwarding": 4}


class BadSeed(ValueError):
    """The text is neither a user nor an IP address (message safe to show)."""


def parse_ip(text: str) -> str | None:
    """A canonical IP address, or None when `text` is not one."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def valid_seeds(ips: list[str]) -> list[str]:
    """The seeds that are IP addresses, in order, once each (Graph's own spelling kept: `eq` matches it exactly)."""
    return list(dict.fromkeys(ip for ip in ips if isinstance(ip, str) and parse_ip(ip) is not None))


def _ip_label(ips: list[str]) -> str:
    return "sign-ins from " + ", ".join(ips[:2]) + (f" (+{len(ips) - 2})" if len(ips) > 2 else "")


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
        return {
            "user": self.upn or self.user_id,
            "id": self.user_id,
            "ips": sorted(self.ips),
            "last_seen": iso(self.last_seen) if self.last_seen else None,
            "score": self.score,
            "reasons": sorted(self.reasons, key=lambda r: -self.reasons[r]),
        }


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
    cut_short: list[dict[str, str]] = field(default_factory=list)  # {"part", "reason"}: a bound stopped the hunt
    pages_read: int = 0

    def ranked(self) -> list[Account]:
        return sorted(self.accounts.values(), key=lambda a: (-a.score, a.upn))

    def to_json(self) -> dict[str, Any]:
        """The CLI contract (`hunt --json`); keys may be added, never renamed."""
        return {
            "tenant": self.tenant.name,
            "window": {"from": iso(self.start), "to": iso(self.end)},
            "seeds": {"user": self.seed_user, "ips": self.seed_ips},
            "accounts": [a.to_json() for a in self.ranked()],
            "checked": len(self.checked),
            "sign_ins_read": self.sign_ins_read,
            "pages_read": self.pages_read,
            "not_read": self.not_read,
            "cut_short": self.cut_short,
        }

    def cut(self, part: str, reason: str) -> None:
        if not any(c["part"] == part for c in self.cut_short):
            self.cut_short.append({"part": part, "reason": reason})

    def consider(self, s: SignIn) -> None:
        """Judge one tenant sign-in (called for every row Graph sent)."""
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
                self.cut("accounts", f"more than {MAX_ACCOUNTS} accounts showed evidence: the strongest were kept")
                weakest = min(self.accounts.values(), key=lambda a: a.score)
                if weakest.score >= max(score for _, score in reasons):
                    return
                del self.accounts[weakest.user_id or weakest.upn]
            account = self.accounts[key] = Account(user_id=s.user_id, upn=s.upn)
        if s.ip in self.seed_ips:
            account.ips.add(s.ip)
        for reason, score in reasons:
            account.note(reason, score, s)


async def hunt(
    gateway: GraphGateway,
    tenant: TenantConfig,
    seed_ips: list[str],
    now: dt.datetime,
    days: int,
    *,
    seed_user: str | None = None,
    seed_user_id: str | None = None,
) -> Hunt:
    """Ask Graph for the window's sign-ins from the seeds and the risky ones; GraphProblem only when every
    sign-in read was refused (the sign-in log itself cannot be read)."""
    seeds = valid_seeds(seed_ips)
    result = Hunt(
        tenant=tenant,
        start=now - dt.timedelta(days=days),
        end=now,
        seed_ips=seeds[:MAX_SEEDS],
        seed_user=seed_user,
        seed_user_id=seed_user_id,
    )
    if len(seeds) > MAX_SEEDS:
        result.cut(
            "seed IPs",
            f"{len(seeds)} suspicious IPs: the first {MAX_SEEDS} (strongest evidence first) were "
            f"hunted; not hunted: {', '.join(seeds[MAX_SEEDS : MAX_SEEDS + 5])}"
            + (" …" if len(seeds) > MAX_SEEDS + 5 else ""),
        )
    reader = IncidentReader(gateway, tenant)
    gate = asyncio.Semaphore(STREAMS_AT_ONCE)
    chunks = [result.seed_ips[i : i + IPS_PER_REQUEST] for i in range(0, len(result.seed_ips), IPS_PER_REQUEST)]
    jobs = [_from_ips(reader, result, chunk, gate) for chunk in chunks]
    if await _risk_licensed(gateway, tenant, result):
        jobs.append(_read(result, "risky sign-ins", reader.risky_sign_ins(result.start), gate))
    problems = [p for p in await asyncio.gather(*jobs) if p is not None]
    if jobs and len(problems) == len(jobs):
        raise problems[0]
    await _forwarding(gateway, tenant, result)
    return result


async def _risk_licensed(gateway: GraphGateway, tenant: TenantConfig, result: Hunt) -> bool:
    """Risk levels in the sign-in log need Entra ID P2 (without it they read `hidden`, and a filter finds none)."""
    try:
        licence = await gateway.licence(tenant)
    except GraphProblem:
        return True  # the licence could not be read: ask anyway, Graph will say
    if licence == "P2":
        return True
    result.not_read.append(
        {
            "part": "risky sign-ins",
            "kind": "licence",
            "reason": f"Sign-in risk levels need Microsoft Entra ID P2 ({tenant.name} has "
            f"{'Entra ID P1' if licence == 'P1' else 'no Entra ID premium licence'}).",
        }
    )
    return False


async def _from_ips(
    reader: IncidentReader, result: Hunt, ips: list[str], gate: asyncio.Semaphore
) -> GraphProblem | None:
    """Every sign-in from `ips`; if a bound cut that short, their successful sign-ins on their own."""
    label = _ip_label(ips)
    problem = await _read(result, label, reader.sign_ins_from(ips, result.start), gate)
    if problem is None and any(c["part"] == label for c in result.cut_short):
        problem = await _read(
            result, f"successful {label}", reader.sign_ins_from(ips, result.start, successes_only=True), gate
        )
    return problem


async def _read(
    result: Hunt, part: str, stream: AsyncGenerator[list[SignIn], None], gate: asyncio.Semaphore
) -> GraphProblem | None:
    """Judge one filtered stream, at most MAX_PAGES pages; a refusal is noted (and returned) instead of raised."""
    pages = 0
    async with gate, aclosing(stream) as pages_of:
        try:
            async for page in pages_of:
                if pages >= MAX_PAGES:
                    rows = MAX_PAGES * graph_reads.PAGE
                    result.cut(part, f"more than {MAX_PAGES} pages ({rows:,} sign-ins): the rest were not read")
                    return None
                pages += 1
                result.pages_read += 1
                for s in page:
                    result.consider(s)
        except GraphProblem as problem:
            result.not_read.append({"part": part, "reason": problem.user_message, "kind": problem.kind})
            return problem
    return None


async def _forwarding(gateway: GraphGateway, tenant: TenantConfig, result: Hunt) -> None:
    """Forwarding rules outside the tenant on the strongest candidates (bounded number of reads)."""
    containment = Containment(gateway, tenant)
    ranked = [a for a in result.ranked() if a.user_id]
    candidates = ranked[:MAX_RULE_READS]
    if len(ranked) > MAX_RULE_READS:
        result.cut(
            "inbox rules", f"read for the {MAX_RULE_READS} strongest of {len(ranked)} accounts with evidence only"
        )
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
