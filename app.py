"""Cordon's entry point: `python app.py [--dev]` serves the bot; the other subcommands are the CLI.

Each subcommand lives in the front-end that owns it (`bot/` serves, `cli/` the rest) and is imported only when
chosen, so `check` and `spf` start without loading Microsoft Graph or the Bot Framework. Its `run(name, args,
wiring)` gets the composition root (`wiring.py`): the one place Cordon's parts are built.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from types import ModuleType

from wiring import BACKGROUND, ConfigExit, Wiring, build_app

__all__ = ["BACKGROUND", "SUBCOMMANDS", "build_app", "main"]

# subcommand -> (module, one-line help). The module defines add_arguments(name, parser) and
# run(name, args, wiring) -> int.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("bot.server", "serve the bot (the default): POST /api/messages, GET /healthz, GET /readyz"),
    "chat": ("cli.console", "talk to Cordon in this terminal (same router, gate and dialogs)"),
    "manifest": ("manifest.build", "write the Teams app package (zip) for an app id"),
    "check": ("cli.emailauth", "check a domain's SPF, DKIM, DMARC, MX, MTA-STS, TLS-RPT, BIMI, DNSSEC"),
    "spf": ("cli.spf", "evaluate SPF (RFC 7208 check_host) for a domain and an IP"),
    "mfa": ("cli.mfa", "MFA registration and enforcement for one user"),
    "mfa-report": ("cli.mfa", "MFA report for a whole tenant"),
    "poll-once": ("cli.alerts", "run one risky sign-in polling cycle and print what was sent"),
    "investigate": ("cli.investigate", "investigate one user: sign-ins, audits, rules, consents, devices"),
    "hunt": ("cli.investigate", "find the other accounts reached from a compromised user's IPs (or an IP)"),
    "permissions": ("adapters.graph.permissions", "print the Microsoft Graph permissions, roles and licences needed"),
}

USAGE_ERROR = 2


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
    try:
        return int(module.run(name, args, Wiring()) or 0)
    except ConfigExit as exc:  # already said on stderr
        return int(exc.code or USAGE_ERROR)


if __name__ == "__main__":
    sys.exit(main())
