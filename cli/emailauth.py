"""`python app.py check DOMAIN [DOMAIN ...]`: the e-mail authentication report for scripts (text or --json).

Exit 0 when the checks ran, whatever they found; exit 2 with one line on stderr for a bad argument. Imports
nothing of Graph or the Bot Framework, so it starts fast. (`spf` lives in cli/spf.py.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, NoReturn

USAGE_ERROR = 2
CONCURRENCY = 8


def _one_line_errors(parser: argparse.ArgumentParser, name: str) -> None:
    def error(message: str) -> NoReturn:
        print(f"app.py {name}: {message}", file=sys.stderr)
        raise SystemExit(USAGE_ERROR)

    parser.error = error  # type: ignore[method-assign]


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    _one_line_errors(parser, name)
    parser.add_argument("domains", nargs="+", metavar="DOMAIN", help="domain(s) to check; unicode is fine")
    parser.add_argument(
        "--selector",
        action="append",
        default=[],
        metavar="S",
        help="a DKIM selector to check besides the common ones (repeatable)",
    )
    parser.add_argument(
        "--nameserver",
        action="append",
        default=[],
        metavar="IP[:PORT]",
        help="DNS server to ask instead of the system's (repeatable)",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="time budget per domain (default 10)"
    )
    parser.add_argument("--json", action="store_true", help="print the JSON report (a list for several domains)")


def _usage_error(name: str, message: str) -> int:
    print(f"app.py {name}: {message}", file=sys.stderr)
    return USAGE_ERROR


def _lean_dnspython() -> None:
    """dnspython loads httpx/h2 (DNS over HTTPS) and aioquic when installed; `check` uses plain DNS only, and
    skipping them saves a tenth of a second of start-up."""
    import dns._features

    for feature in ("doh", "doq"):
        dns._features.force(feature, False)


def run(name: str, args: argparse.Namespace, wiring: object = None) -> int:
    _lean_dnspython()
    from adapters.dns.resolver import parse_nameserver
    from adapters.emailauth.dkim_selectors import valid_selector
    from adapters.emailauth.domain import NotADomain, normalise_domain
    from adapters.emailauth.report import CheckOptions

    try:
        domains = list(dict.fromkeys(normalise_domain(d) for d in args.domains))
        nameservers = [parse_nameserver(n) for n in args.nameserver] or None
    except (NotADomain, ValueError) as exc:
        return _usage_error(name, str(exc))
    selectors = tuple(dict.fromkeys(s.strip().lower() for s in args.selector))
    bad = [s for s in selectors if not valid_selector(s)]
    if bad:
        return _usage_error(name, f"--selector {bad[0][:60]!r} is not a DKIM selector")
    if not 0 < args.timeout <= 300:
        return _usage_error(name, "--timeout must be between 0 and 300 seconds")
    options = CheckOptions(
        selectors=selectors, nameservers=nameservers, budget=args.timeout, query_timeout=min(2.0, args.timeout)
    )
    reports = asyncio.run(_check_all(domains, options))
    if args.json:
        payload: Any = reports[0] if len(reports) == 1 else reports
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        print("\n\n".join(render_text(r) for r in reports))
    return 0


async def _check_all(domains: list[str], options: Any) -> list[dict[str, Any]]:
    from adapters.emailauth.report import check_domain

    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(domain: str) -> dict[str, Any]:
        async with limit:
            return await check_domain(domain, options)

    return list(await asyncio.gather(*(one(d) for d in domains)))


MARKS = {"pass": "PASS ", "warn": "WARN ", "fail": "FAIL ", "none": "NONE ", "error": "ERROR"}


def render_text(report: dict[str, Any]) -> str:
    from adapters.emailauth.verdict import LABELS, headline, ordered_findings, unchecked_note, verdict

    if report.get("status") == "nxdomain":
        return f"{report['domain']}  {headline(report)}"
    lines = [
        f"{report['domain']}  {headline(report)}  ({report['duration_ms']} ms, {report['dns_queries']} DNS queries)"
    ]
    note = unchecked_note(report)
    if note:
        lines.append(f"  ! {note}")
    for area, result in report["checks"].items():
        lines.append(f"  {MARKS.get(result['status'], '?    ')} {LABELS.get(area, area):<8} {verdict(area, result)}")
        for f in ordered_findings(result):
            if f["severity"] == "info" and result["status"] == "pass":
                continue
            lines.append(f"           - [{f['severity']}] {f['code']}: {f['message']}")
            for number, line in enumerate(str(f.get("fix") or "").splitlines()):
                lines.append(f"             {'fix: ' if number == 0 else '     '}{line}")
    return "\n".join(lines)
