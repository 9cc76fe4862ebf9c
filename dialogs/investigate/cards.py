"""The `investigate` and `hunt` cards: a verdict, the evidence, and buttons that act on it.

Everything here is drawn from plain report data; text an attacker controls (rule names, app names, cities) is
shortened and cannot form links. Buttons carry only a server-side reference (`refs`) and an item key. The card
stays under `CARD_BUDGET` bytes (Teams refuses cards over 28 KB): the timeline is cut first, then the lists.
"""

from __future__ import annotations

from typing import Any

from dialogs import cards
from dialogs.investigate.analysis import iso
from dialogs.investigate.hunt import Hunt
from dialogs.investigate.report import Report
from dialogs.lockdown.cards import safe, when

CARD_BUDGET = 26_000
ICONS = {"high": "🔴", "medium": "🟠", "low": "🟡", "info": "ℹ️"}
VERBS = {
    "lockdown": "investigate.lockdown",
    "rule": "investigate.disable_rule",
    "consent": "investigate.revoke",
    "scan": "investigate.scan",
    "hunt": "investigate.hunt",
    "investigate": "investigate.user",
}
MAX_FINDINGS, MAX_TIMELINE, MAX_ITEMS, MAX_ACCOUNTS = 12, 15, 6, 10


def _stamp(value: Any) -> str:
    return when(iso(value)) if value is not None else "—"


def _button(title: str, kind: str, ref: dict[str, str], item: str = "", **extra: Any) -> dict[str, Any]:
    return cards.execute(title, VERBS[kind], {**ref, "item": item} if item else dict(ref), **extra)


def _verdict_color(verdict: str) -> str:
    return "Attention" if verdict.startswith("likely") else "Warning" if verdict.startswith("suspicious") else "Good"


def investigation_card(
    report: Report, ref: dict[str, str], *, timeline: int = MAX_TIMELINE, items: int = MAX_ITEMS
) -> dict[str, Any]:
    """The investigation card; shrinks itself until it fits the budget."""
    card = _investigation(report, ref, timeline, items)
    while cards.size_of(card) > CARD_BUDGET and (timeline > 0 or items > 1):
        timeline, items = (max(timeline - 5, 0), items) if timeline > 0 else (timeline, items - 1)
        card = _investigation(report, ref, timeline, items)
    return card


def _investigation(report: Report, ref: dict[str, str], timeline: int, items: int) -> dict[str, Any]:
    data = report.to_json()
    signins = data["sign_ins"]
    body: list[dict[str, Any]] = cards.title(
        f"Investigation: {safe(report.name or report.upn, 80)} ({safe(report.upn, 120)})",
        f"{safe(report.tenant.name, 60)} · {when(data['window']['from'])} → {when(data['window']['to'])}",
    )
    body.append(cards.text(f"**Verdict:** {safe(report.verdict, 600)}", color=_verdict_color(report.verdict)))
    countries = ", ".join(
        f"{safe(c['country'], 40)} {c['count']}" + (" 🆕" if c["new"] else "") for c in signins["countries"][:items]
    )
    ips = ", ".join(
        f"{safe(i['ip'], 45)} ({safe(i['country'], 20)}) {i['count']}" + (" 🆕" if i["new"] else "")
        for i in signins["ips"][:items]
    )
    apps = ", ".join(
        f"{safe(a['app'], 40)} {a['count']}" + (" 🆕" if a["new"] else "") for a in signins["apps"][:items]
    )
    body.append(
        cards.facts(
            [
                (
                    "Sign-ins",
                    f"{signins['total']} ({signins['failures']} failed)"
                    + (" — first 50,000 only" if signins["truncated"] else ""),
                ),
                ("Countries", countries or "—"),
                ("IPs", ips or "—"),
                ("Apps", apps or "—"),
                ("Legacy clients", safe(", ".join(signins["legacy_clients"]), 200) or "none"),
                ("Risky sign-ins", str(signins["risky"])),
                ("Baseline", f"{signins['baseline_total']} sign-ins in the 30 days before"),
            ]
        )
    )
    body += _findings(report, items)
    if timeline:
        rows = report.timeline()
        shown, more = cards.truncate_items(rows, timeline)
        body.append(cards.text("**Timeline** (newest first)", spacing="Medium"))
        for at, severity, what in shown:
            body.append(
                cards.text(f"{_stamp(at)} {ICONS.get(severity, '')} {safe(what, 220)}", size="Small", spacing="None")
            )
        if more:
            body.append(
                cards.text(
                    f"and {more} earlier event(s) (`investigate --json` lists them all)",
                    size="Small",
                    isSubtle=True,
                    spacing="None",
                )
            )
    body += _acting_rows(report, ref, items)
    body += _devices(report, items)
    for gap in data["not_read"]:
        body.append(
            cards.text(f"Not read — {safe(gap['part'], 40)}: {safe(gap['reason'], 300)}", size="Small", color="Warning")
        )
    actions = [_button("Lock down…", "lockdown", ref, style="destructive")]
    if any(d.windows for d in report.devices):
        actions.append(_button("Scan devices", "scan", ref))
    if report.suspicious_ips():
        actions.append(_button("Hunt from here", "hunt", ref))
    return cards.card(body, actions)


