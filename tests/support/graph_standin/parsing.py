"""`assert_parses`: a stand-in payload must deserialise into the msgraph-sdk model with nothing left over.

kiota puts every JSON key it does not know into `additional_data`; a payload with a misspelt or invented field
would still "work" against a lenient client. Checking that `additional_data` is empty everywhere, recursively,
keeps the stand-in true to Microsoft's schema.
"""

from __future__ import annotations

import json
from typing import Any


def parse(payload: dict[str, Any], model: type) -> Any:
    """Deserialise `payload` with kiota's JSON parse node into `model` (discriminators honoured)."""
    from kiota_serialization_json.json_parse_node import JsonParseNode

    node = JsonParseNode(json.loads(json.dumps(payload)))
    return node.get_object_value(model)


def leftovers(value: Any, path: str = "$") -> list[str]:
    """Paths of every non-empty `additional_data` in a parsed model tree."""
    from kiota_abstractions.serialization import Parsable

    found: list[str] = []
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found += leftovers(item, f"{path}[{i}]")
    elif isinstance(value, Parsable):
        extra = getattr(value, "additional_data", None) or {}
        found += [f"{path}.{key}" for key in extra]
        for name, item in vars(value).items():
            if name not in ("additional_data", "backing_store") and item is not None:
                found += leftovers(item, f"{path}.{name}")
    return found


def assert_parses(payload: dict[str, Any], model: type) -> Any:
    """Parse `payload` into `model` and fail with the unknown keys' paths if anything was not recognised."""
    parsed = parse(payload, model)
    assert parsed is not None, f"{model.__name__}: payload did not parse"
    extra = leftovers(parsed)
    assert not extra, f"{model.__name__}: keys the msgraph-sdk model does not know: {extra}"
    return parsed
