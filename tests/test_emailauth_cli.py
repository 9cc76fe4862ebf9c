"""`python app.py check` as scripts use it: a real process, real DNS (NSD), exit codes, JSON shape, unicode
domains, one-line errors, and no Graph/Bot Framework import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def app(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "app.py", "check", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def ns(server) -> str:
    return f"127.0.0.1:{server.port}"


def test_json_for_one_domain_is_an_object(dns_zones) -> None:
    done = app("ea-good.test", "--nameserver", ns(dns_zones), "--json", "--selector", "custom2024")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["domain"] == "ea-good.test" and report["checks"]["dmarc"]["policy"] == "reject"
    assert report["checks"]["dkim"]["selectors"]["custom2024"]["key_bits"] == 2048


def test_several_domains_give_a_list_in_order(dns_zones) -> None:
    done = app("ea-good.test", "EA-WEAK.test.", "ea-none.test", "--nameserver", ns(dns_zones), "--json")
    assert done.returncode == 0, done.stderr
    reports = json.loads(done.stdout)
    assert [r["domain"] for r in reports] == ["ea-good.test", "ea-weak.test", "ea-none.test"]
    assert reports[2]["checks"]["dmarc"]["status"] == "none"


def test_unicode_domains_are_checked_as_punycode(dns_zones) -> None:
    done = app("bücher.test", "--nameserver", ns(dns_zones), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["domain"] == "xn--bcher-kva.test" and report["checks"]["dmarc"]["policy"] == "reject"


def test_findings_are_exit_zero_and_text_output_names_every_area(dns_zones) -> None:
    done = app("ea-weak.test", "--nameserver", ns(dns_zones))
    assert done.returncode == 0, done.stderr
    for label in ("SPF", "DMARC", "DKIM", "MX", "MTA-STS", "TLS-RPT", "BIMI", "DNSSEC"):
        assert f" {label} " in done.stdout
    assert "fix: " in done.stdout and "grade " in done.stdout.splitlines()[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["not a domain"], "no dot"),
        (["192.0.2.1"], "IP address"),
        (["contoso.com", "--nameserver", "dns.example"], "not an IP address"),
        (["contoso.com", "--timeout", "0"], "--timeout"),
        (["contoso.com", "--timeout", "soon"], "invalid float"),
        (["contoso.com", "--selector", "bad selector"], "not a DKIM selector"),
        ([], "required"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], says: str) -> None:
    done = app(*args)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in done.stderr


def test_check_does_not_import_graph_or_the_bot_framework(dns_zones) -> None:
    code = (
        "import contextlib, io, json, sys\n"
        "import app\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = app.main(['check', 'ea-good.test', '--nameserver', '{ns(dns_zones)}', '--json'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('msgraph', 'botbuilder', 'botframework', 'kiota_abstractions', 'msal'))\n"
        "print(json.dumps({'rc': rc, 'heavy': heavy}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"rc": 0, "heavy": []}
