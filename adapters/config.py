"""Configuration: Azure Bot settings from the environment, everything else from one TOML file.

The TOML file is validated at start (pydantic); a bad value stops the start with a message naming the key.
Secrets never live in the file: it names environment variables that hold them (`client_secret_env`).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_CONFIG_FILE = "cordon.toml"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and says how to fix it."""


_NETLOC = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^\[\]:@/\s]+)(:[0-9]{1,5})?")


def service_url(value: str) -> str:
    """An https:// URL; plain http only when the parsed host is exactly a loopback address or `localhost` and the
    URL has no userinfo (tests). A prefix test would let `http://localhost.evil.example`, `http://127.0.0.1.nip.io`
    or `http://127.0.0.1@evil.example` through, and tokens and secrets would travel in clear text."""
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ValueError("must be an https:// URL (not a valid URL)") from None
    if not host or parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError("must be an https:// URL with a host and no user name or password")
    if not _NETLOC.fullmatch(parts.netloc):  # `http://[::1]x.evil.example` parses with host ::1
        raise ValueError("must be an https:// URL (not a valid host)")
    scheme = parts.scheme.lower()
    if scheme == "https":
        return value.rstrip("/")
    if scheme == "http" and _is_loopback_host(host):
        return value.rstrip("/")
    raise ValueError("must be an https:// URL (plain http only on loopback, for tests)")


