"""One domain's full report (the JSON contract in the README): every area concurrently, one resolver, one budget.

Areas start together and share the resolver's cache, so a check lasts about as long as its longest chain of
dependent lookups. When the budget runs out, what finished is kept and the rest is marked "error".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from adapters.dns.resolver import CheckResolver
from adapters.emailauth.findings import finding
from adapters.emailauth.grade import headline, is_null_mx
from adapters.emailauth.mta_sts import HttpsOptions

log = logging.getLogger(__name__)

AREAS = ("spf", "dmarc", "dkim", "mx", "mta_sts", "tls_rpt", "bimi", "dnssec")
EMPTY: dict[str, dict[str, Any]] = {
    "spf": {"record": None, "dns_lookups": 0, "void_lookups": 0},
    "dmarc": {"record": None, "policy": None, "subdomain_policy": None, "pct": None, "org_domain": None},
    "dkim": {"selectors": {}},
    "mx": {"hosts": []},
    "mta_sts": {"mode": None, "max_age": None},
    "tls_rpt": {"record": None},
    "bimi": {"record": None},
    "dnssec": {"signed": "unknown", "validated": "unknown"},
}
STATUSES = {"pass", "warn", "fail", "none", "error"}


@dataclass(frozen=True)
class CheckOptions:
    selectors: tuple[str, ...] = ()
    nameservers: list[tuple[str, int]] | None = None  # None: the system's resolvers
    budget: float = 10.0  # seconds for the whole check
    query_timeout: float = 2.0
    https: HttpsOptions = field(default_factory=HttpsOptions)
    m365_initial_domain: str | None = None  # the tenant's *.onmicrosoft.com: completes the M365 DKIM CNAMEs


def _error(area: str, code: str, message: str) -> dict[str, Any]:
    return {"status": "error", **EMPTY[area], "findings": [finding("error", f"{area}.{code}", message, None)]}


def _shape(area: str, result: Any) -> dict[str, Any]:
    """Hold every area to the contract's keys and statuses, whatever its code returned."""
    if not isinstance(result, dict) or result.get("status") not in STATUSES:
        return _error(area, "internal", "The check returned an unexpected result.")
    shaped = {"status": result["status"], **{k: result.get(k, v) for k, v in EMPTY[area].items()}}
    shaped["findings"] = [f for f in result.get("findings", []) if isinstance(f, dict)]
    return shaped


