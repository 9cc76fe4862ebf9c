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
    Provider(
        "Microsoft 365",
        ("selector1", "selector2"),
        mx=("mail.protection.outlook.com",),
        spf=("spf.protection.outlook.com",),
    ),
    Provider("Google Workspace", ("google",), mx=("google.com", "googlemail.com"), spf=("_spf.google.com",)),
    Provider("Mailchimp", ("k1", "k2", "k3"), spf=("servers.mcsv.net",)),
    Provider("Mandrill", ("mandrill",), spf=("spf.mandrillapp.com",)),
    Provider("SendGrid", ("s1", "s2"), spf=("sendgrid.net",)),
    Provider("Amazon SES", ("amazonses",), mx=("amazonaws.com",), spf=("amazonses.com",)),
    Provider("Fastmail", ("fm1", "fm2", "fm3"), mx=("messagingengine.com",), spf=("messagingengine.com",)),
    Provider("Zoho Mail", ("zoho",), mx=("zoho.com", "zoho.eu", "zohomail.com"), spf=("zoho.com", "zoho.eu")),
    Provider(
        "Proofpoint", ("proofpoint",), mx=("pphosted.com", "ppe-hosted.com"), spf=("pphosted.com", "ppe-hosted.com")
    ),
    Provider("Mimecast", ("mimecast",), mx=("mimecast.com",), spf=("mimecast.com",)),
    Provider("Mailgun", ("smtp",), spf=("mailgun.org",)),
    Provider("Proton Mail", ("protonmail",), mx=("protonmail.ch",), spf=("protonmail.ch",)),
    Provider("Zendesk", ("zendesk1",), spf=("mail.zendesk.com",)),
    Provider("HubSpot", ("hs1",), spf=("hubspotemail.net",)),
    Provider("Mailjet", ("mailjet",), spf=("spf.mailjet.com",)),
    Provider("iCloud", ("sig1",), mx=("mail.icloud.com",), spf=("icloud.com",)),
)

GENERIC = ("default", "mail", "dkim", "email", "key1")  # cPanel, generic MTAs and tutorials

COMMON_SELECTORS: tuple[str, ...] = tuple(dict.fromkeys([s for p in PROVIDERS for s in p.selectors] + list(GENERIC)))

_SELECTOR = re.compile(
    r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}"
    r"[A-Za-z0-9_])?)*\Z"
)


def valid_selector(selector: str) -> bool:
    """A selector is one or more DNS labels (RFC 6376 §3.1)."""
    return len(selector) <= 200 and bool(_SELECTOR.match(selector))


def _matches(host: str, suffixes: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == s or host.endswith("." + s) for s in suffixes)


def infer_providers(mx_hosts: list[str], spf_includes: list[str]) -> list[Provider]:
    """Providers whose MX or SPF include the domain uses, in the table's order."""
    return [
        p
        for p in PROVIDERS
        if any(_matches(h, p.mx) for h in mx_hosts) or any(_matches(i, p.spf) for i in spf_includes)
    ]


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


_M365_TARGET = re.compile(r"selector([12])-([a-z0-9-]+)\._domainkey\.(.+)\Z", re.IGNORECASE)
M365_FORMAT_NOTE = (
    "Domains added to Microsoft 365 since May 2025 get targets under "
    "`<tenant>.<x>-v1.dkim.mail.microsoft` instead: Get-DkimSigningConfig (Selector1CNAME, "
    "Selector2CNAME) shows the exact values."
)


def m365_initial_domain(domains: list[str] | tuple[str, ...]) -> str | None:
    """The tenant's initial domain (`contoso.onmicrosoft.com`) among a tenant's domains, if one is listed."""
    for name in domains:
        name = name.lower().rstrip(".")
        prefix = name.removesuffix(".onmicrosoft.com")
        if prefix != name and prefix and "." not in prefix:  # not contoso.mail.onmicrosoft.com
            return name
    return None


def microsoft_365_cnames(
    domain: str, seen_targets: dict[str, str], initial_domain: str | None = None
) -> dict[str, str]:
    """selector1/selector2 → the CNAME Microsoft 365 asks for.

    A target already published for either selector names the tenant and the format exactly (the other selector
    differs only in its number); otherwise the tenant's initial domain (from the configuration) gives the
    `selectorN-<domain-with-dashes>._domainkey.<initial domain>` form, and without it a placeholder is shown."""
    for target in seen_targets.values():
        match = _M365_TARGET.match(target.rstrip("."))
        if match:
            label, suffix = match.group(2).lower(), match.group(3).lower()
            return {
                f"selector{n}": f"selector{n}._domainkey.{domain} CNAME selector{n}-{label}._domainkey.{suffix}"
                for n in (1, 2)
            }
    dashed = domain.replace(".", "-")
    suffix = initial_domain or "<tenant>.onmicrosoft.com"
    return {
        f"selector{n}": f"selector{n}._domainkey.{domain} CNAME selector{n}-{dashed}._domainkey.{suffix}"
        for n in (1, 2)
    }
