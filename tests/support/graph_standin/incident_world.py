"""The phished-user story as Graph would show it, for the investigate/hunt tests.

Alice works from Paris (198.51.100.10). Thirty minutes after her last Paris sign-in the attacker signs in as her
from a VPN in Stockholm (203.0.113.66, an anonymised IP), adds an authenticator 3 hours later, consents to a mail
app and creates a rule forwarding her mail outside. Bob, phished by the mail sent from Alice's mailbox, signs in
from the same IP the next day. Carol only works from Lyon; Dave's password is sprayed from the attacker's IP, in vain.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from tests.support.graph_standin import identity_protection, lockdown_payloads, payloads
from tests.support.graph_standin import incident_payloads as ip
from tests.support.graph_standin.incident_routes import IncidentData
from tests.support.graph_standin.lockdown_routes import LockdownData
from tests.support.graph_standin.server import GraphStandin

NOW = dt.datetime(2026, 11, 27, 22, 0, tzinfo=dt.UTC)
HOME_IP, VPN_IP, LYON_IP = "198.51.100.10", "203.0.113.66", "198.51.100.77"
FOREIGN_HOURS_AGO = 40


@dataclass
class World:
    people: dict[str, dict[str, Any]]
    incident: IncidentData
    lockdown: LockdownData
    rule_id: str
    grant_id: str
    laptop_id: str


def build(standin: GraphStandin, now: dt.datetime = NOW) -> World:
    state = standin.state
    state.skus = payloads.premium_skus("P2")
    people = {
        name: state.add_user(
            f"{name}@contoso.com",
            registered=["microsoftAuthenticatorPush"],
            methods=[payloads.authenticator_method("Pixel 8", now - dt.timedelta(days=300))],
        )
        for name in ("alice", "bob", "carol", "dave")
    }
    alice, bob, carol, dave = (people[n] for n in ("alice", "bob", "carol", "dave"))
    incident = IncidentData.of(state)
    lockdown = LockdownData.of(state)
    risk = identity_protection.data_of(state)
    rows: list[dict[str, Any]] = []
    for day in range(1, 38):  # baseline and window: everyone's ordinary days
        at = now - dt.timedelta(days=day, hours=-1)
        rows.append(ip.sign_in(alice, at, ip=HOME_IP, place="paris"))
        rows.append(ip.sign_in(alice, at + dt.timedelta(hours=2), ip=HOME_IP, place="paris", app="Microsoft Teams"))
        rows.append(ip.sign_in(bob, at, ip=HOME_IP, place="paris"))
        rows.append(ip.sign_in(carol, at, ip=LYON_IP, place="lyon"))
        rows.append(ip.sign_in(dave, at, ip=HOME_IP, place="paris"))
    foreign_at = now - dt.timedelta(hours=FOREIGN_HOURS_AGO)
    last_paris = foreign_at - dt.timedelta(minutes=30)
    rows.append(ip.sign_in(alice, last_paris, ip=HOME_IP, place="paris"))
    rows.append(
        ip.sign_in(
            alice,
            foreign_at,
            ip=VPN_IP,
            place="stockholm",
            app="OfficeHome",
            risk_level="medium",
            risk_state="atRisk",
            risk_events=["anonymizedIPAddress"],
        )
    )
    rows.append(
        ip.sign_in(
            alice,
            foreign_at + dt.timedelta(hours=1),
            ip=VPN_IP,
            place="stockholm",
            client="IMAP4",
            app="Office 365 Exchange Online",
        )
    )
    rows.append(ip.sign_in(bob, foreign_at + dt.timedelta(hours=20), ip=VPN_IP, place="stockholm", app="OfficeHome"))
    for minute in range(3):
        rows.append(
            ip.sign_in(
                dave, foreign_at + dt.timedelta(hours=5, minutes=minute), ip=VPN_IP, place="stockholm", error_code=50126
            )
        )
    risk.sign_ins = {row["id"]: row for row in rows}

    lockdown.audits = [
        ip.audit(
            "User registered security info",
            foreign_at + dt.timedelta(hours=3),
            target=alice,
            ip=VPN_IP,
            reason="User registered Authenticator App with Notification and Code",
            service="Authentication Methods",
            details={"Method": "Authenticator app"},
        ),
        ip.audit("Update user", foreign_at - dt.timedelta(days=2), target=alice, by=carol, ip=LYON_IP),
    ]
    app = ip.service_principal("Mail Sync Pro")
    lockdown.audits.append(
        ip.audit(
            "Consent to application",
            foreign_at + dt.timedelta(hours=4),
            target=app,
            by=alice,
            ip=VPN_IP,
            category="ApplicationManagement",
            target_type="ServicePrincipal",
        )
    )
    grant = incident.add_grant(alice, app, ip.grant(alice, app, "Mail.Read Mail.Send offline_access"))
    office = ip.service_principal("Microsoft Office")
    incident.add_grant(alice, office, ip.grant(alice, office, "openid profile"))
    rule = lockdown_payloads.message_rule("..", forward_to=["collect@evil-mail.example"], mark_as_read=True)
    lockdown.rules[alice["id"]] = [
        rule,
        lockdown_payloads.message_rule(
            "Newsletters", conditions={"senderContains": ["news@"]}, move_to_folder="AAMkAnews="
        ),
    ]
    laptop = incident.add_device(
        alice,
        ip.managed_device(
            alice, "LAPTOP-ALICE", synced=now - dt.timedelta(hours=3), scans=[("done", now - dt.timedelta(days=20))]
        ),
        ip.protection_state(quick=now - dt.timedelta(days=20)),
    )
    incident.add_device(alice, ip.managed_device(alice, "Alice's iPhone", os="iOS", synced=now - dt.timedelta(days=1)))
    return World(people, incident, lockdown, rule["id"], grant["id"], laptop["id"])
