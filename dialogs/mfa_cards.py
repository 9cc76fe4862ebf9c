"""Adaptive Cards for `mfa <user>`, `mfa report` and `tenants` (AC 1.5, through dialogs.cards)."""

from __future__ import annotations

from typing import Any

from adapters.graph.mfa_policy import STRENGTH_LABEL
from adapters.graph.mfa_report import TenantReport
from dialogs import cards
from dialogs.mfa_status import UserStatus, age

COLOUR = {"pass": "Good", "warn": "Warning", "fail": "Attention"}
STRENGTH_ICON = {"phishing_resistant": "🛡️", "strong": "✅", "moderate": "🔢", "weak": "⚠️", "none": "•"}
MAX_METHODS = 15


def _verdict(text: str, severity: str) -> dict[str, Any]:
    return cards.text(f"{cards.ICONS[severity]} {text}", weight="Bolder", color=COLOUR[severity], size="Medium")


def user_card(status: UserStatus) -> dict[str, Any]:
    facts, now = status.facts, status.now
    user = facts.user
    body: list[dict[str, Any]] = [_verdict(status.verdict, status.severity)]
    body += cards.title(f"MFA — {user.get('displayName') or status.upn}", f"{status.upn} · {facts.tenant.name}")
    account = [
        (
            "Sign-in",
            "enabled"
            if user.get("accountEnabled")
            else "BLOCKED"
            if user.get("accountEnabled") is False
            else "unknown",
        ),
        ("Admin roles", _roles_text(status)),
        (
            "Last sign-in",
            age(facts.last_sign_in, now)
            if facts.last_sign_in
            else ("needs Entra ID P1" if facts.licence == "Free" else "unknown"),
        ),
    ]
    if status.admin_discrepancy:
        account.append(("Registration report", status.admin_discrepancy))
    body.append(cards.facts(account))
    body.append(cards.text("**Authentication methods (live)**", spacing="Medium"))
    if facts.methods is None:
        body.append(cards.text("Could not be read (see below).", isSubtle=True))
    else:
        shown, more = cards.truncate_items(sorted(facts.methods, key=lambda m: (m.strength, m.type)), MAX_METHODS)
        for method in shown:
            created = age(method.created, now) if method.created else "date not given"
            recent = " — ⚠️ **new: the user's, or an attacker's?**" if method in status.recent_methods else ""
            detail = f" · {method.detail}" if method.detail else ""
            body.append(
                cards.text(
                    f"{STRENGTH_ICON[method.strength]} {method.label}{detail} · "
                    f"{STRENGTH_LABEL[method.strength]} · added {created}{recent}",
                    spacing="Small",
                )
            )
        if more:
            body.append(cards.text(f"and {more} more", isSubtle=True, spacing="Small"))
    reg = facts.registration
    body.append(cards.text("**Registration report**", spacing="Medium"))
    if reg is None:
        body.append(cards.text("Not available (see below).", isSubtle=True))
    else:
        from adapters.graph.mfa_data import parse_time

        updated = parse_time(reg.get("lastUpdatedDateTime"))
        body.append(
            cards.facts(
                [
                    ("MFA registered", _yes(reg.get("isMfaRegistered"))),
                    ("MFA capable", _yes(reg.get("isMfaCapable"))),
                    ("Passwordless capable", _yes(reg.get("isPasswordlessCapable"))),
                    ("Methods", ", ".join(reg.get("methodsRegistered") or []) or "none"),
                    ("System preferred", ", ".join(reg.get("systemPreferredAuthenticationMethods") or []) or "none"),
                    ("User preferred", str(reg.get("userPreferredMethodForSecondaryAuthentication") or "none")),
                    ("Report updated", f"{age(updated, now)} (this report lags; the live methods above are current)"),
                ]
            )
        )
    enforcement = status.enforcement
    lines = [("Security defaults", _yes(facts.security_defaults, unknown="unknown"))]
    lines += [("Enforced by", label) for label in enforcement.enforced_by if label != "security defaults"]
    lines += [("Partly, by", label) for label in enforcement.partially_by]
    if enforcement.only_when_necessary:
        lines.append(
            (
                "Security defaults",
                "ask for MFA at every sign-in only for admin roles; this user is asked "
                "only when Microsoft judges it necessary (risk-based)",
            )
        )
    if enforcement.enforced is False:
        lines.append(("Verdict", "no enabled policy requires MFA for this user at every sign-in"))
    elif enforcement.enforced is None and enforcement.unknown_reason:
        lines.append(("Unknown", enforcement.unknown_reason))
    body.append(cards.text("**Enforcement**", spacing="Medium"))
    body.append(cards.facts(lines))
    if facts.gaps:
        body.append(cards.text("**Not read**", spacing="Medium", color="Warning"))
        body += [cards.text(gap, size="Small", spacing="Small") for gap in dict.fromkeys(facts.gaps)]
    return cards.card(body)


