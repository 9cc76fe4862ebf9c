"""What a receiver gets for one a/mx/exists term of an SPF tree, asked without a client IP (both families).

A receiver evaluating `mx` looks up the addresses of the term's hosts, and returns temperror when one of those
lookups fails before a host matches (RFC 7208 §5; README, "RFC 7208 choices"), so the lint asks them too: they
start as each MX answer arrives and are awaited once the walk is done, adding no round trip. A hostile tree may
name ten MX sets of ten hosts; `MAX_MX_HOST_NAMES` bounds what one tree asks, and the lint says what it skipped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from dns.rdtypes.mxbase import MXBase

from adapters.dns.resolver import CheckResolver, DnsAnswer, DnsFailure
from adapters.emailauth.spf_parse import Term

MAX_MX_LOOKUPS = 10  # RFC 7208 §4.6.4: address lookups per mx term
MAX_MX_HOST_NAMES = 30  # distinct MX hosts whose addresses are looked up for one tree (2 queries each)


@dataclass
class TermProbe:
    """What a receiver would get for one a/mx/exists term (without a client IP: both address families)."""

    term: Term
    target: str
    state: str = "pending"  # pending | done | skipped (beyond where an evaluator stops)
    void: bool = False
    mx_hosts: int = 0
    failure: str | None = None  # the term's own question (A/AAAA, MX, A) could not be answered
    hosts: list[str] = field(default_factory=list)  # mx: the exchanges, in preference order
    host_failures: dict[str, list[DnsFailure]] = field(default_factory=dict)  # mx: host → its failed lookups
    hosts_unchecked: int = 0  # mx: hosts whose addresses were not looked up (MAX_MX_HOST_NAMES reached)
    invalid: bool = False  # the name cannot exist (an empty or over-long label): never asked, never matches


async def safe_query(resolver: CheckResolver, name: str, rdtype: str) -> DnsAnswer | DnsFailure:
    try:
        return await resolver.query(name, rdtype)
    except DnsFailure as exc:
        return exc


class HostLookups:
    """The address lookups of MX hosts, started as each MX answer arrives and awaited once the walk is done."""

    def __init__(self, resolver: CheckResolver) -> None:
        self.resolver = resolver
        self.names: set[str] = set()
        self.tasks: list[asyncio.Future[None]] = []

    def start(self, probe: TermProbe) -> None:
        wanted = []
        for host in probe.hosts:
            if host in self.names or len(self.names) < MAX_MX_HOST_NAMES:
                self.names.add(host)
                wanted.append(host)
        probe.hosts_unchecked = len(probe.hosts) - len(wanted)
        if wanted:
            self.tasks.append(asyncio.ensure_future(self._lookup(probe, wanted)))

    async def _lookup(self, probe: TermProbe, hosts: list[str]) -> None:
        answers = await asyncio.gather(*[safe_query(self.resolver, h, t) for h in hosts for t in ("A", "AAAA")])
        for host, answer in zip([h for h in hosts for _ in range(2)], answers, strict=True):
            if isinstance(answer, DnsFailure):
                probe.host_failures.setdefault(host, []).append(answer)

    async def wait(self) -> None:
        while self.tasks:
            tasks, self.tasks = self.tasks, []
            await asyncio.gather(*tasks)

    def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()


async def run_probe(resolver: CheckResolver, probe: TermProbe, hosts: HostLookups) -> None:
    name = probe.term.name
    types = {"a": ("A", "AAAA"), "mx": ("MX",), "exists": ("A",)}[name]
    answers = await asyncio.gather(*[safe_query(resolver, probe.target, t) for t in types])
    probe.state = "done"
    failures = [a for a in answers if isinstance(a, DnsFailure)]
    if failures:
        probe.failure = str(failures[0])
        return
    found = [a for a in answers if isinstance(a, DnsAnswer) and a.rdatas]
    probe.void = not found
    if name == "mx" and found:
        exchanges = sorted(
            (int(r.preference), r.exchange.to_text().rstrip(".").lower())
            for r in found[0].rdatas
            if isinstance(r, MXBase)
        )
        probe.hosts = list(dict.fromkeys(h for _, h in exchanges if h and h != "."))
        probe.mx_hosts = len([h for _, h in exchanges if h and h != "."])
        if probe.mx_hosts <= MAX_MX_LOOKUPS:  # over 10 is a permerror (§4.6.4): no host is looked up
            hosts.start(probe)
