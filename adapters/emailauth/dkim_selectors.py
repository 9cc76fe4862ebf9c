"""Which DKIM selectors to try: there is no way to list them, so combine the user's, a common list, and the
providers the MX and SPF records reveal (which also say what a missing key means, e.g. Microsoft 365).

The list is kept to each provider's usual selectors: every name costs a query, and a user who knows another
selector gives it (`check contoso.com <selector>`)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Provider:
    name: str
    selectors: tuple[str, ...]
    mx: tuple[str, ...] = ()  # MX host suffixes
    spf: tuple[str, ...] = ()  # SPF include: suffixes


PROVIDERS = (
    Provider("Microsoft 365", ("selector1", "selector2"), mx=("mail.protection.outlook.com",),
             spf=("spf.protection.outlook.com",)),
    Provider("Google Workspace", ("google",), mx=("google.com", "googlemail.com"), spf=("_spf.google.com",)),
    Provider("Mailchimp", ("k1", "k2", "k3"), spf=("servers.mcsv.net",)),
    Provider("Mandrill", ("mandrill",), spf=("spf.mandrillapp.com",)),
    Provider("SendGrid", ("s1", "s2"), spf=("sendgrid.net",)),
    Provider("Amazon SES", ("amazonses",), mx=("amazonaws.com",), spf=("amazonses.com",)),
    Provider("Fastmail", ("fm1", "fm2", "fm3"), mx=("messagingengine.com",), spf=("messagingengine.com",)),
    Provider("Zoho Mail", ("zoho",), mx=("zoho.com", "zoho.eu", "zohomail.com"), spf=("zoho.com", "zoho.eu")),
    Provider("Proofpoint", ("proofpoint",), mx=("pphosted.com", "ppe-hosted.com"),
             spf=("pphosted.com", "ppe-hosted.com")),
    Provider("Mimecast", ("mimecast",), mx=("mimecast.com",), spf=("mimecast.com",)),
    Provider("Mailgun", ("smtp",), spf=("mailgun.org",)),
    Provider("Proton Mail", ("protonmail",), mx=("protonmail.ch",),
             spf=("protonmail.ch",)),
    Provider("Zendesk", ("zendesk1",), spf=("mail.zendesk.com",)),
    Provider("HubSpot", ("hs1",), spf=("hubspotemail.net",)),
    Provider("Mailjet", ("mailjet",), spf=("spf.mailjet.com",)),
    Provider("iCloud", ("sig1",), mx=("mail.icloud.com",), spf=("icloud.com",)),
)

GENERIC = ("default", "mail", "dkim", "email", "key1")  # cPanel, generic MTAs and tutorials

COMMON_SELECTORS: tuple[str, ...] = tuple(dict.fromkeys(
    [s for p in PROVIDERS for s in p.selectors] + list(GENERIC)))

_SELECTOR = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}"
                       r"[A-Za-z0-9_])?)*\Z")


def valid_selector(selector: str) -> bool:
    """A selector is one or more DNS labels (RFC 6376 §3.1)."""
    return len(selector) <= 200 and bool(_SELECTOR.match(selector))


def _matches(host: str, suffixes: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == s or host.endswith("." + s) for s in suffixes)


def infer_providers(mx_hosts: list[str], spf_includes: list[str]) -> list[Provider]:
    """Providers whose MX or SPF include the domain uses, in the table's order."""
    return [p for p in PROVIDERS
            if any(_matches(h, p.mx) for h in mx_hosts) or any(_matches(i, p.spf) for i in spf_includes)]


def spf_includes(texts: list[str]) -> list[str]:
    """The include: domains of the domain's SPF record (no macro expansion: only for provider hints)."""
    includes: list[str] = []
    for text in texts:
        if not text.lower().startswith("v=spf1"):
            continue
        for term in text.split()[1:]:
            name = term.lstrip("+-~?")
            if name.lower().startswith("include:"):
                includes.append(name[8:].lower())
    return includes[:50]


def microsoft_365_cnames(domain: str, seen_targets: dict[str, str]) -> list[str]:
    """The two CNAMEs Microsoft 365 asks for; the tenant part is taken from a CNAME already published if any."""
    dashed = domain.replace(".", "-")
    suffix = None
    for target in seen_targets.values():
        match = re.match(r"selector[12]-[^.]+\._domainkey\.(.+)\Z", target.rstrip("."), re.IGNORECASE)
        if match:
            suffix = match.group(1)
            break
    suffix = suffix or "<tenant>.onmicrosoft.com"
    return [f"selector{n}._domainkey.{domain} CNAME selector{n}-{dashed}._domainkey.{suffix}" for n in (1, 2)]
