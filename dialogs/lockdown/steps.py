"""The containment steps: what each one is, its default, whether it may be repeated, and how to run it.

A step's outcome is a plain dict stored in the request (`status`: ok / failed / not_run, `detail`, optional
`data`), so the card can be redrawn from storage at any time. Steps that set a state (block sign-in, revoke,
disable rules, confirm compromised) are safe to repeat after a crash; resetting a password is not (a second reset
would make a different password than the one that may already have been delivered).
"""

from __future__ import annotations

import logging
import secrets
import string
from dataclasses import dataclass
from typing import Any

from adapters.graph.containment import EXCHANGE_ADMIN_MAILBOXES, Containment
from adapters.graph.errors import GraphProblem
from dialogs.contract import Reply, Services
from dialogs.lockdown import rules
from dialogs.lockdown.model import LockdownRequest
from dialogs.lockdown.runtime import runtime

log = logging.getLogger(__name__)

OK, FAILED, NOT_RUN, STARTED = "ok", "failed", "not_run", "started"
FINISHED = frozenset({OK, FAILED, NOT_RUN})


@dataclass(frozen=True)
class StepSpec:
    key: str
    title: str
    note: str  # shown under the checkbox on the approval card
    repeatable: bool  # safe to run again if a crash left it started but not recorded


STEPS: dict[str, StepSpec] = {
    s.key: s
    for s in (
        StepSpec("block_sign_in", "Block sign-in", "Sets accountEnabled = false.", True),
        StepSpec(
            "revoke_sessions",
            "Revoke sessions",
            "Signs the user out everywhere; access tokens already issued live up to ~1 hour.",
            True,
        ),
        StepSpec(
            "inbox_rules",
            "Disable suspicious inbox rules",
            "Turns off (never deletes) rules forwarding outside the tenant or hiding mail wholesale.",
            True,
        ),
        StepSpec(
            "confirm_compromised",
            "Confirm compromised (Identity Protection)",
            "Marks the user high risk so risk-based Conditional Access applies.",
            True,
        ),
        StepSpec(
            "reset_password",
            "Reset password",
            "Sets a random temporary password the user must change; only the approver sees it, in a 1:1 chat.",
            False,
        ),
        StepSpec("enable_sign_in", "Re-enable sign-in", "Sets accountEnabled = true.", True),
        StepSpec(
            "scan_devices",
            "Scan the user's managed devices",
            "Starts a Microsoft Defender quick scan on each of the user's Intune-managed Windows devices.",
            True,
        ),
        StepSpec(
            "disable_rule", "Disable this inbox rule", "Turns the rule off (never deletes it: it is evidence).", True
        ),
        StepSpec(
            "revoke_consent",
            "Revoke this OAuth consent",
            "Deletes the app's delegated permission grant: it can no longer act in the user's name.",
            True,
        ),
    )
}

# the reset's note when `lockdown.password_delivery = "none"` (the request remembers the setting it was asked under)
RESET_NOT_SHOWN = (
    "Sets a random temporary password the user must change; by configuration nobody is shown it "
    "(set one in the Entra admin center to hand it over)."
)

REMEDIATIONS = frozenset({"scan_devices", "disable_rule", "revoke_consent"})  # dialogs/lockdown/remediation.py
LOCKDOWN_STEPS = ("block_sign_in", "revoke_sessions", "inbox_rules", "confirm_compromised", "reset_password")
UNLOCK_STEPS = ("enable_sign_in",)


def offered_steps(kind: str, licence: str | None, windows_devices: int = 0) -> dict[str, bool]:
    """The steps the card offers, in running order, with their default (confirm compromised needs P2; the device
    scan is offered, and on, when the user has Intune-managed Windows devices)."""
    if kind == "unlock":
        return {"enable_sign_in": True}
    offered = {"block_sign_in": True, "revoke_sessions": True, "inbox_rules": True}
    if licence == "P2":
        offered["confirm_compromised"] = True
    if windows_devices:
        offered["scan_devices"] = True
    offered["reset_password"] = False
    return offered


def chosen_steps(offered: dict[str, bool], inputs: dict[str, Any]) -> list[str]:
    """The approver's choice from the card's toggles, limited to the stored offer (unknown keys are ignored)."""
    chosen = []
    for key, default in offered.items():
        value = inputs.get(f"step_{key}")
        on = default if value is None else str(value).strip().lower() == "true"
        if on:
            chosen.append(key)
    return chosen


def temporary_password(length: int = 20) -> str:
    """A strong random password meeting Entra's complexity rules (all four character classes)."""
    classes = (string.ascii_uppercase, string.ascii_lowercase, string.digits, "!@#$%^&*-_=+?")
    alphabet = "".join(classes)
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(c in cls for c in candidate) for cls in classes):
            return candidate


