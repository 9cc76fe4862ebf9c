"""SPF lint: findings over the include tree, each with the record to publish where one can be derived.

`analyse_spf(domain, resolver)` is the `checks.spf` part of the report (issue 3's JSON contract). A DNS failure
of the record, of an include or redirect, or of a term's own question gives status "error" (could not check),
never "none" and never a silent pass; a failed address lookup of an MX host is a warning naming it. Nothing in
any record, however malformed, long, binary or hostile, raises out of it. The tree is judged as `check_host`
evaluates it (issue 10): terms after `all` are ignored, a `+all` counts as "any server passes" only when every
include on its way is a pass include, and the walk stops where the 10-lookup or 2-void-lookup limit stops an
evaluator, and says so (issue 9).
"""

from __future__ import annotations

import logging
from typing import Any

from adapters.dns.resolver import CheckResolver
from adapters.emailauth.findings import Finding, Severity, finding, quote, status_from
from adapters.emailauth.spf_eval import MAX_DNS_TERMS, MAX_VOID_LOOKUPS
from adapters.emailauth.spf_lint_dns import dns_failed, probe_dns_findings
from adapters.emailauth.spf_parse import SpfRecord, Term
from adapters.emailauth.spf_tree import SpfNode, SpfTree, Stop, walk_spf

log = logging.getLogger(__name__)

NEAR_LIMIT = 8
BROAD_IP4 = 8  # /0 - /8: 16 million addresses or more
BROAD_IP6 = 24  # /0 - /24: a regional registry's block, hundreds of providers
MAX_RECORD_OCTETS = 450  # RFC 7208 §3.4: keep the answer within a 512-byte UDP response
SPF_RFC = "RFC 7208"


async def analyse_spf(domain: str, resolver: CheckResolver) -> dict[str, Any]:
    """{"status","record","dns_lookups","void_lookups","findings"} for the domain's SPF."""
    try:
        tree = await walk_spf(domain, resolver)
        return lint_tree(tree)
    except Exception as exc:  # noqa: BLE001 - the contract: nothing raises out of the check
        log.exception("SPF analysis of %s failed", quote(domain, 80))
        return {
            "status": "error",
            "record": None,
            "dns_lookups": 0,
            "void_lookups": 0,
            "findings": [
                finding(
                    "error", "spf.internal_error", f"The SPF check failed unexpectedly ({type(exc).__name__}).", None
                )
            ],
        }


def lint_tree(tree: SpfTree) -> dict[str, Any]:
    tree.settle()
    root = tree.root
    findings: list[Finding] = []
    legacy = _legacy_findings(tree)
    if root.state == "dns_error":
        return _result(
            "error",
            None,
            0,
            0,
            [
                finding(
                    "error",
                    "spf.dns_error",
                    f"Could not check SPF: {quote(root.error or '', 200)}.",
                    "Try again; if it persists, check that the domain's name servers answer TXT queries.",
                )
            ]
            + legacy,
        )
    if root.state == "none":
        record = "v=spf1 -all" if tree.has_mx is False else "v=spf1 mx -all"
        why = (
            "the domain has no MX, so this says it sends no mail"
            if tree.has_mx is False
            else "it lists your MX hosts as senders; add the ip4:/include: of every other service that sends as you"
        )
        what = "does not exist (NXDOMAIN)" if not root.exists else "publishes no SPF record"
        return _result(
            "none",
            None,
            0,
            0,
            [
                finding(
                    "error",
                    "spf.missing",
                    f"{root.domain} {what}, so SPF cannot protect it.",
                    f'Publish a TXT record at {root.domain}: "{record}" ({why}).',
                )
            ]
            + legacy,
        )
    if root.state == "several":
        return _result(
            "fail",
            None,
            0,
            0,
            [
                finding(
                    "error",
                    "spf.multiple_records",
                    f"{root.domain} publishes {len(root.texts)} SPF records; receivers return permerror "
                    f"({SPF_RFC} §4.5): " + "; ".join(f'"{quote(t, 100)}"' for t in root.texts[:4]),
                    "Merge them into a single TXT record that starts with v=spf1.",
                )
            ]
            + legacy,
        )
    if root.state == "syntax":
        return _result("fail", root.texts[0], 0, 0, [_syntax_finding(root)] + _length(root) + legacy)
    assert root.record is not None
    suggested = suggest_record(root.record)
    findings += _length(root)
    findings += _all_findings(root, suggested)
    for node in tree.nodes:
        findings += _node_findings(node, suggested)
    findings += _limit_findings(tree)
    findings += legacy
    if tree.truncated:
        findings.append(
            finding("info", "spf.tree_truncated", "The include tree is very large; only part of it was examined.", None)
        )
    status = "error" if dns_failed(tree) else status_from(findings)
    return _result(status, root.texts[0], tree.dns_lookups, tree.void_lookups, findings)


