"""Domain names as users type them → the ASCII (punycode) form the checks query, or a reason it is not one."""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)\Z")


class NotADomain(ValueError):
    """The text is not a domain name; the message says why, for the user."""


def normalise_domain(text: str) -> str:
    raw = text.strip()
    if raw.lower().startswith(("http://", "https://", "http[:]//", "https[:]//")):  # typed, or made inert
        raise NotADomain(f"'{raw[:80]}' is a URL; give just the domain, e.g. contoso.com")
    if "@" in raw:
        raise NotADomain(f"'{raw[:80]}' looks like an e-mail address; give the part after @")
    name = raw.rstrip(".").lower()
    if not name:
        raise NotADomain("no domain given")
    try:
        ipaddress.ip_address(name.strip("[]"))
        raise NotADomain(f"'{raw[:80]}' is an IP address, not a domain name")
    except ValueError as exc:
        if isinstance(exc, NotADomain):
            raise
    if not name.isascii():
        name = _to_ascii(name, raw)
    labels = name.split(".")
    if len(labels) < 2:
        raise NotADomain(f"'{raw[:80]}' has no dot; give a full domain such as contoso.com")
    if len(name) > 253:
        raise NotADomain("the name is longer than 253 characters")
    for label in labels:
        if not _LABEL.match(label):
            raise NotADomain(
                f"'{raw[:80]}' is not a domain name (label '{label[:63]}' is empty, too long, or has "
                "characters other than letters, digits and hyphens)"
            )
    return name


def _to_ascii(name: str, raw: str) -> str:
    try:
        import idna

        return idna.encode(name, uts46=True).decode("ascii")
    except ImportError:
        pass
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise NotADomain(f"'{raw[:80]}' is not a valid internationalised domain name ({exc})") from None
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise NotADomain(f"'{raw[:80]}' is not a valid internationalised domain name ({exc})") from None
