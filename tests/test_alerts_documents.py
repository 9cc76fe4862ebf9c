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
