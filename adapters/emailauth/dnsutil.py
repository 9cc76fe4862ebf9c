"""Lookups shared by the areas."""

from __future__ import annotations

from adapters.dns.resolver import CheckResolver, DnsAnswer

MAX_CNAME_HOPS = 8


async def follow(resolver: CheckResolver, name: str, rdtype: str) -> DnsAnswer:
    """Resolve through CNAMEs even when the server (an authoritative one) does not chase them across zones."""
    first = current = await resolver.query(name, rdtype)
    end = first.canonical_name
    for _ in range(MAX_CNAME_HOPS):
        if current.status == "ok" or not current.canonical_name:
            break
        current = await resolver.query(current.canonical_name, rdtype)
        end = current.canonical_name or current.name.rstrip(".")
    if current is first:
        return first
    return DnsAnswer(
        first.name,
        rdtype,
        current.status,
        current.rdatas,
        canonical_name=end,
        authenticated=first.authenticated and current.authenticated,
    )
