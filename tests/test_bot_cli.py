"""The real entry point (`python app.py`) in a subprocess: fail-closed start, config errors, --dev, .env."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.support.connector import ConnectorStandIn

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
BOT_VARS = (
    "MicrosoftAppId",
    "MicrosoftAppPassword",
    "MicrosoftAppType",
    "MicrosoftAppTenantId",
    "BotOpenIdMetadata",
    "CORDON_CONFIG",
    "PORT",
    "HOST",
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in BOT_VARS}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(APP), *args], cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=60
    )


def test_without_app_id_the_server_refuses_to_start_and_says_how_to_fix(tmp_path):
    done = _run(tmp_path)
    assert done.returncode != 0
    assert "MicrosoftAppId is not set" in done.stderr and "--dev" in done.stderr


def test_a_bad_config_value_stops_the_start_naming_the_key(tmp_path):
    (tmp_path / "cordon.toml").write_text('[roles]\ntechnicians = ["not-a-guid"]\n')
    done = _run(tmp_path, MicrosoftAppId="5e6f7a8b-1c2d-4e3f-9a0b-c1d2e3f4a5b6")
    assert done.returncode == 2
    assert "roles.technicians" in done.stderr and "GUID" in done.stderr


def test_without_any_allowed_tenant_the_server_refuses_to_start(tmp_path):
    done = _run(tmp_path, MicrosoftAppId="5e6f7a8b-1c2d-4e3f-9a0b-c1d2e3f4a5b6")
    assert done.returncode == 2
    assert "allowed_tenants" in done.stderr


async def _wait_healthy(proc: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else "exited"
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("server did not become healthy")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


async def test_dev_mode_serves_unauthenticated_on_loopback_with_sqlite_state(tmp_path):
    port = _free_port()
    (tmp_path / "cordon.toml").write_text('[storage]\npath = "state/cordon.db"\n')
    proc = subprocess.Popen(
        [sys.executable, str(APP), "--dev"],
        cwd=tmp_path,
        env=_env(PORT=str(port), HOST="0.0.0.0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with ConnectorStandIn() as connector:
            await _wait_healthy(proc, f"http://127.0.0.1:{port}/healthz")
            activity = {
                "type": "message",
                "id": "m1",
                "channelId": "emulator",
                "serviceUrl": connector.url,
                "from": {"id": "user-1", "name": "Dev"},
                "recipient": {"id": "bot", "name": "Cordon"},
                "conversation": {"id": "conv-1"},
                "text": "help",
            }
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    f"http://127.0.0.1:{port}/api/messages",
                    data=json.dumps(activity),
                    headers={"Content-Type": "application/json"},
                ) as response:
                    assert response.status == 201
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    assert response.status == 200
            [reply] = connector.posted("conv-1")
            assert reply.cards and reply.authorization is None
        assert (tmp_path / "state" / "cordon.db").exists()
        # --dev binds loopback only, even with HOST=0.0.0.0
        addresses = [a for a in _listening(port)]
        assert addresses and all(a.startswith("127.") for a in addresses), addresses
    finally:
        _stop(proc)


def _listening(port: int) -> list[str]:
    """Local addresses listening on `port` (from /proc/net/tcp; Linux)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                if len(address) == 8:
                    found.append(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
                else:
                    found.append("::")
    return found


async def test_dotenv_settings_are_read_and_unauthenticated_requests_get_401(tmp_path):
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux /proc for the listening check")
    port = _free_port()
    (tmp_path / ".env").write_text(
        "MicrosoftAppId=5e6f7a8b-1c2d-4e3f-9a0b-c1d2e3f4a5b6\n"
        "MicrosoftAppTenantId=72f988bf-0000-4000-8000-00000000c0de\n"
        f"PORT={port}\nHOST=127.0.0.1\n"
        "BotOpenIdMetadata=http://127.0.0.1:9/v1/.well-known/openidconfiguration\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(APP)], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        await _wait_healthy(proc, f"http://127.0.0.1:{port}/healthz")
        activity = {
            "type": "message",
            "channelId": "msteams",
            "serviceUrl": "http://127.0.0.1:9/",
            "conversation": {"id": "c"},
            "text": "help",
        }
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{port}/api/messages", json=activity) as response:
                assert response.status == 401
    finally:
        _stop(proc)
