"""SPF evaluation: RFC 7208 `check_host()` over a `CheckResolver`, with the matched term and the include path.

The answer a technician needs is not only "fail" but which term decided it and through which include or
redirect, so the result carries both. DNS failures become temperror (never "none"); every limit of §4.6.4 is
enforced (10 DNS terms, 2 void lookups, 10 addresses per MX/PTR). Terms are evaluated in order, as the RFC
requires; the address lookups inside one `mx` or `ptr` term run concurrently.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field

from dns.rdtypes.mxbase import MXBase

from adapters.dns.resolver import CheckResolver, DnsAnswer, DnsFailure
from adapters.emailauth.spf_macros import MacroContext, MacroSyntaxError, expand
from adapters.emailauth.spf_parse import SpfRecord, SpfSyntaxError, Term, is_spf_record, parse_record

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_DNS_TERMS = 10
MAX_VOID_LOOKUPS = 2
MAX_ADDRESS_LOOKUPS = 10  # per mx / ptr term
RESULTS = ("pass", "fail", "softfail", "neutral", "none", "permerror", "temperror")


@dataclass
class SpfResult:
    result: str
    mechanism: str | None = None  # the deciding term, the innermost one when it matched inside an include
    explanation: str | None = None  # from exp= (fail only)
    path: list[str] = field(default_factory=list)  # the domain, then each include/redirect followed
    reason: str | None = None  # why, for permerror/temperror/none
    dns_lookups: int = 0
    void_lookups: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "result": self.result,
            "mechanism": self.mechanism,
            "explanation": self.explanation,
            "path": list(self.path),
        }


class _Stop(Exception):
    """Ends evaluation with permerror or temperror."""

    def __init__(self, result: str, reason: str) -> None:
        super().__init__(reason)
        self.result, self.reason = result, reason


@dataclass
class _Outcome:
    result: str
    term: Term | None = None
    record: SpfRecord | None = None  # whose exp= applies
    domain: str = ""
    path: list[str] = field(default_factory=list)


def parse_ip(text: str) -> IPAddress:
    """An IP address; an IPv4-mapped IPv6 address is treated as the IPv4 address (RFC 7208 §5)."""
    ip = ipaddress.ip_address(text.strip())
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def valid_domain(domain: str) -> bool:
    """§4.3: a multi-label name with no empty or over-long label (a trailing dot is allowed)."""
    name = domain[:-1] if domain.endswith(".") else domain
    labels = name.split(".")
    return (
        0 < len(name) <= 253 and len(labels) >= 2 and all(0 < len(label) <= 63 for label in labels) and name.isascii()
    )


async def check_host(
    ip: str | IPAddress,
    domain: str,
    sender: str,
    resolver: CheckResolver,
    *,
    helo: str | None = None,
    receiver: str = "unknown",
    now: float | None = None,
) -> SpfResult:
    """RFC 7208 check_host(<ip>, <domain>, <sender>)."""
    address = ip if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)) else parse_ip(ip)
    evaluator = _Evaluator(address, sender, helo or "unknown", receiver, resolver, now)
    evaluator.ip_text = str(ip).strip()
    return await evaluator.run(domain)


async def spf_for(ip: str, sender: str, helo: str, resolver: CheckResolver, **options: object) -> SpfResult:
    """The MAIL FROM check: the sender's domain, or the HELO name when the reverse path is empty (§2.4)."""
    sender = sender.strip().strip("<>")
    if not sender:
        sender = f"postmaster@{helo}"
    elif "@" not in sender:
        sender = f"postmaster@{sender}"
    elif sender.startswith("@"):
        sender = "postmaster" + sender
    domain = sender.rpartition("@")[2]
    return await check_host(ip, domain, sender, resolver, helo=helo, **options)  # type: ignore[arg-type]


