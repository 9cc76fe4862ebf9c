"""SPF record syntax (RFC 7208 §4.5, §4.6, §5, §6, §7.1): a pure parser that says where a record is wrong.

`check_host` must return permerror for any syntax error anywhere in the record before it evaluates anything, and
the lint must tell the user which character to fix, so every error carries the 0-based position in the record.
The parser never raises anything but `SpfSyntaxError`, whatever text it is given.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from adapters.emailauth.spf_macros import MacroSyntaxError, ends_with_macro, validate_macro_string

DNS_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})  # count toward the 10-lookup limit
MECHANISMS = DNS_MECHANISMS | {"all", "ip4", "ip6"}
QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MAX_RECORD_CHARS = 4096  # far beyond any legal record; bounds the work done on hostile input

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")
_CIDR_RE = re.compile(r"(?:/(0|[1-9][0-9]{0,2}))?(?://(0|[1-9][0-9]{0,2}))?\Z")
_TOPLABEL_RE = re.compile(r"(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9\-]*[A-Za-z0-9])\Z")
_QNUM = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]|[0-9])"
_IP4_RE = re.compile(rf"{_QNUM}(?:\.{_QNUM}){{3}}\Z")


class SpfSyntaxError(ValueError):
    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at character {position + 1})")
        self.reason = message
        self.position = position


@dataclass(frozen=True)
class Term:
    """One directive or modifier, as written and as understood."""

    text: str
    position: int
    kind: str  # "mechanism" | "modifier"
    name: str  # lower case
    qualifier: str = ""  # "+", "-", "~", "?" for mechanisms ("+" when omitted)
    value: str | None = None  # domain-spec, macro-string, or the address text of ip4/ip6
    cidr4: int | None = None
    cidr6: int | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None

    @property
    def result(self) -> str:
        return QUALIFIERS.get(self.qualifier or "+", "pass")

    @property
    def counts_lookup(self) -> bool:
        return (self.kind == "mechanism" and self.name in DNS_MECHANISMS) or (
            self.kind == "modifier" and self.name == "redirect"
        )


@dataclass
class SpfRecord:
    text: str
    terms: list[Term] = field(default_factory=list)

    @property
    def mechanisms(self) -> list[Term]:
        return [t for t in self.terms if t.kind == "mechanism"]

    @property
    def redirect(self) -> Term | None:
        return next((t for t in self.terms if t.kind == "modifier" and t.name == "redirect"), None)

    @property
    def exp(self) -> Term | None:
        return next((t for t in self.terms if t.kind == "modifier" and t.name == "exp"), None)


def is_spf_record(text: str | bytes) -> bool:
    """Whether a TXT string is an SPF record: the version section is exactly "v=spf1", then a space or the end."""
    head = text[:7].lower()
    if isinstance(head, bytes):
        return head == b"v=spf1" or head == b"v=spf1 "
    return head in ("v=spf1", "v=spf1 ")


def parse_record(text: str) -> SpfRecord:
    """The terms of an SPF record; raises `SpfSyntaxError` (with the position) for the first error."""
    if not isinstance(text, str):
        raise SpfSyntaxError("the record is not text", 0)
    if len(text) > MAX_RECORD_CHARS:
        raise SpfSyntaxError(f"the record is longer than {MAX_RECORD_CHARS} characters", MAX_RECORD_CHARS)
    if not is_spf_record(text):
        raise SpfSyntaxError('an SPF record starts with "v=spf1"', 0)
    record = SpfRecord(text)
    seen_modifiers: set[str] = set()
    position = 6
    for raw, start in _split_terms(text, position):
        term = parse_term(raw, start)
        if term.kind == "modifier" and term.name in ("redirect", "exp"):
            if term.name in seen_modifiers:
                raise SpfSyntaxError(f'"{term.name}=" appears more than once', start)
            seen_modifiers.add(term.name)
        record.terms.append(term)
    return record


def _split_terms(text: str, start: int) -> list[tuple[str, int]]:
    """Terms separated by one or more spaces (RFC 7208 §4.6.1); any other control character is an error."""
    for index, char in enumerate(text):
        if not (0x20 <= ord(char) <= 0x7E):
            what = "a non-ASCII character" if ord(char) > 0x7E else "a control character"
            raise SpfSyntaxError(f"{what} (U+{ord(char):04X}) is not allowed in an SPF record", index)
    if len(text) > start and text[start] != " ":
        raise SpfSyntaxError('"v=spf1" must be followed by a space', start)
    terms = []
    for match in re.finditer(r"[^ ]+", text[start:]):
        terms.append((match.group(0), start + match.start()))
    return terms


def parse_term(raw: str, start: int) -> Term:
    modifier = _NAME_RE.match(raw)
    if modifier and raw[modifier.end() : modifier.end() + 1] == "=":
        name = modifier.group(0).lower()
        value = raw[modifier.end() + 1 :]
        value_at = start + modifier.end() + 1
        if name in ("redirect", "exp"):
            _check_domain_spec(value, value_at, f"{name}=")
        else:
            _check_macro(value, value_at, explanation=False)
        return Term(raw, start, "modifier", name, value=value)
    qualifier = raw[0] if raw[0] in QUALIFIERS else ""
    body = raw[1:] if qualifier else raw
    body_at = start + len(qualifier)
    name_match = re.match(r"[A-Za-z0-9]*", body)
    name = name_match.group(0).lower() if name_match else ""
    rest, rest_at = body[len(name) :], body_at + len(name)
    if name not in MECHANISMS:
        if "=" in raw and not modifier:
            raise SpfSyntaxError(f'"{raw[:40]}" is not a valid modifier name', start)
        raise SpfSyntaxError(f'unknown mechanism "{(name or raw)[:40]}"', start)
    qualifier = qualifier or "+"
    if name == "all":
        if rest:
            raise SpfSyntaxError('"all" takes no argument', rest_at)
        return Term(raw, start, "mechanism", name, qualifier)
    if name in ("ip4", "ip6"):
        return _ip_term(raw, start, qualifier, name, rest, rest_at)
    if name in ("include", "exists"):
        if not rest.startswith(":") or len(rest) == 1:
            raise SpfSyntaxError(f'"{name}" needs ":" and a domain', rest_at)
        _check_domain_spec(rest[1:], rest_at + 1, name)
        return Term(raw, start, "mechanism", name, qualifier, value=rest[1:])
    # a, mx, ptr: [":" domain-spec] and, for a/mx, a dual CIDR length
    cidr4 = cidr6 = None
    if name in ("a", "mx"):
        domain, cidr4, cidr6 = _split_cidr(rest, rest_at)
    else:
        domain = rest
    if domain and not domain.startswith(":"):
        raise SpfSyntaxError(f'unexpected "{domain[:20]}" after "{name}"', rest_at)
    spec = domain[1:] if domain else None
    if spec is not None:
        if not spec:
            raise SpfSyntaxError(f'"{name}:" needs a domain after the colon', rest_at)
        _check_domain_spec(spec, rest_at + 1, name)
    return Term(raw, start, "mechanism", name, qualifier, value=spec, cidr4=cidr4, cidr6=cidr6)


def _split_cidr(rest: str, at: int) -> tuple[str, int | None, int | None]:
    """The dual CIDR suffix ("/n", "//n" or "/n//m") at the very end; any other "/" belongs to the domain-spec."""
    match = re.search(r"(?:/([0-9]+))?(?://([0-9]+))?\Z", rest)
    if match is None or match.start() == len(rest):
        return rest, None, None
    cidr4_text, cidr6_text = match.group(1), match.group(2)
    for text, limit, label in ((cidr4_text, 32, "IPv4"), (cidr6_text, 128, "IPv6")):
        if text is not None and (len(text) > 1 and text[0] == "0" or int(text[:4]) > limit):
            raise SpfSyntaxError(f'invalid {label} CIDR length "/{text[:10]}"', at + match.start())
    return (
        rest[: match.start()],
        int(cidr4_text) if cidr4_text is not None else None,
        int(cidr6_text) if cidr6_text is not None else None,
    )


def _ip_term(raw: str, start: int, qualifier: str, name: str, rest: str, at: int) -> Term:
    if not rest.startswith(":") or len(rest) == 1:
        raise SpfSyntaxError(f'"{name}" needs ":" and an address', at)
    address, _, length = rest[1:].partition("/")
    limit = 32 if name == "ip4" else 128
    prefix = limit
    if length or rest.endswith("/"):
        if not re.fullmatch(r"0|[1-9][0-9]{0,2}", length) or int(length) > limit:
            raise SpfSyntaxError(f'invalid CIDR length "/{length[:10]}" for {name}', at + 1 + len(address))
        prefix = int(length)
    try:
        if name == "ip4":
            if not _IP4_RE.match(address):
                raise ValueError
            network: ipaddress.IPv4Network | ipaddress.IPv6Network = ipaddress.IPv4Network(
                (address, prefix), strict=False
            )
        else:
            if "%" in address or not address:
                raise ValueError
            network = ipaddress.IPv6Network((ipaddress.IPv6Address(address), prefix), strict=False)
    except ValueError:
        raise SpfSyntaxError(
            f'"{address[:45]}" is not an {"IPv4" if name == "ip4" else "IPv6"} address', at + 1
        ) from None
    return Term(
        raw,
        start,
        "mechanism",
        name,
        qualifier,
        value=address,
        cidr4=prefix if name == "ip4" else None,
        cidr6=prefix if name == "ip6" else None,
        network=network,
    )


def _check_macro(value: str, at: int, *, explanation: bool) -> None:
    try:
        validate_macro_string(value, explanation=explanation)
    except MacroSyntaxError as exc:
        raise SpfSyntaxError(exc.reason, at + exc.position) from None


def _check_domain_spec(value: str, at: int, what: str) -> None:
    """domain-spec = macro-string domain-end; domain-end = ("." toplabel ["."]) / macro-expand (§7.1)."""
    if not value:
        raise SpfSyntaxError(f'"{what}" needs a domain', at)
    _check_macro(value, at, explanation=False)
    if ends_with_macro(value):
        return
    trimmed = value[:-1] if value.endswith(".") else value
    dot = trimmed.rfind(".")
    toplabel = trimmed[dot + 1 :]
    if dot < 0 or not toplabel:
        raise SpfSyntaxError(f'"{value[:60]}" is not a domain name with a top-level label', at)
    if not _TOPLABEL_RE.match(toplabel):
        raise SpfSyntaxError(f'"{toplabel[:30]}" is not a valid top-level label', at + dot + 1)
