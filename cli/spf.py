"""`python app.py spf DOMAIN IP [--sender ADDR] [--helo NAME] [--nameserver IP[:PORT]]... [--json]`.

RFC 7208 check_host for scripts: prints the result, the deciding term, the explanation and the include/redirect
path (`--json`: exactly {"result","mechanism","explanation","path"}). Exit 0 when the evaluation ran, whatever
its result (temperror included); exit 2 with one line on stderr for a bad argument. Imports nothing of Graph or
the Bot Framework.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import NoReturn

USAGE_ERROR = 2


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    def error(message: str) -> NoReturn:
        print(f"app.py {name}: {message}", file=sys.stderr)
        raise SystemExit(USAGE_ERROR)

    parser.error = error  # type: ignore[method-assign]
    parser.add_argument("domain", metavar="DOMAIN", help="the domain whose SPF record is evaluated (unicode is fine)")
    parser.add_argument("ip", metavar="IP", help="the sending server's IPv4 or IPv6 address")
    parser.add_argument("--sender", metavar="ADDR", help="MAIL FROM address (default postmaster@DOMAIN)")
    parser.add_argument("--helo", metavar="NAME", help="HELO/EHLO name (default DOMAIN)")
    parser.add_argument(
        "--nameserver",
        action="append",
        default=[],
        metavar="IP[:PORT]",
        help="DNS server to ask instead of the system's (repeatable)",
    )
    parser.add_argument("--timeout", type=float, default=2.0, metavar="SECONDS", help="per DNS question (default 2)")
    parser.add_argument("--json", action="store_true", help='print {"result","mechanism","explanation","path"}')


def run(name: str, args: argparse.Namespace, wiring: object = None) -> int:
    from adapters.dns.resolver import parse_nameserver
    from dialogs.spf import evaluate, parse_request

    try:
        request = parse_request(args.domain, args.ip, args.sender, args.helo)
        nameservers = [parse_nameserver(n) for n in args.nameserver] or None
    except ValueError as exc:
        print(f"app.py {name}: {exc}", file=sys.stderr)
        return USAGE_ERROR
    if not 0 < args.timeout <= 60:
        print(f"app.py {name}: --timeout must be between 0 and 60 seconds", file=sys.stderr)
        return USAGE_ERROR
    result = asyncio.run(evaluate(request, nameservers, timeout=args.timeout))
    if args.json:
        print(json.dumps(result.as_json(), ensure_ascii=False))
        return 0
    print(f"SPF {request.domain} from {request.ip} (sender {request.sender}): {result.result}")
    if result.mechanism:
        print(f"  deciding term: {result.mechanism}")
    if result.path:
        print(f"  path:          {' -> '.join(result.path)}")
    if result.explanation:
        print(f"  explanation:   {result.explanation}")
    if result.reason and result.result in ("permerror", "temperror", "none"):
        print(f"  why:           {result.reason}")
    print(f"  DNS lookups:   {result.dns_lookups} of 10, void {result.void_lookups} of 2")
    return 0
