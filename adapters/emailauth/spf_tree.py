"""The SPF include/redirect tree of a domain, fetched in rounds, each round's queries in parallel, and only as far
as RFC 7208 lets an evaluator go.

The lint judges what a receiver meets in the worst case (no term matches): `check_host` evaluates the terms in
order, depth first through includes, and stops with permerror at the 11th DNS-querying term or the 3rd void
lookup (§4.6.4); terms after `all` are never evaluated (§5.1). Probing further would only let a hostile record
make Cordon ask without end (issue 9: 59 includes of hundreds of terms each were tens of thousands of queries),
so each round asks only what can still lie within those limits: the position of every term in evaluation order
is known from below (an include not yet fetched costs at least 1), and positions only grow as records arrive.
A check still takes about as long as its longest chain of dependent lookups, because every question that may be
needed is asked in the same round.

The address lookups of an `mx` term's hosts are asked too (both families: the client is not known), outside the
rounds so they add no round trip: a receiver needs them, and when one fails it returns temperror (README, "What
is checked"), bounded per tree (`spf_probe.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

from adapters.dns.resolver import CheckResolver, DnsFailure
from adapters.emailauth.spf_eval import valid_domain
from adapters.emailauth.spf_macros import tokenize
from adapters.emailauth.spf_parse import SpfRecord, SpfSyntaxError, Term, is_spf_record, parse_record
from adapters.emailauth.spf_probe import HostLookups, TermProbe, run_probe
from adapters.emailauth.spf_probe import safe_query as _safe

MAX_LOOKUPS = 10  # RFC 7208 §4.6.4: DNS-querying terms per evaluation
MAX_VOIDS = 2  # RFC 7208 §4.6.4: void lookups per evaluation
MAX_NODES = 60  # a safety net: records fetched for one tree
MAX_DEPTH = 12


@dataclass
class Step:
    """One DNS-querying term of a record, in evaluation order: an include/redirect (`child`), an a/mx/exists
    with a literal name (`probe`), or neither (ptr, a macro target: counted, not asked)."""

    term: Term
    child: SpfNode | None = None
    probe: TermProbe | None = None
    evaluated: bool = False  # within the part of the tree an evaluator reaches

    @property
    def pending(self) -> bool:
        return (self.child is not None and self.child.state == "pending") or (
            self.probe is not None and self.probe.state == "pending"
        )

    @property
    def void(self) -> bool:
        if self.probe is not None:
            return self.probe.state == "done" and self.probe.void
        return self.child is not None and self.child.state in ("ok", "none", "several", "syntax") and self.child.void


@dataclass
class SpfNode:
    domain: str
    via: Term | None = None  # the include/redirect term of the parent that leads here (None: the root)
    parent: SpfNode | None = field(default=None, repr=False)
    depth: int = 0
    state: str = "pending"  # pending | fetched | ok | none | several | syntax | dns_error | loop | macro | truncated
    #                         | skipped (beyond where an evaluator stops: not fetched, or fetched and not read)
    raw: list[bytes] = field(default_factory=list, repr=False)  # the TXT strings, while "fetched"
    texts: list[str] = field(default_factory=list)  # the SPF records found (decoded)
    record: SpfRecord | None = None
    error: str | None = None
    error_position: int | None = None
    void: bool = False  # the TXT query itself was NXDOMAIN/NODATA
    exists: bool = True  # False: the name does not exist (NXDOMAIN)
    steps: list[Step] = field(default_factory=list)  # DNS-querying terms an evaluator would meet, in order
    ignored: list[Term] = field(default_factory=list)  # mechanisms after `all`: never evaluated (§5.1)
    children: list[SpfNode] = field(default_factory=list)

    @property
    def follows_redirect(self) -> bool:
        """A redirect is only used when the record has no `all` (RFC 7208 §6.1)."""
        return (
            self.record is not None
            and self.record.redirect is not None
            and not any(t.name == "all" for t in self.record.mechanisms)
        )

    @property
    def mechanisms(self) -> list[Term]:
        """The mechanisms an evaluator may reach: up to and including the first `all`."""
        return [] if self.record is None else self.record.mechanisms[: len(self.record.mechanisms) - len(self.ignored)]

    @property
    def probes(self) -> list[TermProbe]:
        return [s.probe for s in self.steps if s.probe is not None and s.evaluated]

    @property
    def own_lookups(self) -> int:
        return len(self.steps)

    @property
    def cost(self) -> int:
        """DNS-querying terms evaluated, in the worst case, for this record and everything it pulls in (of what
        was fetched: a lower bound when the walk stopped at the limit)."""
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


@dataclass
class Stop:
    """Where an evaluator stops with permerror: after `lookups` DNS-querying terms, at `term` of `node`."""

    reason: str  # "lookups" (the 11th term) | "voids" (the 3rd void lookup)
    lookups: int
    term: Term
    node: SpfNode


@dataclass
class SpfTree:
    root: SpfNode
    legacy: list[str] = field(default_factory=list)  # SPF RR (type 99) records at the root
    legacy_failure: str | None = None
    has_mx: bool | None = None
    truncated: bool = False
    stop: Stop | None = None
    fetched: int = 1

    @property
    def nodes(self) -> list[SpfNode]:
        """The root and every record an evaluator reaches (breadth first)."""
        nodes, queue = [], [self.root]
        while queue:
            node = queue.pop(0)
            nodes.append(node)
            queue.extend(s.child for s in node.steps if s.child is not None and s.evaluated)
        return nodes

    @property
    def dns_lookups(self) -> int:
        return self.root.cost

    @property
    def void_lookups(self) -> int:
        """Void lookups an evaluator meets (up to the one that stops it): a term whose name has no records."""
        return sum(1 for _, step in in_order(self.root) if step.evaluated and step.void)

    def settle(self) -> None:
        """Mark what an evaluator reaches and where it stops; what was never asked is "skipped"."""
        self.stop, reached, _ = scan(self.root)
        steps = [step for _, step in in_order(self.root)]
        for step in steps:
            step.evaluated = False
        for step in reached:
            step.evaluated = True
        for step in steps:
            if step.child is not None and step.child.state == "truncated":
                self.truncated = True
            if step.child is not None and step.child.state == "fetched":
                step.child.state, step.child.raw = "skipped", []
            if step.pending:
                if step.child is not None:
                    step.child.state = "skipped"
                if step.probe is not None:
                    step.probe.state = "skipped"


def in_order(node: SpfNode) -> Iterator[tuple[SpfNode, Step]]:
    """Every step of the fetched tree in evaluation order: a term, then (for an include) its record's terms."""
    for step in node.steps:
        yield node, step
        if step.child is not None and step.child.state == "ok":
            yield from in_order(step.child)


