"""How strong a user's MFA is, and whether anything actually enforces it (pure logic, no I/O).

Registration is not enforcement: a user can have the Authenticator app and still never be asked for it. The
enforcement check reads security defaults and the enabled Conditional Access policies that require MFA (a built-in
`mfa` control or an authentication strength), decides whether each applies to this user — directly, through a
group, a role, or all users, minus exclusions — and whether its conditions (apps, locations, platforms, risk,
client apps, an OR with other controls) leave ways around it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Strength = Literal["phishing_resistant", "strong", "moderate", "weak", "none"]
STRENGTH_ORDER: tuple[Strength, ...] = ("phishing_resistant", "strong", "moderate", "weak", "none")
STRENGTH_LABEL = {"phishing_resistant": "phishing-resistant", "strong": "Authenticator", "moderate": "one-time codes",
                  "weak": "SMS/voice only (weak)", "none": "no second factor"}

# live method @odata.type (without "#microsoft.graph.") and registration-report names -> strength
METHOD_STRENGTH: dict[str, Strength] = {
    "fido2AuthenticationMethod": "phishing_resistant",
    "windowsHelloForBusinessAuthenticationMethod": "phishing_resistant",
    "platformCredentialAuthenticationMethod": "phishing_resistant",
    "x509CertificateAuthenticationMethod": "phishing_resistant",
    "microsoftAuthenticatorAuthenticationMethod": "strong",
    "externalAuthenticationMethod": "strong",
    "softwareOathAuthenticationMethod": "moderate",
    "hardwareOathAuthenticationMethod": "moderate",
    "temporaryAccessPassAuthenticationMethod": "moderate",
    "qrCodePinAuthenticationMethod": "moderate",
    "phoneAuthenticationMethod": "weak",
    "emailAuthenticationMethod": "none",
    "passwordAuthenticationMethod": "none",
    # userRegistrationDetails.methodsRegistered
    "fido2": "phishing_resistant", "passKeyDeviceBound": "phishing_resistant",
    "passKeyDeviceBoundAuthenticator": "phishing_resistant", "passKeyDeviceBoundWindowsHello": "phishing_resistant",
    "passKeySynced": "phishing_resistant", "windowsHelloForBusiness": "phishing_resistant",
    "macOsSecureEnclaveKey": "phishing_resistant", "platformCredential": "phishing_resistant",
    "x509Certificate": "phishing_resistant", "x509CertificateMultiFactor": "phishing_resistant",
    "microsoftAuthenticatorPush": "strong", "microsoftAuthenticatorPasswordless": "strong",
    "externalAuthMethod": "strong",
    "softwareOneTimePasscode": "moderate", "hardwareOneTimePasscode": "moderate", "temporaryAccessPass": "moderate",
    "mobilePhone": "weak", "alternateMobilePhone": "weak", "officePhone": "weak", "sms": "weak", "voice": "weak",
    "email": "none", "securityQuestion": "none", "appPassword": "none", "password": "none",
}
MFA_STRENGTHS = frozenset({"phishing_resistant", "strong", "moderate", "weak"})
SECURITY_DEFAULTS = "security defaults"
SOME_TENANTS = "only guests from some tenants"


def strength_of(method_type: str) -> Strength:
    return METHOD_STRENGTH.get(method_type.removeprefix("#microsoft.graph."), "none")


def strongest(strengths: Iterable[str]) -> Strength:
    present = set(strengths)
    return next((s for s in STRENGTH_ORDER if s in present), "none")


# one-off codes for onboarding or recovery: shown with their strength, but having one is not being registered
TEMPORARY_METHODS = frozenset({"temporaryAccessPass", "temporaryAccessPassAuthenticationMethod"})


def best_second_factor(method_names: Iterable[str]) -> Strength:
    """The strongest lasting MFA method among these (a Temporary Access Pass does not count)."""
    return strongest(strength_of(m) for m in method_names
                     if m.removeprefix("#microsoft.graph.") not in TEMPORARY_METHODS)


def weak_only(method_names: Iterable[str]) -> bool:
    """Registered for MFA, but with SMS/voice as the best second factor."""
    return best_second_factor(method_names) == "weak"


@dataclass(frozen=True)
class Principal:
    """What CA user conditions test: the user's id, transitive group ids and active role template ids."""

    user_id: str
    groups: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    guest: bool = False  # userType Guest
    external: bool = False  # signs in with another organisation's identity (#EXT# in the UPN)

    @property
    def guest_kinds(self) -> frozenset[str]:
        """The CA `guestOrExternalUserTypes` this user may be (a directory user object is one of these three)."""
        if self.guest:
            return frozenset({"b2bCollaborationGuest" if self.external else "internalGuest"})
        return frozenset({"b2bCollaborationMember"}) if self.external else frozenset()


