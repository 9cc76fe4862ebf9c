"""The whole SPF include/redirect tree of a domain, fetched breadth-first with every query of a level in parallel.

The lint needs what a receiver could meet in the worst case: every DNS-querying term of every record reachable
through include/redirect, the cost of each include (so the user sees which one to flatten), void lookups and loops.
A check should take about as long as its longest chain of dependent lookups, so each round asks the TXT of the
next level and the a/mx/exists probes of the previous level together.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from adapters.dns.resolver import CheckResolver, DnsAnswer, DnsFailure
from adapters.emailauth.spf_macros import tokenize
from adapters.emailauth.spf_parse import SpfRecord, SpfSyntaxError, Term, is_spf_record, parse_record

MAX_NODES = 60  # a hostile tree (10 includes of 10 includes ...) stops growing here
MAX_DEPTH = 12


@dataclass
class TermProbe:
    """What a receiver would get for one a/mx/exists term (without a client IP: both address families)."""

    term: Term
    target: str
    void: bool = False
    mx_hosts: int = 0
    failure: str | None = None


@dataclass
class SpfNode:
    domain: str
    via: Term | None = None  # the include/redirect term of the parent that leads here (None: the root)
    parent: SpfNode | None = field(default=None, repr=False)
    depth: int = 0
    state: str = "pending"  # ok | none | several | syntax | dns_error | loop | macro | truncated
    texts: list[str] = field(default_factory=list)  # the SPF records found (decoded)
    record: SpfRecord | None = None
    error: str | None = None
    error_position: int | None = None
    void: bool = False  # the TXT query itself was NXDOMAIN/NODATA
    exists: bool = True  # False: the name does not exist (NXDOMAIN)
    probes: list[TermProbe] = field(default_factory=list)
    children: list[SpfNode] = field(default_factory=list)

    @property
    def follows_redirect(self) -> bool:
        """A redirect is only used when the record has no `all` (RFC 7208 §6.1)."""
        return self.record is not None and self.record.redirect is not None and not any(
            t.name == "all" for t in self.record.mechanisms)

    @property
    def own_lookups(self) -> int:
        if self.record is None:
            return 0
        return sum(1 for t in self.record.terms if t.counts_lookup and (t.kind == "mechanism" or
                                                                        self.follows_redirect))

    @property
    def cost(self) -> int:
        """DNS-querying terms evaluated, in the worst case, for this record and everything it pulls in."""
        return self.own_lookups + sum(child.cost for child in self.children)

    @property
    def label(self) -> str:
        return self.via.text if self.via is not None else self.domain

    def ancestors(self) -> list[str]:
        names, node = [], self.parent
        while node is not None:
            names.append(node.domain.lower())
            node = node.parent
        return names

    def walk(self) -> list[SpfNode]:
        nodes, queue = [], [self]
        while queue:
            node = queue.pop(0)
            nodes.append(node)
            queue.extend(node.children)
        return nodes


@dataclass
class SpfTree:
    root: SpfNode
    legacy: list[str] = field(default_factory=list)  # SPF RR (type 99) records at the root
    legacy_failure: str | None = None
    has_mx: bool | None = None
    truncated: bool = False

    @property
    def nodes(self) -> list[SpfNode]:
        return self.root.walk()

    @property
    def dns_lookups(self) -> int:
        return self.root.cost

    @property
    def void_lookups(self) -> int:
        """Terms whose query found nothing (NXDOMAIN or no records): an include target or an a/mx/exists name."""
        return sum(int(n.void and n is not self.root) + sum(p.void for p in n.probes) for n in self.nodes)


def _has_macro(value: str | None) -> bool:
    try:
        return value is not None and any(kind == "macro" for kind, _ in tokenize(value))
    except ValueError:
        return True


async def _safe(resolver: CheckResolver, name: str, rdtype: str) -> DnsAnswer | DnsFailure:
    try:
        return await resolver.query(name, rdtype)
    except DnsFailure as exc:
        return exc


async def walk_spf(domain: str, resolver: CheckResolver) -> SpfTree:
    """Fetch and parse the tree; DNS failures are recorded on the nodes, never raised."""
    root = SpfNode(domain.rstrip(".").lower())
    tree = SpfTree(root)
    count = 1

    async def root_extras() -> None:
        legacy, mx = await asyncio.gather(_safe(resolver, root.domain, "SPF"), _safe(resolver, root.domain, "MX"))
        if isinstance(legacy, DnsFailure):
            tree.legacy_failure = str(legacy)
        else:
            tree.legacy = [t.decode("utf-8", "replace") for t in legacy.texts if is_spf_record(t)]
        tree.has_mx = None if isinstance(mx, DnsFailure) else bool(mx.rdatas)

    level: list[SpfNode] = [root]
    probes: list[SpfNode] = []
    extras = [root_extras()]
    while level or probes:
        await asyncio.gather(*[_fetch(resolver, node) for node in level], *[_probe(resolver, n) for n in probes],
                             *extras)
        extras = []
        probes = [node for node in level if node.state == "ok"]
        next_level: list[SpfNode] = []
        for node in probes:
            assert node.record is not None
            for term in node.record.terms:
                if not ((term.kind == "mechanism" and term.name == "include") or
                        (term.kind == "modifier" and term.name == "redirect" and node.follows_redirect)):
                    continue
                target = (term.value or "").rstrip(".").lower()
                child = SpfNode(target, term, node, node.depth + 1)
                node.children.append(child)
                if _has_macro(term.value):
                    child.state = "macro"
                elif target in (node.domain.lower(), *node.ancestors()):
                    child.state = "loop"
                elif count >= MAX_NODES or child.depth > MAX_DEPTH:
                    child.state = "truncated"
                    tree.truncated = True
                else:
                    count += 1
                    next_level.append(child)
        level = next_level
    return tree


async def _fetch(resolver: CheckResolver, node: SpfNode) -> None:
    answer = await _safe(resolver, node.domain, "TXT")
    if isinstance(answer, DnsFailure):
        node.state, node.error = "dns_error", str(answer)
        return
    node.exists = answer.status != "nxdomain"
    classify(node, answer.texts)


def classify(node: SpfNode, texts: list[bytes]) -> None:
    """Set the node's state from the TXT strings at its name (no DNS: also used to fuzz the lint)."""
    node.void = not texts
    node.texts = [t.decode("utf-8", "replace") for t in texts if is_spf_record(t)]
    if not node.texts:
        node.state = "none"
    elif len(node.texts) > 1:
        node.state = "several"
    else:
        try:
            node.record = parse_record(node.texts[0])
            node.state = "ok"
        except SpfSyntaxError as exc:
            node.state, node.error, node.error_position = "syntax", exc.reason, exc.position


async def _probe(resolver: CheckResolver, node: SpfNode) -> None:
    """Ask what the a/mx/exists terms would ask (void lookups, MX host counts); failures are noted, not raised."""
    assert node.record is not None
    jobs = []
    for term in node.record.mechanisms:
        if term.name not in ("a", "mx", "exists") or _has_macro(term.value):
            continue
        target = (term.value or node.domain).rstrip(".")
        probe = TermProbe(term, target)
        node.probes.append(probe)
        jobs.append(_run_probe(resolver, probe))
    await asyncio.gather(*jobs)


async def _run_probe(resolver: CheckResolver, probe: TermProbe) -> None:
    name = probe.term.name
    types = {"a": ("A", "AAAA"), "mx": ("MX",), "exists": ("A",)}[name]
    answers = await asyncio.gather(*[_safe(resolver, probe.target, t) for t in types])
    failures = [a for a in answers if isinstance(a, DnsFailure)]
    if failures:
        probe.failure = str(failures[0])
        return
    found = [a for a in answers if isinstance(a, DnsAnswer) and a.rdatas]
    probe.void = not found
    if name == "mx" and found:
        probe.mx_hosts = len([r for r in found[0].rdatas if r.to_text().split()[-1] != "."])
