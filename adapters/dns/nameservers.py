"""`IP[:PORT]` name server addresses as users write them (CLI flags, the `[dns]` config section).

Kept apart from the resolver so that validating the configuration does not load dnspython."""

from __future__ import annotations

import ipaddress


def parse_nameserver(text: str) -> tuple[str, int]:
    """`IP` or `IP:PORT` or `[IPv6]:PORT` → (address, port); raises ValueError with a readable message."""
    host, port = text.strip(), 53
    try:
        if host.startswith("["):
            inner, _, rest = host[1:].partition("]")
            host, port_text = inner, rest.removeprefix(":")
            port = int(port_text) if port_text else 53
        elif host.count(":") == 1:
            host, port_text = host.split(":")
            port = int(port_text)
    except ValueError:
        raise ValueError(f"nameserver {text!r} has a port that is not a number") from None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"nameserver {text!r} is not an IP address (optionally :PORT)") from None
    if not 0 < port < 65536:
        raise ValueError(f"nameserver {text!r} has an invalid port")
    return host, port
