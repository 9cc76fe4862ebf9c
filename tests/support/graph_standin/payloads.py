"""Builders of Graph-shaped JSON payloads (camelCase, as Graph sends them) for the stand-in's state.

Every payload these build is checked by `tests/test_graph_standin_parses.py` to deserialise into the msgraph-sdk
model with nothing left in `additional_data`, so a misspelt field fails a test instead of passing silently.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

# Entra built-in role template ids (stable across tenants)
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
SECURITY_ADMIN = "194ae4cb-b126-40b2-bd5b-6091b380977d"
SKU_P1 = "078d2b04-f1bd-4111-bbd4-b4b1b354cef4"  # AAD_PREMIUM
SKU_P2 = "84a661c4-e949-4bd2-a560-ed7766fcaf2b"  # AAD_PREMIUM_P2


def new_id() -> str:
    return str(uuid.uuid4())


def iso(when: dt.datetime | None) -> str | None:
    return None if when is None else when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def user(
    upn: str,
    display_name: str | None = None,
    *,
    id: str | None = None,
    enabled: bool = True,  # noqa: A002
    mail: str | None = None,
    last_sign_in: dt.datetime | None = None,
    user_type: str = "Member",
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": id or new_id(),
        "userPrincipalName": upn,
        "displayName": display_name or upn.split("@")[0].title(),
        "accountEnabled": enabled,
        "mail": mail if mail is not None else upn,
        "userType": user_type,
    }
    if last_sign_in is not None:
        payload["signInActivity"] = {
            "lastSignInDateTime": iso(last_sign_in),
            "lastSuccessfulSignInDateTime": iso(last_sign_in),
        }
    return payload


def registration(
    u: dict[str, Any],
    methods: list[str],
    *,
    is_admin: bool = False,
    capable: bool | None = None,
    passwordless: bool | None = None,
    updated: dt.datetime | None = None,
    preferred: str | None = None,
    system_preferred: list[str] | None = None,
) -> dict[str, Any]:
    """A userRegistrationDetails item; `methods` uses Graph's names (microsoftAuthenticatorPush, mobilePhone...)."""
    strong = [m for m in methods if m not in ("email", "securityQuestion")]
    registered = bool(strong)
    return {
        "id": u["id"],
        "userPrincipalName": u["userPrincipalName"],
        "userDisplayName": u["displayName"],
        "userType": "member",
        "isAdmin": is_admin,
        "isSsprRegistered": bool(methods),
        "isSsprEnabled": False,
        "isSsprCapable": False,
        "isMfaRegistered": registered,
        "isMfaCapable": registered if capable is None else capable,
        "isPasswordlessCapable": (
            any(
                m in ("fido2", "passKeyDeviceBound", "windowsHelloForBusiness", "microsoftAuthenticatorPasswordless")
                for m in methods
            )
            if passwordless is None
            else passwordless
        ),
        "isSystemPreferredAuthenticationMethodEnabled": True,
        "methodsRegistered": methods,
        "systemPreferredAuthenticationMethods": system_preferred if system_preferred is not None else strong[:1],
        "userPreferredMethodForSecondaryAuthentication": preferred
        or ("push" if "microsoftAuthenticatorPush" in methods else "none"),
        "lastUpdatedDateTime": iso(updated or dt.datetime.now(dt.UTC) - dt.timedelta(hours=6)),
    }


def _method(kind: str, created: dt.datetime | None, **fields: Any) -> dict[str, Any]:
    payload = {"@odata.type": f"#microsoft.graph.{kind}", "id": new_id(), **fields}
    if created is not None:
        payload["createdDateTime"] = iso(created)
    return payload


def password_method() -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.passwordAuthenticationMethod",
        "id": "28c10230-6103-485e-b985-444c60001490",
        "password": None,
    }


def phone_method(number: str, phone_type: str = "mobile", created: dt.datetime | None = None) -> dict[str, Any]:
    return _method(
        "phoneAuthenticationMethod",
        created,
        phoneNumber=number,
        phoneType=phone_type,
        smsSignInState="notAllowedByPolicy",
    )


def authenticator_method(device: str, created: dt.datetime | None = None) -> dict[str, Any]:
    return _method(
        "microsoftAuthenticatorAuthenticationMethod",
        created,
        displayName=device,
        deviceTag="SoftwareTokenActivated",
        phoneAppVersion="6.2401.0119",
    )


def fido2_method(model: str = "YubiKey 5 NFC", created: dt.datetime | None = None) -> dict[str, Any]:
    return _method(
        "fido2AuthenticationMethod",
        created,
        displayName=model,
        model=model,
        aaGuid="cb69481e-8ff7-4039-93ec-0a2729a154a8",
        attestationLevel="attested",
        attestationCertificates=["dbe793efdf1945e2df25d93653c1d5c5cbdf0e80"],
    )


def windows_hello_method(device: str, created: dt.datetime | None = None) -> dict[str, Any]:
    return _method("windowsHelloForBusinessAuthenticationMethod", created, displayName=device, keyStrength="normal")


def software_oath_method(created: dt.datetime | None = None) -> dict[str, Any]:
    return _method("softwareOathAuthenticationMethod", created, secretKey=None)


