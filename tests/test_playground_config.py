"""The ready `.m365agentsplayground.yml` (Microsoft 365 Agents Playground) and the README section that uses it.

The Playground's schema (config 0.1.1, checked with version 0.2.28) wants a tenant, a current user with an
`aadObjectId` and exactly five other users; Cordon wants GUIDs for anyone given a role in `[roles]`.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.config import parse_config

ROOT = Path(__file__).resolve().parents[1]
USER_FIELDS = {"id", "name", "userPrincipleName", "aadObjectId", "givenName", "surname", "email"}  # sic: "Principle"


@pytest.fixture(scope="module")
def playground() -> dict[str, Any]:
    return yaml.safe_load((ROOT / ".m365agentsplayground.yml").read_text(encoding="utf-8"))


def is_guid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def test_the_config_has_what_the_playground_schema_requires(playground: dict[str, Any]) -> None:
    assert set(playground) == {
        "version",
        "tenantId",
        "bot",
        "currentUser",
        "users",
        "personalChat",
        "groupChat",
        "team",
    }
    assert playground["version"] in ("0.1.0", "0.1.1")
    assert len(playground["users"]) == 5  # exactly five other users, or the Playground refuses the file
    for user in [playground["currentUser"], *playground["users"]]:
        assert set(user) == USER_FIELDS, user
    assert set(playground["bot"]) == {"id", "name"} and len(playground["bot"]["name"]) <= 42
    assert playground["personalChat"]["id"] and playground["groupChat"]["id"] and playground["groupChat"]["name"]
    team = playground["team"]
    assert {"id", "name", "aadGroupId", "channels"} <= set(team) and team["channels"]
    chats = [
        playground["personalChat"]["id"],
        playground["groupChat"]["id"],
        team["id"],
        *(c["id"] for c in team["channels"]),
    ]
    assert len(set(chats)) == len(chats)  # the Playground wants these unique too


def test_every_tenant_and_object_id_is_a_guid_and_every_user_has_a_teams_id(playground: dict[str, Any]) -> None:
    users = [playground["currentUser"], *playground["users"]]
    assert is_guid(playground["tenantId"]) and is_guid(playground["team"]["aadGroupId"])
    assert all(is_guid(u["aadObjectId"]) for u in users)
    assert len({u["aadObjectId"] for u in users}) == len(users) and len({u["id"] for u in users}) == len(users)
    assert all(u["id"].startswith("29:") for u in users)  # Teams ids: 1:1 chats are opened with these


def test_the_readme_roles_are_the_playgrounds_users_and_cordon_accepts_them(playground: dict[str, Any]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Try it in the Microsoft 365 Agents Playground", 1)[1].split("\n## ", 1)[0]
    roles = dict(re.findall(r'^\s*(technicians|approvers)\s*=\s*\["([0-9a-f-]+)"\]', section, re.MULTILINE))
    assert roles["technicians"] == playground["currentUser"]["aadObjectId"]  # you type the commands
    approver = next(u for u in playground["users"] if u["aadObjectId"] == roles["approvers"])  # someone else approves
    assert f'"id": "{approver["id"]}"' in section and approver["aadObjectId"] in section
    config = parse_config({"roles": {"technicians": [roles["technicians"]], "approvers": [roles["approvers"]]}})
    assert config.roles.approvers == [roles["approvers"]]
    with pytest.raises(Exception, match="GUID"):  # why the file cannot keep the Playground's own default id
        parse_config({"roles": {"technicians": ["00000000-0000-0000-0000-0000000000020"]}})
