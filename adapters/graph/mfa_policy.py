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
STRENGTH_LABEL = {
    "phishing_resistant": "phishing-resistant",
    "strong": "Authenticator",
    "moderate": "one-time codes",
    "weak": "SMS/voice only (weak)",
    "none": "no second factor",
}

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
    "fido2": "phishing_resistant",
    "passKeyDeviceBound": "phishing_resistant",
    "passKeyDeviceBoundAuthenticator": "phishing_resistant",
    "passKeyDeviceBoundWindowsHello": "phishing_resistant",
    "passKeySynced": "phishing_resistant",
    "windowsHelloForBusiness": "phishing_resistant",
    "macOsSecureEnclaveKey": "phishing_resistant",
    "platformCredential": "phishing_resistant",
    "x509Certificate": "phishing_resistant",
    "x509CertificateMultiFactor": "phishing_resistant",
    "microsoftAuthenticatorPush": "strong",
    "microsoftAuthenticatorPasswordless": "strong",
    "externalAuthMethod": "strong",
    "softwareOneTimePasscode": "moderate",
    "hardwareOneTimePasscode": "moderate",
    "temporaryAccessPass": "moderate",
    "mobilePhone": "weak",
    "alternateMobilePhone": "weak",
    "officePhone": "weak",
    "sms": "weak",
    "voice": "weak",
    "email": "none",
    "securityQuestion": "none",
    "appPassword": "none",
    "password": "none",
}
MFA_STRENGTHS = frozenset({"phishing_resistant", "strong", "moderate", "weak"})
SECURITY_DEFAULTS = "security defaults"
# what security defaults do for users outside the admin roles below (Microsoft: "Microsoft decides when a user is
# prompted for multifactor authentication, based on factors such as location, device, role, and task")
SECURITY_DEFAULTS_WHEN_NECESSARY = "security defaults (only when Microsoft judges it necessary)"

# Directory roles whose holders security defaults ask for MFA at EVERY sign-in. Microsoft Learn, "Security defaults
# in Microsoft Entra ID", section "Require administrators to do multifactor authentication" (the role list of
# includes/conditional-access-admin-roles.md plus Authentication Policy and Identity Governance Administrator).
# Template ids: Microsoft Learn, "Microsoft Entra built-in roles" (permissions-reference), column "Template ID".
SECURITY_DEFAULTS_ADMIN_ROLES: dict[str, str] = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "b0f54661-2d74-4c50-afa3-1ec803f12efe": "Billing Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
    "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c": "SharePoint Administrator",
    "69091246-20e8-4a56-aa4d-066075b2a7a8": "Teams Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "0526716b-113d-4c15-b2c8-68e3c22b9f80": "Authentication Policy Administrator",
    "45d8d3c5-c802-45c6-b32a-1d70b5e1e86e": "Identity Governance Administrator",
}
# Further built-in roles Microsoft labels PRIVILEGED (unifiedRoleDefinition.isPrivileged = true; "Microsoft Entra
# built-in roles" and "Privileged roles and permissions in Microsoft Entra ID"). The roleDefinition model of the
# msgraph-sdk in use (v1.0) has no isPrivileged, and `transitiveMemberOf` returns built-in directoryRoles only,
# so this table is the source. Directory Readers, Message Center Reader, Reports Reader ... are not privileged.
LABELLED_PRIVILEGED_ROLES: dict[str, str] = {
    "db506228-d27e-4b7d-95e5-295956d6615f": "Agent ID Administrator",
    "d2562ede-74db-457e-a7b6-544e236ebb61": "AI Administrator",
    "cf1c38e5-3621-4004-a7cb-879624dced7c": "Application Developer",
    "ecb2c6bf-0ab6-418e-bd87-7986f8d63bbe": "Attribute Provisioning Administrator",
    "422218e4-db15-4ef9-bbe0-8afb41546d79": "Attribute Provisioning Reader",
    "25a516ed-2fa0-40ea-a2d0-12923a21473a": "Authentication Extensibility Administrator",
    "0b00bede-4072-4d22-b441-e7df02a1ef63": "Authentication Extensibility Password Administrator",
    "aaf43236-0c0d-4d5f-883a-6955382ac081": "B2C IEF Keyset Administrator",
    "7698a772-787b-4ac8-901f-60d6b08affd2": "Cloud Device Administrator",
    "9360feb5-f418-4baa-8175-e2a00bac4301": "Directory Writers",
    "8329153b-31d0-4727-b945-745eb3bc5f31": "Domain Name Administrator",
    "be2f45a1-457d-42af-a067-6ec1fa63bc45": "External Identity Provider Administrator",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
    "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2": "Hybrid Identity Administrator",
    "3a2c62db-5318-420d-8d74-23affee5d9d5": "Intune Administrator",
    "59d46f88-662b-457b-bceb-5c3809e5908f": "Lifecycle Workflows Administrator",
    "4ba39ca4-527c-499a-b93d-d9b492c50246": "Partner Tier1 Support",
    "e00e864a-17c5-4a4b-9c06-f5b95a8d5bd8": "Partner Tier2 Support",
    "5f2222b1-57c3-48ba-8ad5-d4759f1fde6f": "Security Operator",
    "5d6b6bb7-de71-4623-b4af-96380a352509": "Security Reader",
}
# "privileged" in Cordon: labelled by Microsoft, or asked for MFA at every sign-in by security defaults
PRIVILEGED_ROLES: dict[str, str] = {**LABELLED_PRIVILEGED_ROLES, **SECURITY_DEFAULTS_ADMIN_ROLES}


