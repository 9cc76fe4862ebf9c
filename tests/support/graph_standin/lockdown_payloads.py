"""Graph-shaped payloads for the lock-down endpoints: inbox rules, mail folders, sign-ins, directory audits, risky
users. `tests/test_lockdown_graph.py` checks each parses into its msgraph-sdk model with nothing left over."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.support.graph_standin.payloads import iso, new_id


def recipient(address: str, name: str | None = None) -> dict[str, Any]:
    return {"emailAddress": {"name": name or address, "address": address}}


def message_rule(
    name: str,
    *,
    enabled: bool = True,
    sequence: int = 1,
    conditions: dict[str, Any] | None = None,
    forward_to: list[str] = (),
    redirect_to: list[str] = (),  # type: ignore[assignment]
    forward_as_attachment_to: list[str] = (),
    delete: bool = False,  # type: ignore[assignment]
    permanent_delete: bool = False,
    move_to_folder: str | None = None,
    mark_as_read: bool = False,
    stop: bool = False,
) -> dict[str, Any]:
    actions: dict[str, Any] = {"stopProcessingRules": stop}
    if forward_to:
        actions["forwardTo"] = [recipient(a) for a in forward_to]
    if redirect_to:
        actions["redirectTo"] = [recipient(a) for a in redirect_to]
    if forward_as_attachment_to:
        actions["forwardAsAttachmentTo"] = [recipient(a) for a in forward_as_attachment_to]
    if delete:
        actions["delete"] = True
    if permanent_delete:
        actions["permanentDelete"] = True
    if move_to_folder:
        actions["moveToFolder"] = move_to_folder
    if mark_as_read:
        actions["markAsRead"] = True
    rule: dict[str, Any] = {
        "id": "AQAAA" + new_id().replace("-", "")[:20] + "=",
        "displayName": name,
        "sequence": sequence,
        "isEnabled": enabled,
        "hasError": False,
        "isReadOnly": False,
        "actions": actions,
    }
    if conditions:
        rule["conditions"] = conditions
    return rule


def mail_folder(display_name: str, folder_id: str | None = None) -> dict[str, Any]:
    return {
        "id": folder_id or "AAMkA" + new_id().replace("-", "")[:24] + "AAA=",
        "displayName": display_name,
        "parentFolderId": "AAMkAroot=",
        "childFolderCount": 0,
        "unreadItemCount": 0,
        "totalItemCount": 3,
        "isHidden": False,
    }


def sign_in(
    user: dict[str, Any], when: dt.datetime, *, ip: str, country: str, app: str, error_code: int = 0, city: str = ""
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "createdDateTime": iso(when),
        "userId": user["id"],
        "userPrincipalName": user["userPrincipalName"],
        "userDisplayName": user["displayName"],
        "appDisplayName": app,
        "appId": new_id(),
        "ipAddress": ip,
        "clientAppUsed": "Browser",
        "isInteractive": True,
        "correlationId": new_id(),
        "conditionalAccessStatus": "notApplied",
        "resourceDisplayName": "Office 365 Exchange Online",
        "resourceId": new_id(),
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "riskEventTypes_v2": [],
        "status": {
            "errorCode": error_code,
            "failureReason": "Other." if error_code else None,
            "additionalDetails": None,
        },
        "location": {
            "city": city,
            "state": "",
            "countryOrRegion": country,
            "geoCoordinates": {"latitude": 0.0, "longitude": 0.0, "altitude": None},
        },
        "deviceDetail": {
            "deviceId": "",
            "displayName": "",
            "operatingSystem": "Windows10",
            "browser": "Edge",
            "isCompliant": False,
            "isManaged": False,
            "trustType": "",
        },
    }


def registered_security_info(user: dict[str, Any], when: dt.datetime, method: str, ip: str) -> dict[str, Any]:
    return {
        "id": "UserManagement_" + new_id(),
        "category": "UserManagement",
        "correlationId": new_id(),
        "result": "success",
        "resultReason": f"User registered {method}",
        "activityDisplayName": "User registered security info",
        "activityDateTime": iso(when),
        "loggedByService": "Authentication Methods",
        "operationType": "Add",
        "initiatedBy": {
            "user": {
                "id": user["id"],
                "displayName": None,
                "userPrincipalName": user["userPrincipalName"],
                "ipAddress": ip,
            }
        },
        "targetResources": [
            {
                "id": user["id"],
                "displayName": None,
                "type": "User",
                "userPrincipalName": user["userPrincipalName"],
                "modifiedProperties": [],
            }
        ],
        "additionalDetails": [{"key": "Method", "value": method}],
    }


def risky_user(user: dict[str, Any], level: str = "medium", state: str = "atRisk") -> dict[str, Any]:
    return {
        "id": user["id"],
        "isDeleted": False,
        "isProcessing": False,
        "riskLastUpdatedDateTime": iso(dt.datetime(2026, 11, 27, 21, 0, tzinfo=dt.UTC)),
        "riskLevel": level,
        "riskState": state,
        "riskDetail": "none",
        "userDisplayName": user["displayName"],
        "userPrincipalName": user["userPrincipalName"],
    }
