"""Organisational domains from the public suffix list (the maintained `publicsuffixlist` package).

The list is loaded once per process on first use (not at import), so `check` starts fast.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_LOADING = threading.Lock()


@functools.cache
def _psl() -> Any:
    # Areas ask from threads at the same time; without the lock each would parse the list (~70 ms of CPU each).
    with _LOADING:
        return _load()


@functools.cache
def _load() -> Any:
    """The package's built-in list, with the punycode form added only for the few hundred non-ASCII rules: the
    package's own `accept_encoded_idn` runs the IDNA codec on all ~10,000 rules (twice the load time)."""
    from publicsuffixlist import PSLFILE, PublicSuffixList, encode_idn

    with open(PSLFILE, "rb") as source:
        lines = source.read().decode("utf-8").splitlines()
    encoded = []
    for line in lines:
        rule = line.lower().split(" ")[0].rstrip() if not line.isascii() else ""
        if rule and not rule.startswith("//"):
            encoded.append(("!" if rule.startswith("!") else "") + encode_idn(rule.lstrip("!")))
    return PublicSuffixList(source=lines + encoded, accept_encoded_idn=False)


def org_domain(domain: str) -> str | None:
    """The registrable domain (`mail.example.co.uk` → `example.co.uk`); None for a public suffix itself."""
    try:
        found: str | None = _psl().privatesuffix(domain.lower().rstrip("."))
        return found
    except Exception:  # noqa: BLE001 - odd input: no organisational domain rather than a crash
        return None


def same_org(a: str, b: str) -> bool:
    return (org_domain(a) or a.lower()) == (org_domain(b) or b.lower())
