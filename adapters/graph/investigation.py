"""What the lock-down card shows about the target, before and after: who they are, and what happened lately.

`profile` feeds the approval card (name, UPN, enabled, admin roles, last sign-in, MFA methods, risk state when
licensed). `sign_ins` and `registered_methods` feed the investigation summary. A part that Graph refuses
(licence, permission) becomes a note on the card instead of failing the whole look-up.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.config import TenantConfig
from adapters.graph import permissions as needs
from adapters.graph.errors import GraphProblem
from adapters.graph.gateway import GraphGateway
from adapters.graph.inputs import odata_string
from adapters.graph.permissions import Need

MAX_SIGN_IN_PAGES = 5  # 5 x 999 sign-ins a week is plenty to see a pattern; more is marked as truncated
REGISTERED_SECURITY_INFO = "User registered security info"

METHOD_NAMES = {
    "#microsoft.graph.passwordAuthenticationMethod": "password",
    "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod": "Microsoft Authenticator",
    "#microsoft.graph.phoneAuthenticationMethod": "phone (SMS/voice)",
    "#microsoft.graph.fido2AuthenticationMethod": "FIDO2 security key / passkey",
    "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod": "Windows Hello for Business",
    "#microsoft.graph.softwareOathAuthenticationMethod": "authenticator app (TOTP)",
    "#microsoft.graph.hardwareOathAuthenticationMethod": "hardware token (TOTP)",
    "#microsoft.graph.emailAuthenticationMethod": "e-mail",
    "#microsoft.graph.temporaryAccessPassAuthenticationMethod": "Temporary Access Pass",
    "#microsoft.graph.platformCredentialAuthenticationMethod": "platform credential (macOS)",
    "#microsoft.graph.x509CertificateAuthenticationMethod": "certificate",
}


@dataclass
class Profile:
    """The target as the approval card shows it; `notes` say what could not be read and why."""

    id: str
    upn: str
    name: str
    enabled: bool | None
    admin_roles: list[str] = field(default_factory=list)
    last_sign_in: str | None = None
    mfa_methods: list[str] = field(default_factory=list)
    risk: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class SignInSummary:
    total: int = 0
    failures: int = 0
    by_country: list[tuple[str, int, int]] = field(default_factory=list)  # (key, sign-ins, failures), busiest first
    by_ip: list[tuple[str, int, int]] = field(default_factory=list)
    by_app: list[tuple[str, int, int]] = field(default_factory=list)
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: [list(row) for row in v] if isinstance(v, list) else v for k, v in vars(self).items()}


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds") if value else None


def _odata_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _grouped(counter: Counter[str], failed: Counter[str]) -> list[tuple[str, int, int]]:
    return [(key, n, failed[key]) for key, n in counter.most_common()]


class Investigation:
    """Read-only look-ups about one user of one tenant."""

    def __init__(self, gateway: GraphGateway, tenant: TenantConfig) -> None:
        self.gateway = gateway
        self.tenant = tenant

    def _call(self, need: Need, operation: Callable[[Any], Awaitable[Any]]) -> Awaitable[Any]:
        return self.gateway.call(self.tenant, need, operation)

    async def profile(self, user_key: str, *, licence: str | None) -> Profile:
        """Raises GraphProblem(not_found) for an unknown user; other parts degrade to notes."""
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        select = ["id", "displayName", "userPrincipalName", "accountEnabled"]
        premium = licence in ("P1", "P2")
        if premium:
            select.append("signInActivity")

        def config(fields: list[str]) -> Any:
            from kiota_abstractions.base_request_configuration import RequestConfiguration

            query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=fields)
            return RequestConfiguration(query_parameters=query)

        notes: list[str] = []
        try:
            user = await self._call(
                needs.SIGN_IN_ACTIVITY if premium else needs.USER,
                lambda c: c.users.by_user_id(user_key).get(config(select)),
            )
        except GraphProblem as problem:
            if not premium or problem.kind not in ("licence", "permission"):
                raise
            notes.append(f"Last sign-in: {problem.user_message}")
            user = await self._call(needs.USER, lambda c: c.users.by_user_id(user_key).get(config(select[:-1])))
        activity = getattr(user, "sign_in_activity", None)
        profile = Profile(
            id=user.id,
            upn=user.user_principal_name or user_key,
            name=user.display_name or "",
            enabled=user.account_enabled,
            last_sign_in=_iso(activity.last_sign_in_date_time) if activity else None,
            notes=notes,
        )
        if not premium:
            profile.notes.append("Last sign-in needs Microsoft Entra ID P1.")
        await self._roles(profile)
        await self._methods(profile)
        if licence == "P2":
            await self._risk(profile)
        else:
            profile.notes.append("Risk state needs Microsoft Entra ID P2.")
        return profile

    async def _roles(self, profile: Profile) -> None:
        """Directory roles held directly or through a role-assignable group (transitive membership)."""
        from msgraph.generated.models.directory_role import DirectoryRole

        roles: list[str] = []
        try:
            page = await self._call(needs.ROLES, lambda c: c.users.by_user_id(profile.id).transitive_member_of.get())
            while page is not None:
                roles += [r.display_name or r.id or "?" for r in page.value or [] if isinstance(r, DirectoryRole)]
                link = page.odata_next_link
                if not link:
                    break

                def next_roles(c: Any, link: str = link) -> Any:
                    return c.users.by_user_id(profile.id).transitive_member_of.with_url(link).get()

                page = await self._call(needs.ROLES, next_roles)
        except GraphProblem as problem:
            profile.notes.append(f"Admin roles: {problem.user_message}")
            return
        profile.admin_roles = sorted(set(roles))

    async def _methods(self, profile: Profile) -> None:
        try:
            page = await self._call(
                needs.METHODS, lambda c: c.users.by_user_id(profile.id).authentication.methods.get()
            )
        except GraphProblem as problem:
            profile.notes.append(f"MFA methods: {problem.user_message}")
            return
        names = [
            METHOD_NAMES.get(m.odata_type or "", (m.odata_type or "unknown").rsplit(".", 1)[-1])
            for m in page.value or []
        ]
        profile.mfa_methods = sorted(set(names) - {"password"}) or ["none (password only)"]

    async def _risk(self, profile: Profile) -> None:
        try:
            item = await self._call(
                needs.RISKY_USERS, lambda c: c.identity_protection.risky_users.by_risky_user_id(profile.id).get()
            )
        except GraphProblem as problem:
            if problem.kind == "not_found":
                profile.risk = "none (no risk record)"
            else:
                profile.notes.append(f"Risk state: {problem.user_message}")
            return
        level = getattr(item.risk_level, "value", None) or "unknown"
        state = getattr(item.risk_state, "value", None) or "unknown"
        profile.risk = f"{level} ({state})"

    async def sign_ins(self, user_id: str, since: dt.datetime) -> SignInSummary:
        """Sign-ins since `since`, grouped by country, IP and app with failure counts (needs P1)."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.audit_logs.sign_ins.sign_ins_request_builder import SignInsRequestBuilder

        query = SignInsRequestBuilder.SignInsRequestBuilderGetQueryParameters(
            filter=f"userId eq {odata_string(user_id)} and createdDateTime ge {_odata_time(since)}", top=999
        )
        page = await self._call(
            needs.SIGN_INS, lambda c: c.audit_logs.sign_ins.get(RequestConfiguration(query_parameters=query))
        )
        summary = SignInSummary()
        countries: Counter[str] = Counter()
        ips: Counter[str] = Counter()
        apps: Counter[str] = Counter()
        failed: dict[str, Counter[str]] = {"c": Counter(), "i": Counter(), "a": Counter()}
        pages = 1
        while page is not None:
            for s in page.value or []:
                location = s.location
                country = (location.country_or_region if location else None) or "unknown"
                ip, app = s.ip_address or "unknown", s.app_display_name or s.app_id or "unknown"
                countries[country] += 1
                ips[ip] += 1
                apps[app] += 1
                summary.total += 1
                if s.status is not None and s.status.error_code not in (None, 0):
                    summary.failures += 1
                    failed["c"][country] += 1
                    failed["i"][ip] += 1
                    failed["a"][app] += 1
            link = page.odata_next_link
            if not link:
                break
            if pages >= MAX_SIGN_IN_PAGES:
                summary.truncated = True
                break
            pages += 1

            def next_sign_ins(c: Any, link: str = link) -> Any:
                return c.audit_logs.sign_ins.with_url(link).get()

            page = await self._call(needs.SIGN_INS, next_sign_ins)
        summary.by_country = _grouped(countries, failed["c"])
        summary.by_ip = _grouped(ips, failed["i"])
        summary.by_app = _grouped(apps, failed["a"])
        return summary

    async def registered_methods(self, user_id: str, since: dt.datetime) -> list[dict[str, str | None]]:
        """ "User registered security info" audit events for this user since `since` (newest first)."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.audit_logs.directory_audits.directory_audits_request_builder import (
            DirectoryAuditsRequestBuilder,
        )

        query = DirectoryAuditsRequestBuilder.DirectoryAuditsRequestBuilderGetQueryParameters(
            filter=(
                f"activityDisplayName eq {odata_string(REGISTERED_SECURITY_INFO)} and activityDateTime ge "
                f"{_odata_time(since)} and targetResources/any(t: t/id eq {odata_string(user_id)})"
            )
        )
        page = await self._call(
            needs.DIRECTORY_AUDIT,
            lambda c: c.audit_logs.directory_audits.get(RequestConfiguration(query_parameters=query)),
        )
        events = []
        for event in (page.value if page else None) or []:
            details = {kv.key: kv.value for kv in event.additional_details or [] if kv.key}
            initiator = event.initiated_by.user if event.initiated_by and event.initiated_by.user else None
            events.append(
                {
                    "at": _iso(event.activity_date_time),
                    "what": event.result_reason or details.get("Method") or event.activity_display_name,
                    "by": initiator.user_principal_name if initiator else None,
                    "ip": initiator.ip_address if initiator else None,
                }
            )
        return sorted(events, key=lambda e: e["at"] or "", reverse=True)
