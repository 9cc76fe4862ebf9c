"""The container's entry point and health check, run in the venv (no image builder works on this machine: the
Docker CLI has no daemon), and the Dockerfile's promises: non-root, no secrets, HEALTHCHECK on /healthz, PORT."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.support.azurite import free_port
from tests.support.stores import CONNECTION_ENV
from tests.test_bot_cli import _env, _stop, _wait_healthy

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
APP_ID = "5e6f7a8b-1c2d-4e3f-9a0b-c1d2e3f4a5b6"
TENANT = "72f988bf-0000-4000-8000-00000000c0de"


def _healthcheck_command() -> list[str]:
    found = re.search(r"HEALTHCHECK[^\n]*\\\n\s*CMD (\[.*\])", DOCKERFILE)
    assert found, "the Dockerfile has a HEALTHCHECK with an exec-form CMD"
    import json

    return list(json.loads(found.group(1)))


def test_the_dockerfile_runs_as_a_non_root_user_with_no_secret_and_checks_healthz() -> None:
    stages = DOCKERFILE.split("\nFROM ")
    final = stages[-1]
    assert final.startswith("python:3.12-slim") and len(stages) == 3  # slim base, after a build stage
    users = re.findall(r"^USER (\S+)", final, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    for secret in ("MicrosoftAppPassword", "AccountKey", "CONNECTION_STRING=", "client_secret", "PASSWORD"):
        assert secret not in DOCKERFILE
    assert "/healthz" in " ".join(_healthcheck_command()) and "PORT" in " ".join(_healthcheck_command())
    assert re.search(r"^ENTRYPOINT \[\"cordon-entrypoint\"\]", final, re.M)
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".env", ".git", ".venv", "*.db"} <= set(ignored)  # never copied into an image


async def test_the_image_entrypoint_serves_on_port_with_azure_state_and_passes_its_healthcheck(
    tmp_path, azurite
) -> None:
    port = free_port()
    toml = (
        f'allowed_tenants = ["{TENANT}"]\n[storage]\nbackend = "azure"\n'
        f'connection_string_env = "{CONNECTION_ENV}"\nprefix = "{azurite.new_prefix()}"\n'
    )
    env = _env(
        MicrosoftAppId=APP_ID,
        MicrosoftAppType="UserAssignedMSI",
        MicrosoftAppTenantId=TENANT,
        BotOpenIdMetadata=f"http://127.0.0.1:{free_port()}/.well-known/openid-configuration",
        PORT=str(port),
        HOST="127.0.0.1",
        CORDON_TOML=toml,
        CORDON_PYTHON=sys.executable,
        TMPDIR=str(tmp_path),
        **{CONNECTION_ENV: azurite.connection_string},
    )
    proc = subprocess.Popen(
        ["sh", str(ROOT / "deploy" / "docker-entrypoint.sh")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await _wait_healthy(proc, f"http://127.0.0.1:{port}/healthz")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                assert await response.json() == {"status": "ready", "storage": "azure"}
            activity = {
                "type": "message",
                "id": "m1",
                "channelId": "msteams",
                "text": "help",
                "serviceUrl": "https://smba.trafficmanager.net/amer/",
                "from": {"id": "u"},
                "recipient": {"id": "b"},
                "conversation": {"id": "c"},
            }
            async with session.post(f"http://127.0.0.1:{port}/api/messages", json=activity) as response:
                assert response.status == 401  # authenticated mode: no token, no entry
        check = subprocess.run(_healthcheck_command(), env={**os.environ, "PORT": str(port)}, timeout=30)
        assert check.returncode == 0
        written = list(tmp_path.glob("cordon.*.toml"))
        assert len(written) == 1 and (written[0].stat().st_mode & 0o077) == 0  # the config is private
    finally:
        _stop(proc)
    _, err = proc.communicate(timeout=10)
    assert azurite.connection_string not in err and "AccountKey" not in err
    dead = subprocess.run(
        _healthcheck_command(), env={**os.environ, "PORT": str(port)}, timeout=30, capture_output=True
    )
    assert dead.returncode != 0  # the health check fails when nothing answers


def test_the_entrypoint_refuses_a_bad_config_naming_the_key(tmp_path) -> None:
    env = _env(
        MicrosoftAppId=APP_ID,
        MicrosoftAppType="UserAssignedMSI",
        MicrosoftAppTenantId=TENANT,
        CORDON_TOML='[storage]\nbackend = "azure"\n',
        CORDON_PYTHON=sys.executable,
        TMPDIR=str(tmp_path),
    )
    done = subprocess.run(
        ["sh", str(ROOT / "deploy" / "docker-entrypoint.sh")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and 'storage: with backend = "azure", set exactly one of' in done.stderr
