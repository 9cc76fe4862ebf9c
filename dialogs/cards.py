"""Small builders for Adaptive Card 1.5 dicts, so every dialog's cards share one look and stay schema-valid."""

from __future__ import annotations

import json
from typing import Any

from adapters import safe_text

CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
MAX_CARD_BYTES = 28_000  # Teams refuses message payloads above ~28 KB

ICONS = {"pass": "✅", "warn": "⚠️", "fail": "❌", "none": "⭕", "error": "❔", "info": "ℹ️"}


def card(body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A full-width Adaptive Card 1.5."""
    result: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": "1.5",
        "body": body,
        "msteams": {"width": "Full"},
    }
    if actions:
        result["actions"] = actions
    return result


def title(text: str, subtitle: str | None = None) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": text, "size": "Large", "weight": "Bolder", "wrap": True}
    ]
    if subtitle:
        blocks.append({"type": "TextBlock", "text": subtitle, "isSubtle": True, "spacing": "None", "wrap": True})
    return blocks


def text(value: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": value, "wrap": True, **style}


def facts(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    return {"type": "FactSet", "facts": [{"title": k, "value": v or "—"} for k, v in pairs]}


def execute(title_text: str, verb: str, data: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A button that sends an `adaptiveCard/action` invoke (Universal Actions). Teams clients without Universal
    Actions press its `Action.Submit` fallback instead, whose data carries the verb: the same handler, same gate."""
    action: dict[str, Any] = {"type": "Action.Execute", "title": title_text, "verb": verb, "data": data or {}}
    action.update(extra)
    submit = {"type": "Action.Submit", "title": title_text, "data": {**(data or {}), "verb": verb}}
    action.setdefault("fallback", submit)
    return action


def error_card(message: str, correlation_id: str | None = None) -> dict[str, Any]:
    body = [text("Something went wrong", weight="Bolder", color="Attention"), text(message)]
    if correlation_id:
        body.append(text(f"Correlation id: {correlation_id}", isSubtle=True, size="Small"))
    return card(body)


def inert(value: str) -> str:
    """Text someone typed, unable to form a link or code span (see `adapters.safe_text.inert`)."""
    return safe_text.inert(value)


def plain(value: str, limit: int) -> str:
    """Typed text shown back: one line, clipped, and inert (see `inert`)."""
    return safe_text.inert_line(value, limit)


def size_of(value: dict[str, Any]) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def truncate_items(items: list[Any], limit: int) -> tuple[list[Any], int]:
    """The first `limit` items and how many were left out (shown as "and N more")."""
    return items[:limit], max(len(items) - limit, 0)