def _result(status: str, record: str | None, lookups: int, voids: int, findings: list[Finding]) -> dict[str, Any]:
    return {"status": status, "record": record, "dns_lookups": lookups, "void_lookups": voids, "findings": findings}


def suggest_record(record: SpfRecord) -> str:
    """The record with ptr removed, the policy ending in -all, and what an `all` makes dead (the mechanisms after
    it, a redirect) dropped."""
    mechanisms = record.mechanisms
    first_all = next((i for i, t in enumerate(mechanisms) if t.name == "all"), None)
    dead = {id(t) for t in mechanisms[first_all + 1 :]} if first_all is not None else set()
    terms = [t for t in record.terms if not (t.kind == "mechanism" and t.name == "ptr") and id(t) not in dead]
    has_all = any(t.kind == "mechanism" and t.name == "all" for t in terms)
    if has_all:
        terms = [t for t in terms if not (t.kind == "modifier" and t.name == "redirect")]
    texts = ["-all" if t.kind == "mechanism" and t.name == "all" else t.text for t in terms]
    if not has_all and record.redirect is None:
        modifiers = [t.text for t in terms if t.kind == "modifier"]
        texts = [t.text for t in terms if t.kind == "mechanism"] + ["-all"] + modifiers
    return " ".join(["v=spf1", *texts])


def _publish(node: SpfNode, suggested: str) -> str:
    return f'Publish at {node.domain}: "{suggested}".'


def _where(node: SpfNode) -> str:
    if node.parent is None:
        return node.domain
    return f"{node.domain} (reached through {' → '.join(_chain(node))})"


def _chain(node: SpfNode) -> list[str]:
    labels = []
    while node.parent is not None:
        labels.append(node.label)
        node = node.parent
    return list(reversed(labels))


def _syntax_finding(node: SpfNode) -> Finding:
    text, position = node.texts[0], node.error_position or 0
    excerpt = quote(text[max(0, position - 30) : position], 40) + "▶" + quote(text[position : position + 30], 40)
    return finding(
        "error",
        "spf.syntax_error",
        f"SPF syntax error in {_where(node)} at character {position + 1}: {node.error}. "
        f"Receivers return permerror. …{excerpt}",
        f"Correct the term at character {position + 1} of the record at {node.domain}.",
    )


def _length(node: SpfNode) -> list[Finding]:
    size = len(node.texts[0].encode("utf-8")) if node.texts else 0
    if size <= MAX_RECORD_OCTETS:
        return []
    return [
        finding(
            "warning",
            "spf.record_too_long",
            f"The SPF record of {node.domain} is {size} characters; over {MAX_RECORD_OCTETS} the answer "
            f"may not fit a UDP response ({SPF_RFC} §3.4) and some receivers fail it.",
            "Shorten it: move senders into an include on a subdomain, or drop unused terms.",
        )
    ]


