"""What each Graph call needs (application permission, directory role, licence), in one table.

A refused call is explained from its `Need`, so a technician reads "grant UserAuthenticationMethod.Read.All"
instead of "403". The README's permissions table is printed from `NEEDS` (`python app.py permissions`),
so the code and the documentation cannot drift. Other dialog families add their own `Need` constants here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Need:
    """The least-privilege requirements of one Graph operation."""

    what: str  # "read the user's authentication methods" — completes "Cordon could not ..."
    permission: str  # least-privileged application permission
    role: str | None = None  # directory role the app also needs (only for some targets, see `role_when`)
    role_when: str | None = None
    licence: str | None = None  # "P1" / "P2": Entra ID licence the tenant needs; "Intune": Microsoft Intune
    missing: str = "item"  # what a 404 means: "no such <missing> in <tenant>"
    endpoint: str = ""  # for the README table
    tenant_wide: bool = False  # a read of the whole tenant: its 404 means `missing` is absent, never a user


def tenant_wide(need: Need, missing: str) -> Need:
    """The same permissions for a tenant-wide read of the same kind: a 404 there is not "no such user"."""
    return replace(need, missing=missing, tenant_wide=True)


# --- issue 4: tenants, roles, MFA -----------------------------------------------------------------------------
USER = Need("read the user", "User.Read.All", missing="user", endpoint="GET /users/{id}")
SIGN_IN_ACTIVITY = Need(
    "read the user's last sign-in",
    "AuditLog.Read.All",
    licence="P1",
    missing="user",
    endpoint="GET /users/{id}?$select=signInActivity",
)
REGISTRATION = Need(
    "read the MFA registration report",
    "AuditLog.Read.All",
    licence="P1",
    missing="user",
    endpoint="GET /reports/authenticationMethods/userRegistrationDetails",
)
METHODS = Need(
    "read the user's authentication methods",
    "UserAuthenticationMethod.Read.All",
    missing="user",
    endpoint="GET /users/{id}/authentication/methods",
)
CA_POLICIES = Need(
    "read Conditional Access policies",
    "Policy.Read.All",
    missing="Conditional Access policies",
    tenant_wide=True,
    endpoint="GET /identity/conditionalAccess/policies",
)
SECURITY_DEFAULTS = Need(
    "read the security defaults policy",
    "Policy.Read.All",
    missing="security defaults policy",
    tenant_wide=True,
    endpoint="GET /policies/identitySecurityDefaultsEnforcementPolicy",
)
# directory roles come back with their roleTemplateId only with RoleManagement.Read.Directory
MEMBERSHIP = Need(
    "read the user's group and role memberships",
    "GroupMember.Read.All and RoleManagement.Read.Directory",
    missing="user",
    endpoint="GET /users/{id}/transitiveMemberOf",
)
ROLES = Need(
    "read directory role assignments",
    "RoleManagement.Read.Directory",
    missing="user",
    endpoint="GET /users/{id}/transitiveMemberOf (directory roles)",
)
GROUP_CHECK = Need(
    "check group membership for Cordon roles",
    "GroupMember.Read.All",
    missing="user",
    endpoint="POST /users/{id}/checkMemberGroups",
)
SKUS = Need(
    "read the tenant's licences",
    "LicenseAssignment.Read.All",
    missing="licence list",
    tenant_wide=True,
    endpoint="GET /subscribedSkus",
)
# the tenant-wide reads of `mfa report` (same permissions as their per-user kin, not in the README table twice)
REGISTRATION_REPORT = tenant_wide(REGISTRATION, "MFA registration report")
DIRECTORY_ROLES = tenant_wide(ROLES, "directory roles")
ROLE_MEMBERS = tenant_wide(ROLES, "directory role")
GROUP_MEMBERS = tenant_wide(MEMBERSHIP, "role-assignable group")

# --- issue 5: lock-down ------------------------------------------------------------------------------------------
DISABLE_USER = Need(
    "block the user's sign-in",
    "User.EnableDisableAccount.All",
    missing="user",
    role="Privileged Authentication Administrator",
    role_when="the target holds an admin role",
    endpoint="PATCH /users/{id} accountEnabled",
)
REVOKE_SESSIONS = Need(
    "revoke the user's sessions",
    "User.RevokeSessions.All",
    missing="user",
    role="Privileged Authentication Administrator",
    role_when="the target holds an admin role",
    endpoint="POST /users/{id}/revokeSignInSessions",
)
INBOX_RULES = Need(
    "read or change the user's inbox rules",
    "MailboxSettings.ReadWrite",
    missing="mailbox",
    endpoint="GET/PATCH /users/{id}/mailFolders/inbox/messageRules",
)
RESET_PASSWORD = Need(
    "reset the user's password",
    "User-PasswordProfile.ReadWrite.All",
    missing="user",
    role="Authentication Administrator (Privileged Authentication Administrator for admins)",
    role_when="the target is anyone (Graph needs a role to reset passwords)",
    endpoint="PATCH /users/{id} passwordProfile",
)
SIGN_INS = Need("read sign-in logs", "AuditLog.Read.All", licence="P1", endpoint="GET /auditLogs/signIns")
DIRECTORY_AUDIT = Need("read the directory audit log", "AuditLog.Read.All", endpoint="GET /auditLogs/directoryAudits")

# --- issue 6: risk alerts ----------------------------------------------------------------------------------------
RISK_DETECTIONS = Need(
    "read risk detections",
    "IdentityRiskEvent.Read.All",
    licence="P2",
    endpoint="GET /identityProtection/riskDetections",
)
RISKY_USERS = Need(
    "read or change risky users",
    "IdentityRiskyUser.ReadWrite.All",
    licence="P2",
    missing="user",
    endpoint="GET /identityProtection/riskyUsers, POST confirmCompromised / dismiss",
)

# --- issue 12: investigate and hunt ------------------------------------------------------------------------------
USER_SIGN_INS = Need(
    "read the user's sign-in logs",
    "AuditLog.Read.All",
    licence="P1",
    endpoint="GET /auditLogs/signIns?$filter=userId eq …",
)
TENANT_SIGN_INS = Need(
    "read the tenant's sign-in logs",
    "AuditLog.Read.All",
    licence="P1",
    endpoint="GET /auditLogs/signIns?$filter=createdDateTime ge …",
)
USER_AUDITS = Need(
    "read the directory audit log about the user", "AuditLog.Read.All", endpoint="GET /auditLogs/directoryAudits"
)
GRANTS = Need(
    "read the user's OAuth consents",
    "DelegatedPermissionGrant.Read.All",
    missing="user",
    endpoint="GET /users/{id}/oauth2PermissionGrants",
)
APP_NAMES = Need("read app names", "Application.Read.All", missing="app", endpoint="GET /servicePrincipals/{id}")
REVOKE_GRANT = Need(
    "revoke an OAuth consent",
    "DelegatedPermissionGrant.ReadWrite.All",
    missing="consent",
    endpoint="DELETE /oauth2PermissionGrants/{id}",
)
DEVICES = Need(
    "read the user's Intune managed devices",
    "DeviceManagementManagedDevices.Read.All",
    licence="Intune",
    missing="user",
    endpoint="GET /users/{id}/managedDevices",
)
DEVICE_PROTECTION = Need(
    "read a device's Defender state",
    "DeviceManagementManagedDevices.Read.All",
    licence="Intune",
    missing="device",
    endpoint="GET /deviceManagement/managedDevices/{id}/windowsProtectionState",
)
DEVICE_SCAN = Need(
    "start a Defender scan on a managed device",
    "DeviceManagementManagedDevices.PrivilegedOperations.All",
    licence="Intune",
    missing="device",
    endpoint="POST /deviceManagement/managedDevices/{id}/windowsDefenderScan",
)

NEEDS: tuple[Need, ...] = (
    USER,
    SIGN_IN_ACTIVITY,
    REGISTRATION,
    METHODS,
    CA_POLICIES,
    SECURITY_DEFAULTS,
    MEMBERSHIP,
    ROLES,
    GROUP_CHECK,
    SKUS,
    DISABLE_USER,
    REVOKE_SESSIONS,
    INBOX_RULES,
    RESET_PASSWORD,
    SIGN_INS,
    DIRECTORY_AUDIT,
    RISK_DETECTIONS,
    RISKY_USERS,
    USER_SIGN_INS,
    TENANT_SIGN_INS,
    USER_AUDITS,
    GRANTS,
    APP_NAMES,
    REVOKE_GRANT,
    DEVICES,
    DEVICE_PROTECTION,
    DEVICE_SCAN,
)


def markdown_table() -> str:
    """The README's permissions table."""
    rows = ["| Operation | Endpoint | Application permission | Directory role | Licence |", "|---|---|---|---|---|"]
    for need in NEEDS:
        role = f"{need.role} — when {need.role_when}" if need.role else "—"
        rows.append(f"| {need.what} | `{need.endpoint}` | {need.permission} | {role} | {need.licence or '—'} |")
    return "\n".join(rows)


def add_arguments(name: str, parser: object) -> None:
    """`python app.py permissions` prints the table; `--grant --tenant T [--dry-run]` assigns the permissions."""
    from adapters.graph.grant import add_grant_arguments

    add_grant_arguments(parser)  # type: ignore[arg-type]


def run(name: str, args: object, wiring: object = None) -> int:
    if getattr(args, "grant", False):
        from adapters.graph.grant import run_from_args

        return run_from_args(args)  # type: ignore[arg-type]
    print(markdown_table())
    return 0
