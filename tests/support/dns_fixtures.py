"""pytest fixtures for the DNS test server (imported by tests/conftest.py); see tests/support/dns_server.py.

- `nsd_factory(zones)` → a started `NsdServer` (session-scoped factory; every server stops at session end).
- `dns_zones` → one session-wide NSD serving every `tests/zones/*.zone` file.
- `dns_proxy_factory(upstream, delay_ms=0)` → a started `FaultProxy` (stopped at session end).
- `dns_proxy` → a `FaultProxy` in front of `dns_zones`, its rules cleared after each test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.dns_faults import FaultProxy
from tests.support.dns_server import NSD, NsdServer, load_zone_dir, nsd_available, start_nsd

ZONES_DIR = Path(__file__).resolve().parents[1] / "zones"


def _require_nsd() -> None:
    if not nsd_available():
        pytest.skip(f"NSD is not installed at {NSD}: `bash tests/run` installs it (Debian package nsd)")


@pytest.fixture(scope="session")
def nsd_factory() -> Iterator[Callable[[Any], NsdServer]]:
    servers: list[NsdServer] = []

    def start(zones: Any) -> NsdServer:
        _require_nsd()
        server = start_nsd(zones)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def dns_zones() -> Iterator[NsdServer]:
    _require_nsd()
    server = NsdServer(load_zone_dir(ZONES_DIR) if ZONES_DIR.is_dir() else {}).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dns_proxy_factory() -> Iterator[Callable[..., FaultProxy]]:
    proxies: list[FaultProxy] = []

    def start(upstream: tuple[str, int], **options: Any) -> FaultProxy:
        proxy = FaultProxy(upstream, **options).start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


@pytest.fixture(scope="session")
def _shared_dns_proxy(dns_zones: NsdServer, dns_proxy_factory: Callable[..., FaultProxy]) -> FaultProxy:
    return dns_proxy_factory(dns_zones.address)


@pytest.fixture
def dns_proxy(_shared_dns_proxy: FaultProxy) -> Iterator[FaultProxy]:
    _shared_dns_proxy.clear()
    yield _shared_dns_proxy
    _shared_dns_proxy.clear()
