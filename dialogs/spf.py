"""`spf <domain> <ip> [sender]`: may this IP send mail for this domain? RFC 7208 check_host, with the deciding
term and the include/redirect path, on a card with a "Check again" button. Anyone may run it: it reads only
public DNS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dialogs import cards
from dialogs.contract import ActionResult, CardAction, Command, DialogContext, Reply, Role, Services
from dialogs.registry import action, command
from dialogs.throttle import Refused, dns_run

USAGE = "spf contoso.com 192.0.2.1 [sender@contoso.com]"
RECHECK_VERB = "spf.recheck"

MEANING = {
    "pass": "{ip} is authorised to send mail for {domain}.",
    "fail": "{ip} is not authorised to send mail for {domain}; receivers should reject such mail.",
    "softfail": "{ip} is probably not authorised for {domain}; receivers usually accept but mark such mail.",
    "neutral": "{domain} makes no assertion about {ip} (neutral): SPF neither authorises nor rejects it.",
    "none": "{domain} publishes no SPF record, so SPF says nothing about {ip}.",
    "permerror": "The SPF record of {domain} is broken: receivers cannot evaluate it (permerror).",
    "temperror": "Could not check: a DNS lookup failed or timed out (temperror). Try again.",
}
STATUS_ICON = {
    "pass": "pass",
    "fail": "fail",
    "softfail": "warn",
    "neutral": "none",
    "none": "none",
    "permerror": "fail",
    "temperror": "error",
}
COLOR = {"pass": "Good", "fail": "Attention", "softfail": "Warning", "permerror": "Attention", "temperror": "Warning"}


@dataclass(frozen=True)
class SpfRequest:
    domain: str  # ASCII (punycode)
    ip: str  # normalised text form
    sender: str  # local@domain (postmaster@domain when none was given)
    helo: str


def parse_request(domain: str, ip: str, sender: str | None = None, helo: str | None = None) -> SpfRequest:
    """Validate what the user typed; ValueError with a message for the user."""
    from adapters.emailauth.domain import normalise_domain
    from adapters.emailauth.spf_eval import parse_ip

    ascii_domain = normalise_domain(domain)
    try:
        address = parse_ip(ip.strip().strip("[]"))
    except ValueError:
        raise ValueError(f"'{ip[:60]}' is not an IP address (give an IPv4 or IPv6 address, e.g. 192.0.2.1)") from None
    if sender is None or not sender.strip():
        sender_text = f"postmaster@{ascii_domain}"
    else:
        local, at, sender_domain = sender.strip().strip("<>").rpartition("@")
        if not at or not local or any(c.isspace() or not c.isprintable() for c in local) or len(local) > 64:
            raise ValueError(f"'{sender[:80]}' is not an e-mail address (give local@domain)")
        sender_text = f"{local}@{normalise_domain(sender_domain)}"
    helo_text = normalise_domain(helo) if helo else ascii_domain
    return SpfRequest(ascii_domain, str(address), sender_text, helo_text)


async def evaluate(
    request: SpfRequest, nameservers: list[tuple[str, int]] | None = None, timeout: float = 2.0, budget: float = 20.0
) -> Any:
    """The `SpfResult` of check_host for the request (DNS failures come back as temperror, never raised)."""
    from adapters.dns.resolver import CheckResolver
    from adapters.emailauth.spf_eval import check_host

    resolver = CheckResolver(nameservers=nameservers, timeout=timeout, budget=budget)
    return await check_host(request.ip, request.domain, request.sender, resolver, helo=request.helo)


def spf_card(request: SpfRequest, result: Any) -> dict[str, Any]:
    """The answer card: verdict, deciding term, path, explanation, and a "Check again" button."""
    from adapters.emailauth.findings import quote

    verdict = result.result
    icon = cards.ICONS[STATUS_ICON.get(verdict, "error")]
    body: list[dict[str, Any]] = cards.title(
        f"SPF for {request.domain}", f"From {request.ip} · sender {quote(request.sender, 100)}"
    )
    style = {"weight": "Bolder", "size": "Medium"}
    if verdict in COLOR:
        style["color"] = COLOR[verdict]
    body.append(cards.text(f"{icon} {verdict}", **style))
    body.append(cards.text(MEANING.get(verdict, verdict).format(ip=request.ip, domain=request.domain)))
    facts = [
        ("Deciding term", quote(result.mechanism, 120) if result.mechanism else "—"),
        ("Path", " → ".join(quote(step, 80) for step in result.path[:12]) or "—"),
        ("DNS lookups", f"{result.dns_lookups} of 10 (void {result.void_lookups} of 2)"),
    ]
    if result.explanation:  # text from the domain's DNS: shown, but no markdown link may be built from it
        facts.append(("Explanation", _no_links(quote(result.explanation, 300))))
    if result.reason and verdict in ("permerror", "temperror", "none"):
        facts.append(("Why", _no_links(quote(result.reason, 300))))
    body.append(cards.facts(facts))
    data = {"domain": request.domain, "ip": request.ip, "sender": request.sender, "helo": request.helo}
    return cards.card(body, [cards.execute("Check again", RECHECK_VERB, data)])


def _no_links(text: str) -> str:
    """Break markdown link syntax (`[label](url)`) in text that came from DNS."""
    return text.replace("](", "] (")


def _settings(services: Services) -> dict[str, Any]:
    """Name servers and timeouts as for `check` (a test's options, else the `[dns]` config section)."""
    from dialogs.emailauth import check_options

    options = check_options(services)
    # RFC 7208 §4.6.4: check_host may need up to 20 s; a shorter `check` budget must not cut it.
    return {"nameservers": options.nameservers, "timeout": options.query_timeout, "budget": max(options.budget, 20.0)}


@command(
    "spf",
    summary="Evaluate SPF for a domain and a sending IP (RFC 7208): the result, the term that decided "
    "it and the include path.",
    usage=USAGE,
    role=Role.ANYONE,
    slow=True,
)
async def spf_command(cmd: Command, ctx: DialogContext) -> list[Reply]:
    if len(cmd.args) < 2:
        return [Reply(text=f"Give a domain and an IP address, e.g. `{USAGE}`.")]
    if len(cmd.args) > 3:
        return [Reply(text=f"Too many words: `{USAGE}`.")]
    try:
        request = parse_request(cmd.args[0], cmd.args[1], cmd.args[2] if len(cmd.args) > 2 else None)
    except ValueError as exc:
        return [Reply(text=str(exc))]
    try:
        async with dns_run(ctx.services, cmd.actor):
            result = await evaluate(request, **_settings(ctx.services))
    except Refused as exc:
        return [Reply(text=str(exc))]
    return [Reply(card=spf_card(request, result))]


@action(RECHECK_VERB, role=Role.ANYONE)
async def spf_recheck(act: CardAction, ctx: DialogContext) -> ActionResult:
    """Evaluates again what the card names; the values are validated like typed input (a public lookup)."""
    data = act.data
    try:
        request = parse_request(
            str(data.get("domain") or ""),
            str(data.get("ip") or ""),
            str(data.get("sender") or "") or None,
            str(data.get("helo") or "") or None,
        )
    except ValueError as exc:
        return ActionResult(message=str(exc))
    try:
        async with dns_run(ctx.services, act.actor):
            result = await evaluate(request, **_settings(ctx.services))
    except Refused as exc:
        return ActionResult(message=str(exc))
    return ActionResult(card=spf_card(request, result))
