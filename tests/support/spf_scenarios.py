"""Seeded random SPF scenarios for the differential test (tests/test_spf_differential.py): each one a small tree of
SPF records, address records, PTRs and failing names under its own `sN.diff.test`, plus the client to check.

Deterministic: the same seed gives the same scenarios, so a disagreement found once is found every run. The
generator aims at the corners where implementations part: qualifiers on includes, void lookups (a/mx/exists on
names with no data, MX hosts without the client's address family, PTR names without addresses, %{p}), the
10-lookup limit, macros (including local parts that expand to names that cannot exist), redirect and exp,
DNS failures (SERVFAIL), loops and syntax errors.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

ROOT = "diff.test"
QUALIFIERS = ["", "", "", "", "", "+", "-", "-", "~", "~", "?"]
LOCAL_PARTS = ["alice", "bob.smith", "x-y", "a+b", "postmaster", "a..b"]
BAD_TERMS = [
    "ip4:300.1.1.1",
    "a:foo",
    "include",
    "mx/33",
    "-all:x",
    "exists",
    "ip6:zz::1",
    "a:%{q}.x.test",
    "ip4:10.0.0.0/40",
    "redirect=",
    "ptr:",
    "+-all",
]


@dataclass
class Scenario:
    index: int
    domain: str
    ip: str
    sender: str  # "" for a HELO check
    helo: str
    records: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)  # absolute name → records
    servfail: set[str] = field(default_factory=set)

    def describe(self) -> str:
        lines = [f"#{self.index}: check_host({self.ip}, {self.domain}, <{self.sender}>, helo={self.helo})"]
        for name, records in sorted(self.records.items()):
            lines += [f"  {name} {rdtype} {value!r}" for rdtype, value in records]
        lines += [f"  {name} SERVFAIL" for name in sorted(self.servfail)]
        return "\n".join(lines)


class _Builder:
    def __init__(self, index: int, rng: random.Random) -> None:
        self.rng = rng
        self.base = f"s{index}.{ROOT}"
        self.count = 0
        self.nodes = 0
        version = rng.random()
        if version < 0.25:
            self.ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv6Address(
                f"2001:db8:{index:x}::{rng.choice(['5', '9', 'a7'])}"
            )
            self.given = str(self.ip)
        else:
            self.ip = ipaddress.IPv4Address(f"10.{index // 256}.{index % 256}.{rng.choice([5, 9, 77])}")
            self.given = f"::ffff:{self.ip}" if version > 0.95 else str(self.ip)
        local = rng.choice(LOCAL_PARTS)
        helo_check = rng.random() < 0.1
        self.sender = "" if helo_check else f"{local}@{self.base}"
        self.local = "postmaster" if helo_check else local
        self.helo = self.base if helo_check else f"mail.{self.base}"
        self.scenario = Scenario(index, self.base, self.given, self.sender, self.helo)
        self.ptr_done = False

    # ------------------------------------------------------------ records

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}.{self.base}"

    def add(self, owner: str, rdtype: str, value: Any) -> None:
        if any(not label or len(label) > 63 for label in owner.split(".")):
            return  # a name that cannot exist (a local part like "a..b" expanded): nothing can be published there
        self.scenario.records.setdefault(owner, []).append((rdtype, value))

    def family(self) -> str:
        return "A" if self.ip.version == 4 else "AAAA"

    def address(self, kind: str) -> tuple[str, str]:
        """(rdtype, value) of an address related to the client: the same, a neighbour, far away, other family."""
        if kind == "other-family":
            return ("AAAA", "2001:db8:ffff::1") if self.ip.version == 4 else ("A", "192.0.2.1")
        offset = {"match": 0, "near": 1, "far": 1 << (20 if self.ip.version == 4 else 80)}[kind]
        return self.family(), str(type(self.ip)(int(self.ip) ^ offset))

    def hosts(self, owner: str) -> None:
        """Give owner an address (or not): the kinds check_host must tell apart."""
        kind = self.rng.choice(["match", "match", "near", "far", "other-family", "nodata", "nx", "servfail"])
        if kind == "nodata":
            self.add(owner, "TXT", "not an address")
        elif kind == "servfail":
            self.scenario.servfail.add(owner)
        elif kind != "nx":
            self.add(owner, *self.address(kind))
            if self.rng.random() < 0.3:
                self.add(owner, *self.address(self.rng.choice(["far", "other-family"])))

    def cidr(self) -> str:
        return self.rng.choice(["", "", "", "/24", "//64", "/24//64", "/31", "/32//128"])

    # ------------------------------------------------------------ terms

    def record(self, owner: str, depth: int) -> None:
        self.nodes += 1
        terms = [self.term(owner, depth) for _ in range(self.rng.randint(1, 5))]
        if self.rng.random() < 0.03:
            terms.insert(self.rng.randint(0, len(terms)), self.rng.choice(BAD_TERMS))
        ending = self.rng.random()
        if ending < 0.55:
            terms.append(self.rng.choice(["-all", "-all", "~all", "?all", "+all", "all"]))
        elif ending < 0.75 and depth < 3:
            terms.append("redirect=" + self.target(owner, depth))
        if depth == 0 and self.rng.random() < 0.3:
            terms.append("exp=" + self.explanation())
        self.add(owner, "TXT", "v=spf1 " + " ".join(terms))
        if self.rng.random() < 0.05:
            self.add(owner, "TXT", "v=spf1 -all")  # two records: permerror

    def term(self, owner: str, depth: int) -> str:
        qualifier = self.rng.choice(QUALIFIERS)
        kinds = ["ip4", "ip4", "ip6", "a", "a", "a", "mx", "mx", "ptr", "exists", "exists"]
        if depth < 3 and self.nodes < 7:
            kinds += ["include", "include", "include"]
        kind = self.rng.choice(kinds)
        return qualifier + getattr(self, f"_{kind}")(owner, depth)

    def _ip4(self, owner: str, depth: int) -> str:
        ip = self.ip if self.ip.version == 4 else ipaddress.IPv4Address("10.255.0.9")
        prefix = self.rng.choice([32, 24, 31, 8])
        base = ip if self.rng.random() < 0.6 else ipaddress.IPv4Address("192.0.2.200")
        return f"ip4:{ipaddress.IPv4Network((base, prefix), strict=False).network_address}/{prefix}"

    def _ip6(self, owner: str, depth: int) -> str:
        ip = self.ip if self.ip.version == 6 else ipaddress.IPv6Address("2001:db8:ffff::9")
        prefix = self.rng.choice([128, 64, 48])
        return f"ip6:{ipaddress.IPv6Network((ip, prefix), strict=False).network_address}/{prefix}"

    def _a(self, owner: str, depth: int) -> str:
        if self.rng.random() < 0.3:
            self.add(owner, *self.address(self.rng.choice(["match", "near", "far"])))
            return "a" + self.cidr()
        host = self.name("host")
        self.hosts(host)
        return f"a:{host}{self.cidr()}"

    def _mx(self, owner: str, depth: int) -> str:
        target = owner if self.rng.random() < 0.3 else self.name("mxd")
        roll = self.rng.random()
        if roll < 0.1:
            self.scenario.servfail.add(target)
        elif roll < 0.2:
            self.add(target, "TXT", "no mx here")
        elif roll < 0.25:
            self.add(target, "MX", "0 .")
        else:
            count = 11 if roll > 0.97 else self.rng.randint(1, 4)
            for preference in range(count):
                host = self.name("mxh")
                self.add(target, "MX", f"{preference * 10} {host}")
                self.hosts(host)
        return ("mx" if target == owner else f"mx:{target}") + self.cidr()

    def _ptr(self, owner: str, depth: int) -> str:
        if not self.ptr_done:
            self.ptr_done = True
            reverse = self.ip.reverse_pointer
            roll = self.rng.random()
            if roll < 0.1:
                self.scenario.servfail.add(reverse)
            elif roll > 0.2:
                for _ in range(self.rng.randint(1, 3)):
                    name = self.name("ptr") if self.rng.random() < 0.8 else f"ptr{self.count}.other-{self.base}"
                    self.add(reverse, "PTR", name)
                    self.hosts(name)
        return self.rng.choice(["ptr", f"ptr:{self.base}", f"ptr:{ROOT}", "ptr:nowhere.test"])

    def _exists(self, owner: str, depth: int) -> str:
        zone = self.name("ex")
        macro, expected = self.rng.choice(
            [
                ("%{i}", self.dotted(False)),
                ("%{ir}.%{v}", f"{self.dotted(True)}.{self.v()}"),
                ("%{l}", self.local),
                ("%{l1r-}", self.local.split("-")[0]),
                ("%{o}", self.base),
                ("%{d}", owner),
                ("%{d2}", ".".join(owner.split(".")[-2:])),
                ("%{h}", self.helo),
                ("%{p}", None),
                ("lit", "lit"),
            ]
        )
        if expected is not None and self.rng.random() < 0.6:
            self.add(f"{expected}.{zone}", "A", "127.0.0.2")
        elif self.rng.random() < 0.3:
            self.add(f"*.{zone}", "A", "127.0.0.2")
        return f"exists:{macro}.{zone}"

    def _include(self, owner: str, depth: int) -> str:
        return "include:" + self.target(owner, depth)

    def target(self, owner: str, depth: int) -> str:
        """A name for include/redirect: a child record, or one of the ways such a name goes wrong."""
        roll = self.rng.random()
        if roll < 0.6:
            child = self.name("inc")
            self.record(child, depth + 1)
            return child
        if roll < 0.68:
            return self.name("nx")
        if roll < 0.74:
            name = self.name("nospf")
            self.add(name, "TXT", "not spf")
            return name
        if roll < 0.8:
            name = self.name("fail")
            self.scenario.servfail.add(name)
            return name
        if roll < 0.86:
            return self.base  # a loop back to the top
        zone = self.name("lp")
        if self.rng.random() < 0.7:
            self.add(f"{self.local}.{zone}", "TXT", self.rng.choice(["v=spf1 +all", "v=spf1 ?all", "v=spf1 -all"]))
        return "%{l}." + zone

    def explanation(self) -> str:
        name = self.name("exp")
        roll = self.rng.random()
        if roll < 0.6:
            self.add(name, "TXT", "%{c} may not send for %{d} (%{l} at %{o})")
        elif roll < 0.75:
            self.add(name, "TXT", "one")
            self.add(name, "TXT", "two")
        elif roll < 0.85:
            self.scenario.servfail.add(name)
        return name

    def dotted(self, reverse: bool) -> str:
        if self.ip.version == 4:
            parts = str(self.ip).split(".")
        else:
            parts = list(self.ip.exploded.replace(":", ""))
        return ".".join(reversed(parts) if reverse else parts)

    def v(self) -> str:
        return "in-addr" if self.ip.version == 4 else "ip6"


def generate(count: int, seed: int) -> list[Scenario]:
    """`count` scenarios, the same ones for the same seed."""
    rng = random.Random(seed)
    scenarios = []
    for index in range(count):
        builder = _Builder(index, random.Random(rng.getrandbits(64)))
        roll = builder.rng.random()
        if roll < 0.03:
            builder.add(builder.base, "TXT", "no spf at all")  # result none
        else:
            builder.record(builder.base, 0)
        scenarios.append(builder.scenario)
    return scenarios


def zone_records(scenarios: list[Scenario]) -> dict[str, list[tuple[str, Any]]]:
    """One root zone holding every scenario (names are absolute, so each scenario keeps to its own subtree)."""
    records: dict[str, list[tuple[str, Any]]] = {}
    for scenario in scenarios:
        for name, entries in scenario.records.items():
            records.setdefault(name.rstrip(".") + ".", []).extend(entries)
    return records
