"""Shared fixtures. Test servers (DNS, OpenID/JWKS, Bot Connector, Graph) live in tests/support/."""

from __future__ import annotations

import pytest

from adapters.config import CordonConfig
from adapters.storage import MemoryStorage


@pytest.fixture
def memory_storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def default_config() -> CordonConfig:
    return CordonConfig()