def _all_findings(root: SpfNode, suggested: str) -> list[Finding]:
    record = root.record
    assert record is not None
    alls = [t for t in root.mechanisms if t.name == "all"]
    found: list[Finding] = []
    if not alls and record.redirect is None:
        found.append(
            finding(
                "warning",
                "spf.no_all",
                "The record has no `all` and no redirect: mail from anywhere else gets neutral, "
                "which protects nothing.",
                _publish(root, suggested),
            )
        )
    for term in alls:
        if term.qualifier == "+":
            found.append(
                finding(
                    "error",
                    "spf.plus_all",
                    f"`{term.text}` lets every server on the internet pass SPF as {root.domain}.",
                    _publish(root, suggested),
                )
            )
        elif term.qualifier == "?":
            found.append(
                finding(
                    "warning",
                    "spf.neutral_all",
                    "`?all` gives neutral to unlisted senders, which protects nothing.",
                    _publish(root, suggested),
                )
            )
    if alls and record.redirect is not None:
        found.append(
            finding(
                "warning",
                "spf.redirect_with_all",
                f"`{record.redirect.text}` is ignored because the record has `{alls[0].text}` ({SPF_RFC} §6.1).",
                _publish(root, suggested),
            )
        )
    return found


def _node_findings(node: SpfNode, suggested: str) -> list[Finding]:
    found: list[Finding] = []
    if node.parent is not None:
        found += _child_state_findings(node)
    if node.state == "syntax" and node.parent is not None:
        found.append(_syntax_finding(node))
    if node.record is None:
        return found
    fix = _publish(node, suggested) if node.parent is None else None
    if node.ignored:
        found.append(_ignored_finding(node, fix))
    for term in node.mechanisms:
        if term.name == "ptr":
            found.append(
                finding(
                    "warning",
                    "spf.ptr",
                    f"`{term.text}` in {_where(node)} is slow, unreliable and "
                    f"deprecated ({SPF_RFC} §5.5); many receivers ignore it.",
                    fix or "Replace ptr with the ip4:/ip6: ranges of those servers.",
                )
            )
        broad = _broad(term)
        if broad:
            found.append(
                finding(
                    "error",
                    "spf.broad_range",
                    f"`{term.text}` in {_where(node)} authorises {broad}.",
                    fix or "List only the addresses that really send your mail.",
                )
            )
        if term.name == "all" and term.qualifier == "+" and node.parent is not None:
            found.append(_included_plus_all(node, term))
    for probe in node.probes:
        found += probe_dns_findings(probe, _where(node))
        if probe.failure:
            continue
        if probe.invalid:
            found.append(
                finding(
                    "warning",
                    "spf.invalid_name",
                    f"`{quote(probe.term.text)}` in {_where(node)} names no valid domain (an empty or "
                    "over-long label): it never matches.",
                    "Correct the name or remove the term.",
                )
            )
        elif probe.void:
            found.append(
                finding(
                    "warning",
                    "spf.void_lookup",
                    f"`{probe.term.text}` in {_where(node)}: {probe.target} has no "
                    f"{'MX' if probe.term.name == 'mx' else 'address'} records (a void lookup).",
                    "Remove the term or publish the records it expects.",
                )
            )
        elif probe.mx_hosts > 10:
            found.append(
                finding(
                    "error",
                    "spf.mx_too_many",
                    f"`{probe.term.text}` in {_where(node)}: {probe.target} has {probe.mx_hosts} MX "
                    f"hosts; more than 10 gives permerror ({SPF_RFC} §4.6.4).",
                    "Replace mx with the ip4:/ip6: ranges of the mail servers.",
                )
            )
    return found


def _ignored_finding(node: SpfNode, fix: str | None) -> Finding:
    ending = next(t for t in reversed(node.mechanisms) if t.name == "all")
    listed = " ".join(t.text for t in node.ignored[:8]) + (" …" if len(node.ignored) > 8 else "")
    move = f"Move them before `{ending.text}` if they name your senders, otherwise remove them"
    return finding(
        "warning",
        "spf.terms_after_all",
        f"`{quote(listed, 200)}` in {_where(node)} come after `{ending.text}`, so they are never "
        f"evaluated ({SPF_RFC} §5.1): they are ignored, and count neither toward the {MAX_DNS_TERMS} DNS "
        "lookups nor as void lookups.",
        f"{move}. {fix}" if fix else f"{move} (ask the owner of {node.domain}).",
    )


def through_includes(node: SpfNode) -> str | None:
    """What a match in `node` gives at the root: "pass", or the qualifier of the first include on the way up whose
    match turns pass into fail/softfail/neutral; None when a further include then sees that as no match."""
    result = "pass"
    while node.parent is not None and node.via is not None:
        if node.via.kind == "mechanism":  # include: only an inner pass matches, and gives the include's qualifier
            if result != "pass":
                return None
            result = node.via.result
        node = node.parent
    return result


