"""`python app.py mfa USER [--tenant T] [--json]` and `python app.py mfa-report [--tenant T] [--json | --csv FILE]`.

Same Graph layer and judgement as the chat commands. Exit codes: 0 done, 2 bad argument (malformed user,
unknown tenant or user, bad configuration), 3 Graph refused (permission, licence, credentials), 1 Graph
throttling or unavailable. `mfa-report --csv` streams every user to the file as pages arrive.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wiring import Wiring

DONE, FAILED, USAGE_ERROR, REFUSED = 0, 1, 2, 3


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "mfa":
        parser.add_argument("user", help="sign-in name (alice@contoso.com) or object id")
        parser.add_argument("--tenant", help="tenant name, id or domain (default: from the user's domain)")
        parser.add_argument("--json", action="store_true", help="print the status as JSON")
        return
    parser.add_argument("--tenant", help="tenant name, id or domain (default: the only configured tenant)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the summary as JSON")
    output.add_argument("--csv", metavar="FILE", help="write every user (one row each) to FILE")


def _exit_code(problem: Any) -> int:
    if problem.refused:
        return REFUSED
    return USAGE_ERROR if problem.kind in ("not_found", "bad_request") else FAILED


def run(name: str, args: argparse.Namespace, wiring: Wiring) -> int:
    settings, config = wiring.load_or_exit()
    gateway = wiring.graph_gateway(settings, config)
    work = _user(gateway, args) if name == "mfa" else _report(gateway, args)
    return asyncio.run(work)


async def _user(gateway: Any, args: argparse.Namespace) -> int:
    from adapters.graph.errors import GraphProblem
    from adapters.graph.inputs import BadUserInput
    from dialogs.contract import utc_now
    from dialogs.mfa import user_status

    try:
        status = await user_status(gateway, args.user, args.tenant, None, utc_now())
    except BadUserInput as exc:
        print(f"cordon: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except GraphProblem as problem:
        print(f"cordon: {problem.user_message}", file=sys.stderr)
        return _exit_code(problem)
    finally:
        await gateway.close()
    data = status.to_json()
    if args.json:
        print(json.dumps(data, indent=2))
        return DONE
    print(data["verdict"])
    print(
        f"{data['display_name']} <{data['user']}> in {data['tenant']}; enabled: {data['account_enabled']}; "
        f"admin roles: {', '.join(data['admin_roles']) or 'none'}; last sign-in: {data['last_sign_in'] or '—'}"
    )
    for method in data["methods"]:
        print(
            f"  {method['strength']:<18} {method['type']:<24} {method['detail'] or '':<28} added "
            f"{method['created'] or '—'}"
        )
    print(
        f"registration report updated {data['report_updated'] or '—'}; enforced by: "
        f"{', '.join(data['enforced_by']) or '—'}; partly by: {', '.join(data['partially_enforced_by']) or '—'}"
    )
    for gap in data["not_read"]:
        print(f"  not read: {gap}", file=sys.stderr)
    return DONE


async def _report(gateway: Any, args: argparse.Namespace) -> int:
    from adapters.graph.errors import GraphProblem
    from adapters.graph.inputs import BadUserInput
    from adapters.graph.mfa_report import CSV_FIELDS, TenantReport, build_report, csv_row

    try:
        tenant = gateway.directory.by_name(args.tenant) if args.tenant else gateway.directory.default()
    except BadUserInput as exc:
        print(f"cordon: {exc}", file=sys.stderr)
        await gateway.close()
        return USAGE_ERROR
    handle = None
    report = TenantReport(tenant=tenant.name)
    try:
        on_row = None
        if args.csv:
            try:
                handle = Path(args.csv).open("w", newline="", encoding="utf-8")  # noqa: SIM115 - closed below
            except OSError as exc:
                print(f"cordon: cannot write {args.csv}: {exc.strerror}", file=sys.stderr)
                return USAGE_ERROR
            writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
            writer.writeheader()

            def on_row(item: dict[str, Any], level: int | None) -> None:
                writer.writerow(csv_row(item, level, report.is_admin(item)))

        await build_report(gateway, tenant, on_row=on_row, report=report)
    except GraphProblem as problem:
        print(f"cordon: {problem.user_message}", file=sys.stderr)
        return _exit_code(problem)
    finally:
        if handle is not None:
            handle.close()
        await gateway.close()
    data = report.to_json()
    if args.json:
        print(json.dumps(data, indent=2))
        return DONE
    print(
        f"{data['tenant']}: {data['users']:,} users, {data['registered']:,} registered "
        f"({report.percent(report.registered)}), {data['capable']:,} capable, {data['weak_only']:,} SMS/voice only"
    )
    print(f"MFA {data['enforcement']}")
    print(f"admins without MFA: {', '.join(data['admins_without_mfa']) or 'none'}")
    if args.csv:
        print(f"wrote {data['users']:,} rows to {args.csv}")
    return DONE
