"""`python app.py mfa` and `mfa-report` as real subprocesses against the Graph stand-in: JSON contract, CSV, exit
codes."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sys
from pathlib import Path

import pytest

from tests.support.graph_standin import Fault, GraphStandin, payloads
from tests.support.graph_standin.fixtures import CONTOSO
from tests.test_mfa_report import synthetic

ROOT = Path(__file__).resolve().parents[1]
USER_KEYS = {
    "user": str,
    "id": str,
    "tenant": str,
    "registered": (bool, type(None)),
    "capable": (bool, type(None)),
    "is_admin": (bool, type(None)),
    "methods": list,
    "enforced": (bool, type(None)),
    "enforced_by": list,
    "report_updated": (str, type(None)),
    "verdict": str,
}
REPORT_KEYS = {
    "tenant": str,
    "users": int,
    "registered": int,
    "capable": int,
    "weak_only": int,
    "admins_without_mfa": list,
    "by_method": dict,
    "enforcement": str,
}


async def cli(standin: GraphStandin, tmp_path: Path, *args: str, config: str | None = None) -> tuple[int, str, str]:
    config_file = tmp_path / "cordon.toml"
    config_file.write_text(
        config
        if config is not None
        else f"""
[graph]
endpoint = "{standin.url}"
retry_budget_seconds = 2
[[tenants]]
name = "Contoso"
tenant_id = "{CONTOSO}"
domains = ["contoso.com"]
credential = "managed_identity"
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("Microsoft", "IDENTITY_", "CORDON_"))}
    env.update(standin.environ(), CORDON_CONFIG=str(config_file), PYTHONPATH=str(ROOT))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "app.py"),
        *args,
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, out.decode(), err.decode()


async def test_mfa_json_follows_the_contract(graph_standin: GraphStandin, tmp_path: Path) -> None:
    graph_standin.state.add_user("alice@contoso.com", registered=["fido2"], methods=[payloads.fido2_method()])
    graph_standin.state.ca_policies = [payloads.ca_policy("Require MFA for all users", include_users=["All"])]
    code, out, err = await cli(graph_standin, tmp_path, "mfa", "alice@contoso.com", "--json")
    assert code == 0, err
    data = json.loads(out)
    for key, kind in USER_KEYS.items():
        assert isinstance(data[key], kind), key
    assert data["user"] == "alice@contoso.com" and data["tenant"] == "Contoso" and data["enforced"] is True
    assert data["enforced_by"] == ["CA 'Require MFA for all users'"]
    strengths = {m["type"]: m["strength"] for m in data["methods"]}
    assert strengths == {"password": "none", "fido2": "phishing_resistant"}
    assert data["verdict"].startswith("Registered — phishing-resistant — enforced by CA")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mfa", "x' or 1 eq 1"], "is neither a sign-in name"),
        (["mfa", "bob@northwind.example"], "No configured tenant owns the domain"),
        (["mfa", "nobody@contoso.com"], "No such user in Contoso."),
        (["mfa", "alice@contoso.com", "--tenant", "Northwind"], "is not a tenant Cordon acts in"),
        (["mfa-report", "--json", "--csv", "x.csv"], "not allowed with argument"),
    ],
)
async def test_bad_arguments_exit_2(graph_standin: GraphStandin, tmp_path: Path, args: list[str], message: str) -> None:
    code, out, err = await cli(graph_standin, tmp_path, *args)
    assert code == 2 and message in err and "Traceback" not in err


async def test_bad_configuration_exits_2(graph_standin: GraphStandin, tmp_path: Path) -> None:
    code, _, err = await cli(graph_standin, tmp_path, "mfa", "a@contoso.com", config="[graph]\nendpoint = 'ftp://x'\n")
    assert code == 2 and "graph.endpoint" in err


async def test_graph_refusals_exit_3(graph_standin: GraphStandin, tmp_path: Path) -> None:
    graph_standin.add_fault(Fault.permission("/v1.0/users/"))
    code, _, err = await cli(graph_standin, tmp_path, "mfa", "alice@contoso.com")
    assert code == 3 and "User.Read.All" in err
    graph_standin.faults.clear()
    graph_standin.state.skus = payloads.premium_skus("Free")
    code, _, err = await cli(graph_standin, tmp_path, "mfa-report")
    assert code == 3 and "Microsoft Entra ID P1 or P2" in err


async def test_graph_unavailable_exits_1(graph_standin: GraphStandin, tmp_path: Path) -> None:
    graph_standin.add_fault(Fault.unavailable("/v1.0/users/", times=-1))
    code, _, err = await cli(graph_standin, tmp_path, "mfa", "alice@contoso.com")
    assert code == 1 and "unavailable" in err and "Traceback" not in err


async def test_report_json_and_full_csv(graph_standin: GraphStandin, tmp_path: Path) -> None:
    graph_standin.state.synthetic_registration = (2_100, synthetic)
    code, out, err = await cli(graph_standin, tmp_path, "mfa-report", "--tenant", "Contoso", "--json")
    assert code == 0, err
    data = json.loads(out)
    for key, kind in REPORT_KEYS.items():
        assert isinstance(data[key], kind), key
    assert data["users"] == 2_100 and data["enforcement"].startswith("NOT enforced")
    code, out, err = await cli(graph_standin, tmp_path, "mfa-report", "--csv", str(tmp_path / "all.csv"))
    assert code == 0, err
    with (tmp_path / "all.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2_100 and len({r["user"] for r in rows}) == 2_100
    assert sum(r["registered"] == "True" for r in rows) == data["registered"]
    assert f"wrote 2,100 rows to {tmp_path / 'all.csv'}" in out
