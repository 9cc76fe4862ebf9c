"""Organisational domains from the public suffix list (the maintained `publicsuffixlist` package).

The list is loaded once per process on first use (not at import), so `check` starts fast.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _psl() -> Any:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def org_domain(domain: str) -> str | None:
    """The registrable domain (`mail.example.co.uk` → `example.co.uk`); None for a public suffix itself."""
    try:
        return _psl().privatesuffix(domain.lower().rstrip("."))
    except Exception:  # noqa: BLE001 - odd input: no organisational domain rather than a crash
        return None


def same_org(a: str, b: str) -> bool:
    return (org_domain(a) or a.lower()) == (org_domain(b) or b.lower())
