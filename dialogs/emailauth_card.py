"""The e-mail authentication report as an Adaptive Card: grade, one row per area, findings and fixes behind a
toggle, and "Check again". Findings are cut ("and N more") so the card stays under Teams' size limit.

No letter when nothing could be checked ("could not check" instead: an F there would be alarming and wrong), and
one line instead of eight rows for a domain that does not exist."""

from __future__ import annotations

from typing import Any

from adapters.emailauth.findings import quote
from adapters.emailauth.verdict import LABELS, headline, ordered_findings, unchecked_note, verdict
from dialogs import cards

RECHECK_VERB = "emailauth.recheck"
SEVERITY_ICONS = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}
GRADE_COLORS = {"A": "Good", "B": "Good", "C": "Warning", "D": "Attention", "F": "Attention"}
AREAS = ("spf", "dmarc", "dkim", "mx", "mta_sts", "tls_rpt", "bimi", "dnssec")


def report_card(report: dict[str, Any], selectors: tuple[str, ...] = ()) -> dict[str, Any]:
    """The card for one report; shrinks the findings shown until it fits."""
    for limit, text_limit in ((60, 400), (40, 300), (25, 220), (12, 160), (5, 120), (0, 0)):
        card = _build(report, selectors, limit, text_limit)
        if cards.size_of(card) < cards.MAX_CARD_BYTES - 500:
            return card
    return card


def _grade_items(report: dict[str, Any]) -> list[dict[str, Any]]:
    grade = report.get("grade")
    if grade is None:
        return [
            cards.text("Could not check", size="Large", weight="Bolder", color="Warning", horizontalAlignment="Center"),
            cards.text("no grade", isSubtle=True, spacing="None", size="Small", horizontalAlignment="Center"),
        ]
    return [
        cards.text(
            grade,
            size="ExtraLarge",
            weight="Bolder",
            color=GRADE_COLORS.get(grade, "Default"),
            horizontalAlignment="Center",
        ),
        cards.text("grade", isSubtle=True, spacing="None", size="Small", horizontalAlignment="Center"),
    ]


def _build(report: dict[str, Any], selectors: tuple[str, ...], limit: int, text_limit: int) -> dict[str, Any]:
    domain = report["domain"]
    subtitle = (
        f"Checked {report.get('checked_at', '')} · {report.get('dns_queries', 0)} DNS queries in "
        f"{report.get('duration_ms', 0)} ms"
    )
    recheck = cards.execute("Check again", RECHECK_VERB, {"domain": domain, "selectors": list(selectors)[:10]})
    if report.get("status") == "nxdomain":
        return cards.card(
            [*cards.title(f"E-mail authentication: {domain}", subtitle), cards.text(headline(report), color="Warning")],
            [recheck],
        )
    header = {
        "type": "ColumnSet",
        "columns": [
            {"type": "Column", "width": "stretch", "items": cards.title(f"E-mail authentication: {domain}", subtitle)},
            {"type": "Column", "width": "auto", "verticalContentAlignment": "Center", "items": _grade_items(report)},
        ],
    }
    rows = [_row(area, report["checks"].get(area, {"status": "error", "findings": []})) for area in AREAS]
    body: list[dict[str, Any]] = [header, *rows]
    note = unchecked_note(report)
    if note:
        body.insert(1, cards.text(note, color="Warning", size="Small"))
    details, total = _details(report, limit, text_limit)
    actions: list[dict[str, Any]] = []
    if total:
        body.append({"type": "Container", "id": "findings", "isVisible": False, "separator": True, "items": details})
        actions.append(
            {
                "type": "Action.ToggleVisibility",
                "title": f"Findings and fixes ({total})",
                "targetElements": ["findings"],
            }
        )
    actions.append(recheck)
    return cards.card(body, actions)


def _row(area: str, result: dict[str, Any]) -> dict[str, Any]:
    status = result.get("status", "error")
    return {
        "type": "ColumnSet",
        "spacing": "Small",
        "columns": [
            {"type": "Column", "width": "auto", "items": [cards.text(cards.ICONS.get(status, "❔"))]},
            {"type": "Column", "width": "80px", "items": [cards.text(LABELS[area], weight="Bolder")]},
            {"type": "Column", "width": "stretch", "items": [cards.text(verdict(area, result))]},
        ],
    }


def _details(report: dict[str, Any], limit: int, text_limit: int) -> tuple[list[dict[str, Any]], int]:
    entries = [(area, f) for area in AREAS for f in ordered_findings(report["checks"].get(area, {}))]
    entries.sort(key=lambda e: {"error": 0, "warning": 1, "info": 2}.get(str(e[1].get("severity")), 3))
    items: list[dict[str, Any]] = []
    for area, f in entries[:limit]:
        icon = SEVERITY_ICONS.get(str(f.get("severity")), "•")
        items.append(
            cards.text(f"{icon} **{LABELS[area]}** {quote(str(f.get('message', '')), text_limit)}", spacing="Small")
        )
        lines = str(f.get("fix") or "").splitlines()
        for line in lines[:8]:
            items.append(
                cards.text(
                    quote(line, text_limit) or " ", fontType="Monospace", size="Small", spacing="None", isSubtle=True
                )
            )
    hidden = len(entries) - min(limit, len(entries))
    if hidden:
        items.append(
            cards.text(
                f"… and {hidden} more. Run `python app.py check {report['domain']} --json` for the full list.",
                isSubtle=True,
                spacing="Small",
            )
        )
    return items, len(entries)
