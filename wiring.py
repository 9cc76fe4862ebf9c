"""The composition root: the one place that builds Cordon's parts for the server, the console and every CLI.

Front-ends (`bot/`, `cli/`) never import this module (it sits above them, checked by import-linter): `app.py`
hands a `Wiring` to each subcommand's `run(name, args, wiring)`. Configuration errors become one line on stderr
and exit code 2 here too (`load_or_exit`), so every entry point says them the same way.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from aiohttp import web

    from adapters.config import BotSettings, CordonConfig
    from adapters.graph import GraphGateway
    from adapters.roles import RoleResolver
    from adapters.storage import Storage
    from dialogs.contract import Clock, Messenger, Services
    from dialogs.router import Router

USAGE_ERROR = 2

# Background work started with the server: "module:function", each `async def start(app, services) -> None`
# (pollers, lock-down resumption). They start their own tasks and stop them on app cleanup.
BACKGROUND: list[str] = ["dialogs.lockdown:start", "dialogs.alerts.runtime:start"]


class ConfigExit(SystemExit):
    """A configuration error: already printed as one line; the process exits 2."""


def load_or_exit(config_path: str | None = None, *, prog: str = "cordon") -> tuple[BotSettings, CordonConfig]:
    """`.env`, the bot settings and cordon.toml, or one line on stderr and exit 2 (the same in every entry point)."""
    from adapters.config import ConfigError, load_environment

    try:
        return load_environment(config_path)
    except ConfigError as exc:
        exit_usage(prog, str(exc))


def exit_usage(prog: str, message: str) -> NoReturn:
    print(f"{prog}: {message}", file=sys.stderr)
    raise ConfigExit(USAGE_ERROR)


def open_storage(config: CordonConfig, *, memory: bool = False, prog: str = "cordon") -> Storage:
    """The store `[storage]` names (SQLite or Azure Table storage), or in memory; a bad `[storage]` value is one
    line on stderr and exit 2. An SQLite file that cannot be opened raises (`OSError`, `sqlite3.Error`)."""
    from adapters.config import ConfigError
    from adapters.storage import MemoryStorage
    from adapters.storage import open_storage as open_configured

    if memory:
        return MemoryStorage()
    try:
        return open_configured(config.storage)
    except ConfigError as exc:
        exit_usage(prog, str(exc))


def graph_gateway(settings: BotSettings, config: CordonConfig) -> GraphGateway:
    """Microsoft Graph per configured tenant (clients are made lazily, inside the event loop)."""
    from adapters.graph import GraphGateway

    return GraphGateway(config, settings)


def build_services(
    settings: BotSettings,
    config: CordonConfig,
    storage: Storage,
    *,
    clock: Clock | None = None,
    messenger: Messenger | None = None,
) -> Services:
    """Everything dialogs may use, with Microsoft Graph per configured tenant."""
    from dialogs.contract import Services, utc_now

    return Services(
        config=config,
        storage=storage,
        clock=clock or utc_now,
        messenger=messenger,
        graph=graph_gateway(settings, config),
    )


def role_resolver(config: CordonConfig, graph: GraphGateway | None) -> RoleResolver:
    """The same resolver for Teams and the console (groups through Graph when tenants are configured)."""
    from adapters.roles import RoleResolver

    return RoleResolver(config.roles, graph.check_groups if graph is not None and graph.tenants else None)


def build_router(services: Services, resolver: RoleResolver | None = None) -> Router:
    from dialogs.router import Router

    return Router(services, resolver or role_resolver(services.config, services.graph))


async def close_services(services: Services, *, storage: bool = True) -> None:
    try:
        if services.graph is not None:
            await services.graph.close()
    finally:
        if storage:
            await services.storage.close()


def build_app(
    settings: BotSettings,
    config: CordonConfig,
    *,
    dev: bool,
    storage: Storage | None = None,
    clock: Clock | None = None,
    token_provider: Any = None,
    background: list[str] | None = None,
) -> web.Application:
    """The running bot: storage, the Bot Framework connection, services, roles, router, the aiohttp app and its
    background work.

    `storage` defaults to what `[storage]` names (SQLite or Azure Table storage; closed on cleanup);
    `token_provider(app_id, scope)` replaces MSAL for outbound tokens (tests); `background` defaults to BACKGROUND.
    """
    from bot.server import connect, create_app

    owned = storage is None
    store = open_storage(config) if storage is None else storage
    connection = connect(settings, config, store, clock, dev=dev, token_provider=token_provider)
    services = build_services(settings, config, store, clock=clock, messenger=connection.messenger)
    web_app = create_app(settings, config, services, build_router(services), connection, dev=dev)

    async def start_background(app: web.Application) -> None:
        for spec in BACKGROUND if background is None else background:
            module_name, _, function = spec.partition(":")
            await getattr(importlib.import_module(module_name), function)(app, services)

    async def close(app: web.Application) -> None:
        await close_services(services, storage=owned)

    web_app.on_startup.append(start_background)
    web_app.on_cleanup.append(close)
    return web_app


@asynccontextmanager
async def bot_services(settings: BotSettings, config: CordonConfig, *, dev: bool) -> AsyncIterator[Services]:
    """Services that send through the Bot Framework, without a server (`poll-once`): the server's storage and
    messenger, closed on exit."""
    from bot.server import connect

    store = open_storage(config)
    connection = connect(settings, config, store, None, dev=dev)
    services = build_services(settings, config, store, messenger=connection.messenger)
    try:
        yield services
    finally:
        await close_services(services)


@dataclass(frozen=True)
class Wiring:
    """What `app.py` hands every subcommand: the builders above, so no front-end imports this module."""

    load_or_exit = staticmethod(load_or_exit)
    exit_usage = staticmethod(exit_usage)
    open_storage = staticmethod(open_storage)
    graph_gateway = staticmethod(graph_gateway)
    build_services = staticmethod(build_services)
    role_resolver = staticmethod(role_resolver)
    build_router = staticmethod(build_router)
    close_services = staticmethod(close_services)
    build_app = staticmethod(build_app)
    bot_services = staticmethod(bot_services)
