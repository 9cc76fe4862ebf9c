"""The Teams app package: schema-valid manifest (1.22), icons, command list from the declarations, bad app ids."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from dialogs.contract import Role
from dialogs.registry import CommandSpec
from manifest.build import (
    MAX_COMMANDS,
    MAX_DESCRIPTION,
    MAX_TITLE,
    ManifestError,
    check_app_id,
    command_list,
    render_manifest,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "tests" / "vendor" / "teams-manifest" / "teams-manifest-1.22.schema.json"  # MIT, Microsoft
APP_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


def build(tmp_path: Path, *extra: str, app_id: str = APP_ID) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "app.py", "manifest", "--app-id", app_id, *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("pkg") / "nested" / "cordon.zip"
    result = build(out.parent, "--out", str(out), "--domain", "cordon.contoso.example")
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    with zipfile.ZipFile(out) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def manifest_of(package: dict[str, bytes]) -> dict[str, Any]:
    return json.loads(package["manifest.json"])


def test_zip_holds_the_manifest_and_both_icons_at_its_root(package: dict[str, bytes]) -> None:
    assert sorted(package) == ["color.png", "manifest.json", "outline.png"]


def test_manifest_validates_against_the_teams_1_22_schema(package: dict[str, bytes]) -> None:
    import jsonschema
    import jsonschema.exceptions

    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    error = jsonschema.exceptions.best_match(validator.iter_errors(manifest_of(package)))
    assert error is None, f"{error.message} at {list(error.absolute_path)}"


def test_the_schema_check_would_catch_a_wrong_version_or_app_id(package: dict[str, bytes]) -> None:
    import jsonschema

    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    for change in ({"manifestVersion": "1.21"}, {"id": "${{APP_ID}}"}):
        assert not validator.is_valid({**manifest_of(package), **change})


def test_app_id_version_scopes_and_domains(package: dict[str, bytes]) -> None:
    manifest = manifest_of(package)
    assert manifest["manifestVersion"] == "1.22" and "v1.22" in manifest["$schema"]
    assert manifest["id"] == APP_ID
    [bot] = manifest["bots"]
    assert bot["botId"] == APP_ID
    assert sorted(bot["scopes"]) == ["groupChat", "personal", "team"]
    assert "cordon.contoso.example" in manifest["validDomains"]
    assert "${{" not in package["manifest.json"].decode()
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}


def declared_commands() -> list[dict[str, str]]:
    """The visible declarations as a fresh process sees them (other tests may add commands to this process's)."""
    code = (
        "import json; from dialogs.registry import registry; print(json.dumps([{'name': s.name, 'role': "
        "s.role.value, 'summary': s.summary} for s in registry().visible()]))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_command_list_comes_from_the_declared_commands(package: dict[str, bytes]) -> None:
    [command_list_entry] = manifest_of(package)["bots"][0]["commandLists"]
    titles = [c["title"] for c in command_list_entry["commands"]]
    declared = {spec["name"]: spec for spec in declared_commands()}
    assert set(titles) <= set(declared) and "help" in titles
    assert len(titles) == min(len(declared), MAX_COMMANDS)
    ranks = [["anyone", "technician", "approver"].index(declared[t]["role"]) for t in titles]
    assert ranks == sorted(ranks)  # anyone's commands first, then technicians', then approvers'
    for entry in command_list_entry["commands"]:
        assert len(entry["title"]) <= MAX_TITLE and len(entry["description"]) <= MAX_DESCRIPTION
        assert declared[entry["title"]]["summary"][:40] in entry["description"]


def _spec(name: str, role: Role, summary: str = "Does a thing.") -> CommandSpec:
    async def handler(cmd: Any, ctx: Any) -> None:
        return None

    return CommandSpec(name=name, summary=summary, usage=f"{name} x", role=role, handler=handler)


def test_command_list_respects_teams_limits_and_puts_common_commands_first() -> None:
    specs = [_spec(f"approve{n}", Role.APPROVER) for n in range(4)]
    specs += [_spec(f"tech{n}", Role.TECHNICIAN) for n in range(5)]
    specs += [_spec(f"open{n}", Role.ANYONE) for n in range(3)]
    specs += [_spec("x" * (MAX_TITLE + 1), Role.ANYONE), _spec("long", Role.ANYONE, "word " * 60)]
    entries, left_out = command_list(specs)
    titles = [e["title"] for e in entries]
    assert len(entries) == MAX_COMMANDS
    assert titles[:4] == ["open0", "open1", "open2", "long"]
    assert titles[4:9] == [f"tech{n}" for n in range(5)] and titles[9] == "approve0"
    assert "x" * (MAX_TITLE + 1) in left_out and "approve3" in left_out
    assert all(len(e["description"]) <= MAX_DESCRIPTION for e in entries)
    assert "(technicians)" in entries[4]["description"] and "e.g. tech0 x" in entries[4]["description"]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "nope",
        "3f2504e04f8911d39a0c0305e82c3301",
        "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}",
        "3f2504e0-4f89-11d3-9a0c-0305e82c330",
        "00000000-0000-0000-0000-000000000000",
        "3f2504e0-4f89-11d3-9a0c-0305e82c3301\nx",
    ],
)
def test_check_app_id_refuses_what_teams_would_refuse(bad: str) -> None:
    with pytest.raises(ManifestError, match="--app-id"):
        check_app_id(bad)


