"""Bot Connector clients kept per (service URL, audience) for proactive sends.

The SDK builds a new `ConnectorClient` (msrest pipeline, requests session, credentials) for every proactive turn,
about 10 ms of CPU each; an alert storm is hundreds of sends. A pooled client is safe to share on one event loop:
every request asks the client's credentials for the token (MSAL or the token provider renews it when due), and
the client was made by `bot.auth`'s guarded factory, so the `--dev` loopback refusal (decided by the service URL,
which is the pool key) and the no-status-retry policy hold for every use. Least recently used clients beyond
`max_clients` are dropped and their idle connections closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from bot.sdk_internals import requests_driver

log = logging.getLogger(__name__)

MAX_CLIENTS = 256  # service URLs are per region (and, lately, per tenant); a bound keeps sockets in check
POOL_CONNECTIONS = 32  # idle keep-alive connections kept per client (urllib3 warns and drops beyond this)


def _session(client: Any) -> Any:
    """The client's requests session (msrest keeps one per thread; the event loop's is the one used)."""
    return getattr(requests_driver(client), "session", None)


def _widen_pool(client: Any) -> None:
    """Concurrent sends share the session: keep more than requests' default 10 connections per host."""
    session = _session(client)
    if session is None:
        return
    from requests.adapters import HTTPAdapter

    for prefix, adapter in list(session.adapters.items()):
        if isinstance(adapter, HTTPAdapter):  # keep its retry policy (bot.auth set it): only the pool grows
            session.mount(prefix, HTTPAdapter(pool_maxsize=POOL_CONNECTIONS, max_retries=adapter.max_retries))


def _close(client: Any) -> None:
    """Close idle connections; a request still running on it finishes (urllib3 closes its connection after)."""
    try:
        session = _session(client)
        if session is not None:
            session.close()
    except Exception:  # noqa: BLE001 - dropping a client must never fail a send
        log.debug("closing a pooled connector client failed", exc_info=True)


class ConnectorPool:
    """Connector clients for one bot app id, made by the adapter's (guarded) authentication on first use."""

    def __init__(self, adapter: Any, app_id: str, *, max_clients: int = MAX_CLIENTS) -> None:
        self.adapter = adapter
        self.app_id = app_id
        self.max_clients = max_clients
        self.created = 0  # clients made so far (tests and benchmarks read it)
        self._clients: OrderedDict[tuple[str, str | None], Any] = OrderedDict()
        self._lock = asyncio.Lock()

    async def client(self, service_url: str, audience: str | None = None) -> Any:
        """The client for this service URL; raises what the guarded factory raises (e.g. --dev non-loopback)."""
        key = (service_url, audience)
        found = self._clients.get(key)
        if found is not None:
            self._clients.move_to_end(key)
            return found
        async with self._lock:  # concurrent first sends to one URL make one client
            found = self._clients.get(key)
            if found is not None:
                return found
            claims = self.adapter.create_claims_identity(self.app_id)
            factory = self.adapter.bot_framework_authentication.create_connector_factory(claims)
            client = await factory.create(service_url, audience)
            _widen_pool(client)
            self.created += 1
            self._clients[key] = client
            while len(self._clients) > self.max_clients:
                _, dropped = self._clients.popitem(last=False)
                _close(dropped)
            return client

    def close(self) -> None:
        while self._clients:
            _close(self._clients.popitem()[1])
