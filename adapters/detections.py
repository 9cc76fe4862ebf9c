"""What an alert is about: a risk detection (or a risky user's change) in plain, storable form.

Shared vocabulary between the Graph adapter (which turns msgraph models into `Detection`s) and the alert dialogs
(storage, cards, storm control work on these plain values, so pending alerts survive a restart as JSON). It lives
below both, so `adapters/` never imports `dialogs/`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, fields
from typing import Any

LEVELS = ("low", "medium", "high")
DEFAULT_LEVEL = "medium"
_RANK = {"low": 1, "medium": 2, "high": 3, "hidden": 3}  # "hidden": Graph withholds the level; never drop it
# An admin decided these are nothing to act on. "remediated" is not among them: it is also what a sign-in becomes
# when whoever signed in passed MFA under a risk policy, which an adversary-in-the-middle attacker does.
QUIET_STATES = frozenset({"dismissed", "confirmedSafe"})


def rank(level: str | None) -> int:
    return _RANK.get((level or "").strip(), 0)


def meets(level: str | None, threshold: str) -> bool:
    """A detection reaches a subscription when its level is at least the subscription's threshold."""
    return rank(level) >= _RANK[threshold] > 0


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Detection:
    """One thing to alert on. `id` is Graph's detection id (risky-user changes use "user:<id>@<time>")."""

    id: str
    tenant_id: str
    user_id: str
    upn: str | None
    user_name: str | None
    risk_level: str
    event_type: str
    risk_state: str | None
    detected_at: str  # ISO UTC
    ip: str | None = None
    city: str | None = None
    country: str | None = None
    request_id: str | None = None
    correlation_id: str | None = None
    app: str | None = None  # from the sign-in, when enrichment worked
    kind: str = "detection"  # "detection" | "user"

    @property
    def detected(self) -> dt.datetime:
        return parse_time(self.detected_at) or dt.datetime.min.replace(tzinfo=dt.UTC)

    @property
    def user_label(self) -> str:
        return self.upn or self.user_name or self.user_id

    @property
    def place(self) -> str | None:
        parts = [p for p in (self.city, self.country) if p]
        return ", ".join(parts) or None

    @property
    def quiet(self) -> bool:
        """Already dismissed, remediated or confirmed safe: nothing for a technician to do."""
        return (self.risk_state or "") in QUIET_STATES or rank(self.risk_level) == 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Detection:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
