"""The OpenSPF RFC 7208 conformance suite (tests/vendor/openspf, BSD-3), served by NSD, through `check_host`.

Each YAML document's `zonedata` becomes one root zone on its own NSD; names marked `TIMEOUT` are answered by the
fault proxy with silence (pyspf's rule: a TIMEOUT entry times out every type that has no record listed before it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.dns.resolver import CheckResolver
from adapters.emailauth.spf_eval import spf_for

SUITE = Path(__file__).resolve().parent / "vendor" / "openspf" / "rfc7208-tests.yml"


def _load() -> list[dict[str, Any]]:
    """The suite's documents (read as latin-1: some records hold raw bytes on purpose)."""
    import yaml

    with SUITE.open(encoding="latin-1") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


DOCS = _load()
CASES = [(index, name) for index, doc in enumerate(DOCS) for name in doc["tests"]]


def _bytes(value: Any) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else str(value).encode("latin-1")


def scenario_zone(zonedata: dict[str, Any]) -> tuple[dict[str, list[tuple[str, Any]]], dict[str, set[str] | None]]:
    """(root-zone records, timeouts): timeouts maps a name to the types still answered (None: answer nothing)."""
    records: dict[str, list[tuple[str, Any]]] = {}
    timeouts: dict[str, set[str] | None] = {}
    for raw_name, entries in zonedata.items():
        name = raw_name.lower().rstrip(".") + "."
        entries = [entries] if isinstance(entries, str) else list(entries or [])
        has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
        served: list[tuple[str, Any]] = []
        answered: set[str] = set()
        generated: list[tuple[str, Any]] = []
        timed_out = False
        for entry in entries:
            if entry == "TIMEOUT":
                timed_out = True
                break
            for rdtype, value in entry.items():
                if value == "NONE" or value == []:
                    continue  # `[]` (a TXT with no strings) is not valid DNS data: RFC 1035 needs one string
                if rdtype in ("TXT", "SPF"):
                    value = [_bytes(v) for v in value] if isinstance(value, list) else _bytes(value)
                    if rdtype == "SPF" and not has_txt:
                        generated.append(("TXT", value))
                elif rdtype == "MX":
                    value = f"{value[0]} {value[1] or '.'}"
                else:
                    value = str(value)
                served.append((rdtype, value))
                answered.add(rdtype)
        if not timed_out:
            served += generated  # drivers copy SPF to TXT unless a TXT is given
            answered |= {t for t, _ in generated}
        else:
            timeouts[name.rstrip(".")] = answered or None
        records.setdefault(name, []).extend(served)
    return records, timeouts


@pytest.fixture(scope="module")
def scenario_servers(nsd_factory, dns_proxy_factory):
    started: dict[int, Any] = {}

    def get(index: int):
        if index not in started:
            records, timeouts = scenario_zone(DOCS[index]["zonedata"])
            server = nsd_factory({".": records})
            proxy = dns_proxy_factory(server.address)
            for name, answered in timeouts.items():
                proxy.add(name, None, drop=True)
                for rdtype in answered or ():
                    proxy.add(name, rdtype, passthrough=True)
            started[index] = proxy
        return started[index]

    return get


def test_suite_has_all_cases():
    assert len(CASES) == 203


@pytest.mark.parametrize(("index", "name"), CASES, ids=[n for _, n in CASES])
async def test_openspf_case(index: int, name: str, scenario_servers) -> None:
    case = DOCS[index]["tests"][name]
    proxy = scenario_servers(index)
    resolver = CheckResolver(nameservers=[proxy.address], timeout=0.5)
    outcome = await spf_for(str(case["host"]), case.get("mailfrom") or "", case["helo"], resolver)
    expected = case["result"] if isinstance(case["result"], list) else [case["result"]]
    assert outcome.result in expected, (
        f"{name}: got {outcome.result} ({outcome.reason}), expected {expected}; {case.get('description', '')}"
    )
    if "explanation" in case:
        wanted = None if case["explanation"] == "DEFAULT" else case["explanation"]
        assert outcome.explanation == wanted
