"""Issue 10's RFC cases through the CLI as scripts use it (`app.py check|spf … --json`, a real process, NSD serving
tests/zones/rfc-cases.zone): DMARC per RFC 7489 §6.4/§6.6.3, the deciding term of a qualified include, "could not
check" with no grade, and one line for a domain that does not exist."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from adapters.emailauth.dmarc_record import judge_policy, parse_dmarc
from adapters.emailauth.tags import parse_tags

ROOT = Path(__file__).resolve().parents[1]


def app(command: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "app.py", command, *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def check(domain: str, address: tuple[str, int], *extra: str) -> dict[str, Any]:
    done = app("check", domain, "--nameserver", f"{address[0]}:{address[1]}", "--json", "--timeout", "5", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def codes(result: dict[str, Any]) -> set[str]:
    return {f["code"] for f in result["findings"]}


# ---------------------------------------------------------------- DMARC through `check --json`


@pytest.mark.parametrize("domain", ["sp-invalid.rfc.test", "p-invalid.rfc.test"])
def test_an_invalid_p_or_sp_with_a_valid_rua_means_p_none_in_force(dns_zones, domain: str) -> None:
    dmarc = check(domain, dns_zones.address)["checks"]["dmarc"]
    assert (dmarc["policy"], dmarc["subdomain_policy"]) == ("none", None)  # not the invalid tag's neighbour
    assert dmarc["status"] == "fail"
    invalid = next(f for f in dmarc["findings"] if f["code"] in ("dmarc.p_invalid", "dmarc.sp_invalid"))
    assert "act as if the record said p=none" in invalid["message"] and "§6.6.3" in invalid["message"]
    assert "dmarc.policy_none" in codes(dmarc)


def test_an_invalid_p_without_a_valid_rua_is_no_dmarc_at_all(dns_zones) -> None:
    dmarc = check("p-invalid-norua.rfc.test", dns_zones.address)["checks"]["dmarc"]
    assert (dmarc["status"], dmarc["policy"]) == ("fail", None)
    assert "ignore the whole record" in next(f for f in dmarc["findings"] if f["code"] == "dmarc.p_invalid")["message"]


def test_lower_case_version_is_not_a_dmarc_record_and_the_report_says_so(dns_zones) -> None:
    dmarc = check("lower-v.rfc.test", dns_zones.address)["checks"]["dmarc"]
    assert (dmarc["status"], dmarc["policy"], dmarc["record"]) == (
        "fail",
        None,
        "v=dmarc1; p=reject; rua=mailto:d@reports.rfc.test",
    )
    found = next(f for f in dmarc["findings"] if f["code"] == "dmarc.version_case")
    assert found["severity"] == "error" and "not a DMARC record" in found["message"]
    assert found["fix"] == "Publish TXT at _dmarc.lower-v.rfc.test: `v=DMARC1; p=reject; rua=mailto:d@reports.rfc.test`"


def test_whitespace_before_the_version_is_not_a_dmarc_record_with_the_fix(dns_zones) -> None:
    dmarc = check("space.rfc.test", dns_zones.address)["checks"]["dmarc"]
    assert (dmarc["status"], dmarc["policy"]) == ("fail", None)
    found = next(f for f in dmarc["findings"] if f["code"] == "dmarc.leading_whitespace")
    assert found["severity"] == "warning" and "not a DMARC record" in found["message"]
    assert found["fix"].endswith("`v=DMARC1; p=reject; rua=mailto:d@reports.rfc.test`")


def test_a_sub_domain_record_that_is_not_dmarc_leaves_the_parent_policy_in_force(dns_zones) -> None:
    dmarc = check("sub.parent.rfc.test", dns_zones.address)["checks"]["dmarc"]
    assert (dmarc["status"], dmarc["policy"]) == ("fail", "reject")
    assert {"dmarc.version_case", "dmarc.inherited"} <= codes(dmarc)


def test_tag_values_are_case_insensitive(dns_zones) -> None:
    dmarc = check("case.rfc.test", dns_zones.address)["checks"]["dmarc"]
    assert (dmarc["status"], dmarc["policy"], dmarc["subdomain_policy"]) == ("pass", "reject", "reject")
    assert not {"dmarc.fo_invalid", "dmarc.adkim_invalid", "dmarc.rua_invalid", "dmarc.no_rua"} & codes(dmarc)


def test_a_valid_rua_in_a_duplicate_tag_is_reported_as_the_duplicate_not_as_no_rua(dns_zones) -> None:
    dmarc = check("dup-rua.rfc.test", dns_zones.address)["checks"]["dmarc"]
    assert "dmarc.no_rua" not in codes(dmarc)
    found = next(f for f in dmarc["findings"] if f["code"] == "dmarc.rua_duplicate")
    assert "mailto:d@reports.rfc.test" in found["message"]
    assert found["fix"] == "Keep one tag: `rua=mailto:d@reports.rfc.test`"


@pytest.mark.parametrize(
    ("text", "valid", "policy"),
    [
        ("v=DMARC1; p=reject", True, "reject"),
        ("V = DMARC1 ; p=reject", True, "reject"),  # "v" is an ABNF string
        ("v=Dmarc1; p=reject", False, None),
        ("\tv=DMARC1; p=reject", False, None),
        ("v=DMARC1; p=none; sp=Reject; rua=mailto:a@example.com", True, "none"),
    ],
)
def test_version_and_policy_parsing(text: str, valid: bool, policy: str | None) -> None:
    record = parse_dmarc(text)
    assert (record.valid, record.p) == (valid, policy)


def test_fo_options_are_kept_lower_case_and_every_duplicate_value_is_kept() -> None:
    assert parse_dmarc("v=DMARC1; p=none; fo=D:S").fo == "d:s"
    assert parse_tags("a=1; a=2; b=3").all("a") == ["1", "2"]
    record = parse_dmarc("v=DMARC1; p=none; rua=https://x.example; rua=mailto:r@example.com")
    assert "dmarc.no_rua" not in {f["code"] for f in judge_policy(record, "example.com")}


# ---------------------------------------------------------------- SPF through `spf --json`


def test_neutral_through_a_question_mark_include_names_the_include(dns_zones) -> None:
    host, port = dns_zones.address
    done = app("spf", "q-include.rfc.test", "203.0.113.7", "--nameserver", f"{host}:{port}", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "result": "neutral",
        "mechanism": "?include:open.rfc.test",
        "explanation": None,
        "path": ["q-include.rfc.test"],
    }


# ---------------------------------------------------------------- the headline: could not check, NXDOMAIN


def test_nothing_checkable_is_could_not_check_with_no_grade(dns_proxy) -> None:
    for name in ("down.rfc.test", "_dmarc.down.rfc.test", "_dmarc.rfc.test", "_dmarc.test"):
        dns_proxy.add(name, None, rcode="SERVFAIL")
    report = check("down.rfc.test", dns_proxy.address)
    assert (report["status"], report["grade"]) == ("could_not_check", None)
    assert report["checks"]["spf"]["status"] == report["checks"]["dmarc"]["status"] == "error"
    text = app("check", "down.rfc.test", "--nameserver", f"127.0.0.1:{dns_proxy.port}", "--timeout", "5").stdout
    first = text.splitlines()[0]
    assert "could not check" in first and "grade" not in first


def test_a_domain_that_does_not_exist_gets_one_line(dns_zones) -> None:
    report = check("no-such-domain.rfc.test", dns_zones.address)
    assert (report["status"], report["grade"]) == ("nxdomain", None)
    done = app("check", "no-such-domain.rfc.test", "--nameserver", f"127.0.0.1:{dns_zones.port}")
    assert done.returncode == 0
    assert done.stdout.strip().splitlines() == [
        "no-such-domain.rfc.test  no-such-domain.rfc.test does not exist (NXDOMAIN): there is nothing to check — "
        "is the name spelled right?"
    ]


def test_a_checked_domain_keeps_its_letter(dns_zones) -> None:
    report = check("case.rfc.test", dns_zones.address)
    assert report["status"] == "checked" and report["grade"] in {"A", "B", "C", "D", "F"}
