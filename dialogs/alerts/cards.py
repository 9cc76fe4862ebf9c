"""The alert card (one per user per hour, updated in place) and the storm digest card.

Buttons carry only the card id: who the user is, which tenant, and what was already done come from the card's
state in storage, never from the payload a client sends back.
"""

from __future__ import annotations

import uuid
from typing import Any

from dialogs import cards
from dialogs.alerts.documents import AlertCard
from dialogs.alerts.model import Detection, entra_user_link, parse_time, plain_event

VERB_LOCKDOWN = "alerts.lockdown"
VERB_CONFIRM = "alerts.confirm"
VERB_DISMISS = "alerts.dismiss"

_COLOUR = {"high": "Attention", "hidden": "Attention", "medium": "Warning", "low": "Default"}
EARLIER_SHOWN = 4
DIGEST_SHOWN = 25


def safe(value: Any, limit: int = 160) -> str:
    """Text from Graph or Teams (a display name is anyone's to choose): one line, short, no markdown link/image."""
    text = " ".join(str(value or "").split())
    text = text.replace("](", "] (").replace("![", "! [").replace("<", "‹").replace(">", "›")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _guid(value: str | None) -> bool:
    try:
        return str(uuid.UUID(value or "")) == (value or "").lower()
    except ValueError:
        return False


def when(value: str | None) -> str:
    moment = parse_time(value)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


STATE_NOTES = {"remediated": "remediated: MFA was passed or the password reset; check it was the user"}


def _level(det: Detection) -> str:
    level = safe(det.risk_level.capitalize()) if det.risk_level != "hidden" else "Hidden by Graph"
    state = STATE_NOTES.get(det.risk_state or "", det.risk_state)
    return f"{level} ({safe(state)})" if state else level


def _who(det: Detection) -> str:
    if det.user_name and det.upn:
        return f"{safe(det.user_name)} ({safe(det.upn)})"
    return safe(det.user_label)


def _line(det: Detection, *, user: bool = False) -> str:
    """One detection on one line (earlier detections, the digest)."""
    text = f"**{safe(det.user_label)}** — " if user else ""
    text += f"{when(det.detected_at)} — {safe(det.risk_level)} — {safe(plain_event(det.event_type))}"
    if det.ip:
        text += f" — {safe(det.ip, 64)}"
    if det.place:
        text += f" ({safe(det.place, 80)})"
    return text


def alert_card(doc: AlertCard) -> dict[str, Any]:
    """Render a stored alert card (see delivery.new_card)."""
    latest = Detection.from_json(doc.latest)
    count = doc.count
    heading = "Risky user" if latest.kind == "user" else "Risky sign-in"
    body = cards.title(f"⚠️ {heading}: {safe(latest.user_label)}", safe(doc.tenant_name or latest.tenant_id))
    body[0]["color"] = _COLOUR.get(latest.risk_level, "Default")
    pairs = [
        ("User", _who(latest)),
        ("Risk", _level(latest)),
        ("What happened", safe(plain_event(latest.event_type))),
        ("When", when(latest.detected_at)),
        ("IP address", safe(latest.ip, 64) or "—"),
        ("Location", safe(latest.place, 80) or "—"),
        ("App", safe(latest.app, 80) or "—"),
    ]
    if count > 1:
        pairs.append(("Detections", f"{count} for this user since {when(doc.posted_at)} (latest shown)"))
    body.append(cards.facts(pairs))
    others = [Detection.from_json(d) for d in doc.recent if d.get("id") != latest.id][:EARLIER_SHOWN]
    if others:
        body.append(cards.text("Other detections", weight="Bolder", spacing="Medium"))
        body += [cards.text(_line(d), size="Small", spacing="None") for d in others]
    events = doc.events
    if events:
        body.append(cards.text("Actions taken", weight="Bolder", spacing="Medium"))
        body += [
            cards.text(
                f"{'✅' if e.outcome == 'ok' else '❌'} {e.what} — {safe(e.actor)}, "
                f"{when(e.at)}" + (f": {safe(e.detail, 400)}" if e.detail else ""),
                size="Small",
                spacing="None",
            )
            for e in events[-8:]
        ]
    data = {"card": doc.id}
    actions = [cards.execute("Lock down…", VERB_LOCKDOWN, data)]
    if not any(claim is not None and claim.state == "done" for claim in (doc.confirmed, doc.dismissed)):
        actions.append(cards.execute("Confirm compromised", VERB_CONFIRM, data, style="destructive"))
        actions.append(cards.execute("Dismiss risk", VERB_DISMISS, data))
    if _guid(latest.user_id) and _guid(latest.tenant_id):  # ids from Graph go into a URL only when they are ids
        actions.append(
            {
                "type": "Action.OpenUrl",
                "title": "Open in Entra",
                "url": entra_user_link(latest.tenant_id, latest.user_id),
            }
        )
    return cards.card(body, actions)


def digest_card(digest: dict[str, Any]) -> dict[str, Any]:
    """Alerts folded by storm control: one line each, newest first."""
    items = [Detection.from_json(d) for d in digest.get("items", [])]
    count = int(digest.get("count", len(items)))
    body = cards.title(
        f"⚠️ {count} more risky sign-in alert(s)",
        f"Folded here to keep this channel readable (since {when(digest.get('started_at'))}). "
        "Type `alerts status` for the totals.",
    )
    shown, more = cards.truncate_items(list(reversed(items)), DIGEST_SHOWN)
    body += [cards.text(_line(d, user=True), size="Small", spacing="None") for d in shown]
    hidden = more + max(count - len(items), 0)
    if hidden:
        body.append(cards.text(f"and {hidden} more", isSubtle=True, size="Small"))
    return cards.card(body)