async def _guard(area: str, work: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    try:
        return _shape(area, await work)
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - one area's bug must not take the report down; it says so instead
        log.exception("the %s check failed", area)
        return _error(area, "internal", "This area could not be checked because of an internal error.")


async def check_domain(
    domain: str, options: CheckOptions | None = None, resolver: CheckResolver | None = None
) -> dict[str, Any]:
    """The report for one domain (already normalised: lower-case ASCII, no trailing dot)."""
    options = options or CheckOptions()
    resolver = resolver or CheckResolver(
        nameservers=options.nameservers, timeout=options.query_timeout, budget=options.budget
    )
    started, checked_at = time.monotonic(), dt.datetime.now(dt.UTC)
    prefetch = [
        asyncio.ensure_future(_quietly(resolver, name, rdtype))
        for name, rdtype in first_questions(domain, options.selectors)
    ]
    for _ in range(8):  # let the prefetch queries reach their sockets before the CPU-bound imports
        await asyncio.sleep(0)
    _import_areas()
    warm_up = asyncio.ensure_future(asyncio.to_thread(_warm_up))  # not awaited by the areas

    from adapters.emailauth.bimi import analyse_bimi
    from adapters.emailauth.dkim import analyse_dkim
    from adapters.emailauth.dmarc import analyse_dmarc
    from adapters.emailauth.dnssec import analyse_dnssec
    from adapters.emailauth.mta_sts import analyse_mta_sts
    from adapters.emailauth.mx import analyse_mx
    from adapters.emailauth.spf_lint import analyse_spf
    from adapters.emailauth.tls_rpt import analyse_tls_rpt

    dmarc_task = asyncio.ensure_future(_guard("dmarc", analyse_dmarc(domain, resolver)))
    work: dict[str, Awaitable[dict[str, Any]]] = {
        "spf": analyse_spf(domain, resolver),
        "dmarc": dmarc_task,
        "dkim": analyse_dkim(domain, resolver, options.selectors, options.m365_initial_domain),
        "mx": analyse_mx(domain, resolver),
        "mta_sts": analyse_mta_sts(domain, resolver, options.https),
        "tls_rpt": analyse_tls_rpt(domain, resolver),
        "bimi": analyse_bimi(domain, resolver, asyncio.shield(dmarc_task)),
        "dnssec": analyse_dnssec(domain, resolver),
    }
    tasks = {area: asyncio.ensure_future(w if area == "dmarc" else _guard(area, w)) for area, w in work.items()}
    done, pending = await asyncio.wait(tasks.values(), timeout=options.budget + 0.5)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    checks: dict[str, Any] = {}
    for area in AREAS:
        task = tasks[area]
        if task in done and not task.cancelled() and task.exception() is None:
            checks[area] = task.result()
        else:
            checks[area] = _error(
                area, "budget", f"Not finished within the {options.budget:g} s time budget: could not check."
            )
    _cross_findings(domain, checks)
    await asyncio.gather(warm_up, *prefetch, return_exceptions=True)
    status, letter = headline(checks, exists=not await _nxdomain(resolver, domain))
    return {
        "domain": domain,
        "checked_at": checked_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "duration_ms": int((time.monotonic() - started) * 1000),
        "dns_queries": resolver.queries,
        "status": status,
        "grade": letter,
        "checks": checks,
    }


async def _nxdomain(resolver: CheckResolver, domain: str) -> bool:
    """The domain itself does not exist (its TXT question, asked first and cached, got NXDOMAIN)."""
    try:
        return (await resolver.query(domain, "TXT")).status == "nxdomain"
    except Exception:  # noqa: BLE001 - a failed question proves nothing: the areas already say "could not check"
        return False


def first_questions(domain: str, selectors: tuple[str, ...]) -> list[tuple[str, str]]:
    """What every check asks first, known from the domain alone: sent before anything else is loaded."""
    from adapters.emailauth.dmarc import walk_levels

    names = [
        (domain, "TXT"),
        (domain, "MX"),
        (domain, "SPF"),
        (f"_domainkey.{domain}", "TXT"),
        (f"_mta-sts.{domain}", "TXT"),
        (f"_smtp._tls.{domain}", "TXT"),
        (f"default._bimi.{domain}", "TXT"),
        (domain, "DNSKEY"),
        (domain, "DS"),
    ]
    names += [(f"_dmarc.{level}", "TXT") for level in walk_levels(domain)]
    names += [(f"{selector}._domainkey.{domain}", "TXT") for selector in selectors]
    return names


async def _quietly(resolver: CheckResolver, name: str, rdtype: str) -> None:
    """Ask now; the answer (or failure) waits in the resolver's cache for the area that needs it."""
    try:
        await resolver.query(name, rdtype)
    except Exception:  # noqa: BLE001 - the area asking the same question sees and reports the failure
        pass


def _import_areas() -> None:

    for module in ("bimi", "dkim", "dmarc", "dnssec", "mta_sts", "mx", "spf_lint", "tls_rpt"):
        importlib.import_module(f"adapters.emailauth.{module}")


def _warm_up() -> None:
    """The public suffix list, loaded in a thread during the first round trips."""
    from adapters.emailauth.orgdomain import org_domain

    org_domain("example.com")


def _cross_findings(domain: str, checks: dict[str, Any]) -> None:
    """Judgements that need two areas: a domain without mail, MTA-STS without TLS-RPT."""
    if is_null_mx(checks):
        dmarc = checks["dmarc"]
        if dmarc["status"] != "error" and dmarc.get("policy") != "reject":
            dmarc["findings"].append(
                finding(
                    "warning",
                    "dmarc.null_mx_not_reject",
                    "This domain receives no mail (null MX); nobody should send as it either.",
                    f"Publish TXT at _dmarc.{domain}: `v=DMARC1; p=reject;`",
                )
            )
        if checks["dkim"]["status"] == "none":
            checks["dkim"]["findings"] = [
                finding("info", "dkim.not_needed", "No DKIM key, as expected for a domain that sends no mail.", None)
            ]
    if checks["mta_sts"]["status"] in ("pass", "warn") and checks["tls_rpt"]["status"] == "none":
        checks["tls_rpt"]["findings"].append(
            finding(
                "warning",
                "tls_rpt.needed_for_mta_sts",
                "MTA-STS is published without TLS-RPT: you will not hear when senders cannot deliver under the policy.",
                None,
            )
        )