def email_method(address: str, created: dt.datetime | None = None) -> dict[str, Any]:
    return _method("emailAuthenticationMethod", created, emailAddress=address)


def temporary_access_pass_method(created: dt.datetime | None = None) -> dict[str, Any]:
    return _method(
        "temporaryAccessPassAuthenticationMethod",
        created,
        isUsable=True,
        isUsableOnce=True,
        lifetimeInMinutes=60,
        methodUsabilityReason="EnabledByPolicy",
        temporaryAccessPass=None,
        startDateTime=iso(created),
    )


def group(display_name: str, id: str | None = None) -> dict[str, Any]:  # noqa: A002
    return {
        "@odata.type": "#microsoft.graph.group",
        "id": id or new_id(),
        "displayName": display_name,
        "securityEnabled": True,
        "mailEnabled": False,
    }


def directory_role(display_name: str, template_id: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.directoryRole",
        "id": new_id(),
        "displayName": display_name,
        "roleTemplateId": template_id,
    }


def ca_policy(
    name: str,
    *,
    state: str = "enabled",
    include_users: list[str] | None = None,
    exclude_users: list[str] | None = None,
    include_groups: list[str] | None = None,
    exclude_groups: list[str] | None = None,
    include_roles: list[str] | None = None,
    exclude_roles: list[str] | None = None,
    controls: list[str] | None = None,
    operator: str = "OR",
    apps: list[str] | None = None,
    client_app_types: list[str] | None = None,
    strength: bool = False,
    locations: dict[str, Any] | None = None,
) -> dict[str, Any]:
    grant: dict[str, Any] = {
        "operator": operator,
        "builtInControls": ["mfa"] if controls is None else controls,
        "customAuthenticationFactors": [],
        "termsOfUse": [],
    }
    if strength:
        grant["authenticationStrength"] = {
            "id": "00000000-0000-0000-0000-000000000004",
            "displayName": "Phishing-resistant MFA",
            "policyType": "builtIn",
            "requirementsSatisfied": "mfa",
            "allowedCombinations": ["fido2"],
        }
    conditions: dict[str, Any] = {
        "userRiskLevels": [],
        "signInRiskLevels": [],
        "clientAppTypes": client_app_types or ["all"],
        "applications": {
            "includeApplications": apps or ["All"],
            "excludeApplications": [],
            "includeUserActions": [],
            "includeAuthenticationContextClassReferences": [],
        },
        "users": {
            "includeUsers": include_users or [],
            "excludeUsers": exclude_users or [],
            "includeGroups": include_groups or [],
            "excludeGroups": exclude_groups or [],
            "includeRoles": include_roles or [],
            "excludeRoles": exclude_roles or [],
        },
    }
    if locations is not None:
        conditions["locations"] = locations
    return {
        "id": new_id(),
        "displayName": name,
        "state": state,
        "createdDateTime": "2026-01-05T10:00:00Z",
        "conditions": conditions,
        "grantControls": grant,
    }


def guests_or_external(
    types: str = "internalGuest,b2bCollaborationGuest", tenants: list[str] | None = None
) -> dict[str, Any]:
    """A CA `conditionalAccessGuestsOrExternalUsers` (for includeGuestsOrExternalUsers / excludeGuestsOrExternalUsers);
    `tenants` limits it to those external tenant ids."""
    external: dict[str, Any] = (
        {
            "@odata.type": "#microsoft.graph.conditionalAccessEnumeratedExternalTenants",
            "membershipKind": "enumerated",
            "members": tenants,
        }
        if tenants is not None
        else {"@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants", "membershipKind": "all"}
    )
    return {"guestOrExternalUserTypes": types, "externalTenants": external}


def security_defaults(enabled: bool) -> dict[str, Any]:
    return {
        "id": "00000000-0000-0000-0000-000000000005",
        "displayName": "Security Defaults",
        "description": "Security defaults is a set of basic identity security mechanisms.",
        "isEnabled": enabled,
    }


def sku(part_number: str, plans: list[str], *, status: str = "Enabled") -> dict[str, Any]:
    return {
        "id": new_id(),
        "skuId": new_id(),
        "skuPartNumber": part_number,
        "appliesTo": "User",
        "capabilityStatus": status,
        "consumedUnits": 10,
        "prepaidUnits": {"enabled": 25, "suspended": 0, "warning": 0, "lockedOut": 0},
        "servicePlans": [
            {"servicePlanId": new_id(), "servicePlanName": p, "provisioningStatus": "Success", "appliesTo": "User"}
            for p in plans
        ],
    }


def premium_skus(level: str) -> list[dict[str, Any]]:
    """Subscribed SKUs of a tenant at Entra ID level Free / P1 / P2 (plus Exchange, which says nothing)."""
    result = [sku("EXCHANGESTANDARD", ["EXCHANGE_S_STANDARD"])]
    if level == "P1":
        result.append(sku("AAD_PREMIUM", ["AAD_PREMIUM", "MFA_PREMIUM"]))
    elif level == "P2":
        result.append(sku("AAD_PREMIUM_P2", ["AAD_PREMIUM", "AAD_PREMIUM_P2", "MFA_PREMIUM"]))
    return result
