"""SPF lint findings for the DNS questions of the tree that could not be answered (SERVFAIL, REFUSED, timeout,
budget): "could not check", never "missing" and never a silent pass (README, "What is checked")."""

from __future__ import annotations

from adapters.emailauth.findings import Finding, finding, quote
from adapters.emailauth.spf_probe import MAX_MX_HOST_NAMES, TermProbe
from adapters.emailauth.spf_tree import SpfTree


def dns_failed(tree: SpfTree) -> bool:
    """Whether a record or a term's own question that an evaluator reaches could not be fetched: what it gives,
    costs or authorises is unknown, so the area is "could not check" whatever else was found."""
    return any(n.state == "dns_error" for n in tree.nodes) or any(p.failure for n in tree.nodes for p in n.probes)


def probe_dns_findings(probe: TermProbe, where: str) -> list[Finding]:
    """A term whose own question failed could not be checked (is it void? how many MX hosts?): an error, and the
    area is "error". A failed address lookup of one MX host leaves the lint's judgements whole, but receivers
    return temperror when they reach it: a warning naming the host."""
    term = quote(probe.term.text)
    retry = "Try again; if it persists, the name servers of {} are failing: fix them or remove `{}`."
    if probe.failure:
        return [
            finding(
                "error",
                "spf.dns_error",
                f"Could not check `{term}` in {where}: {quote(probe.failure, 200)}. Receivers that "
                f"reach this term return temperror, and whether {probe.target} has records was not checked.",
                retry.format(probe.target, term),
            )
        ]
    found = []
    for host, failures in probe.host_failures.items():
        families = " and ".join(sorted({"IPv4" if f.rdtype == "A" else "IPv6" for f in failures}))
        found.append(
            finding(
                "warning",
                "spf.mx_host_dns_error",
                f"Could not look up MX host {host} of `{term}` in {where}: "
                f"{quote('; '.join(str(f) for f in failures), 200)}. Receivers that reach this term "
                f"return temperror to {families} senders that no MX host before it matches.",
                retry.format(host, term),
            )
        )
    if probe.hosts_unchecked:
        found.append(
            finding(
                "info",
                "spf.mx_hosts_unchecked",
                f"The addresses of {probe.hosts_unchecked} MX host(s) of `{term}` in {where} were "
                f"not looked up: the tree names more than {MAX_MX_HOST_NAMES} MX hosts.",
                None,
            )
        )
    return found