@dataclass
class PolicyVerdict:
    name: str
    requires_mfa: bool
    applies: bool
    how: str = ""  # "all users" / "directly" / "group" / "role" / "guests"
    gaps: list[str] = field(default_factory=list)  # conditions that leave ways around it

    @property
    def enforces(self) -> bool:
        return self.requires_mfa and self.applies and not self.gaps

    @property
    def label(self) -> str:
        text = f"CA '{self.name}'"
        return f"{text} ({'; '.join(self.gaps)})" if self.gaps else text


def _get(data: dict[str, Any] | None, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def requires_mfa(policy: dict[str, Any]) -> bool:
    grant = policy.get("grantControls") or {}
    controls = [str(c).lower() for c in grant.get("builtInControls") or []]
    if "block" in controls:
        return False
    return "mfa" in controls or bool(grant.get("authenticationStrength"))


def _guest_match(spec: Any, who: Principal, *, unsure: bool) -> bool:
    """Whether a `conditionalAccessGuestsOrExternalUsers` covers the user; `unsure` answers what cannot be known
    (which external tenant a guest comes from), so exclusions err towards "excluded" and inclusions towards not."""
    if not isinstance(spec, dict) or not who.guest_kinds:
        return False
    kinds = {k.strip() for k in str(spec.get("guestOrExternalUserTypes") or "").split(",")}
    if not kinds & who.guest_kinds:
        return False
    tenants = spec.get("externalTenants") or {}
    if who.external and str(tenants.get("membershipKind") or "all") != "all":
        return unsure
    return True


def _user_scope(users: dict[str, Any], who: Principal) -> tuple[bool, str]:
    ids = {str(i).lower() for i in users.get("includeUsers") or []}
    excluded_ids = {str(i).lower() for i in users.get("excludeUsers") or []}
    guestish = bool(who.guest_kinds)
    if who.user_id in excluded_ids or (guestish and "guestsorexternalusers" in excluded_ids):
        return False, "excluded"
    if _guest_match(users.get("excludeGuestsOrExternalUsers"), who, unsure=True):
        return False, "excluded as a guest or external user"
    if who.groups & {str(g).lower() for g in users.get("excludeGroups") or []}:
        return False, "excluded through a group"
    if who.roles & {str(r).lower() for r in users.get("excludeRoles") or []}:
        return False, "excluded through a role"
    if "all" in ids:
        return True, "all users"
    if who.user_id in ids:
        return True, "directly"
    included_guests = users.get("includeGuestsOrExternalUsers")
    if (guestish and "guestsorexternalusers" in ids) or _guest_match(included_guests, who, unsure=False):
        return True, "guests"
    if _guest_match(included_guests, who, unsure=True):
        return True, SOME_TENANTS  # only guests from listed tenants: which one this guest is from is not known
    if who.groups & {str(g).lower() for g in users.get("includeGroups") or []}:
        return True, "through a group"
    if who.roles & {str(r).lower() for r in users.get("includeRoles") or []}:
        return True, "through a role"
    return False, "not included"


def _condition_gaps(policy: dict[str, Any]) -> list[str]:
    gaps: list[str] = []
    conditions = policy.get("conditions") or {}
    apps = _get(conditions, "applications", "includeApplications") or []
    if "All" not in apps:
        gaps.append("only for some apps" if apps else "only for user actions")
    elif _get(conditions, "applications", "excludeApplications"):
        gaps.append("some apps excluded")
    client_types = {str(c) for c in conditions.get("clientAppTypes") or ["all"]}
    if "all" not in client_types and not {"browser", "mobileAppsAndDesktopClients"} <= client_types:
        gaps.append("only some client apps")
    locations = conditions.get("locations") or {}
    if locations and ((locations.get("includeLocations") or ["All"]) != ["All"] or locations.get("excludeLocations")):
        gaps.append("not from some locations")
    platforms = conditions.get("platforms") or {}
    if platforms and ([str(p).lower() for p in platforms.get("includePlatforms") or ["all"]] != ["all"]
                      or platforms.get("excludePlatforms")):
        gaps.append("only some platforms")
    if conditions.get("signInRiskLevels") or conditions.get("userRiskLevels") or conditions.get("insiderRiskLevels"):
        gaps.append("only for risky sign-ins")
    if conditions.get("devices"):
        gaps.append("device filter")
    if _get(conditions, "applications", "applicationFilter"):
        gaps.append("app filter")
    if _get(conditions, "authenticationFlows", "transferMethods"):
        gaps.append("only some sign-in flows")
    grant = policy.get("grantControls") or {}
    others = [c for c in grant.get("builtInControls") or [] if str(c).lower() != "mfa"]
    if str(grant.get("operator", "OR")).upper() == "OR" and (others or grant.get("termsOfUse")
                                                             or grant.get("customAuthenticationFactors")):
        gaps.append(f"or {', '.join(others) or 'another control'} instead")
    return gaps


def evaluate_policy(policy: dict[str, Any], who: Principal) -> PolicyVerdict:
    name = str(policy.get("displayName") or policy.get("id") or "unnamed policy")
    needs = policy.get("state") == "enabled" and requires_mfa(policy)
    applies, how = _user_scope(_get(policy, "conditions", "users") or {}, who)
    gaps = _condition_gaps(policy) if needs and applies else []
    return PolicyVerdict(name, needs, applies, how, [how, *gaps] if applies and how == SOME_TENANTS else gaps)


@dataclass
class Enforcement:
    """Whether MFA is enforced for one user: `enforced` None when the policies could not be read."""

    enforced: bool | None
    enforced_by: list[str] = field(default_factory=list)
    partially_by: list[str] = field(default_factory=list)
    unknown_reason: str | None = None


def enforcement_for(who: Principal, security_defaults: bool | None, policies: list[dict[str, Any]] | None,
                    *, memberships_known: bool = True) -> Enforcement:
    """`memberships_known=False`: groups/roles could not be read, so "not enforced" cannot be claimed."""
    result = Enforcement(enforced=None)
    if security_defaults:
        result.enforced_by.append(SECURITY_DEFAULTS)
    for policy in policies or []:
        verdict = evaluate_policy(policy, who)
        if verdict.enforces and not memberships_known and _scoped_by_membership(policy):
            continue  # a group or role exclusion may apply: the fallback below says "unknown"
        if verdict.enforces:
            result.enforced_by.append(verdict.label)
        elif verdict.requires_mfa and verdict.applies:
            result.partially_by.append(verdict.label)
    if result.enforced_by:
        result.enforced = True
    elif security_defaults is None or policies is None:
        result.unknown_reason = "the security defaults or Conditional Access policies could not be read"
    elif not memberships_known and any(_scoped_by_membership(p) for p in policies):
        result.unknown_reason = "the user's groups and roles could not be read"
    else:
        result.enforced = False
    return result


def _scoped_by_membership(policy: dict[str, Any]) -> bool:
    users = _get(policy, "conditions", "users") or {}
    return policy.get("state") == "enabled" and requires_mfa(policy) and any(
        users.get(k) for k in ("includeGroups", "includeRoles", "excludeGroups", "excludeRoles"))


def tenant_enforcement(security_defaults: bool | None, policies: list[dict[str, Any]] | None) -> str:
    """One line on tenant-wide enforcement for the report."""
    if security_defaults:
        return "enforced tenant-wide by security defaults"
    if policies is None or security_defaults is None:
        return "unknown (the policies could not be read)"
    full, partial = [], []
    for policy in policies:
        if policy.get("state") != "enabled" or not requires_mfa(policy):
            continue
        users = _get(policy, "conditions", "users") or {}
        everyone = "All" in (users.get("includeUsers") or [])
        gaps = _condition_gaps(policy)
        excluded = len(users.get("excludeUsers") or []) + len(users.get("excludeGroups") or []) + len(
            users.get("excludeRoles") or []) + bool(users.get("excludeGuestsOrExternalUsers"))
        if everyone and not gaps:
            full.append(f"CA '{policy.get('displayName')}'" + (f" ({excluded} exclusion(s))" if excluded else ""))
        else:
            partial.append(f"CA '{policy.get('displayName')}'")
    if full:
        return "enforced tenant-wide by " + ", ".join(full)
    if partial:
        return "only partly enforced: " + ", ".join(partial) + " (some users, apps or conditions)"
    return "NOT enforced: no security defaults and no enabled Conditional Access policy requires MFA"
