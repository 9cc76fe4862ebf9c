"""Shared fixtures. Test servers (DNS, OpenID/JWKS, Bot Connector, Graph) live in tests/support/."""

from __future__ import annotations

import pytest

from adapters.config import CordonConfig
from adapters.storage import MemoryStorage
from tests.support.dns_fixtures import (  # noqa: F401 - DNS test server fixtures
    _shared_dns_proxy,
    dns_proxy,
    dns_proxy_factory,
    dns_zones,
    nsd_factory,
)
from tests.support.graph_standin.fixtures import gateway_for, graph_standin  # noqa: F401 - Graph stand-in fixtures


@pytest.fixture
def memory_storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def default_config() -> CordonConfig:
    return CordonConfig()