def _included_plus_all(node: SpfNode, term: Term) -> Finding:
    """An included `+all` lets any server pass only through pass includes (RFC 7208 §5.2)."""
    result = through_includes(node)
    if result == "pass":
        return finding(
            "error",
            "spf.plus_all",
            f"{_where(node)} ends in `{term.text}`, so including it lets any server pass.",
            "Remove that include, or ask its owner to fix it.",
        )
    if result is None:
        return finding(
            "info",
            "spf.plus_all_not_pass",
            f"{_where(node)} ends in `{term.text}`, but `{_qualified(node)}` on its way turns that match "
            "into a result that the include above it counts as no match: it lets no server pass "
            f"({SPF_RFC} §5.2).",
            "Remove that include, or ask its owner to fix it.",
        )
    severity: Severity = "warning" if result == "neutral" else "info"
    return finding(
        severity,
        "spf.plus_all_not_pass",
        f"{_where(node)} ends in `{term.text}`, but it is reached through `{_qualified(node)}`, so "
        f"every server that gets that far gets {result}, never pass ({SPF_RFC} §5.2); the terms after "
        "that include are never evaluated.",
        "Remove that include, or ask its owner to fix it."
        + (" As it stands it protects nothing (like ?all)." if result == "neutral" else ""),
    )


def _qualified(node: SpfNode) -> str:
    """The text of the first non-pass include on the way up from node."""
    while node.parent is not None and node.via is not None:
        if node.via.kind == "mechanism" and node.via.result != "pass":
            return node.via.text
        node = node.parent
    return ""


def _child_state_findings(node: SpfNode) -> list[Finding]:
    what = node.via.text if node.via is not None else node.domain
    kind = "redirect" if node.via is not None and node.via.kind == "modifier" else "include"
    if node.state == "none":
        why = node.error or "has no SPF record"
        return [
            finding(
                "error",
                f"spf.{kind}_missing",
                f"`{what}` points to {quote(node.domain, 300)}, which {why}: receivers return permerror.",
                f"Remove `{what}` or correct the domain.",
            )
        ]
    if node.state == "several":
        return [
            finding(
                "error",
                "spf.multiple_records",
                f"{_where(node)} publishes {len(node.texts)} SPF records: receivers return permerror.",
                f"Ask the owner of {node.domain} to merge them, or remove `{what}`.",
            )
        ]
    if node.state == "loop":
        return [
            finding(
                "error",
                "spf.loop",
                f"`{what}` in {_where(node.parent) if node.parent else ''} loops "
                f"back to {node.domain}: receivers return permerror.",
                f"Remove `{what}`.",
            )
        ]
    if node.state == "dns_error":
        return [
            finding(
                "error",
                "spf.include_dns_error",
                f"Could not fetch the SPF record of {_where(node)}: {quote(node.error or '', 160)}. "
                f"Receivers that reach `{what}` return temperror; what it authorises and how many lookups "
                "it costs were not checked.",
                "Try again; if it persists, that domain's name servers are failing.",
            )
        ]
    if node.state == "macro":
        return [
            finding(
                "info",
                "spf.macro_target",
                f"`{what}` depends on the sender or the client address; it was counted but not followed.",
                None,
            )
        ]
    return []


def _broad(term: Term) -> str | None:
    if term.name in ("ip4", "ip6") and term.network is not None:
        prefix, limit = term.network.prefixlen, (BROAD_IP4 if term.name == "ip4" else BROAD_IP6)
        if prefix <= limit:
            bits = term.network.max_prefixlen - prefix
            return "every address on the internet" if prefix == 0 else f"2^{bits} addresses"
    if term.name in ("a", "mx"):
        if term.cidr4 is not None and term.cidr4 <= BROAD_IP4:
            return "every IPv4 address" if term.cidr4 == 0 else f"a /{term.cidr4} around each of its addresses"
        if term.cidr6 is not None and term.cidr6 <= BROAD_IP6:
            return "every IPv6 address" if term.cidr6 == 0 else f"a /{term.cidr6} around each of its addresses"
    return None


