"""`python app.py investigate` and `hunt` as real subprocesses against the Graph stand-in: the JSON contract and
the exit codes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.support.graph_standin import Fault, GraphStandin
from tests.support.graph_standin.fixtures import CONTOSO
from tests.support.graph_standin.incident_routes import register
from tests.support.graph_standin.incident_world import VPN_IP, build
from tests.test_mfa_cli import cli

INVESTIGATE_KEYS = {
    "user": str,
    "tenant": str,
    "window": dict,
    "verdict": str,
    "sign_ins": dict,
    "audits": list,
    "inbox_rules": list,
    "consents": list,
    "devices": list,
    "findings": list,
    "not_read": list,
}
SIGN_IN_KEYS = {"total": int, "failures": int, "countries": list, "ips": list, "impossible_travel": list}
HUNT_KEYS = {"tenant": str, "window": dict, "seeds": dict, "accounts": list, "checked": int, "not_read": list}


@pytest.fixture
async def standin(monkeypatch: pytest.MonkeyPatch) -> GraphStandin:  # type: ignore[misc]
    async with GraphStandin(home_tenant=CONTOSO, extensions=[register]) as graph:
        for key, value in graph.environ().items():
            monkeypatch.setenv(key, value)
        build(graph, now=dt.datetime.now(dt.UTC).replace(microsecond=0))
        yield graph


async def test_investigate_json_follows_the_contract(standin: GraphStandin, tmp_path: Path) -> None:
    code, out, err = await cli(standin, tmp_path, "investigate", "alice@contoso.com", "--days", "7", "--json")
    assert code == 0, err
    data = json.loads(out)
    for key, kind in INVESTIGATE_KEYS.items():
        assert isinstance(data[key], kind), key
    for key, kind in SIGN_IN_KEYS.items():
        assert isinstance(data["sign_ins"][key], kind), key
    assert set(data["window"]) == {"from", "to"} and data["user"] == "alice@contoso.com"
    assert {"country": "SE", "count": 2, "new": True} in data["sign_ins"]["countries"]
    assert {"ip": VPN_IP, "count": 2, "country": "SE", "new": True} in data["sign_ins"]["ips"]
    assert all(set(f) == {"code", "severity", "message", "at"} for f in data["findings"])
    assert data["verdict"].startswith("likely compromised: new country SE")


async def test_hunt_json_follows_the_contract(standin: GraphStandin, tmp_path: Path) -> None:
    code, out, err = await cli(standin, tmp_path, "hunt", "alice@contoso.com", "--tenant", "Contoso", "--json")
    assert code == 0, err
    data = json.loads(out)
    for key, kind in HUNT_KEYS.items():
        assert isinstance(data[key], kind), key
    assert data["seeds"]["ips"] == [VPN_IP] and data["checked"] == 3  # Alice, Bob, Dave: Graph filtered Carol out
    assert data["cut_short"] == [] and data["pages_read"] == 2  # one page from the IP, one of risky sign-ins
    assert [a["user"] for a in data["accounts"]] == ["bob@contoso.com", "dave@contoso.com"]
    assert all({"user", "ips", "last_seen", "reasons"} <= set(a) for a in data["accounts"])
    code, out, err = await cli(standin, tmp_path, "hunt", VPN_IP, "--json")
    assert code == 0, err
    assert {a["user"] for a in json.loads(out)["accounts"]} == {
        "alice@contoso.com",
        "bob@contoso.com",
        "dave@contoso.com",
    }


async def test_exit_codes(standin: GraphStandin, tmp_path: Path) -> None:
    for args, says in (
        (("investigate", "alice@contoso.com", "--days", "31"), "from 1 to 30"),
        (("investigate", "alice at contoso"), "neither a sign-in name"),
        (("investigate", "nobody@contoso.com"), "No such user"),
        (("hunt", "10.0.0.300"), "neither a sign-in name"),
    ):
        code, _, err = await cli(standin, tmp_path, *args)
        assert code == 2 and says in err, (args, err)
    standin.add_fault(Fault.licence("/auditLogs/signIns"))
    for path in ("/auditLogs/directoryAudits", "/messageRules", "/oauth2PermissionGrants", "/managedDevices"):
        standin.add_fault(Fault.permission(path))
    code, out, err = await cli(standin, tmp_path, "investigate", "alice@contoso.com", "--json")
    assert code == 3 and len(json.loads(out)["not_read"]) == 5 and "Entra ID P1 or P2" in err
    code, _, err = await cli(standin, tmp_path, "hunt", VPN_IP)
    assert code == 3 and "AuditLog.Read.All" not in err and "P1 or P2" in err