def scan(root: SpfNode) -> tuple[Stop | None, list[Step], list[Step]]:
    """(where an evaluator stops, the steps it reaches, those of them not asked yet). Unfetched includes count
    as 1 and unprobed terms as not void, so a step past the stop here is past it whatever is learnt later."""
    lookups = voids = 0
    reached: list[Step] = []
    pending: list[Step] = []
    for node, step in in_order(root):
        lookups += 1
        if lookups > MAX_LOOKUPS:
            return Stop("lookups", lookups - 1, step.term, node), reached, pending
        reached.append(step)
        if step.pending:
            pending.append(step)
        elif step.void:
            voids += 1
            if voids > MAX_VOIDS:
                return Stop("voids", lookups, step.term, node), reached, pending
    return None, reached, pending


def _has_macro(value: str | None) -> bool:
    if value is None or "%" not in value:  # every macro starts with "%": most terms need no tokenizing
        return False
    try:
        return value is not None and any(kind == "macro" for kind, _ in tokenize(value))
    except ValueError:
        return True


async def walk_spf(domain: str, resolver: CheckResolver) -> SpfTree:
    """Fetch and parse the tree as far as an evaluator goes; DNS failures are recorded on the nodes, never raised."""
    root = SpfNode(domain.rstrip(".").lower())
    tree = SpfTree(root)

    async def root_extras() -> None:
        legacy, mx = await asyncio.gather(_safe(resolver, root.domain, "SPF"), _safe(resolver, root.domain, "MX"))
        if isinstance(legacy, DnsFailure):
            tree.legacy_failure = str(legacy)
        else:
            tree.legacy = [t.decode("utf-8", "replace") for t in legacy.texts if is_spf_record(t)]
        tree.has_mx = None if isinstance(mx, DnsFailure) else bool(mx.rdatas)

    hosts = HostLookups(resolver)
    try:
        await asyncio.gather(_fetch(resolver, root), root_extras())
        _read(root)
        while True:
            _, _, pending = scan(root)
            jobs = []
            for step in pending:
                if step.child is not None:
                    if tree.fetched >= MAX_NODES:
                        step.child.state, tree.truncated = "truncated", True
                        continue
                    tree.fetched += 1
                    jobs.append(_fetch(resolver, step.child))
                elif step.probe is not None:
                    jobs.append(run_probe(resolver, step.probe, hosts))
            if not jobs:
                break
            await asyncio.gather(*jobs)
            await _read_reached(root)
        await hosts.wait()
    finally:
        hosts.cancel()
    tree.settle()
    return tree


