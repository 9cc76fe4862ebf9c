"""One user's MFA status as Cordon states it: the verdict line first, then the facts behind it.

Built from `adapters.graph.mfa_data.UserMfaFacts`; the same object feeds the card and `mfa --json`, so the
chat and the CLI can never disagree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from adapters.graph.mfa_data import MethodInfo, UserMfaFacts
from adapters.graph.mfa_policy import (
    MFA_STRENGTHS,
    SECURITY_DEFAULTS_WHEN_NECESSARY,
    STRENGTH_LABEL,
    TEMPORARY_METHODS,
    Enforcement,
    best_second_factor,
    enforcement_for,
    is_privileged_role,
    strongest,
)

RECENT_METHOD = dt.timedelta(hours=24)  # a method this new is flagged: the user's, or an attacker's?


def age(when: dt.datetime | None, now: dt.datetime) -> str:
    if when is None:
        return "unknown"
    seconds = max((now - when).total_seconds(), 0)
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''} ago"
    return "just now"


@dataclass
class UserStatus:
    facts: UserMfaFacts
    now: dt.datetime
    enforcement: Enforcement
    registered: bool | None
    capable: bool | None
    is_admin: bool | None
    best: str

    @classmethod
    def build(cls, facts: UserMfaFacts, now: dt.datetime) -> UserStatus:
        reg = facts.registration
        if facts.methods is not None:  # live methods are current; the report lags by hours
            best = strongest(m.strength for m in facts.methods if m.type not in TEMPORARY_METHODS)
            registered: bool | None = best in MFA_STRENGTHS
        elif reg is not None:
            registered = bool(reg.get("isMfaRegistered"))
            best = best_second_factor(reg.get("methodsRegistered") or [])
        else:
            registered, best = None, "none"
        # an admin is a holder of a privileged role; only when the roles cannot be read does the report's
        # isAdmin (any admin role, so possibly a harmless reader role) stand in, erring towards "admin"
        if facts.roles is not None:
            is_admin: bool | None = any(is_privileged_role(template) for template, _ in facts.roles)
        else:
            is_admin = bool(reg.get("isAdmin")) if reg is not None else None
        enforcement = enforcement_for(
            facts.principal, facts.security_defaults, facts.policies, memberships_known=facts.roles is not None
        )
        capable = bool(reg.get("isMfaCapable")) if reg is not None else None
        return cls(facts, now, enforcement, registered, capable, is_admin, best)

    @property
    def upn(self) -> str:
        return str(self.facts.user.get("userPrincipalName") or self.facts.user.get("id"))

    @property
    def admin_roles(self) -> list[str]:
        return sorted({name for _, name in self.facts.roles or []})

    @property
    def privileged_roles(self) -> list[str]:
        return sorted({name for template, name in self.facts.roles or [] if is_privileged_role(template)})

    @property
    def report_is_admin(self) -> bool | None:
        reg = self.facts.registration
        return None if reg is None or reg.get("isAdmin") is None else bool(reg.get("isAdmin"))

    @property
    def admin_discrepancy(self) -> str | None:
        """Where the registration report's isAdmin and the live privileged roles disagree, and what it may mean."""
        if self.facts.roles is None or self.report_is_admin is None or self.report_is_admin == self.is_admin:
            return None
        if self.report_is_admin:
            return (
                "the registration report says admin, but the user holds no active privileged role (a "
                "non-privileged role, a role only eligible through PIM, or the report lags)"
            )
        return "the registration report says not an admin, but the user holds a privileged role (the report lags)"

    @property
    def recent_methods(self) -> list[MethodInfo]:
        return [m for m in self.facts.methods or [] if m.created and self.now - m.created < RECENT_METHOD]

    @property
    def verdict(self) -> str:
        parts: list[str] = []
        if self.facts.user.get("accountEnabled") is False:
            parts.append("Account disabled")
        if self.registered is None:
            parts.append("Registration unknown")
        elif not self.registered:
            parts.append("NOT registered" + (" — and an admin!" if self.is_admin else ""))
        else:
            parts.append(f"Registered — {STRENGTH_LABEL[self.best]}")
        enforcement = self.enforcement
        if enforcement.enforced:
            parts.append("enforced by " + ", ".join(enforcement.enforced_by))
        elif enforcement.enforced is False and enforcement.only_when_necessary:
            others = [p for p in enforcement.partially_by if p != SECURITY_DEFAULTS_WHEN_NECESSARY]
            parts.append(
                "required when Microsoft judges it necessary (security defaults)"
                + (", partly by " + ", ".join(others) if others else "")
            )
        elif enforcement.enforced is False and enforcement.partially_by:
            parts.append("only partly enforced by " + ", ".join(enforcement.partially_by))
        elif enforcement.enforced is False:
            parts.append("MFA NOT enforced")
        else:
            parts.append("enforcement unknown")
        if self.registered and self.is_admin and self.best in ("weak", "none"):
            parts.append("an admin on SMS/voice!")
        if self.recent_methods:
            parts.append(f"{len(self.recent_methods)} method(s) added in the last 24 h")
        return " — ".join(parts)

    @property
    def severity(self) -> str:
        """pass / warn / fail, for the verdict's colour."""
        risk_based_only = self.enforcement.only_when_necessary and not self.is_admin
        if (
            self.registered is False
            or self.recent_methods
            and self.is_admin
            or self.enforcement.enforced is False
            and not risk_based_only
        ):
            return "fail"
        if (
            self.registered is None
            or self.enforcement.enforced is None
            or self.best in ("weak", "none")
            or self.recent_methods
            or risk_based_only
        ):
            return "warn"
        return "pass"

    def to_json(self) -> dict[str, Any]:
        reg = self.facts.registration or {}
        user = self.facts.user
        return {
            "user": self.upn,
            "id": str(user.get("id")),
            "tenant": self.facts.tenant.name,
            "registered": self.registered,
            "capable": self.capable,
            "is_admin": self.is_admin,
            "methods": [
                {"type": m.type, "strength": m.strength, "created": _iso(m.created), "detail": m.detail}
                for m in self.facts.methods or []
            ],
            "enforced": self.enforcement.enforced,
            "enforced_by": list(self.enforcement.enforced_by),
            "report_updated": reg.get("lastUpdatedDateTime") if self.facts.registration else None,
            "verdict": self.verdict,
            # additions (the contract allows new keys)
            "display_name": user.get("displayName"),
            "account_enabled": user.get("accountEnabled"),
            "admin_roles": self.admin_roles,
            "privileged_roles": self.privileged_roles,
            "report_is_admin": self.report_is_admin,
            "strongest": self.best,
            "partially_enforced_by": list(self.enforcement.partially_by),
            "security_defaults": self.facts.security_defaults,
            "passwordless_capable": reg.get("isPasswordlessCapable") if self.facts.registration else None,
            "report_registered": reg.get("isMfaRegistered") if self.facts.registration else None,
            "report_methods": list(reg.get("methodsRegistered") or []),
            "last_sign_in": _iso(self.facts.last_sign_in),
            "licence": self.facts.licence,
            "not_read": list(self.facts.gaps),
        }


def _iso(when: dt.datetime | None) -> str | None:
    return None if when is None else when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
