"""The stored alert card is a typed, versioned record: written in format 1, a malformed one refused on read."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from adapters.detections import Detection
from dialogs.alerts.delivery import new_card_doc
from dialogs.alerts.documents import AlertCard, checked_card

NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def detection(n: int) -> Detection:
    return Detection(
        id=f"d{n}",
        tenant_id="t",
        user_id="u",
        upn="u@contoso.com",
        user_name="U",
        risk_level="high",
        event_type="unfamiliarFeatures",
        risk_state="atRisk",
        detected_at=f"2026-11-01T11:0{n}:00Z",
    )


def test_a_new_card_document_is_format_1_and_round_trips() -> None:
    doc = new_card_doc("20261101" + "0" * 24, "Contoso", "19:c@thread.tacv2", [detection(1), detection(2)], NOW)
    assert doc["format"] == 1 and doc["count"] == 2 and doc["ids"] == ["d1", "d2"]
    card = AlertCard.from_document(doc)
    assert card.conversation_id == "19:c@thread.tacv2" and card.confirmed is None
    assert checked_card(doc) == doc


def test_a_malformed_or_newer_card_is_refused() -> None:
    doc = new_card_doc("20261101" + "1" * 24, "Contoso", "19:c@thread.tacv2", [detection(1)], NOW)
    with pytest.raises(ValidationError):
        checked_card({**doc, "conversation_id": None})  # a press could not be matched to its conversation
    with pytest.raises(ValueError, match="format 2"):
        checked_card({**doc, "format": 2})


def test_a_stored_card_keeps_its_json_through_the_model() -> None:
    """Format 1 as stored before the model typed its parts: claims, events and keys no model lists come back the
    same JSON, key order included, after a fold of one more detection (which changes only what it must)."""
    import json

    from dialogs.alerts.delivery import add_detections

    doc = new_card_doc("20261101" + "2" * 24, "Contoso", "19:c@thread.tacv2", [detection(1)], NOW)
    doc["confirmed"] = {"by": "Ann", "at": "2026-11-01T12:01:00+00:00", "state": "done", "ticket": "INC-1"}
    doc["events"] = [{"what": "Confirmed compromised", "actor": "Ann", "at": "x", "outcome": "ok", "detail": None}]
    doc = {**{k: v for k, v in doc.items() if k != "format"}, "pinned_by": "a later Cordon", "format": 1}
    card = AlertCard.from_document(doc)
    assert card.confirmed is not None and card.confirmed.state == "done" and card.events[0].outcome == "ok"
    assert json.dumps(card.to_document()) == json.dumps(doc)
    folded = add_detections(card, [detection(2)]).to_document()
    assert folded == {
        **doc,
        "count": 2,
        "ids": ["d1", "d2"],
        "latest": folded["latest"],
        "recent": folded["recent"],
    }
    assert folded["latest"]["id"] == "d2" and card.count == 1  # folding made a new card; the one read is unchanged
    with pytest.raises(ValidationError):
        AlertCard.from_document({**doc, "confirmed": {"by": "Ann", "at": "x", "state": "approved-by-card"}})
