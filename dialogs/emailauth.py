"""`check <domain> [selector ...]` (also `dns`, `emailauth`): the e-mail authentication report card, and its
"Check again" button. Anyone may run it: it reads only public DNS."""

from __future__ import annotations

from typing import Any

from dialogs.contract import ActionResult, CardAction, Command, DialogContext, Reply, Role, Services
from dialogs.registry import action, command
from dialogs.throttle import Refused, dns_run

MAX_SELECTORS = 10
USAGE = "check contoso.com [selector ...]"


def check_options(services: Services, domain: str | None = None, selectors: tuple[str, ...] = ()) -> Any:
    """CheckOptions for one check: `services.check_options` (tests' own resolver), else the `[dns]` config section; with
    the tenant's initial domain (from `[[tenants]]` domains) when the domain belongs to a configured tenant."""
    import dataclasses

    from adapters.dns.nameservers import parse_nameserver
    from adapters.emailauth.report import CheckOptions

    base = services.check_options
    if base is None:
        dns = getattr(services.config, "dns", None)
        base = (
            CheckOptions()
            if dns is None
            else CheckOptions(
                nameservers=[parse_nameserver(n) for n in dns.nameservers] or None,
                budget=dns.budget_seconds,
                query_timeout=dns.timeout_seconds,
            )
        )
    initial = base.m365_initial_domain or (_tenant_initial_domain(services, domain) if domain else None)
    return dataclasses.replace(base, selectors=selectors, m365_initial_domain=initial)


def _tenant_initial_domain(services: Services, domain: str) -> str | None:
    from adapters.emailauth.dkim_selectors import m365_initial_domain

    for tenant in getattr(services.config, "tenants", None) or []:
        if any(domain == d or domain.endswith("." + d) for d in tenant.domains):
            return m365_initial_domain(tenant.domains)
    return None


def parse_request(args: list[str] | tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """(domain, selectors) from the words typed; ValueError with a message for the user."""
    from adapters.emailauth.dkim_selectors import valid_selector
    from adapters.emailauth.domain import normalise_domain

    if not args:
        raise ValueError(f"Give a domain to check, e.g. `{USAGE}`.")
    domain = normalise_domain(str(args[0]))
    selectors = tuple(dict.fromkeys(str(s).strip().lower() for s in args[1:]))
    bad = [s for s in selectors if not valid_selector(s)]
    if bad:
        raise ValueError(f"'{bad[0][:60]}' is not a DKIM selector (letters, digits, hyphens and dots).")
    if len(selectors) > MAX_SELECTORS:
        raise ValueError(f"At most {MAX_SELECTORS} selectors, please.")
    return domain, selectors


async def _report_card(services: Services, domain: str, selectors: tuple[str, ...]) -> dict[str, Any]:
    from adapters.emailauth.report import check_domain
    from dialogs.emailauth_card import report_card

    report = await check_domain(domain, check_options(services, domain, selectors))
    return report_card(report, selectors)


@command(
    "check",
    summary="Check a domain's SPF, DKIM, DMARC, MX, MTA-STS, TLS-RPT, BIMI and DNSSEC, with the records to publish.",
    usage=USAGE,
    role=Role.ANYONE,
    aliases=("dns", "emailauth"),
    slow=True,
)
async def check_command(cmd: Command, ctx: DialogContext) -> list[Reply]:
    try:
        domain, selectors = parse_request(cmd.args)
    except ValueError as exc:
        return [Reply(text=str(exc))]
    try:
        async with dns_run(ctx.services, cmd.actor):
            card = await _report_card(ctx.services, domain, selectors)
    except Refused as exc:
        return [Reply(text=str(exc))]
    return [Reply(card=card)]


@action("emailauth.recheck", role=Role.ANYONE)
async def recheck(act: CardAction, ctx: DialogContext) -> ActionResult:
    """Runs the check again for the domain on the card (a public lookup: the card's data decides nothing else)."""
    selectors = act.data.get("selectors") or []
    words = [str(act.data.get("domain") or "")] + ([str(s) for s in selectors] if isinstance(selectors, list) else [])
    try:
        domain, parsed = parse_request([w for w in words if w])
    except ValueError as exc:
        return ActionResult(message=str(exc))
    try:
        async with dns_run(ctx.services, act.actor):
            card = await _report_card(ctx.services, domain, parsed)
    except Refused as exc:
        return ActionResult(message=str(exc))
    return ActionResult(card=card)
