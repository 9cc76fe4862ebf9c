"""An aiohttp resolver backed by a `CheckResolver`, so HTTPS fetches (the MTA-STS policy host) resolve through the
same DNS servers, cache and budget as the rest of the check (and `--nameserver` applies to them too)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult

from adapters.dns.resolver import CheckResolver, DnsAnswer, DnsFailure
from adapters.http_fetch import is_public_address


class CheckResolverForAiohttp(AbstractResolver):
    """Unless `allow_private` (tests on loopback), only public addresses are returned: a domain's owner must not be
    able to point Cordon's fetches at its host's loopback or internal network (nor could senders fetch there)."""

    def __init__(self, resolver: CheckResolver, *, allow_private: bool = False) -> None:
        self.resolver = resolver
        self.allow_private = allow_private
        self.failures: list[DnsFailure] = []  # kept so a caller can tell "could not resolve" from "no address"
        self.refused: list[str] = []  # non-public addresses the name resolved to, not connected to

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            fam = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
            return self._public(host, [_result(host, str(literal), port, fam)])
        types = {socket.AF_INET: ("A",), socket.AF_INET6: ("AAAA",)}.get(family, ("A", "AAAA"))
        answers = await asyncio.gather(*(self.resolver.query(host, t) for t in types), return_exceptions=True)
        results: list[ResolveResult] = []
        for answer in answers:
            if isinstance(answer, DnsFailure):
                self.failures.append(answer)
            elif isinstance(answer, DnsAnswer):
                for rdata in answer.rdatas:
                    address = getattr(rdata, "address", None)
                    if address:
                        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
                        results.append(_result(host, address, port, fam))
            elif isinstance(answer, BaseException):
                raise answer
        if not results:
            reason = str(self.failures[-1]) if self.failures else "no A/AAAA records"
            raise OSError(f"could not resolve {host}: {reason}")
        return self._public(host, results)

    def _public(self, host: str, results: list[ResolveResult]) -> list[ResolveResult]:
        if self.allow_private:
            return results
        public = [r for r in results if is_public_address(r["host"])]
        if not public:
            self.refused.extend(r["host"] for r in results)
            raise OSError(f"{host} resolves only to non-public addresses ({', '.join(self.refused[:4])})")
        return public

    async def close(self) -> None:
        return None


def _result(host: str, address: str, port: int, family: socket.AddressFamily) -> ResolveResult:
    return ResolveResult(
        hostname=host,
        host=address,
        port=port,
        family=family,
        proto=0,
        flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
    )
