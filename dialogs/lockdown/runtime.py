"""Per-process lock-down machinery: the runner's identity, its background tasks, and how Graph is reached.

Kept in `Services.runtimes`, created on first use. `owner` names this process in a running request's
lease, so two Cordon processes on one store never run the same request at once. `outboxes` holds the turn outbox
of a request only when there is no messenger (the console). Tests `await drain()` to wait for background runs.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adapters.config import TenantConfig
from dialogs.contract import Outbox, Services
from dialogs.lockdown.state import RequestStore

if TYPE_CHECKING:
    from adapters.graph.containment import Containment
    from adapters.graph.investigation import Investigation

log = logging.getLogger(__name__)


@dataclass
class TenantGraph:
    """What the lock-down needs in one tenant."""

    tenant: TenantConfig
    containment: Containment
    investigation: Investigation
    licence: str | None


async def gateway_graph(services: Services, tenant: TenantConfig) -> TenantGraph:
    """The production wiring: `Services.graph` (a GraphGateway)."""
    from adapters.graph.containment import Containment
    from adapters.graph.errors import GraphProblem
    from adapters.graph.investigation import Investigation

    gateway = services.graph
    if gateway is None:
        raise GraphProblem(
            "credentials", "Microsoft Graph is not configured in this Cordon (no tenants or credentials)."
        )
    try:
        licence: str | None = await gateway.licence(tenant)
    except GraphProblem as problem:
        log.info("licence level of %s unknown: %s", tenant.name, problem.kind)
        licence = None
    return TenantGraph(tenant, Containment(gateway, tenant), Investigation(gateway, tenant), licence)


@dataclass
class Runtime:
    owner: str = field(default_factory=lambda: secrets.token_hex(8))
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    outboxes: dict[str, Outbox] = field(default_factory=dict)  # request id -> outbox, when there is no messenger
    graph_for: Callable[[Services, TenantConfig], Awaitable[TenantGraph]] = gateway_graph

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("lock-down background task %s failed", task.get_name(), exc_info=task.exception())

    async def drain(self) -> None:
        """Wait until no background run is left (tests, shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


def runtime(services: Services) -> Runtime:
    return services.runtimes.of(Runtime)


def store(services: Services) -> RequestStore:
    return RequestStore(services.storage, services.clock)
