"""What every typed, versioned stored record shares (the lock-down request, the alert card).

A record is a pydantic model in code and JSON only where it is read or written. Keys a document did not have stay
absent when it is written back, so the stored format does not change with the model; keys no model lists are kept
(extra="allow"), so a document written by a later Cordon survives a write by this one; a value set in code is
checked when it is set (validate_assignment).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Part(BaseModel):
    model_config = ConfigDict(extra="allow", validate_assignment=True)


def check_format(value: dict[str, Any], version: int, what: str) -> None:
    """Refuse a stored document written in another format than this Cordon reads (no `format`: format 1)."""
    stored = value.get("format", 1)
    if stored != version:
        raise ValueError(f"{what} {value.get('id')!r} is stored in format {stored}, this Cordon reads format {version}")


def document(model: BaseModel, version: int) -> dict[str, Any]:
    """The model's JSON as stored: only the keys it was given or changed (`exclude_unset`, after `_settle`), and
    `format` last whether the document had it or not (so a rewrite never reorders the JSON)."""
    _settle(model)
    stored = model.model_dump(mode="json", exclude_unset=True, exclude={"format"})
    stored["format"] = version
    return stored


def _settle(model: BaseModel) -> None:
    """Count as set every field whose value is no longer its default (e.g. `history.append(...)` on a record
    read without a history), so `exclude_unset` never drops what a change wrote."""
    fields_set = model.model_fields_set
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if name not in fields_set and value != info.get_default(call_default_factory=True):
            fields_set.add(name)
        parts = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
        for part in parts:
            if isinstance(part, BaseModel):
                _settle(part)
