"""How an alert reads: event words, conversation ids, links. The detection itself is in `adapters/detections.py`."""

from __future__ import annotations

import re

from adapters.detections import (  # re-exported: the alert dialogs' vocabulary
    DEFAULT_LEVEL,
    LEVELS,
    QUIET_STATES,
    Detection,
    iso,
    meets,
    parse_time,
    rank,
)

__all__ = [
    "DEFAULT_LEVEL",
    "EVENT_WORDS",
    "LEVELS",
    "QUIET_STATES",
    "Detection",
    "channel_of",
    "entra_user_link",
    "iso",
    "meets",
    "parse_time",
    "plain_event",
    "rank",
    "same_conversation",
]

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
    """ "anonymizedIPAddress" -> "sign-in from an anonymous IP address"; unknown types are split into words."""
    if not event_type:
        return "risky activity"
    if event_type in EVENT_WORDS:
        return EVENT_WORDS[event_type]
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", event_type).lower()
    return words.strip() or "risky activity"


def channel_of(conversation_id: str) -> str:
    """Teams adds `;messageid=<thread>` to a channel's conversation id for each thread: the same channel."""
    return conversation_id.split(";messageid=", 1)[0]


def same_conversation(a: str, b: str) -> bool:
    return channel_of(a) == channel_of(b)


def entra_user_link(tenant_id: str, user_id: str) -> str:
    """The user's page in the Entra admin center, opened in the right tenant (MSP technicians have many)."""
    return (
        f"https://entra.microsoft.com/{tenant_id}#view/Microsoft_AAD_UsersAndTenants/"
        f"UserProfileMenuBlade/~/overview/userId/{user_id}"
    )
