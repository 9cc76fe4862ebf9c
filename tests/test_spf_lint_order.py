"""Issue 10 (SPF lint part): the lint judges the tree the way `check_host` evaluates it — a `+all` behind a
non-pass include lets no server pass, and terms after `all` are ignored (neither counted nor probed). Checked
against `check_host` itself, and through the `python app.py check --json` contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.dns.resolver import CheckResolver
from adapters.emailauth.spf_eval import check_host
from adapters.emailauth.spf_lint import analyse_spf

ROOT = Path(__file__).resolve().parents[1]
STRANGER = "198.51.100.77"  # listed nowhere

ZONE: dict[str, list] = {
    "plus": [("TXT", "v=spf1 +all")],
    "neutral-inc": [("TXT", "v=spf1 ip4:192.0.2.1 ?include:plus.order.test -all")],
    "soft-inc": [("TXT", "v=spf1 ip4:192.0.2.1 ~include:plus.order.test -all")],
    "fail-inc": [("TXT", "v=spf1 ip4:192.0.2.1 -include:plus.order.test -all")],
    "pass-inc": [("TXT", "v=spf1 ip4:192.0.2.1 include:plus.order.test -all")],
    "mid": [("TXT", "v=spf1 ?include:plus.order.test -all")],
    "nested": [("TXT", "v=spf1 include:mid.order.test -all")],
    "redir-plus": [("TXT", "v=spf1 ?include:hop.order.test -all")],
    "hop": [("TXT", "v=spf1 redirect=plus.order.test")],
    "after-all": [
        (
            "TXT",
            "v=spf1 ip4:192.0.2.1 -all include:far1.order.test a:nx1.order.test mx:nx2.order.test "
            "exists:nx3.order.test include:far2.order.test +all",
        )
    ],
    "far1": [("TXT", "v=spf1 +all")],
    "far2": [("TXT", "v=spf1 a:nx4.order.test -all")],
    "tail-root": [("TXT", "v=spf1 include:tail.order.test -all")],
    "tail": [("TXT", "v=spf1 ip4:192.0.2.2 ~all a:nx5.order.test a:nx6.order.test a:nx7.order.test")],
    "eleven": [
        (
            "TXT",
            "v=spf1 "
            + " ".join(f"a:h{i}.order.test" for i in range(10))
            + " -all "
            + " ".join(f"a:h{i}.order.test" for i in range(10, 20)),
        )
    ],
    **{f"h{i}": [("A", "192.0.2.50")] for i in range(20)},
}


@pytest.fixture(scope="module")
def server(nsd_factory):
    return nsd_factory({"order.test": ZONE})


@pytest.fixture
def proxy(server, dns_proxy_factory):
    proxy = dns_proxy_factory(server.address)
    yield proxy
    proxy.clear()


async def lint(address, name: str) -> dict:
    return await analyse_spf(f"{name}.order.test", CheckResolver(nameservers=[address], timeout=2))


async def evaluate(address, name: str) -> str:
    resolver = CheckResolver(nameservers=[address], timeout=2)
    return (await check_host(STRANGER, f"{name}.order.test", f"x@{name}.order.test", resolver)).result


def codes(result: dict) -> set[str]:
    return {f["code"] for f in result["findings"]}


def finding_of(result: dict, code: str) -> dict:
    return next(f for f in result["findings"] if f["code"] == code)


@pytest.mark.parametrize(
    ("name", "gives", "severity", "status"),
    [
        ("neutral-inc", "neutral", "warning", "warn"),
        ("soft-inc", "softfail", "info", "pass"),
        ("fail-inc", "fail", "info", "pass"),
    ],
)
async def test_plus_all_behind_a_non_pass_include_does_not_let_any_server_pass(server, name, gives, severity, status):
    assert await evaluate(server.address, name) == gives  # what check_host says for a stranger
    result = await lint(server.address, name)
    assert "spf.plus_all" not in codes(result)
    found = finding_of(result, "spf.plus_all_not_pass")
    assert found["severity"] == severity and f"gets {gives}, never pass" in found["message"]
    assert result["status"] == status


async def test_plus_all_behind_a_pass_include_still_fails(server):
    assert await evaluate(server.address, "pass-inc") == "pass"
    result = await lint(server.address, "pass-inc")
    assert "spf.plus_all" in codes(result) and result["status"] == "fail"


async def test_a_redirect_passes_the_result_through_and_the_include_qualifier_still_decides(server):
    assert await evaluate(server.address, "redir-plus") == "neutral"
    result = await lint(server.address, "redir-plus")
    assert "spf.plus_all" not in codes(result) and "spf.plus_all_not_pass" in codes(result)


async def test_plus_all_whose_neutral_match_an_outer_include_ignores_lets_no_server_pass(server):
    assert await evaluate(server.address, "nested") == "fail"  # mid gives neutral: no match; then -all
    result = await lint(server.address, "nested")
    found = finding_of(result, "spf.plus_all_not_pass")
    assert found["severity"] == "info" and "lets no server pass" in found["message"]
    assert "spf.plus_all" not in codes(result) and result["status"] == "pass"


async def test_terms_after_all_are_ignored_neither_counted_nor_probed(proxy):
    resolver = CheckResolver(nameservers=[proxy.address], timeout=2)
    result = await analyse_spf("after-all.order.test", resolver)
    assert await evaluate(proxy.address, "after-all") == "fail"
    assert result["dns_lookups"] == 0 and result["void_lookups"] == 0
    assert "spf.terms_after_all" in codes(result)
    assert not codes(result) & {"spf.plus_all", "spf.void_lookup", "spf.too_many_void_lookups"}
    found = finding_of(result, "spf.terms_after_all")
    assert "ignored" in found["message"] and "include:far1.order.test" in found["message"]
    assert '"v=spf1 ip4:192.0.2.1 -all"' in found["fix"]
    asked = {name for name, _ in proxy.seen}
    assert not asked & {"far1.order.test", "far2.order.test", "nx1.order.test", "nx2.order.test", "nx3.order.test"}


async def test_terms_after_all_in_an_include_are_ignored_too(server):
    result = await lint(server.address, "tail-root")
    assert result["dns_lookups"] == 1 and result["void_lookups"] == 0
    assert "spf.terms_after_all" in codes(result) and "spf.too_many_void_lookups" not in codes(result)


async def test_terms_after_all_do_not_push_a_record_over_the_limit(server):
    result = await lint(server.address, "eleven")
    assert result["dns_lookups"] == 10 and "spf.too_many_lookups" not in codes(result)
    assert "spf.lookups_near_limit" in codes(result) and "spf.terms_after_all" in codes(result)


def check_json(server, *domains: str) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "app.py", "check", *domains, "--nameserver", f"127.0.0.1:{server.port}", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_cli_json_contract_gives_the_same_answers(server) -> None:
    reports = check_json(
        server, "neutral-inc.order.test", "fail-inc.order.test", "after-all.order.test", "pass-inc.order.test"
    )
    neutral, fail, after, plus = (r["checks"]["spf"] for r in reports)
    assert "spf.plus_all" not in codes(neutral) and neutral["status"] == "warn"
    assert "spf.plus_all" not in codes(fail) and fail["status"] == "pass"
    assert after["dns_lookups"] == 0 and after["void_lookups"] == 0 and "spf.terms_after_all" in codes(after)
    assert "spf.plus_all" in codes(plus) and plus["status"] == "fail"
