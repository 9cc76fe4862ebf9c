"""The SPF tree of issue 9's attack, as zone data for NSD (used by tests/test_spf_budget.py and bench/spf_attack.py).

59 includes, each a record of hundreds of a/mx/exists terms: before the fix a single `check` of it sent thousands
to tens of thousands of DNS queries at once.
"""

from __future__ import annotations

from adapters.emailauth.spf_parse import MAX_RECORD_CHARS

ORIGIN = "t"
INCLUDES = 59
TERMS_PER_INCLUDE = 250


def attack_zone(includes: int = INCLUDES, terms: int = TERMS_PER_INCLUDE) -> dict[str, list]:
    """`atk.t`: 59 includes `i<n>.t`, each a record of `terms` a/mx/exists terms on distinct names that all
    resolve (a wildcard), so no void lookup stops an evaluator early; `vatk.t`: the same with names that do not
    exist (under `nx.t`), so the void-lookup limit stops it."""
    kinds = ("a", "mx", "exists")
    zone: dict[str, list] = {
        "*": [("A", "192.0.2.1"), ("MX", "10 mx.atk.t")],
        "nx": [("TXT", "nothing below")],
        "mx.atk": [("A", "192.0.2.25")],
    }
    for root, prefix, suffix in (("atk", "i", "t"), ("vatk", "v", "nx.t")):
        zone[root] = [
            ("TXT", "v=spf1 " + " ".join(f"include:{prefix}{n}.t" for n in range(includes)) + " -all"),
            ("MX", "10 mx.atk.t"),
        ]
        for n in range(includes):
            body = " ".join(f"{kinds[k % 3]}:{n}k{k}.{suffix}" for k in range(terms))
            record = f"v=spf1 {body} ~all"
            assert len(record) < MAX_RECORD_CHARS  # a record the parser reads, not a syntax error
            zone[f"{prefix}{n}"] = [("TXT", record)]
    return zone
