"""Graph-shaped payloads for `investigate` and `hunt`: sign-ins with places and risk, directory audits of every
kind the investigation reads, OAuth2 permission grants, service principals, Intune managed devices and their
Defender state. Each parses into its msgraph-sdk model with nothing left over (tests/test_investigate_standin.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.support.graph_standin.payloads import iso, new_id

EXCHANGE = "00000002-0000-0ff1-ce00-000000000000"
GRAPH_RESOURCE = "00000003-0000-0000-c000-000000000000"
PLACES: dict[str, tuple[str, str, float, float]] = {  # key -> (city, country, latitude, longitude)
    "paris": ("Paris", "FR", 48.8566, 2.3522),
    "lyon": ("Lyon", "FR", 45.764, 4.8357),
    "stockholm": ("Stockholm", "SE", 59.3293, 18.0686),
    "lagos": ("Lagos", "NG", 6.5244, 3.3792),
    "newyork": ("New York", "US", 40.7128, -74.006),
}


def sign_in(
    user: dict[str, Any],
    when: dt.datetime,
    *,
    ip: str,
    place: str = "paris",
    app: str = "Office 365 Exchange Online",
    client: str = "Browser",
    error_code: int = 0,
    risk_level: str = "none",
    risk_state: str = "none",
    risk_events: list[str] | None = None,
    interactive: bool = True,
) -> dict[str, Any]:
    """A signIn as Graph v1.0 returns it."""
    city, country, lat, lon = PLACES[place]
    return {
        "id": new_id(),
        "createdDateTime": iso(when),
        "userId": user["id"],
        "userPrincipalName": user["userPrincipalName"],
        "userDisplayName": user["displayName"],
        "appDisplayName": app,
        "appId": new_id(),
        "ipAddress": ip,
        "clientAppUsed": client,
        "isInteractive": interactive,
        "correlationId": new_id(),
        "conditionalAccessStatus": "notApplied",
        "resourceDisplayName": "Office 365 Exchange Online",
        "resourceId": EXCHANGE,
        "riskDetail": "none",
        "riskLevelAggregated": risk_level,
        "riskLevelDuringSignIn": risk_level,
        "riskState": risk_state,
        "riskEventTypes_v2": list(risk_events or []),
        "status": {
            "errorCode": error_code,
            "failureReason": "Invalid username or password." if error_code else "Other.",
            "additionalDetails": None,
        },
        "location": {
            "city": city,
            "state": "",
            "countryOrRegion": country,
            "geoCoordinates": {"latitude": lat, "longitude": lon, "altitude": None},
        },
        "deviceDetail": {
            "deviceId": "",
            "displayName": None,
            "operatingSystem": "Windows10",
            "browser": "Edge 120",
            "isCompliant": False,
            "isManaged": False,
            "trustType": None,
        },
        "appliedConditionalAccessPolicies": [],
    }


def audit(
    activity: str,
    when: dt.datetime,
    *,
    target: dict[str, Any],
    by: dict[str, Any] | None = None,
    ip: str = "",
    category: str = "UserManagement",
    reason: str = "",
    details: dict[str, str] | None = None,
    target_type: str = "User",
    service: str = "Core Directory",
) -> dict[str, Any]:
    """A directoryAudit; `target` is a user or service principal payload (id and a display name)."""
    initiator = by or target
    return {
        "id": f"Directory_{new_id()}",
        "category": category,
        "correlationId": new_id(),
        "result": "success",
        "resultReason": reason,
        "activityDisplayName": activity,
        "activityDateTime": iso(when),
        "loggedByService": service,
        "operationType": "Add",
        "initiatedBy": {
            "user": {
                "id": initiator["id"],
                "displayName": None,
                "userPrincipalName": initiator.get("userPrincipalName"),
                "ipAddress": ip,
            }
        },
        "targetResources": [
            {
                "id": target["id"],
                "displayName": target.get("displayName"),
                "type": target_type,
                "userPrincipalName": target.get("userPrincipalName"),
                "modifiedProperties": [],
            }
        ],
        "additionalDetails": [{"key": k, "value": v} for k, v in (details or {}).items()],
    }


def service_principal(name: str) -> dict[str, Any]:
    return {"id": new_id(), "appId": new_id(), "displayName": name}


def grant(user: dict[str, Any], client: dict[str, Any], scope: str) -> dict[str, Any]:
    return {
        "id": new_id().replace("-", "")[:22] + "-" + new_id()[:20],
        "clientId": client["id"],
        "consentType": "Principal",
        "principalId": user["id"],
        "resourceId": GRAPH_RESOURCE,
        "scope": scope,
    }


def managed_device(
    user: dict[str, Any],
    name: str,
    *,
    os: str = "Windows",
    synced: dt.datetime,
    compliance: str = "compliant",
    scans: list[tuple[str, dt.datetime]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    """A managedDevice as `GET /users/{id}/managedDevices` returns it; `scans`: (actionState, when)."""
    return {
        "id": new_id(),
        "userId": user["id"],
        "deviceName": name,
        "managedDeviceOwnerType": "company",
        "enrolledDateTime": iso(synced - dt.timedelta(days=200)),
        "lastSyncDateTime": iso(synced),
        "operatingSystem": os,
        "complianceState": compliance,
        "jailBroken": "Unknown",
        "managementAgent": "mdm",
        "osVersion": "10.0.22631.4460" if os == "Windows" else "17.5",
        "easActivated": False,
        "easDeviceId": "",
        "easActivationDateTime": "0001-01-01T00:00:00Z",
        "azureADRegistered": True,
        "deviceEnrollmentType": "windowsAzureADJoin" if os == "Windows" else "userEnrollment",
        "emailAddress": user["userPrincipalName"],
        "azureADDeviceId": new_id(),
        "deviceRegistrationState": "registered",
        "deviceCategoryDisplayName": "Unknown category",
        "isSupervised": False,
        "exchangeLastSuccessfulSyncDateTime": "0001-01-01T00:00:00Z",
        "exchangeAccessState": "none",
        "exchangeAccessStateReason": "none",
        "isEncrypted": True,
        "userPrincipalName": user["userPrincipalName"],
        "model": "Latitude 7440",
        "manufacturer": "Dell Inc.",
        "imei": "",
        "complianceGracePeriodExpirationDateTime": "9999-12-31T23:59:59Z",
        "serialNumber": "5CG1234XYZ",
        "phoneNumber": "",
        "androidSecurityPatchLevel": "",
        "userDisplayName": user["displayName"],
        "wiFiMacAddress": "",
        "subscriberCarrier": "",
        "meid": "",
        "totalStorageSpaceInBytes": 510770954240,
        "freeStorageSpaceInBytes": 288230376151,
        "managedDeviceName": f"{user['userPrincipalName']}_Windows",
        "partnerReportedThreatState": "unknown",
        "deviceActionResults": [
            {
                "actionName": "windowsDefenderScan",
                "actionState": state,
                "startDateTime": iso(at),
                "lastUpdatedDateTime": iso(at),
            }
            for state, at in scans
        ],
    }


def protection_state(*, quick: dt.datetime | None, full: dt.datetime | None = None) -> dict[str, Any]:
    """A windowsProtectionState (Defender) for one device."""
    return {
        "id": new_id(),
        "malwareProtectionEnabled": True,
        "deviceState": "clean",
        "realTimeProtectionEnabled": True,
        "networkInspectionSystemEnabled": True,
        "quickScanOverdue": quick is None,
        "fullScanOverdue": False,
        "signatureUpdateOverdue": False,
        "rebootRequired": False,
        "fullScanRequired": False,
        "engineVersion": "1.1.24090.11",
        "signatureVersion": "1.421.272.0",
        "antiMalwareVersion": "4.18.24090.11",
        "lastQuickScanDateTime": iso(quick) if quick else None,
        "lastFullScanDateTime": iso(full) if full else None,
        "lastQuickScanSignatureVersion": "1.421.272.0",
        "lastFullScanSignatureVersion": "1.421.200.0",
        "lastReportedDateTime": iso(quick or dt.datetime(2026, 11, 1, tzinfo=dt.UTC)),
        "productStatus": "noStatus",
        "isVirtualMachine": False,
        "tamperProtectionEnabled": True,
    }
