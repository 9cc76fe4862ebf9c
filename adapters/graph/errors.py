"""Graph failures turned into messages a technician can act on (`GraphProblem`).

Dialogs catch one exception type and show `user_message`; they never see kiota/httpx exceptions or stack traces.
The mapping uses the operation's `Need`, so a 403 names the permission, role or licence that is missing.
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Literal

from adapters.graph.permissions import Need

ProblemKind = Literal["licence", "permission", "not_found", "throttled", "unavailable", "bad_request", "credentials"]

NON_PREMIUM = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
DEFAULT_WAIT_SECONDS = {"throttled": 60, "unavailable": 60}


class GraphProblem(Exception):
    """A Graph call that did not succeed, explained for the person who asked.

    `kind` is one of licence / permission / not_found / throttled / unavailable / bad_request / credentials;
    `user_message` is safe to show in chat (no secrets, no tokens); `retry_after` is seconds, when known.
    """

    def __init__(
        self,
        kind: ProblemKind,
        user_message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        tenant: str | None = None,
    ) -> None:
        super().__init__(user_message)
        self.kind = kind
        self.user_message = user_message
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.tenant = tenant

    @property
    def refused(self) -> bool:
        """Graph refused (permission, licence or credentials): CLI exit code 3."""
        return self.kind in ("licence", "permission", "credentials")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def _header(headers: object, name: str) -> str | None:
    if headers is None:
        return None
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    for key in (name, name.lower()):
        value = getter(key)
        if value:
            if isinstance(value, list | set):
                return ", ".join(value)
            return str(value)
    return None


def _odata_code(exc: BaseException) -> tuple[str | None, str | None]:
    main = getattr(exc, "error", None)
    if main is not None:
        return getattr(main, "code", None), getattr(main, "message", None)
    return None, None


def licence_message(need: Need, tenant: str) -> str:
    if need.licence not in (None, "P1", "P2"):  # another product (Intune)
        return (
            f"Cordon could not {need.what} in {tenant}: this needs a Microsoft {need.licence} licence in that tenant."
        )
    level = "P2" if need.licence == "P2" else "P1 or P2"
    return f"Cordon could not {need.what} in {tenant}: this needs Microsoft Entra ID {level} in that tenant."


def permission_message(need: Need, tenant: str) -> str:
    message = (
        f"Cordon could not {need.what} in {tenant}: the app needs the application permission "
        f"**{need.permission}** with admin consent in that tenant"
    )
    if need.role:
        message += f", and the directory role **{need.role}** when {need.role_when}"
    return message + ". See the README's permissions table."


def from_status(
    status: int,
    *,
    need: Need,
    tenant: str,
    code: str | None = None,
    message: str | None = None,
    retry_after: float | None = None,
) -> GraphProblem:
    """Map an HTTP status (plus the OData error code/message) to a GraphProblem."""
    text = f"{code or ''} {message or ''}"
    if status == 403 and (NON_PREMIUM in text or "not licensed" in text.lower() or "premium" in text.lower()):
        return GraphProblem("licence", licence_message(need, tenant), status=status, code=code, tenant=tenant)
    if status in (401, 403):
        return GraphProblem("permission", permission_message(need, tenant), status=status, code=code, tenant=tenant)
    if status == 404 and need.tenant_wide:  # not a missing user: the tenant-wide resource itself is absent
        return GraphProblem(
            "unavailable",
            f"Cordon could not {need.what} in {tenant}: Microsoft Graph found no "
            f"{need.missing} there (HTTP 404{' ' + code if code else ''}). This is not about any "
            "one user.",
            status=status,
            code=code,
            tenant=tenant,
        )
    if status == 404:
        return GraphProblem(
            "not_found", f"No such {need.missing} in {tenant}.", status=status, code=code, tenant=tenant
        )
    if status == 429:
        wait = round(retry_after or DEFAULT_WAIT_SECONDS["throttled"])
        return GraphProblem(
            "throttled",
            f"Microsoft Graph is throttling requests to {tenant}; try again in {wait} s.",
            status=status,
            code=code,
            retry_after=wait,
            tenant=tenant,
        )
    if status >= 500:
        wait = round(retry_after or DEFAULT_WAIT_SECONDS["unavailable"])
        return GraphProblem(
            "unavailable",
            f"Microsoft Graph is unavailable for {tenant} (HTTP {status}); try again in {wait} s.",
            status=status,
            code=code,
            retry_after=wait,
            tenant=tenant,
        )
    detail = (message or code or "").strip()[:200]
    return GraphProblem(
        "bad_request",
        f"Graph rejected the request to {need.what} in {tenant}" + (f": {detail}" if detail else "."),
        status=status,
        code=code,
        tenant=tenant,
    )


def problem_from(exc: BaseException, *, need: Need, tenant: str) -> GraphProblem:
    """Translate whatever a Graph call raised into a GraphProblem (kiota APIError, httpx, JSON, ...)."""
    if isinstance(exc, GraphProblem):
        return exc
    import httpx
    from kiota_abstractions.api_error import APIError

    if isinstance(exc, APIError) and exc.response_status_code:
        code, message = _odata_code(exc)
        retry_after = parse_retry_after(_header(exc.response_headers, "Retry-After"))
        return from_status(
            exc.response_status_code, need=need, tenant=tenant, code=code, message=message, retry_after=retry_after
        )
    if isinstance(exc, httpx.TimeoutException):
        return GraphProblem(
            "unavailable",
            f"Microsoft Graph did not answer in time for {tenant}; try again in "
            f"{DEFAULT_WAIT_SECONDS['unavailable']} s.",
            tenant=tenant,
        )
    if isinstance(exc, httpx.TransportError):
        return GraphProblem(
            "unavailable",
            f"Cordon could not reach Microsoft Graph for {tenant}; try again in "
            f"{DEFAULT_WAIT_SECONDS['unavailable']} s.",
            tenant=tenant,
        )
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError) or (
        isinstance(exc, TypeError | ValueError) and "content" in str(exc).lower()
    ):
        return GraphProblem(
            "unavailable",
            f"Microsoft Graph sent an unreadable answer while Cordon tried to "
            f"{need.what} in {tenant}; try again later.",
            tenant=tenant,
        )
    raise exc  # a programming error: let the router's error card (with correlation id) handle it
