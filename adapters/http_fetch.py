"""One strict HTTPS GET for policy files: certificate verified, no redirects, 200 only, a content type, a size cap.

Every way it can go wrong is a `FetchError` with a `kind` the caller turns into a finding; "could not check"
(`timeout`, `dns`) is kept apart from "the server is wrong" (everything else).
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # aiohttp is imported when a fetch happens, not when `check` starts
    from aiohttp.abc import AbstractResolver

FetchErrorKind = Literal[
    "dns", "private", "timeout", "connect", "tls", "redirect", "status", "content_type", "too_large", "error"
]


class FetchError(Exception):
    def __init__(self, kind: FetchErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Fetched:
    url: str
    status: int
    content_type: str
    body: bytes


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_TEREDO = ipaddress.ip_network("2001::/32")


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and may be routed to: IPv4-mapped `::ffff:a.b.c.d`,
    IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96` (and the local-use `64:ff9b:1::/48`), 6to4 `2002::/16`,
    Teredo `2001::/32` (server and client)."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:  # ::a.b.c.d (not :: or ::1, themselves non-public)
        found.append(low32)
    if any(address in net for net in _NAT64):
        found.append(low32)
    return found


def is_public_address(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a fetch may connect here: a global address that embeds no non-public IPv4 address. NAT64, 6to4,
    Teredo or IPv4-compatible forms of 127.0.0.1 or 10.0.0.1 would otherwise reach this host or its network."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if not ip.is_global or ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _TEREDO or any(ip in net for net in _NAT64[1:]):
            return False  # Teredo relays and local-use NAT64 prefixes: where they lead is not ours to know
        return all(v4.is_global and not v4.is_multicast for v4 in embedded_ipv4(ip))
    return True


def default_ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()


async def fetch_https(
    url: str,
    *,
    resolver: AbstractResolver | None = None,
    ssl_context: ssl.SSLContext | None = None,
    max_bytes: int = 65_536,
    timeout: float = 5.0,
    content_types: tuple[str, ...] = ("text/plain",),
) -> Fetched:
    import aiohttp

    if not url.startswith("https://"):
        raise FetchError("error", "only https:// URLs are fetched")
    context = ssl_context or default_ssl_context()
    connector = (
        aiohttp.TCPConnector(resolver=resolver, ssl=context, use_dns_cache=False)
        if resolver
        else aiohttp.TCPConnector(ssl=context, use_dns_cache=False)
    )
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=client_timeout, trust_env=False) as session:
            async with session.get(url, allow_redirects=False, headers={"Accept": "text/plain"}) as response:
                if 300 <= response.status < 400:
                    where = response.headers.get("Location", "")[:200]
                    raise FetchError(
                        "redirect",
                        f"HTTP {response.status} redirect to {where or '(no Location)'}; redirects are not followed",
                    )
                if response.status != 200:
                    raise FetchError("status", f"HTTP {response.status} instead of 200")
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if content_type not in content_types:
                    raise FetchError(
                        "content_type",
                        f"Content-Type is {content_type or '(none)'!s} instead of {' or '.join(content_types)}",
                    )
                body = await response.content.read(max_bytes + 1)
                if len(body) > max_bytes:
                    raise FetchError("too_large", f"the body is larger than {max_bytes} bytes")
                return Fetched(url, response.status, content_type, body)
    except FetchError:
        raise
    except TimeoutError:
        raise FetchError("timeout", f"no answer within {timeout:g} s") from None
    except aiohttp.ClientConnectorCertificateError as exc:
        raise FetchError("tls", f"certificate not valid: {_reason(exc.certificate_error)}") from None
    except aiohttp.ClientSSLError as exc:
        raise FetchError("tls", f"TLS failed: {_reason(exc)}") from None
    except aiohttp.ClientConnectorDNSError as exc:
        raise FetchError("dns", str(exc)[:200]) from None
    except aiohttp.ClientConnectorError as exc:
        raise FetchError("connect", f"could not connect: {_reason(exc.os_error)}") from None
    except (aiohttp.ClientError, ssl.SSLError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
        raise FetchError("error", f"{type(exc).__name__}: {str(exc)[:160]}") from None


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
    return str(text)[:200]
