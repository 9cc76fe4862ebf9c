"""Cordon's `check` against checkdmarc 6.0.4 on the same zones, 20 ms added to every DNS answer.

    python bench/emailauth.py [--delay-ms 20] [--repeat 3]

NSD serves tests/zones/*.zone behind the fault proxy (tests/support/dns_faults.py), which delays every answer.
Each tool runs as a whole process per domain (start-up included), alternating, for ten domains; the proxy counts
the queries each run sends. Prints per-domain times, both medians, query counts and the ratio (goal <= 0.25).
Needs NSD and the `bench` extra (checkdmarc==6.0.4).

Both tools run as an installed program does: with Python's bytecode cache. When the environment forbids writing it
(PYTHONDONTWRITEBYTECODE, as in some sandboxes) Cordon's own modules would be recompiled on every run while
checkdmarc's came precompiled from pip, so the child processes keep their cache in a temporary directory
(PYTHONPYCACHEPREFIX; the work tree stays clean), and one untimed run of each tool fills it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOMAINS = (
    "ea-good.test",
    "ea-weak.test",
    "ea-none.test",
    "ea-nullmx.test",
    "ea-m365.test",
    "ea-m365ok.test",
    "ea-ext.test",
    "shop.ea-good.test",
    "a.b.ea-psd.test",
    "ea-many.test",
)

CHECKDMARC = """
import sys, time, dns.nameserver, checkdmarc
domain, port = sys.argv[1], int(sys.argv[2])
started = time.perf_counter()
checkdmarc.check_domains([domain], nameservers=[dns.nameserver.Do53Nameserver("127.0.0.1", port=port)],
                         timeout=2.0, bimi_selector=None, check_mx_tls=False)
print(int((time.perf_counter() - started) * 1000))
"""


def _inner_ms(stdout: str) -> int:
    """The check's own time, printed by each process (Cordon's JSON duration_ms; checkdmarc's wrapper)."""
    text = stdout.strip()
    if text.startswith("{"):
        return int(json.loads(text)["duration_ms"])
    return int(text.splitlines()[-1]) if text else 0


_CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
_CHILD_ENV["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "cordon-bench-pycache")


def _timed(command: list[str], proxy: object) -> tuple[float, int, int]:
    """Wall seconds of the whole process, DNS queries seen by the proxy, the check's own milliseconds."""
    before = sum(proxy.seen.values())  # type: ignore[attr-defined]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=_CHILD_ENV)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        print(f"  ! {' '.join(command[:4])}… exited {done.returncode}: {done.stderr.strip()[-300:]}", file=sys.stderr)
    return elapsed, sum(proxy.seen.values()) - before, _inner_ms(done.stdout)  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=1, help="runs per domain and tool (the median is kept)")
    args = parser.parse_args(argv)
    try:
        import checkdmarc  # noqa: F401
    except ImportError:
        print("checkdmarc is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    from tests.support.dns_faults import FaultProxy
    from tests.support.dns_server import NsdServer, load_zone_dir

    server = NsdServer(load_zone_dir(ROOT / "tests" / "zones")).start()
    proxy = FaultProxy(server.address, delay_ms=args.delay_ms).start()
    nameserver = f"127.0.0.1:{proxy.port}"
    rows = []

    def cordon(domain: str) -> list[str]:
        return [sys.executable, "app.py", "check", domain, "--nameserver", nameserver, "--json"]

    def peer(domain: str) -> list[str]:
        return [sys.executable, "-c", CHECKDMARC, domain, str(proxy.port)]

    try:
        for command in (cordon(DOMAINS[0]), peer(DOMAINS[0])):  # untimed: fills the bytecode cache of each tool
            _timed(command, proxy)
        for domain in DOMAINS:
            ours, theirs = [], []
            for _ in range(args.repeat):
                ours.append(_timed(cordon(domain), proxy))
                theirs.append(_timed(peer(domain), proxy))
            o = sorted(ours)[len(ours) // 2]
            t = sorted(theirs)[len(theirs) // 2]
            rows.append((domain, o, t))
            print(
                f"{domain:<20} cordon {o[0] * 1000:6.0f} ms ({o[2]:5d} in check) {o[1]:4d} queries   "
                f"checkdmarc {t[0] * 1000:6.0f} ms ({t[2]:5d} in check) {t[1]:4d} queries",
                flush=True,
            )
    finally:
        proxy.stop()
        server.stop()
    cordon_median = statistics.median(r[1][0] for r in rows)
    checkdmarc_median = statistics.median(r[2][0] for r in rows)
    print(f"\n{len(rows)} domains, {args.delay_ms:g} ms per DNS answer, whole processes")
    print(
        f"cordon check:  median {cordon_median * 1000:.0f} ms, median {statistics.median(r[1][1] for r in rows):.0f} "
        f"queries (total {sum(r[1][1] for r in rows)})"
    )
    print(
        f"checkdmarc:    median {checkdmarc_median * 1000:.0f} ms, median "
        f"{statistics.median(r[2][1] for r in rows):.0f} queries (total {sum(r[2][1] for r in rows)})"
    )
    print(f"ratio (cordon / checkdmarc), whole processes: {cordon_median / checkdmarc_median:.2f}  (goal <= 0.25)")
    inner_ours = statistics.median(r[1][2] for r in rows)
    inner_theirs = statistics.median(r[2][2] for r in rows)
    print(
        f"check alone (start-up and imports excluded): cordon median {inner_ours:.0f} ms, checkdmarc median "
        f"{inner_theirs:.0f} ms, ratio {inner_ours / max(inner_theirs, 1):.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
