"""The lock-down card at every stage, drawn from the stored request alone (never from what a card sent back).

One `render(request, now)` for all stages (pending, running, done/partial/failed, rejected, expired, cancelled), so
a card redrawn after a restart or by another process looks the same. Text that an attacker may control (rule
names, display names, reasons) is shortened and cannot form markdown links.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from adapters.graph.containment import EXCHANGE_ADMIN_MAILBOXES
from dialogs import cards
from dialogs.lockdown import state
from dialogs.lockdown.model import LockdownRequest, Person
from dialogs.lockdown.steps import FAILED, NOT_RUN, OK, RESET_NOT_SHOWN, STARTED, STEPS

APPROVE_VERB = "lockdown.approve"
REJECT_VERB = "lockdown.reject"
TOP = 5  # rows per group in the sign-in summary
MAX_RULES = 10
RULES_BUDGET = 9_000  # bytes of rule rows on one card

HEADLINES = {
    state.PENDING: ("Waiting for an approver", "Accent"),
    state.APPROVED: ("Approved — starting", "Accent"),
    state.RUNNING: ("Running", "Accent"),
    state.DONE: ("Done — every step succeeded", "Good"),
    state.PARTIAL: ("Partly done — some steps did not succeed", "Warning"),
    state.FAILED: ("Failed — no step succeeded", "Attention"),
    state.REJECTED: ("Rejected — nothing was changed", "Default"),
    state.EXPIRED: ("Expired — nothing was changed", "Default"),
    state.CANCELLED: ("Cancelled by the requester — nothing was changed", "Default"),
}
STATUS_ICONS = {OK: "✅", FAILED: "❌", NOT_RUN: "⏭️", STARTED: "⏳"}


def safe(value: Any, limit: int = 200) -> str:
    """Untrusted text for a TextBlock: shortened, and unable to make a markdown link or image."""
    text = " ".join(str(value or "").split())
    text = text.replace("](", "] (").replace("![", "! [")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def when(value: str | None) -> str:
    if not value:
        return "—"
    return state.parse_iso(value).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def who(person: Person | None) -> str:
    """ "Name (upn)", or whichever of them is known."""
    person = person or Person()
    name, upn = person.name, person.upn
    label = f"{name} ({upn})" if name and upn else name or upn or person.aad_id or "someone"
    return safe(label, 160)


def _target_facts(request: LockdownRequest) -> list[dict[str, Any]]:
    t = request.target
    enabled = {True: "yes", False: "no (sign-in blocked)", None: "unknown"}[t.enabled]
    body = [
        cards.facts(
            [
                ("User", safe(t.name, 120)),
                ("UPN", safe(t.upn, 120)),
                ("Tenant", safe(request.tenant_name, 80)),
                ("Enabled", enabled),
                ("Admin roles", safe(", ".join(t.admin_roles) or "none", 300)),
                ("Last sign-in", when(t.last_sign_in) if t.last_sign_in else "unknown"),
                ("MFA methods", safe(", ".join(t.mfa_methods) or "unknown", 300)),
                ("Risk state", safe(t.risk or "not available", 120)),
            ]
        )
    ]
    for note in t.notes[:4]:
        body.append(cards.text(safe(note, 300), isSubtle=True, size="Small", spacing="None"))
    return body


def _asked(request: LockdownRequest) -> dict[str, Any]:
    reason = safe(request.reason, 300) or "(no reason given)"
    return cards.text(f"Asked by **{who(request.requester)}** at {when(request.created_at)} — {reason}")


def _warnings(request: LockdownRequest) -> list[dict[str, Any]]:
    out = []
    if request.target.admin_roles:
        out.append(
            cards.text(
                "⚠️ This user holds admin roles. Graph lets Cordon disable, sign out or reset an admin only when the "
                "app itself holds the Privileged Authentication Administrator role in that tenant; otherwise those "
                "steps will fail with a 403.",
                color="Warning",
            )
        )
    return out


def _pending_inputs(request: LockdownRequest, now: dt.datetime) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = [cards.text("**Planned steps** (the approver may change them)", spacing="Medium")]
    for key, default in request.offered.items():
        spec = STEPS[key]
        body.append(
            {
                "type": "Input.Toggle",
                "id": f"step_{key}",
                "title": spec.title,
                "value": "true" if default else "false",
                "valueOn": "true",
                "valueOff": "false",
            }
        )
        note = RESET_NOT_SHOWN if key == "reset_password" and request.password_delivery == "none" else spec.note
        body.append(cards.text(note, isSubtle=True, size="Small", spacing="None"))
    body.append(
        {
            "type": "Input.Text",
            "id": "comment",
            "placeholder": "Comment (optional; shown on the card)",
            "maxLength": 300,
            "isMultiline": False,
        }
    )
    left = max(int((state.parse_iso(request.expires_at) - now).total_seconds() // 60), 0)
    body.append(
        cards.text(
            f"Expires at {when(request.expires_at)} (in {left} min). Only Cordon approvers may "
            "decide; the requester may not approve their own request.",
            isSubtle=True,
            size="Small",
        )
    )
    return body


def _decision(request: LockdownRequest) -> list[dict[str, Any]]:
    decision = request.decision
    if not decision:
        return []
    verb = "Approved" if decision.verdict == "approve" else "Rejected"
    line = f"{verb} by **{who(decision.by)}** at {when(decision.at)}"
    if decision.comment:
        line += f" — “{safe(decision.comment, 300)}”"
    return [cards.text(line, spacing="Medium")]


def _steps(request: LockdownRequest) -> list[dict[str, Any]]:
    chosen = request.decision.steps if request.decision else []
    results = request.results
    body: list[dict[str, Any]] = [cards.text("**Steps**", spacing="Medium")]
    for key in request.offered:
        spec = STEPS[key]
        if key not in chosen:
            body.append(cards.text(f"➖ {spec.title}: skipped — not chosen by the approver", spacing="Small"))
            continue
        result = results.get(key) or {}
        status = str(result.get("status"))
        icon = STATUS_ICONS.get(status, "🕒")
        label = {OK: "done", FAILED: "failed", NOT_RUN: "not run", STARTED: "running…"}.get(status, "waiting")
        body.append(cards.text(f"{icon} **{spec.title}**: {label}", spacing="Small"))
        if result.get("detail"):
            body.append(cards.text(safe(result["detail"], 500), size="Small", spacing="None", isSubtle=True))
        body += _rules(result.get("data") or {})
    return body


def _rules(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Rule rows, the disabled first, within `RULES_BUDGET` bytes: names, conditions and addresses are the
    attacker's own text (emoji are 4 bytes each), and a card over Teams' limit would never show the results."""
    rows = []
    used = 0
    for label, entries in (
        ("Disabled", data.get("disabled")),
        ("Could not disable", data.get("failed")),
        ("Left as they were", data.get("others")),
    ):
        entries = entries or []
        shown = 0
        for e in entries[:MAX_RULES]:
            why = f" — {safe(e['why'], 200)}" if e.get("why") else ""
            row = cards.text(
                f"{label}: “{safe(e['name'], 80)}”: {safe(e['does'], 200)}{why}", size="Small", spacing="None"
            )
            used += cards.size_of(row)
            if used > RULES_BUDGET:
                break
            rows.append(row)
            shown += 1
        if len(entries) > shown:
            rows.append(cards.text(f"{label}: and {len(entries) - shown} more", size="Small", spacing="None"))
    return rows