def not_run(reason: str) -> dict[str, Any]:
    return {"status": NOT_RUN, "detail": reason}


async def execute(
    key: str, request: LockdownRequest, graph: Containment, services: Services, domains: list[str]
) -> dict[str, Any]:
    """Run one step; Graph refusals become a failed outcome that names what is missing."""
    user_id = request.target.id
    try:
        if key in ("block_sign_in", "enable_sign_in"):
            await graph.set_sign_in(user_id, enabled=key == "enable_sign_in")
            return {"status": OK, "detail": "Sign-in re-enabled." if key == "enable_sign_in" else "Sign-in blocked."}
        if key == "revoke_sessions":
            await graph.revoke_sessions(user_id)
            return {
                "status": OK,
                "detail": "Sessions revoked. Access tokens already issued stay valid for up to ~1 hour.",
            }
        if key == "inbox_rules":
            return await _inbox_rules(graph, user_id, domains)
        if key == "confirm_compromised":
            await graph.confirm_compromised(user_id)
            return {"status": OK, "detail": "Confirmed compromised: user risk is now high."}
        if key == "reset_password":
            return await _reset_password(graph, request, services)
        if key in REMEDIATIONS:
            from dialogs.lockdown.remediation import execute as remediate

            return await remediate(key, request, graph)
    except GraphProblem as problem:
        return {"status": FAILED, "detail": problem.user_message}
    raise ValueError(f"unknown lock-down step {key!r}")


async def _inbox_rules(graph: Containment, user_id: str, domains: list[str]) -> dict[str, Any]:
    found = await graph.inbox_rules(user_id)
    disabled, failed, others = [], [], []
    for verdict in (rules.assess(rule, domains) for rule in found):
        entry = {"name": verdict.rule.name, "does": rules.describe(verdict.rule)}
        if verdict.disable and verdict.rule.enabled:
            entry["why"] = "; ".join(verdict.disable)
            try:
                await graph.disable_rule(user_id, verdict.rule.id)
                disabled.append(entry)
            except GraphProblem as problem:
                failed.append({**entry, "error": problem.user_message})
        else:
            if verdict.disable:
                entry["why"] = "already disabled; " + "; ".join(verdict.disable)
            elif verdict.review:
                entry["why"] = "check: " + "; ".join(verdict.review)
            others.append(entry)
    detail = (
        f"{len(found)} rule(s): disabled {len(disabled)}"
        + (f", could not disable {len(failed)}" if failed else "")
        + f", {len(others)} left as they were. "
        f"Mailbox forwarding (ForwardingSmtpAddress) has no Graph API: check it in Exchange admin "
        f"({EXCHANGE_ADMIN_MAILBOXES})."
    )
    if failed:
        detail += " " + failed[0]["error"]
    return {
        "status": FAILED if failed else OK,
        "detail": detail,
        "data": {"disabled": disabled, "failed": failed, "others": others},
    }


async def _reset_password(graph: Containment, request: LockdownRequest, services: Services) -> dict[str, Any]:
    """Reset, then hand the password to the approver privately (or to no one); it is never stored or logged."""
    password = temporary_password()
    await graph.reset_password(request.target.id, password)
    target = request.target.upn
    if services.config.lockdown.password_delivery == "none":
        return {
            "status": OK,
            "detail": "Password reset (not shown to anyone, by configuration); the user must "
            "change it at next sign-in. Set a new one in the Entra admin center to hand it over.",
        }
    if request.decision is None:
        raise ValueError(f"lock-down {request.id} resets a password without a decision")
    approver = request.decision.by
    message = Reply(
        text=f"Temporary password for **{target}** (lock-down {request.id}): `{password}`\n\n"
        "The user must change it at next sign-in. Hand it over by phone or in person; do not paste it "
        "into a channel."
    )
    delivered = False
    outbox = runtime(services).outboxes.get(request.id)  # the console has no messenger, only the turn's outbox
    if approver.aad_id and (services.messenger is not None or outbox is not None):
        try:
            if services.messenger is not None:
                await services.messenger.send_private(approver.tenant_id or "", approver.aad_id, message)
            else:
                await outbox.send_private(approver.aad_id, message)  # type: ignore[union-attr]
            delivered = True
        except Exception as exc:  # noqa: BLE001 - the reset happened; say the delivery failed, never the password
            log.warning("could not deliver a temporary password for lock-down %s: %s", request.id, type(exc).__name__)
    del password, message
    if delivered:
        return {
            "status": OK,
            "detail": f"Password reset; the temporary password was sent to "
            f"{approver.upn or approver.name or 'the approver'} in a 1:1 chat. The user must "
            "change it at next sign-in.",
        }
    return {
        "status": OK,
        "detail": "Password reset, but the temporary password could not be sent to the approver "
        "(nobody has it): set a new one in the Entra admin center to hand it over.",
    }