def _findings(report: Report, items: int) -> list[dict[str, Any]]:
    if not report.findings:
        return [cards.text("No findings.", spacing="Medium")]
    body = [cards.text("**Findings**", spacing="Medium")]
    shown, more = cards.truncate_items(report.findings, max(items * 2, MAX_FINDINGS) if items >= MAX_ITEMS else items)
    for f in shown:
        at = f" ({_stamp(f.at)})" if f.at else ""
        body.append(cards.text(f"{ICONS[f.severity]} {safe(f.message, 300)}{at}", size="Small", spacing="None"))
    if more:
        body.append(cards.text(f"and {more} more", size="Small", isSubtle=True, spacing="None"))
    return body


def _acting_rows(report: Report, ref: dict[str, str], items: int) -> list[dict[str, Any]]:
    """Suspicious rules and consents, each with the button that asks an approver to undo it."""
    body: list[dict[str, Any]] = []
    data = report.to_json()
    flagged = [(i, r) for i, r in enumerate(data["inbox_rules"]) if (r["suspicious"] or r["review"]) and r["enabled"]]
    for index, rule in flagged[:items]:
        why = "; ".join(rule["suspicious"] or rule["review"])
        body.append(
            {
                "type": "Container",
                "spacing": "Small",
                "items": [
                    cards.text(
                        f"📥 Rule “{safe(rule['name'], 80)}”: {safe(rule['does'], 200)} — {safe(why, 200)}",
                        size="Small",
                    ),
                    {"type": "ActionSet", "actions": [_button("Disable this rule", "rule", ref, f"rule:{index}")]},
                ],
            }
        )
    for index, grant in enumerate(data["consents"][:items]):
        body.append(
            {
                "type": "Container",
                "spacing": "Small",
                "items": [
                    cards.text(
                        f"🔑 Consent: {safe(grant['app'], 80)} — {safe(grant['scope'], 200) or '(no scope)'} "
                        f"({safe(grant['consent_type'], 20)})",
                        size="Small",
                    ),
                    {
                        "type": "ActionSet",
                        "actions": [_button("Revoke this consent", "consent", ref, f"grant:{index}")],
                    },
                ],
            }
        )
    if body:
        body.insert(0, cards.text("**To act on** (each button asks an approver first)", spacing="Medium"))
    return body


def _devices(report: Report, items: int) -> list[dict[str, Any]]:
    if not report.devices:
        return []
    rows = [cards.text("**Managed devices**", spacing="Medium")]
    for d in report.devices[:items]:
        scan = (
            (f"quick scan {_stamp(d.last_quick_scan)}" if d.last_quick_scan else "no quick scan seen")
            if d.windows
            else "not Windows (no Defender scan)"
        )
        action = f", last scan request {safe(d.scan_action, 20)}" if d.scan_action else ""
        rows.append(
            cards.text(
                f"💻 {safe(d.name, 60)} — {safe(d.os, 20)} {safe(d.os_version, 20)}, "
                f"{safe(d.compliance, 20)}, synced {_stamp(d.last_sync)}, {scan}{action}",
                size="Small",
                spacing="None",
            )
        )
    return rows


def hunt_card(result: Hunt, ref: dict[str, str]) -> dict[str, Any]:
    """The hunt's accounts, strongest evidence first, each with Investigate / Lock down… (`account:i`)."""
    data = result.to_json()
    seeds = ", ".join(safe(ip, 45) for ip in result.seed_ips[:10]) or "none"
    body: list[dict[str, Any]] = cards.title(
        f"Hunt in {safe(result.tenant.name, 60)}",
        f"{when(data['window']['from'])} → {when(data['window']['to'])}"
        + (f" · from {safe(result.seed_user, 120)}" if result.seed_user else ""),
    )
    found = data["accounts"]
    headline = f"{len(found)} other account(s) with evidence" if found else "No other account shows evidence"
    body.append(
        cards.text(
            f"**{headline}** — {data['checked']:,} account(s) checked in the "
            f"{data['sign_ins_read']:,} sign-ins from these IPs or rated risky (filtered by Graph)",
            color="Attention" if found else "Good",
        )
    )
    body.append(cards.text(f"Seed IPs: {seeds}", size="Small", isSubtle=True))
    for index, account in enumerate(found[:MAX_ACCOUNTS]):
        reasons = "; ".join(safe(r, 120) for r in account["reasons"][:4])
        body.append(
            {
                "type": "Container",
                "separator": True,
                "items": [
                    cards.text(
                        f"**{safe(account['user'], 120)}** — last seen {when(account['last_seen'])}", size="Small"
                    ),
                    cards.text(reasons, size="Small", spacing="None"),
                    {
                        "type": "ActionSet",
                        "actions": [
                            _button("Investigate", "investigate", ref, f"account:{index}"),
                            _button("Lock down…", "lockdown", ref, f"account:{index}", style="destructive"),
                        ],
                    },
                ],
            }
        )
    if len(found) > MAX_ACCOUNTS:
        body.append(
            cards.text(
                f"and {len(found) - MAX_ACCOUNTS} more (`hunt --json` lists them all)", size="Small", isSubtle=True
            )
        )
    for gap in data["not_read"]:
        body.append(
            cards.text(f"Not read — {safe(gap['part'], 40)}: {safe(gap['reason'], 300)}", size="Small", color="Warning")
        )
    for cut in data["cut_short"][:6]:
        body.append(
            cards.text(
                f"Cut short — {safe(cut['part'], 80)}: {safe(cut['reason'], 300)}", size="Small", color="Warning"
            )
        )
    return cards.card(body)
