"""Stand-in endpoints for the lock-down: PATCH users, revoke sessions, inbox rules, mail folders, risky users and
directory audits; confirm compromised and the sign-in log are `identity_protection`'s (one owner per route).

Pass `register` in `GraphStandin(extensions=[lockdown_routes.register])` (with or without
`identity_protection.register`); the data lives in `LockdownData.of(standin.state)` (`state.extra["lockdown"]`).
Write requests are recorded (`data.writes`, confirm compromised included) so tests can count them (exactly one
run) and find a reset password (which the stand-in never logs). `data.sign_ins` is a view of the tenant's one
sign-in log (`identity_protection.RiskData.sign_ins`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.graph_standin import identity_protection
from tests.support.graph_standin.server import graph_error, json_response

if TYPE_CHECKING:
    from tests.support.graph_standin.server import GraphStandin
    from tests.support.graph_standin.state import TenantState

_GUID = r"[0-9a-fA-F-]{36}"
_TIME = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"
AUDIT_FILTER = re.compile(
    rf"^activityDisplayName eq 'User registered security info' and activityDateTime ge {_TIME}"
    rf" and targetResources/any\(t: t/id eq '({_GUID})'\)$"
)
# the investigation's queries: events about the user, and events the user did (consents)
AUDIT_TARGET = re.compile(rf"^activityDateTime ge {_TIME} and targetResources/any\(t: t/id eq '({_GUID})'\)$")
AUDIT_INITIATOR = re.compile(rf"^activityDateTime ge {_TIME} and initiatedBy/user/id eq '({_GUID})'$")
WELL_KNOWN = ("inbox", "deleteditems", "junkemail", "archive", "conversationhistory")
USER_PATCH_FIELDS = {"accountEnabled", "passwordProfile"}


@dataclass
class LockdownData:
    risk: identity_protection.RiskData = field(default_factory=identity_protection.RiskData)  # shared with it
    rules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # user id -> message rules
    folders: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # user id -> name/id -> folder
    audits: list[dict[str, Any]] = field(default_factory=list)
    risky: dict[str, dict[str, Any]] = field(default_factory=dict)
    writes: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)  # (method, path, body)
    compromised: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.risk.observers.append(self._observe)

    @classmethod
    def of(cls, state: TenantState) -> LockdownData:
        data = state.extra.get("lockdown")
        if data is None:
            data = state.extra["lockdown"] = cls(risk=identity_protection.data_of(state))
        return data

    def _observe(self, method: str, path: str, body: dict[str, Any]) -> None:
        """Identity Protection accepted a risky-user action: book a confirm as one of this family's writes."""
        if path.endswith("/confirmCompromised"):
            self.writes.append((method, path, body))
            self.compromised += body["userIds"]

    @property
    def sign_ins(self) -> list[dict[str, Any]]:
        """The tenant's sign-in log (a copy: assign, or `+=`, to change it)."""
        return list(self.risk.sign_ins.values())

    @sign_ins.setter
    def sign_ins(self, rows: list[dict[str, Any]]) -> None:
        self.risk.sign_ins = {row["id"]: row for row in rows}

    def passwords(self) -> list[str]:
        return [body["passwordProfile"]["password"] for _, _, body in self.writes if body and "passwordProfile" in body]

    def add_folder(self, user_id: str, folder: dict[str, Any], well_known: str | None = None) -> dict[str, Any]:
        mine = self.folders.setdefault(user_id, {})
        mine[folder["id"]] = folder
        if well_known:
            mine[well_known] = folder
        return folder


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "@odata.type"}
    return value


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def register(router: web.UrlDispatcher, standin: GraphStandin) -> None:
    identity_protection.register(router, standin)  # confirm compromised, sign-in log (added once per router)

    def context(request: web.Request) -> tuple[TenantState, LockdownData, dict[str, Any] | None]:
        state = standin.state_for(request)
        key = request.match_info.get("key")
        return state, LockdownData.of(state), state.find_user(key) if key else None

    async def body_of(request: web.Request) -> dict[str, Any] | None:
        """The JSON body without `@odata.type` annotations (the SDK sends them; Graph accepts them)."""
        if not request.can_read_body:
            return None
        value = await request.json()
        if not isinstance(value, dict):
            raise web.HTTPBadRequest()
        return _plain(value)

    async def patch_user(request: web.Request) -> web.Response:
        state, data, user = context(request)
        if user is None:
            return graph_error(404)
        body = await body_of(request) or {}
        unknown = set(body) - USER_PATCH_FIELDS
        if unknown or not body:
            return graph_error(400, "Request_BadRequest", f"unexpected properties {sorted(unknown)}")
        if "passwordProfile" in body:
            profile = body["passwordProfile"]
            if set(profile) - {"password", "forceChangePasswordNextSignIn"} or len(profile.get("password") or "") < 8:
                return graph_error(400, "Request_BadRequest", "bad passwordProfile")
        data.writes.append(("PATCH", request.path, body))
        if "accountEnabled" in body:
            user["accountEnabled"] = bool(body["accountEnabled"])
        return web.Response(status=204)

    async def revoke(request: web.Request) -> web.Response:
        _, data, user = context(request)
        if user is None:
            return graph_error(404)
        data.writes.append(("POST", request.path, None))
        data.revoked.append(user["id"])
        return json_response({"value": True})

    async def list_rules(request: web.Request) -> web.Response:
        _, data, user = context(request)
        if user is None:
            return graph_error(404, "ErrorInvalidUser", "The requested user is invalid.")
        rules = data.rules.get(user["id"], [])
        return standin.page(request, len(rules), lambda start, size: rules[start : start + size])

    async def patch_rule(request: web.Request) -> web.Response:
        _, data, user = context(request)
        rule = (
            next((r for r in data.rules.get(user["id"], []) if r["id"] == request.match_info["rule"]), None)
            if user
            else None
        )
        if rule is None:
            return graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        body = await body_of(request) or {}
        if set(body) - {"isEnabled"}:
            return graph_error(400, "ErrorInvalidRequest", "Cordon only switches rules off")
        data.writes.append(("PATCH", request.path, body))
        rule["isEnabled"] = bool(body.get("isEnabled"))
        return json_response(rule)

    async def get_folder(request: web.Request) -> web.Response:
        _, data, user = context(request)
        if user is None:
            return graph_error(404)
        folder = data.folders.get(user["id"], {}).get(request.match_info["folder"])
        if folder is None:
            return graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return json_response(folder)

    async def risky_user(request: web.Request) -> web.Response:
        _, data, _ = context(request)
        item = data.risky.get(request.match_info["id"].lower())
        return json_response(item) if item else graph_error(404)

    async def audits(request: web.Request) -> web.Response:
        _, data, _ = context(request)
        text = request.query.get("$filter", "")
        by_initiator = AUDIT_INITIATOR.match(text)
        match = AUDIT_FILTER.match(text) or AUDIT_TARGET.match(text) or by_initiator
        if match is None:
            return graph_error(400, "Request_UnsupportedQuery", "Invalid filter clause")
        since, user_id = _time(match.group(1)), match.group(2)
        activity = "User registered security info" if AUDIT_FILTER.match(text) else None

        def about(a: dict[str, Any]) -> bool:
            if by_initiator:
                return ((a.get("initiatedBy") or {}).get("user") or {}).get("id") == user_id
            return any(t["id"] == user_id for t in a["targetResources"])

        items = [
            a
            for a in data.audits
            if _time(a["activityDateTime"]) >= since
            and about(a)
            and (activity is None or a["activityDisplayName"] == activity)
        ]
        return standin.page(request, len(items), lambda start, size: items[start : start + size])

    router.add_patch("/v1.0/users/{key}", patch_user)
    router.add_post("/v1.0/users/{key}/revokeSignInSessions", revoke)
    router.add_get("/v1.0/users/{key}/mailFolders/inbox/messageRules", list_rules)
    router.add_patch("/v1.0/users/{key}/mailFolders/inbox/messageRules/{rule}", patch_rule)
    router.add_get("/v1.0/users/{key}/mailFolders/{folder}", get_folder)
    router.add_get("/v1.0/identityProtection/riskyUsers/{id}", risky_user)
    router.add_get("/v1.0/auditLogs/directoryAudits", audits)
