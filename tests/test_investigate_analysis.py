"""The pure judgement of `investigate` and `hunt`: baseline, impossible travel, risk, legacy clients, audits,
rules, consents, devices, the verdict line, and the hunt's bounded accounting."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from adapters.config import parse_config
from adapters.graph.containment import InboxRule
from adapters.graph.incident import AuditEvent, Device, Grant, SignIn, audit_from, sign_in_from
from dialogs.investigate import analysis
from dialogs.investigate.analysis import Baseline, Finding
from dialogs.investigate.hunt import MAX_ACCOUNTS, Hunt, parse_ip

T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
PARIS = (48.8566, 2.3522)
LYON = (45.764, 4.8357)
STOCKHOLM = (59.3293, 18.0686)


def s(
    minutes: float,
    *,
    ip: str = "198.51.100.10",
    country: str = "FR",
    where: tuple[float, float] | None = PARIS,
    app: str = "Outlook",
    client: str = "Browser",
    ok: bool = True,
    risk: str = "none",
    events: tuple[str, ...] = (),
    user: str = "u1",
) -> SignIn:
    lat, lon = where if where else (None, None)
    return SignIn(
        at=T0 + dt.timedelta(minutes=minutes),
        ip=ip,
        country=country,
        city="",
        latitude=lat,
        longitude=lon,
        app=app,
        client=client,
        success=ok,
        error_code=0 if ok else 50126,
        risk_level=risk,
        risk_state="atRisk" if risk != "none" else "none",
        risk_events=events,
        device="",
        user_id=user,
        upn=f"{user}@contoso.com",
    )


def codes(findings: list[Finding]) -> list[str]:
    return sorted(f.code for f in findings)


def baseline(*rows: SignIn) -> Baseline:
    b = Baseline()
    for row in rows:
        b.add(row)
    return b


def test_new_countries_ips_and_apps_are_judged_against_the_users_own_baseline() -> None:
    base = baseline(s(-5000), s(-4000, app="Teams"), s(-3000, ip="192.0.2.9", country="SE", ok=False))
    window = [s(0), s(10, ip="192.0.2.9", country="SE", where=STOCKHOLM, app="OfficeHome"), s(20, app="Teams")]
    found = analysis.sign_in_findings(window, base)
    new = {f.code: f for f in found}
    # a failed attempt from Sweden in the baseline is not the user's habit: the success now is new
    assert new["signin.new_country"].ref == {"ip": "192.0.2.9", "country": "SE"}
    assert new["signin.new_ip"].ref == {"ip": "192.0.2.9"} and new["signin.new_app"].message.endswith("OfficeHome")
    assert [f.code for f in found].count("signin.new_country") == 1


def test_failed_sign_ins_are_never_new_and_a_flood_of_them_is_noted() -> None:
    window = [s(i, ip="203.0.113.5", country="NG", ok=False) for i in range(12)] + [s(100)]
    found = analysis.sign_in_findings(window, baseline(s(-100)))
    assert codes(found) == ["signin.many_failures"]


def test_impossible_travel_needs_over_900_kmh_between_two_successes() -> None:
    paris_to_stockholm = [s(0), s(30, where=STOCKHOLM, country="SE")]  # 1,545 km in 30 min
    (travel,) = analysis.impossible_travel(paris_to_stockholm)
    assert 1500 < travel.km < 1600 and travel.kmh > 3000
    assert analysis.impossible_travel([s(0), s(180, where=STOCKHOLM, country="SE")]) == []  # 515 km/h: a flight
    assert analysis.impossible_travel([s(0), s(60, where=LYON)]) == []  # 392 km in an hour: a fast train
    assert len(analysis.impossible_travel([s(0), s(0, where=LYON)])) == 1  # the same minute: counted as one
    assert analysis.impossible_travel([s(0), s(1, where=(48.0, 2.0))]) == []  # under 300 km: geolocation noise
    assert analysis.impossible_travel([s(0), s(30, where=STOCKHOLM, ok=False)]) == []  # a failure is no travel
    assert analysis.impossible_travel([s(0), s(30, where=None)]) == []  # no coordinates, no claim


def test_risky_anonymiser_and_legacy_sign_ins() -> None:
    window = [
        s(0, risk="high", events=("anonymizedIPAddress",)),
        s(5, client="IMAP4"),
        s(6, client="IMAP4"),
        s(7, client="Exchange ActiveSync", ok=False),
    ]
    found = {f.code: f for f in analysis.sign_in_findings(window, baseline(s(-100)))}
    assert found["signin.risky"].severity == "high" and found["signin.anonymiser"].severity == "high"
    assert found["signin.legacy_client"].message.endswith("IMAP4 2")  # the failed ActiveSync try is not counted


def test_audit_events_are_classified_by_what_they_mean_for_an_intruder() -> None:
    def event(activity: str) -> AuditEvent:
        return AuditEvent(T0, activity, "UserManagement", "success", "x@contoso.com", "203.0.113.1", "App", "")

    found = analysis.audit_findings(
        [
            event("User registered security info"),
            event("Consent to application"),
            event("Add member to role"),
            event("Update user"),
            event("Register device"),
        ]
    )
    assert [(f.code, f.severity) for f in found] == [
        ("audit.mfa_added", "high"),
        ("audit.consent", "high"),
        ("audit.role", "high"),
        ("audit.device", "medium"),
    ]


def test_rules_consents_and_devices() -> None:
    forward = InboxRule(id="r1", name="..", enabled=True, forward_to=("thief@evil.example",))
    internal = InboxRule(id="r2", name="boss", enabled=True, forward_to=("boss@contoso.com",))
    off = replace(forward, id="r3", enabled=False)
    rules = analysis.rule_findings([forward, internal, off], ["contoso.com"])
    assert [(f.code, f.ref["rule_id"]) for f in rules] == [("rule.suspicious", "r1")]
    consent_event = AuditEvent(
        T0, "Consent to application", "ApplicationManagement", "success", "u", "", "Mail Sync", ""
    )
    grants = [
        Grant("g1", "c1", "Mail Sync", "Mail.Read offline_access", "Principal"),
        Grant("g2", "c2", "Office", "openid profile", "Principal"),
    ]
    assert [(f.code, f.severity) for f in analysis.grant_findings(grants, [consent_event])] == [
        ("consent.new", "high"),
        ("consent.existing", "info"),
    ]
    now = T0 + dt.timedelta(days=30)
    devices = [
        Device("d1", "PC", "Windows", "10", "noncompliant", now, None, None, None),
        Device("d2", "Phone", "iOS", "17", "compliant", now, None, None, None),
        Device("d3", "PC2", "Windows", "11", "compliant", now, now - dt.timedelta(days=1), None, "done"),
    ]
    assert codes(analysis.device_findings(devices, now)) == ["device.noncompliant", "device.scan_due"]


def test_the_verdict() -> None:
    assert analysis.verdict([]) == "nothing suspicious found in the window"
    low = Finding("signin.new_ip", "low", "new IP", T0)
    assert analysis.verdict([low]) == "nothing suspicious found in the window"
    assert analysis.verdict([Finding("signin.legacy_client", "medium", "x", T0)]).startswith("suspicious:")
    story = [
        Finding("audit.mfa_added", "high", "x", T0 + dt.timedelta(hours=3)),
        Finding("rule.suspicious", "high", "x"),
        Finding("signin.new_country", "high", "x", T0, {"ip": "1", "country": "SE"}),
    ]
    assert analysis.verdict(story) == (
        "likely compromised: new country SE + MFA method added 3 h 00 min after the "
        "first foreign sign-in + suspicious inbox rule"
    )


def test_graph_rows_become_records_without_surprises() -> None:
    row = {
        "createdDateTime": "2026-11-20T08:00:00Z",
        "ipAddress": "2001:db8::1",
        "status": {"errorCode": 50126},
        "location": {"countryOrRegion": "", "geoCoordinates": {"latitude": 0.0, "longitude": 0.0}},
    }
    record = sign_in_from(row)
    assert record is not None and not record.success and record.country == "unknown" and record.latitude is None
    assert sign_in_from({"ipAddress": "1.2.3.4"}) is None
    event = audit_from(
        {
            "activityDateTime": "2026-11-20T08:00:00Z",
            "activityDisplayName": "Consent to application",
            "initiatedBy": {"app": {"displayName": "Azure AD"}},
            "targetResources": [],
        }
    )
    assert event is not None and event.by == "Azure AD" and event.target == ""


def test_the_hunt_keeps_evidence_only_and_stays_bounded() -> None:
    tenant = parse_config(
        {
            "tenants": [
                {"name": "C", "tenant_id": "3f1e6f43-7d38-4b0e-9a51-1c0f3f0c7a11", "credential": "managed_identity"}
            ]
        }
    ).tenants[0]
    hunt = Hunt(tenant=tenant, start=T0, end=T0, seed_ips=["203.0.113.66"], seed_user_id="victim")
    hunt.consider(s(0, ip="203.0.113.66", user="victim"))
    hunt.consider(s(1, ip="203.0.113.66", user="bob"))
    hunt.consider(s(2, ip="203.0.113.66", user="dave", ok=False))
    for i in range(MAX_ACCOUNTS + 50):
        hunt.consider(s(3, risk="low", user=f"r{i}"))
        hunt.consider(s(4, user=f"clean{i}"))
    assert len(hunt.accounts) == MAX_ACCOUNTS and hunt.checked.__len__() == 3 + 2 * (MAX_ACCOUNTS + 50)
    ranked = hunt.ranked()
    assert ranked[0].upn == "bob@contoso.com" and "victim" not in hunt.accounts
    assert "dave" not in hunt.accounts  # the weakest evidence made way for stronger
    assert parse_ip(" 2001:DB8::1 ") == "2001:db8::1" and parse_ip("alice@contoso.com") is None