def _groups(title: str, rows: list[list[Any]]) -> str:
    shown, more = cards.truncate_items(rows, TOP)
    parts = [f"{safe(k, 60)} {n}" + (f" ({f} failed)" if f else "") for k, n, f in shown]
    return f"{title}: " + ", ".join(parts) + (f", and {more} more" if more else "")


def _summary(request: LockdownRequest) -> list[dict[str, Any]]:
    summary = request.summary
    if not summary:
        return []
    body = [cards.text("**Investigation (last 7 days)**", spacing="Medium")]
    signins = summary.get("sign_ins")
    if signins:
        head = f"Sign-ins: {signins['total']}, {signins['failures']} failed" + (
            " (first 5,000 only)" if signins.get("truncated") else ""
        )
        body.append(cards.text(head, size="Small"))
        for title, key in (("By country", "by_country"), ("By IP", "by_ip"), ("By app", "by_app")):
            if signins.get(key):
                body.append(cards.text(_groups(title, signins[key]), size="Small", spacing="None"))
    elif summary.get("sign_ins_error"):
        body.append(cards.text(f"Sign-ins: {safe(summary['sign_ins_error'], 300)}", size="Small"))
    registered = summary.get("registered")
    if registered is not None:
        if registered:
            shown, more = cards.truncate_items(registered, TOP)
            items = "; ".join(
                f"{when(e.get('at'))} {safe(e.get('what'), 80)}" + (f" from {safe(e['ip'], 45)}" if e.get("ip") else "")
                for e in shown
            )
            body.append(
                cards.text(
                    f"⚠️ Security info registered: {items}" + (f"; and {more} more" if more else ""),
                    size="Small",
                    color="Warning",
                )
            )
        else:
            body.append(cards.text("Security info registered: none", size="Small"))
    elif summary.get("registered_error"):
        body.append(cards.text(f"Security info registered: {safe(summary['registered_error'], 300)}", size="Small"))
    if summary.get("rules_error"):
        body.append(cards.text(f"Inbox rules: {safe(summary['rules_error'], 300)}", size="Small"))
    elif summary.get("rules") is not None:
        body.append(cards.text(f"Inbox rules found: {len(summary['rules'])}", size="Small"))
        body += _rules({"others": summary["rules"]})
    roles = request.target.admin_roles
    body.append(cards.text(f"Admin: {'yes — ' + safe(', '.join(roles), 200) if roles else 'no'}", size="Small"))
    body.append(
        cards.text(
            f"Mailbox-level forwarding cannot be read through Graph: check it in Exchange admin "
            f"({EXCHANGE_ADMIN_MAILBOXES}).",
            size="Small",
            isSubtle=True,
        )
    )
    return body


