"""Which tenant a command acts in: configured `[[tenants]]`, found by name, id or the user's mail domain.

An MSP serves many customer tenants; a command about alice@fabrikam.com must act in Fabrikam's tenant and never
in another one. Without `[[tenants]]`, Cordon acts only in its own tenant (`MicrosoftAppTenantId`) through its
managed identity.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from adapters.config import BotSettings, CordonConfig, TenantConfig
from adapters.graph.inputs import BadUserInput, UserRef, parse_user

HOME_TENANT_NAME = "Home tenant"


class UnknownTenant(BadUserInput):
    """No configured tenant matches; the message lists the configured ones."""


def default_tenants(config: CordonConfig, settings: BotSettings | None) -> list[TenantConfig]:
    """`[[tenants]]` from config, else the bot's own tenant with its managed identity (or none)."""
    if config.tenants:
        return list(config.tenants)
    if settings is None or not settings.app_tenant_id:
        return []
    client_id = settings.app_id if settings.app_type == "UserAssignedMSI" and settings.app_id else None
    return [
        TenantConfig(
            name=HOME_TENANT_NAME, tenant_id=settings.app_tenant_id, credential="managed_identity", client_id=client_id
        )
    ]


class TenantDirectory:
    """Look-ups over the configured tenants (immutable after start)."""

    def __init__(self, tenants: Iterable[TenantConfig]) -> None:
        self.tenants: list[TenantConfig] = list(tenants)
        self._by_domain = {domain: t for t in self.tenants for domain in t.domains}

    def __iter__(self) -> Iterator[TenantConfig]:
        return iter(self.tenants)

    def __len__(self) -> int:
        return len(self.tenants)

    def listing(self) -> str:
        if not self.tenants:
            return "no tenants are configured (set MicrosoftAppTenantId, or add [[tenants]] to cordon.toml)"
        return ", ".join(f"{t.name} ({', '.join(t.domains) or 'no domains listed'})" for t in self.tenants)

    def by_id(self, tenant_id: str | None) -> TenantConfig | None:
        if not tenant_id:
            return None
        wanted = tenant_id.lower()
        return next((t for t in self.tenants if t.tenant_id == wanted), None)

    def by_name(self, name: str) -> TenantConfig:
        """A tenant by display name (case-insensitive), tenant id or one of its domains."""
        wanted = name.strip().lower()
        for tenant in self.tenants:
            if wanted in (tenant.name.lower(), tenant.tenant_id) or wanted in tenant.domains:
                return tenant
        raise UnknownTenant(f"`{name[:80]}` is not a tenant Cordon acts in. Configured: {self.listing()}.")

    def by_domain(self, domain: str) -> TenantConfig | None:
        """The tenant owning `domain` (or a parent domain of it)."""
        labels = domain.lower().rstrip(".").split(".")
        for i in range(len(labels) - 1):
            tenant = self._by_domain.get(".".join(labels[i:]))
            if tenant is not None:
                return tenant
        return None

    def default(self, conversation_tenant_id: str | None = None) -> TenantConfig:
        """The tenant for a command that names none: the conversation's, else the only one configured."""
        tenant = self.by_id(conversation_tenant_id)
        if tenant is not None:
            return tenant
        if len(self.tenants) == 1:
            return self.tenants[0]
        raise UnknownTenant(f"Say which tenant (`--tenant NAME`). Configured: {self.listing()}.")

    def resolve_user(
        self, text: str, tenant_name: str | None = None, conversation_tenant_id: str | None = None
    ) -> tuple[TenantConfig, UserRef]:
        """Validate the user text and pick the tenant to ask about it."""
        user = parse_user(text)
        if not self.tenants:
            raise UnknownTenant(f"Cordon cannot look users up: {self.listing()}.")
        owner = self.by_domain(user.domain) if user.domain else None
        if tenant_name:
            tenant = self.by_name(tenant_name)
            if owner is not None and owner is not tenant:
                raise UnknownTenant(f"{user.key} belongs to {owner.name}, not {tenant.name}.")
            return tenant, user
        if owner is not None:
            return owner, user
        if user.domain is not None:
            if len(self.tenants) == 1 and not self.tenants[0].domains:
                return self.tenants[0], user
            raise UnknownTenant(
                f"No configured tenant owns the domain {user.domain}. Configured: {self.listing()}. "
                "Add the domain to that tenant's `domains` in cordon.toml, or pass `--tenant NAME`."
            )
        return self.default(conversation_tenant_id), user
