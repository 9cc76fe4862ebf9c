"""One check's DNS: concurrent queries, each (name, type) asked once, failures kept apart from absence.

A `CheckResolver` lives for one check (or one CLI run): callers `await query(name, type)` from as many tasks as
they like; the first caller sends the query and the others share its result. `nxdomain`/`nodata` are answers
("not published"); timeouts, SERVFAIL and REFUSED raise `DnsFailure` ("could not check"), never an empty answer.
Every resolver is bounded (`adapters/dns/limits.py`): a query budget, and caps on queries in flight for the check
and for the whole process, so no record anyone publishes can make a check ask without end.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Literal

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.resolver

from adapters.dns import limits
from adapters.dns.nameservers import parse_nameserver

__all__ = ["CheckResolver", "DnsAnswer", "DnsFailure", "parse_nameserver"]

AnswerStatus = Literal["ok", "nxdomain", "nodata"]
FailureReason = Literal["timeout", "servfail", "refused", "error", "budget", "queries"]


class DnsFailure(Exception):
    """The question could not be answered (so nothing can be concluded about the record)."""

    def __init__(self, name: str, rdtype: str, reason: FailureReason, detail: str = "") -> None:
        self.name, self.rdtype, self.reason, self.detail = name, rdtype, reason, detail
        text = {
            "timeout": "timed out",
            "servfail": "SERVFAIL",
            "refused": "REFUSED",
            "budget": "time budget exhausted",
            "queries": "query budget exhausted",
            "error": "failed",
        }[reason]
        super().__init__(f"{rdtype} {name}: {text}" + (f" ({detail})" if detail else ""))


@dataclass(frozen=True)
class DnsAnswer:
    name: str
    rdtype: str
    status: AnswerStatus
    rdatas: tuple[dns.rdata.Rdata, ...] = ()
    canonical_name: str | None = None  # where a CNAME chain ended, if the name was an alias
    authenticated: bool = False  # AD bit: the resolver validated the answer with DNSSEC

    @property
    def exists(self) -> bool:
        """The name exists (NOERROR), whether or not it has records of this type."""
        return self.status != "nxdomain"

    @property
    def texts(self) -> list[bytes]:
        """TXT/SPF records, each with its character-strings joined (RFC 7208 §3.3)."""
        return [b"".join(r.strings) for r in self.rdatas if hasattr(r, "strings")]

    @property
    def records(self) -> list[str]:
        return [r.to_text() for r in self.rdatas]


@dataclass
class CheckResolver:
    nameservers: list[tuple[str, int]] | None = None  # None: the system's resolvers
    timeout: float = 2.0  # per question
    budget: float | None = None  # seconds for everything asked through this resolver
    max_queries: int = limits.MAX_QUERIES_PER_CHECK  # questions this resolver may send, at most
    max_in_flight: int = limits.MAX_IN_FLIGHT_PER_CHECK  # questions awaiting an answer at once, at most
    queries: int = 0  # questions actually sent (cache hits excluded)
    _cache: dict[tuple[str, str], asyncio.Future[DnsAnswer]] = field(default_factory=dict, repr=False)
    _resolver: dns.asyncresolver.Resolver | None = field(default=None, repr=False)
    _deadline: float | None = field(default=None, repr=False)
    _in_flight: asyncio.Semaphore | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.budget is not None:
            self._deadline = time.monotonic() + self.budget

    def _dns(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            if self.nameservers:
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = [dns.nameserver.Do53Nameserver(h, p) for h, p in self.nameservers]
            else:
                resolver = dns.asyncresolver.Resolver()
            resolver.use_edns(0, 0, 1232)
            resolver.flags = dns.flags.RD | dns.flags.AD  # ask the resolver to say whether it validated
            resolver.cache = None
            self._resolver = resolver
        return self._resolver

    def remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.monotonic()

    async def query(self, name: str, rdtype: str) -> DnsAnswer:
        """The answer for (name, rdtype); raises `DnsFailure` when it cannot be had."""
        key = (name.lower().rstrip(".") + ".", rdtype.upper())
        future = self._cache.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._cache[key] = future
            try:
                future.set_result(await self._ask(*key))
            except DnsFailure as exc:
                future.set_exception(exc)
            except BaseException as exc:  # cancelled: let other waiters see a failure, not hang
                future.set_exception(DnsFailure(key[0], key[1], "error", type(exc).__name__))
                future.exception()
                raise
        return await asyncio.shield(future)

    def _admit(self, name: str, rdtype: str) -> float:
        """The lifetime this question may have; raises when the time or query budget is spent."""
        if self.queries >= self.max_queries:
            raise DnsFailure(name, rdtype, "queries", f"{self.max_queries} queries")
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            raise DnsFailure(name, rdtype, "budget")
        return self.timeout if remaining is None else min(self.timeout, remaining)

    async def _ask(self, name: str, rdtype: str) -> DnsAnswer:
        self._admit(name, rdtype)  # fail fast, before queueing for a socket
        if self._in_flight is None:
            self._in_flight = asyncio.Semaphore(max(1, self.max_in_flight))
        shared = limits.process_semaphore()
        async with self._in_flight, shared:
            lifetime = self._admit(name, rdtype)  # the queue may have taken time, or others spent the budget
            self.queries += 1
            return await self._send(name, rdtype, lifetime)

    async def _send(self, name: str, rdtype: str, lifetime: float) -> DnsAnswer:
        try:
            # raise_on_no_answer=False: NODATA comes back as an Answer with the CNAME chain's end and the response
            answer = await self._dns().resolve(name, rdtype, lifetime=lifetime, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN as exc:
            canonical = None
            try:
                canonical = exc.canonical_name.to_text()
            except Exception:  # noqa: BLE001 - no chain information
                canonical = None
            return DnsAnswer(name, rdtype, "nxdomain", canonical_name=_alias(name, canonical))
        except dns.resolver.LifetimeTimeout:
            raise DnsFailure(name, rdtype, "timeout") from None
        except dns.resolver.NoNameservers as exc:
            raise DnsFailure(name, rdtype, _failure_reason(exc), "no server answered usefully") from None
        except (dns.resolver.YXDOMAIN, dns.name.NameTooLong, dns.name.EmptyLabel, dns.name.LabelTooLong) as exc:
            raise DnsFailure(name, rdtype, "error", type(exc).__name__) from None
        except dns.exception.DNSException as exc:
            raise DnsFailure(name, rdtype, "error", str(exc)[:120]) from None
        except (OSError, ValueError) as exc:
            raise DnsFailure(name, rdtype, "error", str(exc)[:120]) from None
        return DnsAnswer(
            name,
            rdtype,
            "ok" if answer.rrset is not None else "nodata",
            tuple(answer.rrset) if answer.rrset is not None else (),
            canonical_name=_alias(name, answer.canonical_name.to_text()),
            authenticated=bool(answer.response.flags & dns.flags.AD),
        )


def _alias(name: str, canonical: str | None) -> str | None:
    if not canonical or canonical.lower().rstrip(".") == name.lower().rstrip("."):
        return None
    return canonical.rstrip(".")


def _failure_reason(exc: dns.resolver.NoNameservers) -> FailureReason:
    rcodes = set()
    for error in exc.kwargs.get("errors", []) or []:
        response = error[4] if len(error) > 4 else None
        if isinstance(response, dns.message.Message):
            rcodes.add(response.rcode())
        elif "timed out" in str(error[3]).lower() or isinstance(error[3], dns.exception.Timeout):
            return "timeout"
    if dns.rcode.REFUSED in rcodes:
        return "refused"
    if dns.rcode.SERVFAIL in rcodes:
        return "servfail"
    return "error"