def render(request: LockdownRequest, now: dt.datetime) -> dict[str, Any]:
    """The card for the request's current stored state."""
    current: str = request.state
    if state.is_expired(request, now):
        current = state.EXPIRED
    kind = {"unlock": "Unlock", "remediate": "Remediation"}.get(request.kind, "Lock-down")
    headline, color = HEADLINES[current]
    body: list[dict[str, Any]] = cards.title(f"{kind}: {safe(request.target.upn, 120)}", f"Request {request.id}")
    body.append(cards.text(headline, weight="Bolder", color=color))
    body += _target_facts(request)
    body.append(_asked(request))
    body += _warnings(request)
    actions = None
    if current == state.PENDING:
        body += _pending_inputs(request, now)
        data = {"request_id": request.id, "nonce": request.nonce}
        actions = [
            cards.execute("Approve", APPROVE_VERB, dict(data), style="positive"),
            cards.execute("Reject", REJECT_VERB, dict(data), style="destructive"),
        ]
    elif current == state.EXPIRED:
        body.append(
            cards.text(
                f"Expired at {when(request.expires_at)}: nobody decided in time. Type "
                f"`{request.kind} {safe(request.target.upn, 120)}` to ask again.",
                spacing="Medium",
            )
        )
    elif current == state.CANCELLED:
        body.append(
            cards.text(f"Cancelled by {who(request.requester)} at {when(request.updated_at)}.", spacing="Medium")
        )
    else:
        body += _decision(request)
        if current not in (state.REJECTED,):
            body += _steps(request)
            body += _summary(request)
    return cards.card(body, actions)
