"""Per-process alert machinery: the risk source (Identity Protection over the Graph gateway) and the poller task.

Kept in `Services.runtimes`, made on first use. Tests put their own `source` there. `start(app, services)`
is the background hook app.py runs at start-up (`BACKGROUND`); it returns the poller task.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dialogs.contract import Services

if TYPE_CHECKING:
    from adapters.graph.tenants import TenantDirectory
    from dialogs.alerts.poller import Poller, RiskActions

log = logging.getLogger(__name__)


@dataclass
class AlertsRuntime:
    source: RiskActions | None = None  # Identity Protection (adapters.graph.identity_protection); tests set their own
    poller: Poller | None = None
    task: asyncio.Task[Any] | None = None
    stop: asyncio.Event | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def runtime(services: Services) -> AlertsRuntime:
    return services.runtimes.of(AlertsRuntime)


def risk_source(services: Services) -> RiskActions:
    """Identity Protection for this process: the poller and the buttons share one pacer, kept in the store."""
    rt = runtime(services)
    if rt.source is None:
        if services.graph is None:
            from adapters.graph.errors import GraphProblem

            raise GraphProblem(
                "credentials",
                "Microsoft Graph is not configured in this Cordon "
                "(no tenants or credentials), so risk alerts cannot be read.",
            )
        from adapters.graph.identity_protection import IdentityProtection
        from adapters.shared_pacer import SharedPacer

        # the pacer's schedule is in the store: <= 1 request/s per tenant across every instance sharing it
        rt.source = IdentityProtection(services.graph, pacer=SharedPacer(services.storage))
    return rt.source


def tenants(services: Services) -> TenantDirectory:
    """The configured tenants."""
    from adapters.graph.tenants import TenantDirectory

    directory: TenantDirectory | None = getattr(services.graph, "directory", None)  # tests' stand-ins too
    if directory is not None:
        return directory

    return TenantDirectory(services.config.tenants)


async def start(app: Any, services: Services) -> asyncio.Task[Any] | None:
    """Start the poller in the background (app.py's BACKGROUND hook). Off when `[alerts] enabled = false`."""
    if not services.config.alerts.enabled:
        log.info("risk alerts are disabled in the configuration")
        return None
    if services.messenger is None:
        log.warning("risk alert poller not started: no messenger for proactive sends")
        return None
    from dialogs.alerts.poller import Poller

    rt = runtime(services)
    if rt.task is not None and not rt.task.done():
        return rt.task
    if rt.source is None and services.graph is None:
        log.warning("risk alert poller not started: Microsoft Graph is not configured")
        return None
    rt.poller = Poller(services, risk_source(services))
    rt.stop = asyncio.Event()
    rt.task = asyncio.get_running_loop().create_task(rt.poller.run_forever(rt.stop), name="cordon-alert-poller")

    async def on_shutdown(_app: Any) -> None:  # before storage closes (on_cleanup)
        await stop(services)

    if app is not None:
        app.on_shutdown.append(on_shutdown)
    return rt.task


async def stop(services: Services) -> None:
    """Stop the poller (shutdown, tests): lets the current cycle's writes finish, then cancels."""
    rt = runtime(services)
    if rt.stop is not None:
        rt.stop.set()
    if rt.task is not None:
        try:
            await asyncio.wait_for(asyncio.shield(rt.task), timeout=5)
        except TimeoutError:
            rt.task.cancel()
        except Exception:  # noqa: BLE001 - shutting down: the poller's own log has the details
            log.debug("alert poller ended with an error", exc_info=True)
        rt.task = None
