"""User input that names a Graph user, validated before it reaches a URL or an OData `$filter`.

A user is named by a UPN / e-mail address or an object id (GUID). Anything else is refused with the reason.
`odata_string` is the only way a value may enter a `$filter`: single quotes are doubled, so `x' or 1 eq 1`
stays one string literal.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

# local part: RFC 5322 "atext" and dots (Entra UPNs are stricter; guests carry #EXT#), no quotes or spaces
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,113}$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class BadUserInput(ValueError):
    """The text does not name a user; the message says why (safe to show)."""


@dataclass(frozen=True)
class UserRef:
    """A validated user reference: `key` goes in a URL path segment (`/users/{key}`)."""

    key: str  # lower-cased UPN or canonical GUID
    domain: str | None  # the UPN's domain, None for an object id

    @property
    def is_object_id(self) -> bool:
        return self.domain is None

    def __str__(self) -> str:
        return self.key


def parse_user(text: str) -> UserRef:
    """Validate a UPN, e-mail address (optionally `mailto:` or `<...>`) or object id."""
    value = (text or "").strip()
    if value.lower().startswith("mailto:"):
        value = value[7:]
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    if not value:
        raise BadUserInput("Name a user: their sign-in name (alice@contoso.com) or their object id (a GUID).")
    if len(value) > 320:
        raise BadUserInput("That is too long to be a user name (at most 320 characters).")
    if "@" not in value:
        try:
            return UserRef(str(uuid.UUID(value)), None)
        except ValueError:
            raise BadUserInput(
                f"`{value[:80]}` is neither a sign-in name like alice@contoso.com nor an object id "
                "(a GUID like 7d5b...-...)."
            ) from None
    local, _, domain = value.rpartition("@")
    if not local or "@" in local:
        raise BadUserInput(f"`{value[:80]}` has more than one @ or nothing before it.")
    if not _LOCAL.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise BadUserInput(
            f"`{value[:80]}`: the part before @ may hold letters, digits and . _ - + ' only "
            "(no spaces, quotes or parentheses)."
        )
    domain = domain.lower().rstrip(".")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise BadUserInput(f"`{domain[:80]}` is not a valid domain name (e.g. contoso.com).")
    return UserRef(f"{local.lower()}@{domain}", domain)


def odata_string(value: str) -> str:
    """An OData string literal: wrapped in single quotes, embedded single quotes doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def odata_eq(field: str, value: str) -> str:
    """`field eq 'value'` with the value escaped; `field` must be a plain property path (not user input)."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_/]*", field):
        raise ValueError(f"not a property path: {field!r}")
    return f"{field} eq {odata_string(value)}"
