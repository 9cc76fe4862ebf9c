"""The `tag=value; tag=value` lists of DKIM keys (RFC 6376 §3.2), DMARC, TLS-RPT, BIMI and MTA-STS records.

Pure and total: any input gives a `TagList` (with its problems listed), never an exception, so a hostile record
can only produce findings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_FWS = re.compile(r"[ \t\r\n]+")
MAX_ERRORS = 5


@dataclass
class TagList:
    tags: dict[str, str] = field(default_factory=dict)  # first occurrence of each tag, names lower-cased
    order: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # syntax problems, as readable sentences
    duplicates: list[str] = field(default_factory=list)
    values: dict[str, list[str]] = field(default_factory=dict)  # every occurrence of each tag, in order

    def all(self, name: str) -> list[str]:
        """Every value given for a tag (duplicates included): a later duplicate may hold what the first lacks."""
        return self.values.get(name, [])

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.tags.get(name, default)


def parse_tags(text: str, *, max_tags: int = 64) -> TagList:
    """Split a tag list; values keep inner spaces collapsed (FWS), names are case-insensitive."""
    result = TagList()
    parts = text.split(";")
    if parts and parts[-1].strip() == "":
        parts = parts[:-1]  # a trailing ";" is allowed
    for position, part in enumerate(parts, start=1):
        if position > max_tags:
            result.errors.append(f"more than {max_tags} tags; the rest were ignored")
            break
        if not part.strip():
            result.errors.append(f"empty tag at position {position}")
            continue
        name, sep, value = part.partition("=")
        name = name.strip(" \t\r\n")
        if not sep:
            result.errors.append(f"'{_short(part.strip())}' at position {position} has no '='")
            continue
        if not _TAG_NAME.match(name):
            result.errors.append(f"'{_short(name)}' at position {position} is not a valid tag name")
            continue
        value = _FWS.sub(" ", value).strip()
        bad = sorted({ch for ch in value if not (0x20 <= ord(ch) <= 0x7E) or ch == ";"})
        if bad:
            shown = ", ".join(f"U+{ord(ch):04X}" for ch in bad[:5])
            result.errors.append(f"tag '{name}' has characters not allowed in a tag value ({shown})")
        key = name.lower()
        result.values.setdefault(key, []).append(value)
        if key in result.tags:
            if key not in result.duplicates:
                result.duplicates.append(key)
            continue
        result.tags[key] = value
        result.order.append(key)
    if len(result.errors) > MAX_ERRORS:
        result.errors = result.errors[:MAX_ERRORS] + [f"and {len(result.errors) - MAX_ERRORS} more syntax errors"]
    return result


def _short(value: str, limit: int = 40) -> str:
    value = "".join(ch if ch.isprintable() else "\ufffd" for ch in value)
    return value if len(value) <= limit else value[: limit - 1] + "…"
