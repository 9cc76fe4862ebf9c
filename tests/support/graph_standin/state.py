"""What the Graph stand-in serves: one `TenantState` per tenant, plus faults to inject and a request log.

Tests fill the state with the builders in `payloads.py`; other dialog families keep their own data in
`TenantState.extra[<family>]` (or subclass `TenantState`) and serve it from their own route modules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.graph_standin import payloads

ERRORS = {
    400: ("Request_BadRequest", "Invalid filter clause."),
    401: ("InvalidAuthenticationToken", "Access token validation failure. Invalid audience."),
    403: ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
    404: ("Request_ResourceNotFound", "Resource could not be found."),
    429: ("TooManyRequests", "Too many requests."),
    500: ("InternalServerError", "An internal server error occurred."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable."),
    504: ("GatewayTimeout", "The gateway did not receive a timely response."),
}
LICENCE_CODE = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
LICENCE_MESSAGE = "Neither tenant is B2C or tenant doesn't have premium license"


def error_body(status: int, code: str | None = None, message: str | None = None) -> dict[str, Any]:
    default_code, default_message = ERRORS.get(status, ("UnknownError", "Error."))
    return {
        "error": {
            "code": code or default_code,
            "message": message or default_message,
            "innerError": {
                "date": "2026-11-27T22:00:00",
                "request-id": payloads.new_id(),
                "client-request-id": payloads.new_id(),
            },
        }
    }


@dataclass
class Fault:
    """Answer matching requests differently, `times` times (-1: always). `path` is a regex searched in path+query."""

    path: str = ""
    status: int = 0  # 0: no error answer (only `delay` and/or `malformed`)
    method: str | None = None
    times: int = 1
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    malformed: bool = False
    hits: int = 0

    def matches(self, method: str, path_qs: str) -> bool:
        return (
            self.times != 0
            and (self.method is None or self.method == method)
            and (not self.path or re.search(self.path, path_qs) is not None)
        )

    @classmethod
    def throttle(cls, path: str = "", retry_after: float | None = None, times: int = 1) -> Fault:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return cls(path, 429, times=times, headers=headers)

    @classmethod
    def unavailable(cls, path: str = "", status: int = 503, times: int = 1, retry_after: float | None = None) -> Fault:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return cls(path, status, times=times, headers=headers)

    @classmethod
    def licence(cls, path: str = "", times: int = -1) -> Fault:
        return cls(path, 403, times=times, body=error_body(403, LICENCE_CODE, LICENCE_MESSAGE))

    @classmethod
    def permission(cls, path: str = "", times: int = -1) -> Fault:
        return cls(path, 403, times=times)

    @classmethod
    def not_found(cls, path: str = "", times: int = -1) -> Fault:
        return cls(path, 404, times=times)

    @classmethod
    def slow(cls, path: str = "", seconds: float = 5.0, times: int = 1) -> Fault:
        return cls(path, 0, times=times, delay=seconds)

    @classmethod
    def malformed_json(cls, path: str = "", times: int = -1) -> Fault:
        return cls(path, 0, times=times, malformed=True)


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    host: str
    authorized: bool
    tenant: str | None


@dataclass
class TenantState:
    """One tenant's directory as the stand-in serves it."""

    tenant_id: str
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> user payload
    registration: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> userRegistrationDetails
    methods: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # id -> authentication methods
    member_of: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # id -> groups / directoryRoles
    ca_policies: list[dict[str, Any]] = field(default_factory=list)
    security_defaults: bool = False
    skus: list[dict[str, Any]] = field(default_factory=lambda: payloads.premium_skus("P1"))
    # a lazy registration list for big tenants: (count, item(index) -> payload); used instead of `registration`
    synthetic_registration: tuple[int, Callable[[int], dict[str, Any]]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def premium(self) -> bool:
        plans = {p["servicePlanName"] for s in self.skus for p in s.get("servicePlans", [])}
        return bool(plans & {"AAD_PREMIUM", "AAD_PREMIUM_P2"})

    def add_user(
        self,
        upn: str,
        *,
        methods: list[dict[str, Any]] | None = None,
        registered: list[str] | None = None,
        is_admin: bool = False,
        roles: list[dict[str, Any]] | None = None,
        groups: list[dict[str, Any]] | None = None,
        **user_fields: Any,
    ) -> dict[str, Any]:
        """Add a user with live methods, a registration record and memberships; returns the user payload."""
        u = payloads.user(upn, **user_fields)
        self.users[u["id"]] = u
        self.methods[u["id"]] = [payloads.password_method(), *(methods or [])]
        if registered is not None:
            self.registration[u["id"]] = payloads.registration(u, registered, is_admin=is_admin or bool(roles))
        self.member_of[u["id"]] = [*(groups or []), *(roles or [])]
        return u

    def find_user(self, key: str) -> dict[str, Any] | None:
        key = key.lower()
        if key in self.users:
            return self.users[key]
        return next((u for u in self.users.values() if u["userPrincipalName"].lower() == key), None)

    def registration_count(self) -> int:
        return self.synthetic_registration[0] if self.synthetic_registration else len(self.registration)

    def registration_slice(self, start: int, count: int) -> list[dict[str, Any]]:
        if self.synthetic_registration:
            total, item = self.synthetic_registration
            return [item(i) for i in range(start, min(start + count, total))]
        return list(self.registration.values())[start : start + count]
