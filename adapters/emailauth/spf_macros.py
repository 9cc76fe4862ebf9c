"""SPF macros (RFC 7208 §7): syntax check and expansion of `%{...}` in domain-specs and explanations.

Kept apart from the evaluator so the parser can reject a bad macro (with its position) before any lookup, and so
the `%{p}` rule (a validated PTR name, which needs DNS) is an injected coroutine rather than a hidden lookup.
"""

from __future__ import annotations

import ipaddress
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

LETTERS = frozenset("slodiphcrtv")
EXPLANATION_ONLY = frozenset("crt")
DELIMITERS = frozenset(".-+,/_=")
MAX_DOMAIN = 253
_MACRO_RE = re.compile(r"%\{([A-Za-z])([0-9]*)(r?)([.\-+,/_=]*)\}", re.IGNORECASE)


class MacroSyntaxError(ValueError):
    def __init__(self, reason: str, position: int) -> None:
        super().__init__(f"{reason} (at character {position + 1})")
        self.reason = reason
        self.position = position


Token = tuple[str, str]  # ("literal", text) or ("macro", "%{...}") or ("escape", "%%"/"%_"/"%-")


def tokenize(text: str, *, explanation: bool = False) -> list[Token]:
    """Split a macro-string into literals and macros; raises `MacroSyntaxError` with the position of a bad one."""
    tokens: list[Token] = []
    index = 0
    literal_start = 0
    while index < len(text):
        char = text[index]
        if char != "%":
            code = ord(char)
            if explanation:
                ok = 0x20 <= code <= 0x7E
            else:
                ok = 0x21 <= code <= 0x7E
            if not ok:
                raise MacroSyntaxError(f"character U+{code:04X} is not allowed here", index)
            index += 1
            continue
        if literal_start < index:
            tokens.append(("literal", text[literal_start:index]))
        following = text[index + 1 : index + 2]
        if following in ("%", "_", "-"):
            tokens.append(("escape", "%" + following))
            index += 2
        elif following == "{":
            match = _MACRO_RE.match(text, index)
            if not match:
                raise MacroSyntaxError(f'malformed macro "{text[index : index + 12]}"', index)
            letter, digits = match.group(1).lower(), match.group(2)
            if letter not in LETTERS:
                raise MacroSyntaxError(f'unknown macro letter "{match.group(1)}"', index + 2)
            if letter in EXPLANATION_ONLY and not explanation:
                raise MacroSyntaxError(f'macro "%{{{match.group(1)}}}" is only allowed in an explanation', index)
            if digits and int(digits) == 0:
                raise MacroSyntaxError("a macro's digit transformer must not be zero", index + 3)
            tokens.append(("macro", match.group(0)))
            index = match.end()
        else:
            raise MacroSyntaxError('"%" must be followed by "{", "%", "_" or "-"', index)
        literal_start = index
    if literal_start < len(text):
        tokens.append(("literal", text[literal_start:]))
    return tokens


def validate_macro_string(text: str, *, explanation: bool = False) -> list[Token]:
    return tokenize(text, explanation=explanation)


def ends_with_macro(text: str) -> bool:
    """domain-end may be a macro-expand instead of a top-level label (§7.1)."""
    tokens = tokenize(text)
    return bool(tokens) and tokens[-1][0] != "literal"


@dataclass
class MacroContext:
    """What the macros may refer to during one check_host evaluation."""

    sender: str  # local-part@domain (postmaster@helo when the reverse path is empty)
    domain: str  # the current <domain>
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    helo: str = "unknown"
    receiver: str = "unknown"
    validated_name: Callable[[], Awaitable[str]] | None = None  # %{p}: a PTR name validated to map back to ip
    now: float | None = None
    ip_text: str | None = None  # the address as given: %{i} keeps the case of its IPv6 hex digits

    def local_part(self) -> str:
        return self.sender.rpartition("@")[0] or "postmaster"

    def sender_domain(self) -> str:
        return self.sender.rpartition("@")[2]


def ip_dotted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """%{i}: dotted quad, or (IPv6) 32 dot-separated nibbles."""
    if ip.version == 4:
        return str(ip)
    return ".".join(ip.exploded.replace(":", ""))


async def expand(text: str, ctx: MacroContext, *, explanation: bool = False) -> str:
    """The macro-string with its macros expanded (§7.3); raises `MacroSyntaxError` when it is malformed."""
    out: list[str] = []
    for kind, value in tokenize(text, explanation=explanation):
        if kind == "literal":
            out.append(value)
        elif kind == "escape":
            out.append({"%%": "%", "%_": " ", "%-": "%20"}[value])
        else:
            out.append(await _expand_macro(value, ctx))
    result = "".join(out)
    if not explanation:
        result = truncate_domain(result)
    return result


def truncate_domain(name: str) -> str:
    """Remove labels from the left until the name fits in 253 characters (§7.3)."""
    while len(name.rstrip(".")) > MAX_DOMAIN and "." in name:
        name = name.split(".", 1)[1]
    return name


async def _expand_macro(macro: str, ctx: MacroContext) -> str:
    match = _MACRO_RE.match(macro)
    assert match is not None
    letter, digits, reverse, delimiters = match.groups()
    value = await _letter_value(letter.lower(), ctx)
    delims = delimiters or "."
    parts = re.split("[" + re.escape(delims) + "]", value)
    if reverse:
        parts.reverse()
    if digits:
        count = int(digits)
        parts = parts[-count:] if count < len(parts) else parts
    result = ".".join(parts)
    if letter.isupper():
        result = urllib.parse.quote(result, safe="-._~")
    return result


async def _letter_value(letter: str, ctx: MacroContext) -> str:
    if letter == "s":
        return ctx.sender
    if letter == "l":
        return ctx.local_part()
    if letter == "o":
        return ctx.sender_domain()
    if letter == "d":
        return ctx.domain
    if letter == "i":
        dotted = ip_dotted(ctx.ip)
        given = ctx.ip_text or ""
        return dotted.upper() if ctx.ip.version == 6 and given.upper() == given and given.lower() != given else dotted
    if letter == "p":
        return await ctx.validated_name() if ctx.validated_name is not None else "unknown"
    if letter == "v":
        return "in-addr" if ctx.ip.version == 4 else "ip6"
    if letter == "h":
        return ctx.helo
    if letter == "c":
        return str(ctx.ip)
    if letter == "r":
        return ctx.receiver
    if letter == "t":
        return str(int(ctx.now if ctx.now is not None else time.time()))
    raise MacroSyntaxError(f'unknown macro letter "{letter}"', 0)
