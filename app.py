"""Cordon's entry point: `python app.py [--dev]` serves the bot; the other subcommands are the CLI.

Each subcommand lives in the module that owns its concern and is imported only when chosen, so `check` and `spf`
start without loading Microsoft Graph or the Bot Framework.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from types import ModuleType
from typing import Any

# subcommand -> (module, one-line help). The module defines add_arguments(name, parser) and run(name, args) -> int.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("bot.server", "serve the bot (the default): POST /api/messages, GET /healthz, GET /readyz"),
    "chat": ("dialogs.console", "talk to Cordon in this terminal (same router, gate and dialogs)"),
    "manifest": ("manifest.build", "write the Teams app package (zip) for an app id"),
    "check": ("dialogs.emailauth_cli", "check a domain's SPF, DKIM, DMARC, MX, MTA-STS, TLS-RPT, BIMI, DNSSEC"),
    "spf": ("dialogs.spf_cli", "evaluate SPF (RFC 7208 check_host) for a domain and an IP"),
    "mfa": ("dialogs.mfa_cli", "MFA registration and enforcement for one user"),
    "mfa-report": ("dialogs.mfa_cli", "MFA report for a whole tenant"),
    "poll-once": ("dialogs.alerts_cli", "run one risky sign-in polling cycle and print what was sent"),
    "permissions": ("adapters.graph.permissions", "print the Microsoft Graph permissions, roles and licences needed"),
}

USAGE_ERROR = 2

# Background work started with the server: "module:function", each `async def start(app, services) -> None`
# (pollers, lock-down resumption). They start their own tasks and stop them on app cleanup.
BACKGROUND: list[str] = ["dialogs.lockdown:start", "dialogs.alerts.runtime:start"]


def build_app(settings: Any, config: Any, *, dev: bool, storage: Any = None, clock: Any = None,
              token_provider: Any = None, background: list[str] | None = None) -> Any:
    """Assemble the running bot: storage, services, roles, router, the aiohttp app and its background work.

    `storage` defaults to SQLite at `config.storage.path` (closed on cleanup); `token_provider(app_id, scope)`
    replaces MSAL for outbound tokens (tests); `background` defaults to BACKGROUND.
    """
    from adapters.graph import GraphGateway
    from adapters.roles import RoleResolver
    from adapters.storage import SQLiteStorage
    from bot.server import create_app
    from dialogs.contract import Services, utc_now
    from dialogs.router import Router

    owned = storage is None
    store = SQLiteStorage(config.storage.path) if owned else storage
    graph = GraphGateway(config, settings)  # Microsoft Graph per tenant; clients are made lazily inside the loop
    services = Services(config=config, storage=store, clock=clock or utc_now, graph=graph)
    router = Router(services, RoleResolver(config.roles, graph.check_groups if graph.tenants else None))
    web_app = create_app(settings, config, services, router, dev=dev, token_provider=token_provider)  # sets messenger

    async def start_background(app: Any) -> None:
        for spec in BACKGROUND if background is None else background:
            module_name, _, function = spec.partition(":")
            await getattr(importlib.import_module(module_name), function)(app, services)

    async def close_storage(app: Any) -> None:
        if owned:
            await store.close()

    async def close_graph(app: Any) -> None:
        await graph.close()

    web_app.on_startup.append(start_background)
    web_app.on_cleanup.append(close_storage)
    web_app.on_cleanup.append(close_graph)
    return web_app


def _parser_for(name: str) -> tuple[argparse.ArgumentParser, ModuleType]:
    module_name, summary = SUBCOMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"app.py {name}" if name != "serve" else "app.py", description=summary)
    module.add_arguments(name, parser)
    return parser, module


def _top_usage() -> str:
    lines = ["usage: python app.py [--dev] | python app.py COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<11} {summary}" for name, (_, summary) in SUBCOMMANDS.items()]
    lines.append("\n`python app.py COMMAND --help` shows a command's options.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(_top_usage())
        return 0
    name = "serve"
    if argv and not argv[0].startswith("-"):
        name = argv.pop(0)
        if name not in SUBCOMMANDS:
            print(f"app.py: unknown command {name!r}\n\n{_top_usage()}", file=sys.stderr)
            return USAGE_ERROR
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpcore", "msal", "azure", "urllib3"):  # one line per request, user names in URLs
        logging.getLogger(chatty).setLevel(logging.WARNING)
    parser, module = _parser_for(name)
    args = parser.parse_args(argv)
    return int(module.run(name, args) or 0)


if __name__ == "__main__":
    sys.exit(main())
