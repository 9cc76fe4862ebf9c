"""Configuration: cordon.toml validation names the bad key; Azure Bot settings from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.config import (
    ConfigError,
    CordonConfig,
    allowed_tenants,
    bot_settings,
    config_path,
    load_config,
    parse_config,
)

GUID_A = "11111111-1111-1111-1111-111111111111"
GUID_B = "22222222-2222-2222-2222-222222222222"
TENANT = "55555555-5555-5555-5555-555555555555"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cordon.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_full_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
allowed_tenants = ["{TENANT.upper()}"]
[roles]
technicians = ["{GUID_A}"]
approvers = ["{GUID_B}"]
[storage]
path = "state/cordon.db"
[[tenants]]
name = "Contoso"
tenant_id = "{TENANT}"
domains = ["Contoso.COM."]
credential = "client_secret"
client_id = "{GUID_A}"
client_secret_env = "CONTOSO_SECRET"
[console]
aad_id = "{GUID_A}"
tenant_id = "{TENANT}"
""",
    )
    config = load_config(path)
    assert config.allowed_tenants == [TENANT]  # normalised to lower case
    assert config.roles.technicians == [GUID_A] and config.roles.approvers == [GUID_B]
    assert config.storage.path == "state/cordon.db"
    assert config.tenants[0].domains == ["contoso.com"]
    assert config.console.aad_id == GUID_A and config.console.tenant_id == TENANT


@pytest.mark.parametrize(
    ("toml", "key", "why"),
    [
        (f'[roles]\napprovers = ["{GUID_A}", "not-a-guid"]', "roles.approvers.1", "GUID"),
        ('[roles]\ntechnicians = ["alice@contoso.com"]', "roles.technicians.0", "GUID"),
        ('allowed_tenants = ["contoso.onmicrosoft.com"]', "allowed_tenants.0", "GUID"),
        ('[roles]\ntechnicians = "11111111-1111-1111-1111-111111111111"', "roles.technicians", "list"),
        ("[alerts]\ninterval_seconds = 1", "alerts.interval_seconds", "greater than or equal to 10"),
        ("[lockdown]\nexpiry_minutes = 0", "lockdown.expiry_minutes", "greater than or equal to 1"),
        ('[lockdown]\npassword_delivery = "channel"', "lockdown.password_delivery", "approver_chat"),
        ('[graph]\nendpoint = "http://graph.example.com"', "graph.endpoint", "https://"),
        ('[graph]\nendpoint = "http://localhost.evil.example"', "graph.endpoint", "https://"),
        ('[graph]\nendpoint = "http://127.0.0.1.nip.io/v1.0"', "graph.endpoint", "https://"),
        ('[graph]\nauthority_host = "http://127.0.0.1@evil.example"', "graph.authority_host", "https://"),
        ('[graph]\nauthority_host = "http://localhost:80@evil.example"', "graph.authority_host", "https://"),
        ('[graph]\nendpoint = "http://[::1]x.evil.example"', "graph.endpoint", "https://"),
        ('[graph]\nendpoint = "https://user:pw@graph.microsoft.com"', "graph.endpoint", "no user name"),
        ('[graph]\nendpoint = "ftp://graph.microsoft.com"', "graph.endpoint", "https://"),
        ('[[tenants]]\nname = "x"\ntenant_id = "nope"', "tenants.0.tenant_id", "GUID"),
        (
            f'[[tenants]]\nname = "x"\ntenant_id = "{TENANT}"\ncredential = "client_secret"',
            "tenants.0",
            "needs client_id and client_secret_env",
        ),
        ('[console]\naad_id = "console"', "console.aad_id", "GUID"),
        ('[console]\ntenant_id = "x"', "console.tenant_id", "GUID"),
    ],
)
def test_a_bad_value_names_its_key(tmp_path: Path, toml: str, key: str, why: str) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"{key}:" in message and why in message


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("alowed_tenants = []", "alowed_tenants"),
        ("[roles]\ntechnician = []", "roles.technician"),
        ('[storage]\nfile = "x.db"', "storage.file"),
        ("[rolez]\ntechnicians = []", "rolez"),
    ],
)
def test_unknown_keys_are_refused(tmp_path: Path, toml: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, toml))
    assert f"{key}: unknown key" in str(caught.value)


