"""The lock-down request as stored: a typed, versioned model checked at the storage boundary.

`RequestStore` (state.py) validates every document it reads and every one it writes against `LockdownRequest`,
so a request missing its requester, its state or its nonce is refused where it is read, not found out deep in an
approval. The four-eyes decision reads the typed fields (`requester.aad_id`, `decision`). `format` is the stored
format's version: a later change of shape bumps it and converts older documents in `from_document`.
Keys other helpers may add later are kept (extra="allow"), but every key listed here must have its type; the
shared rules of a stored record (unset keys stay absent, assignments are checked) are in `dialogs/stored.py`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from dialogs.stored import Part, check_format, document

FORMAT_VERSION = 1

State = Literal["pending", "approved", "running", "done", "partial", "failed", "rejected", "expired", "cancelled"]


class Person(Part):
    aad_id: str | None = None
    upn: str | None = None
    name: str | None = None


class Decider(Person):
    tenant_id: str | None = None


class Target(Part):
    id: str
    upn: str
    name: str
    enabled: bool | None = None
    admin_roles: list[str] = Field(default_factory=list)
    last_sign_in: str | None = None
    mfa_methods: list[str] = Field(default_factory=list)
    risk: str | None = None
    notes: list[str] = Field(default_factory=list)


class Place(Part):
    tenant_id: str | None = None
    conversation_id: str | None = None
    kind: str | None = None  # personal | channel | groupChat: where "see its card above" can point


class Decision(Part):
    verdict: Literal["approve", "reject"]
    at: str
    by: Decider
    comment: str = ""
    steps: list[str] = Field(default_factory=list)


class Runner(Part):
    owner: str
    lease_until: str | None = None


class Card(Part):
    conversation_id: str | None = None
    message_id: str | None = None


class HistoryEntry(Part):
    state: State
    at: str


class LockdownRequest(Part):
    format: int = FORMAT_VERSION
    id: str
    nonce: str
    kind: Literal["lockdown", "unlock", "remediate"]  # remediate: one step an investigation's button asks for
    state: State
    tenant_id: str
    tenant_name: str
    licence: str | None = None
    target: Target
    reason: str = ""
    requester: Person
    requested_in: Place
    offered: dict[str, bool]
    params: dict[str, str] = Field(default_factory=dict)  # what a remediation acts on (rule id, grant id)
    results: dict[str, dict[str, Any]] = Field(default_factory=dict)
    created_at: str
    updated_at: str | None = None
    expires_at: str
    password_delivery: Literal["approver_chat", "none"] = "approver_chat"
    approvals_elsewhere: bool = False
    history: list[HistoryEntry] = Field(default_factory=list)
    decision: Decision | None = None
    runner: Runner | None = None
    card: Card | None = None
    summary: dict[str, Any] | None = None

    @classmethod
    def from_document(cls, value: dict[str, Any]) -> LockdownRequest:
        """A stored document (format 1; a document without `format` is format 1 too) as the model."""
        check_format(value, FORMAT_VERSION, "lock-down request")
        return cls.model_validate(value)

    def to_document(self) -> dict[str, Any]:
        """The JSON stored, with its format: keys the document did not have stay absent (format 1 as written
        before the model existed), and a default changed in place (a list appended to) counts as set."""
        return document(self, self.format)

    def checked(self) -> dict[str, Any]:
        """The document to store, validated again (raises `pydantic.ValidationError` if a change broke it)."""
        stored = self.to_document()
        LockdownRequest.from_document(stored)
        return stored
