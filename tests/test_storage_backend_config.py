"""`[storage] backend = "azure"`: the configuration contract, a start that names the bad key, /readyz, and the real
entry point serving on Azurite."""

from __future__ import annotations

import json

import aiohttp
import pytest

from adapters.config import ConfigError, StorageConfig, parse_config
from adapters.storage import open_storage, storage_kind
from tests.support.azurite import free_port
from tests.support.botapp import BotApp
from tests.support.connector import ConnectorStandIn
from tests.support.stores import CONNECTION_ENV
from tests.test_bot_cli import APP, _env, _run, _stop, _wait_healthy


@pytest.mark.parametrize(
    ("storage", "key", "why"),
    [
        ({"backend": "azure"}, "storage", "exactly one of storage.account_url"),
        (
            {"backend": "azure", "account_url": "https://a.table.core.windows.net", "connection_string_env": "X"},
            "storage",
            "exactly one of",
        ),
        ({"backend": "azure", "account_url": "http://a.table.core.windows.net"}, "storage.account_url", "https://"),
        (
            {"backend": "azure", "connection_string_env": "DefaultEndpointsProtocol=https;AccountKey=abc"},
            "storage.connection_string_env",
            "name of an environment variable",
        ),
        (
            {"backend": "azure", "connection_string_env": "X", "prefix": "my-bot"},
            "storage.prefix",
            "letters and digits",
        ),
        ({"backend": "azure", "connection_string_env": "X", "path": "x.db"}, "storage", "storage.path is for"),
        ({"backend": "cosmos"}, "storage.backend", "'sqlite' or 'azure'"),
        ({"account_url": "https://a.table.core.windows.net"}, "storage", 'needs backend = "azure"'),
    ],
)
def test_a_bad_storage_value_is_refused_naming_the_key(storage: dict, key: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"storage": storage})
    assert f"{key}: " in str(caught.value) and why in str(caught.value)


def test_the_documented_azure_settings_are_accepted() -> None:
    config = parse_config(
        {"storage": {"backend": "azure", "account_url": "https://acct.table.core.windows.net/", "prefix": "cordon"}}
    )
    assert config.storage == StorageConfig(
        backend="azure", account_url="https://acct.table.core.windows.net", prefix="cordon"
    )
    assert parse_config({}).storage.backend == "sqlite"


def test_a_connection_string_variable_that_is_unset_or_unusable_stops_the_start() -> None:
    config = StorageConfig(backend="azure", connection_string_env="CORDON_TEST_UNSET")
    with pytest.raises(
        ConfigError, match="storage.connection_string_env: the environment variable CORDON_TEST_UNSET is not set"
    ):
        open_storage(config, {})
    with pytest.raises(ConfigError, match="does not hold a usable connection string") as caught:
        open_storage(config, {"CORDON_TEST_UNSET": "AccountName=x"})
    assert "AccountName=x" not in str(caught.value)  # never echo what may be a secret


async def test_readyz_names_the_store_and_is_503_when_azure_storage_is_unreachable(azurite) -> None:
    down = open_storage(
        StorageConfig(backend="azure", connection_string_env="C"),
        {"C": azurite.connection_string.replace(str(azurite.port), str(free_port()))},
    )
    up = open_storage(
        StorageConfig(backend="azure", connection_string_env="C", prefix=azurite.new_prefix()),
        {"C": azurite.connection_string},
    )
    try:
        assert storage_kind(up) == "azure"
        for store, status, body in (
            (up, 200, {"status": "ready", "storage": "azure"}),
            (down, 503, {"status": "storage unreachable", "storage": "azure"}),
        ):
            async with BotApp.started(storage=store) as bot, aiohttp.ClientSession() as session:
                async with session.get(f"{bot.base_url}/readyz") as response:
                    assert (response.status, await response.json()) == (status, body)
    finally:
        await up.close()
        await down.close()


def test_the_server_refuses_to_start_without_its_connection_string(tmp_path) -> None:
    (tmp_path / "cordon.toml").write_text(f'[storage]\nbackend = "azure"\nconnection_string_env = "{CONNECTION_ENV}"\n')
    done = _run(tmp_path, "--dev")
    assert done.returncode == 2, done.stderr
    assert f"storage.connection_string_env: the environment variable {CONNECTION_ENV} is not set" in done.stderr


async def test_the_real_entry_point_keeps_its_state_in_azure_table_storage(tmp_path, azurite) -> None:
    import subprocess
    import sys

    prefix = azurite.new_prefix()
    (tmp_path / "cordon.toml").write_text(
        f'[storage]\nbackend = "azure"\nconnection_string_env = "{CONNECTION_ENV}"\nprefix = "{prefix}"\n'
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(APP), "--dev"],
        cwd=tmp_path,
        env=_env(PORT=str(port), **{CONNECTION_ENV: azurite.connection_string}),
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
                "text": "lockdown alice@contoso.com",
            }
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    f"http://127.0.0.1:{port}/api/messages",
                    data=json.dumps(activity),
                    headers={"Content-Type": "application/json"},
                ) as response:
                    assert response.status == 201
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    assert await response.json() == {"status": "ready", "storage": "azure"}
    finally:
        _stop(proc)
    assert not (tmp_path / "cordon.db").exists()  # nothing went to a SQLite file
    store = open_storage(
        StorageConfig(backend="azure", connection_string_env="C", prefix=prefix), {"C": azurite.connection_string}
    )
    try:
        refused = await store.audit_tail(5)
        assert [(e.command, e.outcome) for e in refused][:1] == [("lockdown", "refused")]  # no roles in --dev
    finally:
        await store.close()
