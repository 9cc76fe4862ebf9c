"""The alert card as stored (`alerts/card/<id>`): a typed, versioned model checked where it is written and read.

A button press decides from this record (which conversation the card belongs to, whether it was confirmed or
dismissed, the lock-down it asked for), so a malformed one is refused where it is read. `format` is the stored
format's version; keys added later are kept (extra="allow") until they get a line here. The code that posts,
folds and presses cards handles `AlertCard` objects; JSON exists only where storage is read or written (the
shared rules of a stored record are in `dialogs/stored.py`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from dialogs.stored import Part, check_format, document

FORMAT_VERSION = 1


class Claim(Part):
    """An approver's Confirm or Dismiss: `running` while Graph is called (a claim), `done` after."""

    by: str
    at: str
    state: Literal["running", "done"]


class LockdownAsked(Part):
    request_id: str
    by: str
    at: str


class Event(Part):
    """One line under "Actions taken"."""

    what: str
    actor: str
    at: str
    outcome: Literal["ok", "failed"]
    detail: str | None = None


class AlertCard(Part):
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
    events: list[Event] = Field(default_factory=list)
    confirmed: Claim | None = None
    dismissed: Claim | None = None
    lockdown: LockdownAsked | None = None

    @classmethod
    def from_document(cls, value: dict[str, Any]) -> AlertCard:
        check_format(value, FORMAT_VERSION, "alert card")
        return cls.model_validate(value)

    def to_document(self) -> dict[str, Any]:
        """The JSON stored, validated again (raises `pydantic.ValidationError` if a change broke it)."""
        stored = document(self, self.format)
        AlertCard.from_document(stored)
        return stored


def checked_card(value: dict[str, Any]) -> dict[str, Any]:
    """The card document in its stored form after validation (raises `pydantic.ValidationError` if malformed)."""
    return AlertCard.from_document(value).to_document()