def _is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_guid(value: str, what: str) -> str:
    """The canonical (lower-case, dashed) form of a GUID; ValueError naming `what` otherwise. The one GUID check
    behind `EntraId`/`TenantId`, the settings and the console's flags."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"{what} must be a GUID, got {value!r}") from None


# Checked one by one, so an error names the item (`roles.approvers.1`), not just the list.
EntraId = Annotated[str, AfterValidator(lambda v: parse_guid(v, "an Entra object id"))]
TenantId = Annotated[str, AfterValidator(lambda v: parse_guid(v, "a tenant id"))]


class RolesConfig(_Section):
    technicians: list[EntraId] = Field(default_factory=list)
    approvers: list[EntraId] = Field(default_factory=list)


_TABLE_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,57}$")


class StorageConfig(_Section):
    """Where state lives: a SQLite file (default) or Azure Table storage shared by several instances."""

    backend: Literal["sqlite", "azure"] = "sqlite"
    path: str = "cordon.db"  # sqlite only
    account_url: str | None = None  # azure, with the managed identity
    connection_string_env: str | None = None  # azure, the name of the variable holding a connection string
    prefix: str = "cordon"  # azure table names are {prefix}docs and {prefix}audit

    @field_validator("account_url")
    @classmethod
    def _account_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://127.0.0.1", "http://localhost", "http://[::1]")):
            raise ValueError(
                "must be an https:// URL such as https://<account>.table.core.windows.net "
                "(plain http only on loopback, for Azurite)"
            )
        return value.rstrip("/")

    @field_validator("connection_string_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(
                f"must be the name of an environment variable (the connection string itself never "
                f"goes in this file), got {value[:20]!r}"
            )
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _TABLE_PREFIX.fullmatch(value):
            raise ValueError("must be 1-58 letters and digits starting with a letter (Azure table names)")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> StorageConfig:
        if self.backend == "azure":
            if (self.account_url is None) == (self.connection_string_env is None):
                raise ValueError(
                    'with backend = "azure", set exactly one of storage.account_url (managed '
                    "identity) or storage.connection_string_env (a connection string from the "
                    "environment)"
                )
            if "path" in self.model_fields_set:
                raise ValueError('storage.path is for backend = "sqlite"; remove it with backend = "azure"')
        else:
            for key in ("account_url", "connection_string_env"):
                if getattr(self, key) is not None:
                    raise ValueError(f'storage.{key} needs backend = "azure" (the backend is "sqlite")')
        return self


class GraphConfig(_Section):
    endpoint: str = "https://graph.microsoft.com"
    authority_host: str = "https://login.microsoftonline.com"
    timeout_seconds: float = Field(default=30.0, gt=0)
    retry_budget_seconds: float = Field(default=60.0, ge=0)

    @field_validator("endpoint", "authority_host")
    @classmethod
    def _url(cls, value: str) -> str:
        return service_url(value)


class TenantConfig(_Section):
    name: str
    tenant_id: str
    domains: list[str] = Field(default_factory=list)
    credential: Literal["managed_identity", "client_secret", "certificate"] = "managed_identity"
    client_id: str | None = None
    client_secret_env: str | None = None
    certificate_path: str | None = None
    certificate_password_env: str | None = None
    break_glass: list[str] = Field(default_factory=list)  # UPNs or object ids that lock-down refuses to touch

    @field_validator("tenant_id")
    @classmethod
    def _tenant(cls, value: str) -> str:
        return parse_guid(value, "tenant_id")

    @field_validator("domains")
    @classmethod
    def _domains(cls, values: list[str]) -> list[str]:
        return [v.strip().lower().rstrip(".") for v in values]

    @model_validator(mode="after")
    def _credential_complete(self) -> TenantConfig:
        if self.credential == "client_secret" and not (self.client_id and self.client_secret_env):
            raise ValueError("credential 'client_secret' needs client_id and client_secret_env")
        if self.credential == "certificate" and not (self.client_id and self.certificate_path):
            raise ValueError("credential 'certificate' needs client_id and certificate_path")
        return self


class LockdownConfig(_Section):
    expiry_minutes: int = Field(default=30, ge=1, le=24 * 60)
    approvals_conversation: str | None = None  # conversation id of the approvals channel; None: ask in place
    password_delivery: Literal["approver_chat", "none"] = "approver_chat"
    sweep_seconds: float = Field(default=30, gt=0, le=3600)  # how often expiry and crash resumption are checked
    retention_days: float = Field(default=90, ge=1)  # ended requests stay readable by id this long, then deleted


class AlertsConfig(_Section):
    interval_seconds: float = Field(default=300, ge=10)
    max_cards_per_10_minutes: int = Field(default=5, ge=1)
    concurrency: int = Field(default=50, ge=1)
    enabled: bool = True
    overlap_minutes: float = Field(default=30, ge=0)  # re-read window below the watermark (late detections)
    initial_lookback_minutes: float = Field(default=60, ge=0)  # first poll of a tenant looks this far back
    seen_retention_hours: float = Field(default=48, ge=48)  # detection ids remembered (de-duplication)
    lease_seconds: float = Field(default=120, ge=10)  # one poller per tenant across processes; a crash frees it
    unlicensed_recheck_hours: float = Field(default=6, gt=0)  # licence re-check of tenants without Entra ID P2
    enrich_sign_ins: bool = True  # look up the sign-in of each alert for the app name
    card_retention_days: float = Field(default=30, ge=1)  # an alert card's buttons work this long, then forgotten


class ConsoleConfig(_Section):
    """Who the `chat` console acts as (flags override)."""

    aad_id: str = "00000000-0000-0000-0000-00000000c0de"
    upn: str = "console@localhost"
    name: str = "Console user"
    tenant_id: str | None = None

    @field_validator("aad_id")
    @classmethod
    def _actor_id(cls, value: str) -> str:
        return parse_guid(value, "aad_id (an Entra object id)")

    @field_validator("tenant_id")
    @classmethod
    def _console_tenant(cls, value: str | None) -> str | None:
        return None if value is None else parse_guid(value, "tenant_id")


class DnsConfig(_Section):
    """Resolvers for `check` and `spf` in Teams and the console (the CLI takes --nameserver/--timeout instead)."""

    nameservers: list[str] = Field(default_factory=list)  # "IP" or "IP:PORT"; empty: the system's resolvers
    timeout_seconds: float = Field(default=2.0, gt=0, le=30)  # per question
    budget_seconds: float = Field(default=10.0, gt=0, le=120)  # for a whole check

    @field_validator("nameservers")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        from adapters.dns.nameservers import parse_nameserver

        for value in values:
            parse_nameserver(value)  # ValueError names the bad entry
        return values


class CordonConfig(_Section):
    allowed_tenants: list[TenantId] | None = None
    roles: RolesConfig = Field(default_factory=RolesConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    graph: GraphConfig = Field(default_factory=GraphConfig)
    tenants: list[TenantConfig] = Field(default_factory=list)
    lockdown: LockdownConfig = Field(default_factory=LockdownConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    dns: DnsConfig = Field(default_factory=DnsConfig)

    @model_validator(mode="after")
    def _unique_tenants(self) -> CordonConfig:
        seen: dict[str, str] = {}
        for tenant in self.tenants:
            for domain in tenant.domains:
                if domain in seen and seen[domain] != tenant.name:
                    raise ValueError(f"domain {domain!r} is listed for both {seen[domain]!r} and {tenant.name!r}")
                seen[domain] = tenant.name
        return self


@dataclass(frozen=True)
class BotSettings:
    """Azure Bot settings, under Microsoft's names, from the environment."""

    app_id: str
    app_password: str
    app_type: str
    app_tenant_id: str
    host: str
    port: int
    openid_metadata: str | None

    @property
    def authenticated(self) -> bool:
        return bool(self.app_id)


