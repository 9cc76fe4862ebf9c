"""`python app.py manifest --app-id GUID`: writes the Teams app package (zip) to upload to Teams.

The manifest's command list is generated from the declared commands (`dialogs.registry`), so the commands Teams
suggests are the ones the bot answers; the app id is filled in here and nowhere else.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dialogs.contract import Role
from dialogs.registry import CommandSpec

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "manifest.json"
ICONS = ("color.png", "outline.png")
PLACEHOLDER = "${{APP_ID}}"
DEFAULT_OUT = "cordon-teams-app.zip"

# Teams limits on a bot's command list.
MAX_COMMANDS = 10
MAX_TITLE = 32
MAX_DESCRIPTION = 128
ROLE_ORDER = {Role.ANYONE: 0, Role.TECHNICIAN: 1, Role.APPROVER: 2}  # most people's commands first

_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
_FIXED_TIME = (2024, 1, 1, 0, 0, 0)  # zip entry times: the same inputs give the same bytes


class ManifestError(ValueError):
    """A build option is unusable; the message says which and why."""


def check_app_id(value: str) -> str:
    """The Azure Bot's Microsoft App ID, as the GUID Teams expects (8-4-4-4-12 hex digits)."""
    text = (value or "").strip()
    if not _GUID.fullmatch(text):
        raise ManifestError(
            f"--app-id must be the bot's Microsoft App ID, a GUID like "
            f"00000000-0000-0000-0000-000000000000 (8-4-4-4-12 hex digits); got {value!r}"
        )
    if set(text.replace("-", "")) == {"0"}:
        raise ManifestError("--app-id is the all-zero GUID; use the Microsoft App ID of your Azure Bot")
    return text.lower()


def command_list(specs: Iterable[CommandSpec]) -> tuple[list[dict[str, str]], list[str]]:
    """Teams command entries (anyone's first, then technicians', then approvers') and the names left out."""
    ordered = sorted((s for s in specs if not s.hidden), key=lambda s: ROLE_ORDER.get(s.role, len(ROLE_ORDER)))
    entries: list[dict[str, str]] = []
    left_out: list[str] = []
    for spec in ordered:
        if len(spec.name) > MAX_TITLE or len(entries) >= MAX_COMMANDS:
            left_out.append(spec.name)  # a clipped name would suggest a command that does not exist
            continue
        entries.append({"title": spec.name, "description": _description(spec)})
    return entries, left_out


def _description(spec: CommandSpec) -> str:
    who = {Role.TECHNICIAN: " (technicians)", Role.APPROVER: " (approvers)"}.get(spec.role, "")
    full = f"{spec.summary}{who} e.g. {spec.usage}"
    if len(full) <= MAX_DESCRIPTION:
        return full
    short = f"{spec.summary}{who}"
    return short if len(short) <= MAX_DESCRIPTION else short[: MAX_DESCRIPTION - 1] + "…"


def render_manifest(
    app_id: str,
    specs: Iterable[CommandSpec],
    *,
    version: str | None = None,
    domains: Iterable[str] = (),
    developer: dict[str, str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The manifest for `app_id` with the generated command list; also returns the command names left out."""
    app_id = check_app_id(app_id)
    manifest = _fill(json.loads(TEMPLATE.read_text(encoding="utf-8")), app_id)
    manifest["id"] = app_id
    manifest["bots"][0]["botId"] = app_id
    entries, left_out = command_list(specs)
    scopes = list(manifest["bots"][0]["scopes"])
    manifest["bots"][0]["commandLists"] = [{"scopes": scopes, "commands": entries}] if entries else []
    if version is not None:
        if not _SEMVER.fullmatch(version):
            raise ManifestError(f"--version must be a semantic version such as 1.2.3, got {version!r}")
        manifest["version"] = version
    for domain in domains:
        name = domain.strip().lower().rstrip(".")
        if not _DOMAIN.fullmatch(name):
            raise ManifestError(f"--domain must be a host name such as cordon.example.com, got {domain!r}")
        if name not in manifest["validDomains"]:
            manifest["validDomains"].append(name)
    for key, url in (developer or {}).items():
        if not url.startswith("https://"):
            raise ManifestError(f"the developer {key} must be an https:// URL, got {url!r}")
        manifest["developer"][key] = url
    if PLACEHOLDER in json.dumps(manifest):
        raise ManifestError("the manifest template still holds a placeholder after filling it in")
    return manifest, left_out


def _fill(value: Any, app_id: str) -> Any:
    if isinstance(value, str):
        return value.replace(PLACEHOLDER, app_id)
    if isinstance(value, list):
        return [_fill(v, app_id) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, app_id) for k, v in value.items()}
    return value


def write_package(manifest: dict[str, Any], out: Path) -> Path:
    """Write manifest.json and both icons at the root of a zip (written aside, then moved into place)."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".cordon-app-", suffix=".zip", dir=out.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED) as package:
            files = [("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))]
            files += [(name, (HERE / name).read_bytes()) for name in ICONS]
            for name, data in files:
                info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                package.writestr(info, data)
        os.replace(temp, out)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return out


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app-id", required=True, metavar="GUID", help="the Azure Bot's Microsoft App ID")
    parser.add_argument("--out", metavar="FILE", default=DEFAULT_OUT, help=f"zip to write (default: {DEFAULT_OUT})")
    parser.add_argument("--version", help="app version (semver); raise it for every upload of a changed package")
    parser.add_argument(
        "--domain",
        action="append",
        default=[],
        metavar="HOST",
        help="add a host to validDomains (repeatable), e.g. the bot's public host",
    )
    parser.add_argument("--website-url", help="developer website (https)")
    parser.add_argument("--privacy-url", help="privacy statement (https)")
    parser.add_argument("--terms-url", help="terms of use (https)")


def run(name: str, args: argparse.Namespace, wiring: object = None) -> int:
    from dialogs.registry import registry

    developer = {
        key: value
        for key, value in (
            ("websiteUrl", args.website_url),
            ("privacyUrl", args.privacy_url),
            ("termsOfUseUrl", args.terms_url),
        )
        if value
    }
    try:
        manifest, left_out = render_manifest(
            args.app_id, registry().visible(), version=args.version, domains=args.domain, developer=developer
        )
    except ManifestError as exc:
        print(f"app.py manifest: {exc}", file=sys.stderr)
        return 2
    try:
        path = write_package(manifest, Path(args.out))
    except OSError as exc:
        print(f"app.py manifest: cannot write {args.out}: {exc}", file=sys.stderr)
        return 1
    commands = manifest["bots"][0]["commandLists"][0]["commands"] if manifest["bots"][0]["commandLists"] else []
    print(f"Wrote the Teams app package to {path}")
    print(
        f"  app id {manifest['id']}, version {manifest['version']}, "
        f"{len(commands)} command(s): {', '.join(c['title'] for c in commands) or 'none'}"
    )
    if left_out:
        print(
            f"  not in Teams' command menu (limit {MAX_COMMANDS}, or name over {MAX_TITLE} characters; "
            f"they still work when typed): {', '.join(left_out)}"
        )
    if "example.com" in json.dumps(manifest["developer"]):
        print(
            "  note: the developer URLs are placeholders; pass --website-url, --privacy-url and --terms-url "
            "before publishing to your organisation's app catalogue"
        )
    print("Upload it in Teams: Apps → Manage your apps → Upload an app (or the Teams admin center).")
    return 0