async def _fetch(resolver: CheckResolver, node: SpfNode) -> None:
    """The TXT of node's name, kept unread: parsing a record of hundreds of terms costs CPU, so records are read
    in evaluation order and only while an evaluator would still reach them (`_read_reached`)."""
    answer = await _safe(resolver, node.domain, "TXT")
    if isinstance(answer, DnsFailure):
        node.state, node.error = "dns_error", str(answer)
        return
    node.exists = answer.status != "nxdomain"
    node.state, node.raw = "fetched", answer.texts


def _read(node: SpfNode) -> None:
    if node.state == "fetched":
        raw, node.raw = node.raw, []
        classify(node, raw)


async def _read_reached(root: SpfNode) -> None:
    """Read the fetched records an evaluator reaches, first one first (each may move the stop point), letting
    other work run in between."""
    while True:
        _, reached, _ = scan(root)
        ready = next((s.child for s in reached if s.child is not None and s.child.state == "fetched"), None)
        if ready is None:
            return
        _read(ready)
        await asyncio.sleep(0)


def classify(node: SpfNode, texts: list[bytes]) -> None:
    """Set the node's state from the TXT strings at its name, and its steps (no DNS: also used to fuzz the lint)."""
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
    if node.record is not None:
        _plan(node, node.record)


def _plan(node: SpfNode, record: SpfRecord) -> None:
    """The steps an evaluator takes through this record: its DNS-querying mechanisms up to `all`, then the
    redirect when there is no `all`."""
    mechanisms = record.mechanisms
    first_all = next((i for i, t in enumerate(mechanisms) if t.name == "all"), None)
    if first_all is not None:
        node.ignored = mechanisms[first_all + 1 :]
        mechanisms = mechanisms[: first_all + 1]
    terms = [t for t in mechanisms if t.counts_lookup]
    if node.follows_redirect and record.redirect is not None:
        terms.append(record.redirect)
    for term in terms:
        if term.name in ("include", "redirect"):
            node.steps.append(Step(term, child=_child(node, term)))
        elif term.name in ("a", "mx", "exists") and not _has_macro(term.value):
            probe = TermProbe(term, (term.value or node.domain).rstrip("."))
            if not valid_domain(probe.target):  # a name that cannot exist: nothing is asked, it never matches
                probe.state, probe.invalid = "done", True
            node.steps.append(Step(term, probe=probe))
        else:
            node.steps.append(Step(term))


def _child(node: SpfNode, term: Term) -> SpfNode:
    target = (term.value or "").rstrip(".").lower()
    child = SpfNode(target, term, node, node.depth + 1)
    node.children.append(child)
    if _has_macro(term.value):
        child.state = "macro"
    elif target in (node.domain.lower(), *node.ancestors()):
        child.state = "loop"
    elif child.depth > MAX_DEPTH:
        child.state = "truncated"
    elif not valid_domain(target):  # §4.3: a malformed name has no record, so permerror; nothing is asked
        child.state, child.error = "none", "is not a valid domain name"
    return child
