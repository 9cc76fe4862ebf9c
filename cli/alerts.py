"""`python app.py poll-once [--tenant T] [--json] [--dev]`: one risky sign-in polling cycle, with the server's
configuration and storage (so it shares watermarks, de-duplication, leases and subscriptions with a running
server), printing what it sent.

`--json` prints a list of `{"detection_id", "user", "risk_level", "conversation", "status"}` (status: sent,
updated, digest, pending, undeliverable, dropped). Exit codes: 0 done, 2 bad argument or configuration,
3 Graph refused (permission/licence/credentials) for a tenant asked for by name, 1 other errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters.config import BotSettings, CordonConfig
    from wiring import Wiring

USAGE_ERROR = 2
REFUSED = 3
NOTES = {
    "busy": "another Cordon process is polling this tenant right now (it holds the lease); try again shortly",
    "not licensed": "not licensed: risk detections need Entra ID P2, so this tenant is not polled (`alerts status` "
    "shows its licence)",
    "no subscriptions": "no channel or chat subscribes to its alerts (or every subscription stopped working): run "
    "`alerts on --tenant NAME` there",
}


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tenant", help="poll only this tenant (name, tenant id or domain); default: every subscribed tenant"
    )
    parser.add_argument("--json", action="store_true", help="print the alerts sent as JSON")
    parser.add_argument(
        "--dev",
        action="store_true",
        help="as for the server: no app id, unauthenticated sends to loopback service URLs only",
    )


def run(name: str, args: argparse.Namespace, wiring: Wiring) -> int:
    settings, config = wiring.load_or_exit()
    if not settings.app_id and not args.dev:
        wiring.exit_usage(
            "cordon",
            "MicrosoftAppId is not set, so alerts cannot be sent to Teams; set it (see the "
            "README) or use --dev to send to a local Bot Framework Emulator / connector on loopback.",
        )
    return asyncio.run(_poll_once(wiring, settings, config, args))


async def _poll_once(wiring: Wiring, settings: BotSettings, config: CordonConfig, args: argparse.Namespace) -> int:
    from adapters.graph.errors import GraphProblem
    from adapters.graph.tenants import UnknownTenant
    from dialogs.alerts.poller import Poller, tenant_name
    from dialogs.alerts.runtime import risk_source, tenants

    async with wiring.bot_services(settings, config, dev=args.dev) as services:  # the server's storage, messenger
        wanted = None
        if args.tenant:
            try:
                wanted = [tenants(services).by_name(args.tenant).tenant_id]
            except UnknownTenant as exc:
                print(f"cordon: {exc}", file=sys.stderr)
                return USAGE_ERROR
        poller = Poller(services, risk_source(services))
        outcomes = await poller.cycle(wanted, force=True)
    results = [r for o in outcomes for r in o.results or []]
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2))
    else:
        for r in results:
            print(f"{r.status:<13} {r.risk_level:<7} {r.user:<40} {r.detection_id} -> {r.conversation}")
        if not results:
            print("nothing to send", file=sys.stderr)
    for o in outcomes:
        note = o.error or NOTES.get(o.skipped or "", o.skipped)
        if note:
            print(f"{tenant_name(services, o.tenant_id)}: {note}", file=sys.stderr)
    errors = [o for o in outcomes if o.error]
    if errors and args.tenant and isinstance(errors[0].problem, GraphProblem) and errors[0].problem.refused:
        return REFUSED
    if args.tenant and any(o.skipped == "not licensed" for o in outcomes):  # asked for it by name: Graph refused
        return REFUSED
    return 1 if errors else 0
