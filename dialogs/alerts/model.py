"""What an alert is about: a risk detection (or a risky user's change) in plain, storable form.

The Graph adapter turns msgraph models into `Detection`s; everything after that (storage, cards, storm control)
works on these plain values, so pending alerts survive a restart as JSON.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

LEVELS = ("low", "medium", "high")
DEFAULT_LEVEL = "medium"
_RANK = {"low": 1, "medium": 2, "high": 3, "hidden": 3}  # "hidden": Graph withholds the level; never drop it
# An admin decided these are nothing to act on. "remediated" is not among them: it is also what a sign-in becomes
# when whoever signed in passed MFA under a risk policy, which an adversary-in-the-middle attacker does.
QUIET_STATES = frozenset({"dismissed", "confirmedSafe"})

EVENT_WORDS = {
    "anonymizedIPAddress": "sign-in from an anonymous IP address",
    "unfamiliarFeatures": "unfamiliar sign-in properties",
    "leakedCredentials": "leaked credentials",
    "impossibleTravel": "impossible travel",
    "mcasImpossibleTravel": "impossible travel (Defender for Cloud Apps)",
    "unlikelyTravel": "atypical travel",
    "maliciousIPAddress": "sign-in from a malicious IP address",
    "maliciousIPAddressValidCredentialsBlockedIP": "valid credentials used from a malicious IP address (blocked)",
    "malwareInfectedIPAddress": "sign-in from a malware-infected IP address",
    "suspiciousIPAddress": "sign-in from a suspicious IP address",
    "riskyIPAddress": "activity from an anonymous IP address (Defender for Cloud Apps)",
    "nationStateIP": "sign-in from a verified threat actor's IP address (nation state or cybercrime group)",
    "newCountry": "activity from an infrequent country",
    "passwordSpray": "password spray attack",
    "investigationsThreatIntelligence": "Microsoft threat intelligence flagged this account",
    "investigationsThreatIntelligenceSigninLinked": "Microsoft threat intelligence flagged this sign-in",
    "adminConfirmedUserCompromised": "an admin confirmed the user compromised",
    "mcasSuspiciousInboxManipulationRules": "suspicious inbox manipulation rules",
    "suspiciousInboxForwarding": "suspicious inbox forwarding",
    "mcasFinSuspiciousFileAccess": "mass access to sensitive files",
    "suspiciousBrowser": "suspicious browser",
    "suspiciousAPITraffic": "suspicious API traffic",
    "suspiciousSendingPatterns": "suspicious sending patterns",
    "tokenIssuerAnomaly": "token issuer anomaly",
    "anomalousToken": "anomalous token",
    "anomalousUserActivity": "anomalous user activity",
    "attackerinTheMiddle": "adversary-in-the-middle sign-in (token theft)",
    "attemptedPrtAccess": "attempt to access a primary refresh token",
    "userReportedSuspiciousActivity": "the user reported a suspicious MFA prompt",
    "generic": "additional risk detected",
    "userRiskChanged": "the user's risk level changed",
}


def plain_event(event_type: str | None) -> str:
    """"anonymizedIPAddress" -> "sign-in from an anonymous IP address"; unknown types are split into words."""
    if not event_type:
        return "risky activity"
    if event_type in EVENT_WORDS:
        return EVENT_WORDS[event_type]
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", event_type).lower()
    return words.strip() or "risky activity"


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


def channel_of(conversation_id: str) -> str:
    """Teams adds `;messageid=<thread>` to a channel's conversation id for each thread: the same channel."""
    return conversation_id.split(";messageid=", 1)[0]


def same_conversation(a: str, b: str) -> bool:
    return channel_of(a) == channel_of(b)


def entra_user_link(tenant_id: str, user_id: str) -> str:
    """The user's page in the Entra admin center, opened in the right tenant (MSP technicians have many)."""
    return (f"https://entra.microsoft.com/{tenant_id}#view/Microsoft_AAD_UsersAndTenants/"
            f"UserProfileMenuBlade/~/overview/userId/{user_id}")
