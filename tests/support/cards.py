"""Adaptive Card validation against the AC 1.5 schema vendored in tests/vendor/adaptive-cards (MIT, Microsoft)."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from dialogs.cards import MAX_CARD_BYTES, size_of

CARD_SCHEMA = Path(__file__).resolve().parents[1] / "vendor" / "adaptive-cards" / "adaptive-card-1.5.schema.json"


@functools.cache
def _validator() -> Any:
    import jsonschema

    schema = json.loads(CARD_SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


def _strip_msteams(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_msteams(v) for k, v in value.items() if k != "msteams"}
    if isinstance(value, list):
        return [_strip_msteams(v) for v in value]
    return value


def assert_valid_card(card: dict[str, Any]) -> None:
    """The card validates against AC 1.5 (with Teams' `msteams` removed) and is under Teams' size limit."""
    assert size_of(card) < MAX_CARD_BYTES, f"card is {size_of(card)} bytes, over {MAX_CARD_BYTES}"
    import jsonschema.exceptions

    candidate = _strip_msteams(copy.deepcopy(card))
    error = jsonschema.exceptions.best_match(_validator().iter_errors(candidate))
    assert error is None, f"card is not valid AC 1.5: {error.message} at {list(error.absolute_path)}"
    assert candidate.get("type") == "AdaptiveCard" and candidate.get("version") == "1.5"