class _Evaluator:
    def __init__(
        self, ip: IPAddress, sender: str, helo: str, receiver: str, resolver: CheckResolver, now: float | None
    ) -> None:
        self.ip, self.sender, self.helo, self.receiver = ip, sender, helo, receiver
        self.resolver, self.now = resolver, now
        self.lookups = 0
        self.voids = 0
        self._validated: dict[str, str] = {}
        self._stop_path: list[str] = []
        self.ip_text: str | None = None

    async def run(self, domain: str) -> SpfResult:
        domain = domain.rstrip(".") if domain not in (".",) else domain
        if not valid_domain(domain):
            return SpfResult(
                "none", reason=f"{domain[:80]!r} is not a valid multi-label domain name", path=[domain[:253]]
            )
        try:
            outcome = await self._check(domain, [domain], stack=())
        except _Stop as stop:
            return SpfResult(
                stop.result,
                reason=stop.reason,
                path=self._stop_path or [domain],
                dns_lookups=self.lookups,
                void_lookups=self.voids,
            )
        explanation = None
        if outcome.result == "fail" and outcome.record is not None:
            explanation = await self._explanation(outcome.record, outcome.domain)
        reason = "no SPF record" if outcome.result == "none" else None
        return SpfResult(
            outcome.result,
            outcome.term.text if outcome.term else None,
            explanation,
            outcome.path,
            reason,
            self.lookups,
            self.voids,
        )

    # ---------------------------------------------------------------- record lookup and evaluation

    async def _record(self, domain: str, path: list[str]) -> SpfRecord | None:
        if not valid_domain(domain):
            return None  # §4.3: a malformed <domain> has no record ("none"), so include/redirect give permerror
        try:
            answer = await self.resolver.query(domain, "TXT")
        except DnsFailure as exc:
            self._stop_path = path
            raise _Stop("temperror", f"TXT {domain}: {exc}") from None
        records = [text for text in answer.texts if is_spf_record(text)]
        if not records:
            return None
        if len(records) > 1:
            self._stop_path = path
            raise _Stop("permerror", f"{domain} publishes {len(records)} SPF records (only one is allowed)")
        text = records[0].decode("utf-8", errors="replace")
        try:
            return parse_record(text)
        except SpfSyntaxError as exc:
            self._stop_path = path
            raise _Stop("permerror", f"SPF record of {domain}: {exc}") from None

    async def _check(self, domain: str, path: list[str], stack: tuple[str, ...]) -> _Outcome:
        record = await self._record(domain, path)
        if record is None:
            return _Outcome("none", domain=domain, path=path)
        stack = (*stack, domain.lower())
        for term in record.mechanisms:
            if term.counts_lookup:
                self._count(path)
            try:
                matched = await self._matches(term, domain, path, stack)
            except _Stop:
                if not self._stop_path:
                    self._stop_path = path
                raise
            if matched is not None:
                inner_term, inner_path = matched
                return _Outcome(term.result, inner_term, record, domain, inner_path)
        redirect = record.redirect
        if redirect is None:
            return _Outcome("neutral", domain=domain, path=path)
        self._count(path)
        target = await self._target(redirect, domain, path)
        if target.lower() in stack:
            self._stop_path = path
            raise _Stop("permerror", f"redirect loop: {target} is already being evaluated")
        outcome = await self._check(target, [*path, f"redirect={target}"], stack)
        if outcome.result == "none":
            self._stop_path = [*path, f"redirect={target}"]
            raise _Stop("permerror", f"redirect target {target} has no SPF record")
        return outcome

    def _count(self, path: list[str]) -> None:
        self.lookups += 1
        if self.lookups > MAX_DNS_TERMS:
            self._stop_path = path
            raise _Stop("permerror", f"more than {MAX_DNS_TERMS} DNS-querying terms (RFC 7208 §4.6.4)")

    def _void(self, answer: DnsAnswer) -> None:
        if not valid_domain(answer.name):
            return  # no question was asked for a name that cannot exist: not a void lookup (README, RFC choices)
        if answer.status != "ok" or not answer.rdatas:
            self.voids += 1
            if self.voids > MAX_VOID_LOOKUPS:
                raise _Stop("permerror", f"more than {MAX_VOID_LOOKUPS} void lookups (RFC 7208 §4.6.4)")

    def _context(self, domain: str) -> MacroContext:
        return MacroContext(
            self.sender,
            domain,
            self.ip,
            self.helo,
            self.receiver,
            validated_name=lambda: self._validated_name(domain),
            now=self.now,
            ip_text=self.ip_text,
        )

    async def _target(self, term: Term, domain: str, path: list[str]) -> str:
        """The expanded domain-spec of a term (the current domain when it has none)."""
        if term.value is None:
            return domain
        try:
            target = await expand(term.value, self._context(domain))
        except MacroSyntaxError as exc:
            self._stop_path = path
            raise _Stop("permerror", f"{term.text}: {exc}") from None
        return target.rstrip(".") or "."

    async def _query(self, name: str, rdtype: str) -> DnsAnswer:
        if not valid_domain(name):
            # an expanded name that is not a DNS name cannot exist: nothing is asked, it matches nothing
            return DnsAnswer(name, rdtype, "nxdomain")
        try:
            return await self.resolver.query(name, rdtype)
        except DnsFailure as exc:
            raise _Stop("temperror", str(exc)) from None

    async def _matches(
        self, term: Term, domain: str, path: list[str], stack: tuple[str, ...]
    ) -> tuple[Term, list[str]] | None:
        """(deciding term, path) when the term matches, None when it does not."""
        name = term.name
        if name == "all":
            return term, path
        if name in ("ip4", "ip6"):
            assert term.network is not None
            return (term, path) if _in_network(self.ip, term.network) else None
        target = await self._target(term, domain, path)
        if name == "include":
            if target.lower() in stack:
                raise _Stop("permerror", f"include loop: {target} is already being evaluated")
            inner_path = [*path, term.text if term.value == target else f"{term.text} ({target})"]
            outcome = await self._check(target, inner_path, stack)
            if outcome.result == "pass":
                if term.qualifier != "+":
                    return term, path  # ?include/~include/-include decides the result, not the inner +all
                return outcome.term or term, outcome.path
            if outcome.result == "none":
                self._stop_path = inner_path
                raise _Stop("permerror", f"include target {target} has no SPF record")
            return None  # fail, softfail, neutral: not a match
        if name == "exists":
            answer = await self._query(target, "A")
            self._void(answer)
            return (term, path) if answer.rdatas else None
        if name == "a":
            answer = await self._query(target, "A" if self.ip.version == 4 else "AAAA")
            self._void(answer)
            return (term, path) if self._any_address(answer, term) else None
        if name == "mx":
            return (term, path) if await self._mx(target, term) else None
        if name == "ptr":
            names = await self._validated_names(self.ip, count_void=True)
            target_lower = target.lower()
            hit = any(n == target_lower or n.endswith("." + target_lower) for n in names)
            return (term, path) if hit else None
        raise _Stop("permerror", f"unknown mechanism {name}")

    def _any_address(self, answer: DnsAnswer, term: Term) -> bool:
        prefix = term.cidr4 if self.ip.version == 4 else term.cidr6
        for rdata in answer.rdatas:
            try:
                address = ipaddress.ip_address(rdata.to_text())
            except ValueError:
                continue
            if address.version != self.ip.version:
                continue
            network = ipaddress.ip_network(
                (address, prefix if prefix is not None else address.max_prefixlen), strict=False
            )
            if self.ip in network:
                return True
        return False

    async def _mx(self, target: str, term: Term) -> bool:
        answer = await self._query(target, "MX")
        self._void(answer)
        exchanges = sorted(
            (int(r.preference), r.exchange.to_text().rstrip(".").lower())
            for r in answer.rdatas
            if isinstance(r, MXBase)
        )
        hosts = [host for _, host in exchanges]
        hosts = [h for h in hosts if h and h != "."]  # a null MX (RFC 7505) names no host
        if len(hosts) > MAX_ADDRESS_LOOKUPS:
            raise _Stop("permerror", f"{target} has {len(hosts)} MX hosts; SPF allows 10 per mx term")
        rdtype = "A" if self.ip.version == 4 else "AAAA"
        answers = await asyncio.gather(*[self._query(h, rdtype) for h in hosts], return_exceptions=True)
        for result in answers:  # in preference order: the first error or match decides, as a sequential walk
            if isinstance(result, _Stop):
                raise result
            if isinstance(result, BaseException):
                raise result
            if self._any_address(result, term):
                return True
        return False

    async def _validated_names(self, ip: IPAddress, *, count_void: bool = False) -> list[str]:
        """PTR names of ip whose A/AAAA include ip (§5.5); DNS errors here mean "no match", not temperror.

        Void lookups (README, "RFC 7208 choices"): a `ptr` term counts its own PTR question when it is void; the
        address questions for the names found, and everything asked to expand %{p}, never count."""
        try:
            answer = await self.resolver.query(ip.reverse_pointer, "PTR")
        except DnsFailure:
            return []
        if count_void:
            self._void(answer)
        names = [r.target.to_text().rstrip(".").lower() for r in answer.rdatas if hasattr(r, "target")]
        names = names[:MAX_ADDRESS_LOOKUPS]
        rdtype = "A" if ip.version == 4 else "AAAA"

        async def validates(name: str) -> bool:
            if not valid_domain(name):
                return False
            try:
                addresses = await self.resolver.query(name, rdtype)
            except DnsFailure:
                return False
            return any(r.to_text() == str(ip) or _same_ip(r.to_text(), ip) for r in addresses.rdatas)

        checks = await asyncio.gather(*[validates(n) for n in names])
        return [name for name, ok in zip(names, checks, strict=True) if ok]

    async def _validated_name(self, domain: str) -> str:
        """%{p}: the target domain if validated, else a subdomain of it, else any validated name, else unknown."""
        if domain in self._validated:
            return self._validated[domain]
        names = await self._validated_names(self.ip)
        domain_lower = domain.lower()
        choice = next((n for n in names if n == domain_lower), None)
        choice = choice or next((n for n in names if n.endswith("." + domain_lower)), None)
        self._validated[domain] = choice or (names[0] if names else "unknown")
        return self._validated[domain]

    async def _explanation(self, record: SpfRecord, domain: str) -> str | None:
        """§6.2: the exp= TXT, macro-expanded; any problem means no explanation (the result stands)."""
        exp = record.exp
        if exp is None or exp.value is None:
            return None
        try:
            target = await expand(exp.value, self._context(domain))
            if not valid_domain(target.rstrip(".")):
                return None
            answer = await self.resolver.query(target.rstrip("."), "TXT")
            if len(answer.texts) != 1:
                return None
            text = answer.texts[0].decode("ascii")
            return await expand(text, self._context(domain), explanation=True)
        except (DnsFailure, MacroSyntaxError, UnicodeDecodeError, _Stop):
            return None


def _in_network(ip: IPAddress, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return ip.version == network.version and ip in network


def _same_ip(text: str, ip: IPAddress) -> bool:
    try:
        return ipaddress.ip_address(text) == ip
    except ValueError:
        return False
