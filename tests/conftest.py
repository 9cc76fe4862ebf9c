"""Shared fixtures. Test servers (DNS, OpenID/JWKS, Bot Connector, Graph) live in tests/support/."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from adapters.config import CordonConfig
from adapters.storage import MemoryStorage, Storage
from tests.support.azurite import azurite  # noqa: F401 - Azurite (Azure Table storage) for the azure backend
from tests.support.dns_fixtures import (  # noqa: F401 - DNS test server fixtures
    _shared_dns_proxy,
    dns_proxy,
    dns_proxy_factory,
    dns_zones,
    nsd_factory,
)
from tests.support.graph_standin.fixtures import gateway_for, graph_standin  # noqa: F401 - Graph stand-in fixtures
from tests.support.stores import shared_store  # noqa: F401 - one store on SQLite or Azurite, by spec


@pytest.fixture
def azure_store_factory(request: pytest.FixtureRequest) -> Callable[[str | None], Storage]:
    """Makes AzureTableStorage instances on the session's Azurite; one table prefix per test unless given."""
    from adapters.azure_storage import AzureTableStorage

    server = request.getfixturevalue("azurite")
    default = server.new_prefix()

    def make(prefix: str | None = None) -> Storage:
        return AzureTableStorage(prefix=prefix or default, connection_string=server.connection_string)

    return make


@pytest.fixture
def memory_storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def default_config() -> CordonConfig:
    return CordonConfig()