def test_bad_guid_exits_2_with_a_message_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "never.zip"
    result = build(tmp_path, "--out", str(out), app_id="not-a-guid")
    assert result.returncode == 2
    assert "--app-id must be the bot's Microsoft App ID, a GUID" in result.stderr and "not-a-guid" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--version", "1.2", "semantic version"),
        ("--domain", "https://cordon.example.com/", "host name"),
        ("--website-url", "http://example.com", "https://"),
    ],
)
def test_bad_options_exit_2_naming_the_option(tmp_path: Path, flag: str, value: str, message: str) -> None:
    result = build(tmp_path, "--out", str(tmp_path / "x.zip"), flag, value)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "x.zip").exists()


def test_options_reach_the_manifest() -> None:
    manifest, _ = render_manifest(APP_ID.upper(), [], version="2.3.4", developer={"privacyUrl": "https://p.example"})
    assert manifest["id"] == APP_ID and manifest["version"] == "2.3.4"
    assert manifest["developer"]["privacyUrl"] == "https://p.example"
    assert manifest["bots"][0]["commandLists"] == []


def test_the_same_inputs_build_the_same_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    assert build(tmp_path, "--out", str(first)).returncode == 0
    assert build(tmp_path, "--out", str(second)).returncode == 0
    assert first.read_bytes() == second.read_bytes()


def test_icons_have_teams_sizes_and_the_outline_is_white_on_transparent(package: dict[str, bytes]) -> None:
    from PIL import Image

    color = Image.open(io.BytesIO(package["color.png"]))
    assert color.format == "PNG" and color.size == (192, 192)
    colours = color.convert("RGB").getcolors(maxcolors=192 * 192)
    assert colours is not None and len(colours) > 8  # full colour, not a blank square

    outline = Image.open(io.BytesIO(package["outline.png"]))
    assert outline.format == "PNG" and outline.size == (32, 32) and outline.mode == "RGBA"
    pixels = list(outline.getdata())
    drawn = [p for p in pixels if p[3] > 0]
    assert all(p[:3] == (255, 255, 255) for p in drawn), "every visible outline pixel must be white"
    transparent = [p for p in pixels if p[3] == 0]
    assert len(transparent) > len(pixels) // 2  # a transparent background
    assert sum(1 for p in drawn if p[3] == 255) > 40  # and a visible mark
    corners = [outline.getpixel(xy) for xy in ((0, 0), (31, 0), (0, 31), (31, 31))]
    assert all(c[3] == 0 for c in corners)
