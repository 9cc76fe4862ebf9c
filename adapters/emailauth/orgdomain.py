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
    """The package's built-in list through its public constructor (punycode rules included: the check sees
    IDN domains in their ASCII form)."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def org_domain(domain: str) -> str | None:
    """The registrable domain (`mail.example.co.uk` → `example.co.uk`); None for a public suffix itself."""
    try:
        found: str | None = _psl().privatesuffix(domain.lower().rstrip("."))
        return found
    except Exception:  # noqa: BLE001 - odd input: no organisational domain rather than a crash
        return None


def same_org(a: str, b: str) -> bool:
    return (org_domain(a) or a.lower()) == (org_domain(b) or b.lower())
