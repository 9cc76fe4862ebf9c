"""`python app.py investigate USER [--days N] [--tenant T] [--json]` and
`python app.py hunt USER_OR_IP [--days N] [--tenant T] [--json]`: the same reads and judgement as the cards.

Exit codes: 0 done, 2 bad argument (malformed user or IP, days out of range, unknown tenant or user, bad
configuration), 3 Graph refused everything (investigate) or the sign-in log (hunt), 1 throttling/unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wiring import Wiring

DONE, FAILED, USAGE_ERROR, REFUSED = 0, 1, 2, 3


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    subject = (
        "sign-in name (alice@contoso.com) or object id"
        if name == "investigate"
        else "a compromised user (sign-in name or object id) or an IP address"
    )
    parser.add_argument("subject", metavar="USER" if name == "investigate" else "USER_OR_IP", help=subject)
    parser.add_argument("--days", default="7", help="window in days, 1..30 (default 7)")
    parser.add_argument("--tenant", help="tenant name, id or domain (default: from the user's domain)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(name: str, args: argparse.Namespace, wiring: Wiring) -> int:
    settings, config = wiring.load_or_exit()
    return asyncio.run(_run(name, wiring.graph_gateway(settings, config), args))


def _exit_code(problem: Any) -> int:
    if problem.refused:
        return REFUSED
    return USAGE_ERROR if problem.kind in ("not_found", "bad_request") else FAILED


async def _run(name: str, gateway: Any, args: argparse.Namespace) -> int:
    from adapters.graph.errors import GraphProblem
    from adapters.graph.inputs import BadUserInput
    from dialogs.contract import utc_now
    from dialogs.investigate.commands import parse_days, run_hunt, run_investigation
    from dialogs.investigate.report import refused_everything

    try:
        days = parse_days(args.days)
        if name == "investigate":
            report = await run_investigation(gateway, args.subject, days, utc_now(), tenant_name=args.tenant)
            data = report.to_json()
            code = REFUSED if refused_everything(report) else DONE
        else:
            result, _ = await run_hunt(gateway, args.subject, days, utc_now(), tenant_name=args.tenant)
            data = result.to_json()
            code = DONE
    except BadUserInput as exc:
        print(f"cordon: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except GraphProblem as problem:
        print(f"cordon: {problem.user_message}", file=sys.stderr)
        return _exit_code(problem)
    finally:
        await gateway.close()
    for gap in data["not_read"]:
        print(f"cordon: not read — {gap['part']}: {gap['reason']}", file=sys.stderr)
    for cut in data.get("cut_short", []):
        print(f"cordon: cut short — {cut['part']}: {cut['reason']}", file=sys.stderr)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    elif name == "investigate":
        _print_investigation(data)
    else:
        _print_hunt(data)
    return code


def _print_investigation(data: dict[str, Any]) -> None:
    print(f"{data['user']} in {data['tenant']}, {data['window']['from']} → {data['window']['to']}")
    print(f"verdict: {data['verdict']}")
    s = data["sign_ins"]
    print(
        f"sign-ins: {s['total']} ({s['failures']} failed); countries: "
        + ", ".join(f"{c['country']} {c['count']}{' (new)' if c['new'] else ''}" for c in s["countries"][:8])
    )
    for f in data["findings"]:
        print(f"  {f['severity']:<6} {f['at'] or '':<20} {f['message']}")


def _print_hunt(data: dict[str, Any]) -> None:
    print(
        f"{data['tenant']}, {data['window']['from']} → {data['window']['to']}; seeds: "
        f"{', '.join(data['seeds']['ips']) or 'none'}; {data['checked']} account(s) checked"
    )
    for a in data["accounts"]:
        print(f"  {a['user']:<40} last seen {a['last_seen'] or '—':<20} {'; '.join(a['reasons'])}")