def test_two_tenants_cannot_claim_one_domain() -> None:
    data = {
        "tenants": [
            {"name": "A", "tenant_id": GUID_A, "domains": ["x.com"]},
            {"name": "B", "tenant_id": GUID_B, "domains": ["X.com"]},
        ]
    }
    with pytest.raises(ConfigError, match="'x.com' is listed for both 'A' and 'B'"):
        parse_config(data)


def test_every_error_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"roles": {"technicians": ["bad"], "approvers": ["worse"]}, "typo": 1})
    message = str(caught.value)
    assert "roles.technicians.0" in message and "roles.approvers.0" in message and "typo: unknown key" in message


def test_invalid_toml_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[roles\ntechnicians = ["))


def test_missing_default_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CORDON_CONFIG", raising=False)
    config = load_config()
    assert config == CordonConfig()
    assert config.roles.technicians == [] and config.allowed_tenants is None and config.storage.path == "cordon.db"


def test_a_named_file_that_is_missing_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    monkeypatch.setenv("CORDON_CONFIG", str(tmp_path / "also-missing.toml"))
    with pytest.raises(ConfigError, match="also-missing.toml does not exist"):
        load_config()


def test_cordon_config_env_chooses_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, f'[roles]\napprovers = ["{GUID_B}"]')
    monkeypatch.setenv("CORDON_CONFIG", str(path))
    assert config_path() == path
    assert load_config().roles.approvers == [GUID_B]


def test_bot_settings_defaults_are_anonymous_on_3978() -> None:
    settings = bot_settings({})
    assert (settings.app_id, settings.port, settings.app_type, settings.host) == ("", 3978, "MultiTenant", "0.0.0.0")
    assert not settings.authenticated and settings.openid_metadata is None


def test_bot_settings_from_microsofts_names() -> None:
    settings = bot_settings(
        {
            "MicrosoftAppId": GUID_A,
            "MicrosoftAppPassword": "pw",
            "MicrosoftAppType": "SingleTenant",
            "MicrosoftAppTenantId": TENANT.upper(),
            "PORT": "8080",
            "HOST": "127.0.0.1",
            "BotOpenIdMetadata": "http://127.0.0.1:9/openid",
        }
    )
    assert settings.authenticated and settings.app_tenant_id == TENANT and settings.port == 8080
    app_id = "5e6f7a8b-1c2d-4e3f-9a0b-c1d2e3f4a5b6"
    assert bot_settings({"MicrosoftAppId": app_id.upper()}).app_id == app_id  # tokens carry it in lower case
    assert settings.openid_metadata == "http://127.0.0.1:9/openid"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"MicrosoftAppType": "Multitenant"}, "MicrosoftAppType"),
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"PORT": "-1"}, "PORT"),
        ({"MicrosoftAppTenantId": "contoso.com"}, "MicrosoftAppTenantId"),
        ({"MicrosoftAppId": "cordon-bot"}, "MicrosoftAppId must be a GUID"),
        ({"MicrosoftAppId": GUID_A, "MicrosoftAppType": "SingleTenant"}, "needs MicrosoftAppTenantId"),
        ({"MicrosoftAppId": GUID_A, "MicrosoftAppType": "UserAssignedMSI"}, "needs MicrosoftAppTenantId"),
    ],
)
def test_bot_settings_errors_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        bot_settings(env)


def test_allowed_tenants_default_to_the_bots_own_tenant() -> None:
    settings = bot_settings(
        {"MicrosoftAppId": GUID_A, "MicrosoftAppType": "SingleTenant", "MicrosoftAppTenantId": TENANT}
    )
    assert allowed_tenants(CordonConfig(), settings) == [TENANT]
    assert allowed_tenants(parse_config({"allowed_tenants": [GUID_B]}), settings) == [GUID_B]
    assert allowed_tenants(CordonConfig(), bot_settings({})) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v1.0",
        "http://localhost:1234",
        "http://[::1]:99",
        "https://graph.microsoft.us",
        "HTTP://127.0.0.2:5",
    ],
)
def test_plain_http_is_accepted_only_on_loopback(url: str) -> None:
    from adapters.config import parse_config

    config = parse_config({"graph": {"endpoint": url, "authority_host": url}})
    assert config.graph.endpoint == url.rstrip("/")