def _roles_text(status: UserStatus) -> str:
    """Every role, privileged ones marked: only those make the verdict's "admin"."""
    if status.facts.roles is None:
        known = status.report_is_admin
        return "unknown" + ("" if known is None else f" (registration report: {'admin' if known else 'not admin'})")
    privileged = set(status.privileged_roles)
    return (
        ", ".join(f"**{name} (privileged)**" if name in privileged else name for name in status.admin_roles) or "none"
    )


def _yes(value: Any, unknown: str = "unknown") -> str:
    return unknown if value is None else "yes" if value else "no"


def report_card(report: TenantReport, *, running: bool = False) -> dict[str, Any]:
    if running:
        return cards.card(
            cards.title(f"MFA report — {report.tenant}", "Working…")
            + [cards.text(f"Read {report.users:,} users so far ({report.pages} page(s)).")]
        )
    severity = (
        "fail"
        if report.admins_without_mfa or report.enforcement.startswith("NOT")
        else ("warn" if report.registered < report.users or not report.enforcement.startswith("enforced") else "pass")
    )
    headline = (
        f"{report.percent(report.registered)} of {report.users:,} users registered for MFA — "
        f"{len(report.admins_without_mfa)} admin(s) without MFA — MFA {report.enforcement}"
    )
    body = [_verdict(headline, severity)]
    body += cards.title(
        f"MFA report — {report.tenant}",
        f"{report.users:,} users · registration report updated "
        f"{(report.newest_update or 'unknown')[:16].replace('T', ' ')} UTC (it lags)",
    )
    body.append(
        cards.facts(
            [
                ("Registered", f"{report.registered:,} ({report.percent(report.registered)})"),
                ("Capable", f"{report.capable:,} ({report.percent(report.capable)})"),
                ("Passwordless capable", f"{report.passwordless:,} ({report.percent(report.passwordless)})"),
                ("SMS/voice only", f"{report.weak_only:,}"),
                (
                    "Admins without MFA",
                    f"{len(report.admins_without_mfa)} of {report.admins}"
                    + (" holding a privileged role" if report.privileged is not None else f" — {report.admins_basis}"),
                ),
                ("Enforcement", report.enforcement),
            ]
        )
    )
    if report.by_method:
        top = ", ".join(f"{name} {count:,}" for name, count in report.by_method.most_common(8))
        body.append(cards.text(f"**By method:** {top}", size="Small"))
    urgent = report.most_urgent()
    body.append(
        cards.text(f"**Most urgent ({len(urgent)})**" if urgent else "**Nobody stands out.**", spacing="Medium")
    )
    body += [
        cards.text(f"{i}. {u['user']} — {u['issue']}", size="Small", spacing="None") for i, u in enumerate(urgent, 1)
    ]
    body.append(
        cards.text("Full list: `python app.py mfa-report --tenant NAME --csv FILE`.", isSubtle=True, size="Small")
    )
    return cards.card(body)


def tenants_card(rows: list[tuple[str, str, str, str, str]]) -> dict[str, Any]:
    """rows: (name, tenant id, domains, credential, licence)."""
    body = cards.title("Tenants", f"{len(rows)} tenant(s) Cordon acts in")
    for name, tenant_id, domains, credential, licence in rows:
        body.append(
            {
                "type": "Container",
                "separator": True,
                "items": [
                    cards.text(f"**{name}** — {licence}"),
                    cards.text(
                        f"{domains or 'no domains listed'} · {credential} · `{tenant_id}`",
                        isSubtle=True,
                        size="Small",
                        spacing="None",
                    ),
                ],
            }
        )
    return cards.card(body)
