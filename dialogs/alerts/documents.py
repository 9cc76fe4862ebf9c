"""The alert card as stored (`alerts/card/<id>`): a typed, versioned model checked where it is written and read.

A button press decides from this record (which conversation the card belongs to, whether it was confirmed or
dismissed, the lock-down it asked for), so a malformed one is refused where it is read. `format` is the stored
format's version; keys added later are kept (extra="allow") until they get a line here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

FORMAT_VERSION = 1


class AlertCard(BaseModel):
    model_config = ConfigDict(extra="allow")

    format: int = FORMAT_VERSION
    id: str
    tenant_id: str
    tenant_name: str
    conversation_id: str
    message_id: str | None = None
    user_id: str
    upn: str | None = None
    user_name: str | None = None
    posted_at: str
    count: int = 1
    ids: list[str] = Field(default_factory=list)
    latest: dict[str, Any]  # a Detection's JSON (adapters.detections)
    recent: list[dict[str, Any]] = Field(default_factory=list)
    events: list[dict[str, Any]] = Field(default_factory=list)
    confirmed: dict[str, Any] | None = None
    dismissed: dict[str, Any] | None = None
    lockdown: dict[str, Any] | None = None

    @classmethod
    def from_document(cls, value: dict[str, Any]) -> AlertCard:
        version = value.get("format", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ValueError(
                f"alert card {value.get('id')!r} is stored in format {version}, this Cordon reads "
                f"format {FORMAT_VERSION}"
            )
        return cls.model_validate(value)

    def to_document(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json", exclude_unset=True), "format": self.format}


def checked_card(value: dict[str, Any]) -> dict[str, Any]:
    """The card document in its stored form after validation (raises `pydantic.ValidationError` if malformed)."""
    return AlertCard.from_document(value).to_document()
