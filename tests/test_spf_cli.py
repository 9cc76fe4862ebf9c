"""`python app.py spf DOMAIN IP ...`: the JSON contract, exit codes, unicode domains, and a fast start (no Graph,
no Bot Framework), run as a real process against NSD."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ZONE = {
    "@": [("TXT", "v=spf1 include:_spf.xn--bcher-kva.test -all exp=why.xn--bcher-kva.test")],
    "_spf": [("TXT", "v=spf1 ip4:192.0.2.0/24 ~all")],
    "why": [("TXT", "%{i} is not one of our servers")],
}


@pytest.fixture(scope="module")
def server(nsd_factory):
    return nsd_factory({"xn--bcher-kva.test": ZONE})


def app(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "app.py", "spf", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_json_contract_for_a_pass_through_an_include_with_a_unicode_domain(server):
    done = app("bücher.test", "192.0.2.7", "--json", "--nameserver", f"127.0.0.1:{server.port}")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == {"result", "mechanism", "explanation", "path"}
    assert result == {
        "result": "pass",
        "mechanism": "ip4:192.0.2.0/24",
        "explanation": None,
        "path": ["xn--bcher-kva.test", "include:_spf.xn--bcher-kva.test"],
    }


def test_fail_with_explanation_sender_and_helo(server):
    done = app(
        "xn--bcher-kva.test",
        "198.51.100.1",
        "--sender",
        "Ann@Bücher.test",
        "--helo",
        "mx.example.org",
        "--json",
        "--nameserver",
        f"127.0.0.1:{server.port}",
    )
    assert done.returncode == 0
    assert json.loads(done.stdout) == {
        "result": "fail",
        "mechanism": "-all",
        "explanation": "198.51.100.1 is not one of our servers",
        "path": ["xn--bcher-kva.test"],
    }


def test_text_output(server):
    done = app("bücher.test", "198.51.100.1", "--nameserver", f"127.0.0.1:{server.port}")
    assert done.returncode == 0
    assert done.stdout.startswith("SPF xn--bcher-kva.test from 198.51.100.1") and ": fail" in done.stdout


def test_unreachable_dns_is_temperror_with_exit_0(dns_proxy):
    dns_proxy.add("xn--bcher-kva.test", None, drop=True)
    done = app("bücher.test", "192.0.2.7", "--json", "--timeout", "0.3", "--nameserver", f"127.0.0.1:{dns_proxy.port}")
    assert done.returncode == 0 and json.loads(done.stdout)["result"] == "temperror"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nodot", "192.0.2.1"), "no dot"),
        (("example.com", "192.0.2.256"), "not an IP address"),
        (("example.com", "mail.example.com"), "not an IP address"),
        (("https://example.com", "192.0.2.1"), "URL"),
        (("example.com", "192.0.2.1", "--sender", "nobody"), "not an e-mail address"),
        (("example.com", "192.0.2.1", "--nameserver", "dns.example"), "nameserver"),
        (("example.com",), "required"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, message):
    done = app(*args)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr


def test_spf_does_not_import_graph_or_the_bot_framework(server):
    code = (
        "import sys, app; rc = app.main(['spf', 'bücher.test', '192.0.2.7', '--json', '--nameserver', "
        f"'127.0.0.1:{server.port}']); "
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(('msgraph', 'botbuilder', "
        "'botframework', 'msal', 'kiota'))}))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