def load_dotenv_file(path: str | Path = ".env") -> None:
    """Read `.env` if present; real environment variables win."""
    if Path(path).is_file():
        from dotenv import load_dotenv

        load_dotenv(path, override=False)


def bot_settings(environ: dict[str, str] | None = None) -> BotSettings:
    env = os.environ if environ is None else environ
    app_type = env.get("MicrosoftAppType", "MultiTenant") or "MultiTenant"
    if app_type not in ("SingleTenant", "MultiTenant", "UserAssignedMSI"):
        raise ConfigError(f"MicrosoftAppType must be SingleTenant, MultiTenant or UserAssignedMSI, got {app_type!r}")
    port_text = env.get("PORT", "3978") or "3978"
    try:
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise ConfigError(f"PORT must be a port number, got {port_text!r}") from None
    tenant = env.get("MicrosoftAppTenantId", "") or ""
    app_id = env.get("MicrosoftAppId", "") or ""
    try:  # normalised: the tokens' `aud` carries the app id in lower case
        tenant = parse_guid(tenant, "MicrosoftAppTenantId") if tenant else ""
        app_id = parse_guid(app_id, "MicrosoftAppId") if app_id else ""
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if app_type in ("SingleTenant", "UserAssignedMSI") and app_id and not tenant:
        raise ConfigError(f"MicrosoftAppType={app_type} needs MicrosoftAppTenantId")
    return BotSettings(
        app_id=app_id,
        app_password=env.get("MicrosoftAppPassword", "") or "",
        app_type=app_type,
        app_tenant_id=tenant,
        host=env.get("HOST", "0.0.0.0") or "0.0.0.0",
        port=port,
        openid_metadata=env.get("BotOpenIdMetadata") or None,
    )


def config_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("CORDON_CONFIG") or DEFAULT_CONFIG_FILE)


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see the README for the keys)"
        lines.append(f"{key}: {message}")
    return "; ".join(lines)


def parse_config(data: dict[str, Any]) -> CordonConfig:
    try:
        return CordonConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {_describe(exc)}") from None


def load_config(path: str | Path | None = None) -> CordonConfig:
    """Load and validate the TOML file; a missing file means all defaults."""
    file = Path(path) if path is not None else config_path()
    if not file.exists():
        if path is not None or os.environ.get("CORDON_CONFIG"):
            raise ConfigError(f"configuration file {file} does not exist")
        return CordonConfig()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    try:
        return parse_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None


def load_environment(path: str | Path | None = None) -> tuple[BotSettings, CordonConfig]:
    """What every entry point reads: `.env`, the Azure Bot settings and the TOML file (raises `ConfigError`)."""
    load_dotenv_file()
    return bot_settings(), load_config(path)


def allowed_tenants(config: CordonConfig, settings: BotSettings) -> list[str]:
    """`allowed_tenants` from config, else the bot's own tenant; empty means none configured."""
    if config.allowed_tenants is not None:
        return config.allowed_tenants
    return [settings.app_tenant_id] if settings.app_tenant_id else []