def include_costs(tree: SpfTree) -> list[tuple[str, int]]:
    """(include or redirect term, DNS lookups it costs, itself included), costliest first, for the root's terms."""
    costs = [(child.label, 1 + child.cost) for child in tree.root.children]
    return sorted(costs, key=lambda item: -item[1])


def _limit_findings(tree: SpfTree) -> list[Finding]:
    found: list[Finding] = []
    lookups, voids, stop = tree.dns_lookups, tree.void_lookups, tree.stop
    costs = include_costs(tree)
    partial = {child.label for child in tree.root.children if not _complete(child)}
    detail = ", ".join(
        f"`{label}` costs {'at least ' if label in partial else ''}{cost}" for label, cost in costs[:6] if cost > 1
    )
    flatten = (
        "Flatten the costliest include (replace it with the ip4:/ip6: ranges it publishes) or move some "
        "senders to a subdomain" + (f": {detail}." if detail else ".")
    )
    if stop is not None and stop.reason == "lookups":
        found.append(
            finding(
                "error",
                "spf.too_many_lookups",
                f"Stopped after {stop.lookups} lookups: the record is over the limit of "
                f"{MAX_DNS_TERMS} DNS lookups, so receivers return permerror at `{quote(stop.term.text)}`"
                f"{_in(stop)} ({SPF_RFC} §4.6.4). It needs at least {lookups}; what comes after was "
                "not checked." + (f" {detail}." if detail else ""),
                flatten,
            )
        )
    elif lookups > MAX_DNS_TERMS:
        found.append(
            finding(
                "error",
                "spf.too_many_lookups",
                f"The record needs {lookups} DNS lookups; over {MAX_DNS_TERMS} receivers return "
                f"permerror ({SPF_RFC} §4.6.4)." + (f" {detail}." if detail else ""),
                flatten,
            )
        )
    elif lookups >= NEAR_LIMIT:
        found.append(
            finding(
                "warning",
                "spf.lookups_near_limit",
                f"The record needs {lookups} of the {MAX_DNS_TERMS} DNS lookups allowed; one more "
                "include from a provider could break it." + (f" {detail}." if detail else ""),
                flatten,
            )
        )
    if stop is not None and stop.reason == "voids":
        found.append(
            finding(
                "error",
                "spf.too_many_void_lookups",
                f"Stopped after {stop.lookups} lookups: the record is over the void-lookup limit: "
                f"`{quote(stop.term.text)}`{_in(stop)} is the {voids}rd term whose name has no records; "
                f"over {MAX_VOID_LOOKUPS} receivers return permerror ({SPF_RFC} §4.6.4). What comes "
                "after was not checked.",
                "Remove the terms whose names have no records.",
            )
        )
    elif voids > MAX_VOID_LOOKUPS:
        found.append(
            finding(
                "error",
                "spf.too_many_void_lookups",
                f"{voids} terms look up names that do not exist or have no records; over "
                f"{MAX_VOID_LOOKUPS} receivers return permerror ({SPF_RFC} §4.6.4).",
                "Remove the terms whose names have no records.",
            )
        )
    return found


def _complete(node: SpfNode) -> bool:
    """Whether every record below node was fetched (its cost is exact, not a lower bound)."""
    if node.state in ("skipped", "truncated", "pending", "dns_error"):
        return False
    return all(_complete(child) for child in node.children)


def _in(stop: Stop) -> str:
    return f" in {_where(stop.node)}" if stop.node.parent is not None else ""


def _legacy_findings(tree: SpfTree) -> list[Finding]:
    if not tree.legacy:
        return []
    txt = tree.root.texts[0] if len(tree.root.texts) == 1 else None
    same = txt is not None and tree.legacy[0].strip() == txt.strip()
    return [
        finding(
            "info" if same else "warning",
            "spf.legacy_spf_rr",
            f"{tree.root.domain} also publishes the obsolete SPF record type (99); receivers use only TXT "
            f"({SPF_RFC} §3.1)"
            + ("." if same else f', and it differs from the TXT record: "{quote(tree.legacy[0], 100)}".'),
            "Delete the type 99 (SPF) record; keep the TXT record.",
        )
    ]