def is_privileged_role(template_id: str) -> bool:
    return template_id.lower() in PRIVILEGED_ROLES


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
    return strongest(
        strength_of(m) for m in method_names if m.removeprefix("#microsoft.graph.") not in TEMPORARY_METHODS
    )


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
    if platforms and (
        [str(p).lower() for p in platforms.get("includePlatforms") or ["all"]] != ["all"]
        or platforms.get("excludePlatforms")
    ):
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
    if str(grant.get("operator", "OR")).upper() == "OR" and (
        others or grant.get("termsOfUse") or grant.get("customAuthenticationFactors")
    ):
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

    @property
    def only_when_necessary(self) -> bool:
        """Security defaults cover this user, but only with Microsoft's risk-based prompts (not an admin role)."""
        return not self.enforced_by and SECURITY_DEFAULTS_WHEN_NECESSARY in self.partially_by


def enforcement_for(
    who: Principal,
    security_defaults: bool | None,
    policies: list[dict[str, Any]] | None,
    *,
    memberships_known: bool = True,
) -> Enforcement:
    """`memberships_known=False`: groups/roles could not be read, so "not enforced" cannot be claimed.

    Security defaults ask holders of the admin roles in `SECURITY_DEFAULTS_ADMIN_ROLES` for MFA at every sign-in;
    everyone else only "when necessary" (Microsoft's risk-based choice): that is partial, never `enforced`.
    """
    result = Enforcement(enforced=None)
    if security_defaults:
        if who.roles & SECURITY_DEFAULTS_ADMIN_ROLES.keys():
            result.enforced_by.append(SECURITY_DEFAULTS)
        elif memberships_known:  # else the fallback below says "unknown"
            result.partially_by.append(SECURITY_DEFAULTS_WHEN_NECESSARY)
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
    elif security_defaults and not memberships_known:
        result.unknown_reason = (
            "the user's roles could not be read: security defaults ask admins for MFA at every "
            "sign-in, other users only when Microsoft judges it necessary"
        )
    elif security_defaults is None or (policies is None and not security_defaults):
        result.unknown_reason = "the security defaults or Conditional Access policies could not be read"
    elif not memberships_known and any(_scoped_by_membership(p) for p in policies or []):
        result.unknown_reason = "the user's groups and roles could not be read"
    else:
        result.enforced = False
    return result


def _scoped_by_membership(policy: dict[str, Any]) -> bool:
    users = _get(policy, "conditions", "users") or {}
    return (
        policy.get("state") == "enabled"
        and requires_mfa(policy)
        and any(users.get(k) for k in ("includeGroups", "includeRoles", "excludeGroups", "excludeRoles"))
    )


def tenant_enforcement(security_defaults: bool | None, policies: list[dict[str, Any]] | None) -> str:
    """One line on tenant-wide enforcement for the report."""
    if security_defaults:
        return (
            "partly enforced by security defaults: admins at every sign-in, other users only when Microsoft "
            "judges it necessary"
        )
    if policies is None or security_defaults is None:
        return "unknown (the policies could not be read)"
    full, partial = [], []
    for policy in policies:
        if policy.get("state") != "enabled" or not requires_mfa(policy):
            continue
        users = _get(policy, "conditions", "users") or {}
        everyone = "All" in (users.get("includeUsers") or [])
        gaps = _condition_gaps(policy)
        excluded = (
            len(users.get("excludeUsers") or [])
            + len(users.get("excludeGroups") or [])
            + len(users.get("excludeRoles") or [])
            + bool(users.get("excludeGuestsOrExternalUsers"))
        )
        if everyone and not gaps:
            full.append(f"CA '{policy.get('displayName')}'" + (f" ({excluded} exclusion(s))" if excluded else ""))
        else:
            partial.append(f"CA '{policy.get('displayName')}'")
    if full:
        return "enforced tenant-wide by " + ", ".join(full)
    if partial:
        return "only partly enforced: " + ", ".join(partial) + " (some users, apps or conditions)"
    return "NOT enforced: no security defaults and no enabled Conditional Access policy requires MFA"
