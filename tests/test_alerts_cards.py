"""Alert, digest and status cards: plain words, thresholds, untrusted text kept harmless, AC 1.5 and size."""

from __future__ import annotations

import datetime as dt
import json

from dialogs.alerts import state as st
from dialogs.alerts.cards import alert_card, digest_card
from dialogs.alerts.delivery import add_detections, new_card
from dialogs.alerts.documents import Event
from dialogs.alerts.model import EVENT_WORDS, Detection, meets, plain_event
from tests.support.cards import assert_valid_card
from tests.support.graph_standin import identity_protection as ip
from tests.support.graph_standin.alerts_world import alerts_world

NOW = dt.datetime(2026, 11, 27, 21, 0, tzinfo=dt.UTC)
TENANT = "10000000-0000-4000-8000-000000000000"
USER = "7d5b0f4e-0000-4000-8000-000000000001"


def _det(n: int = 0, **fields) -> Detection:
    base = dict(
        id=f"d{n}",
        tenant_id=TENANT,
        user_id=USER,
        upn="alice@t0.example",
        user_name="Alice",
        risk_level="high",
        event_type="anonymizedIPAddress",
        risk_state="atRisk",
        detected_at=(NOW + dt.timedelta(minutes=n)).isoformat().replace("+00:00", "Z"),
        ip="185.220.101.4",
        city="Stockholm",
        country="SE",
        app="Office 365 Exchange Online",
    )
    base.update(fields)
    return Detection(**base)


def test_event_types_in_plain_words() -> None:
    assert plain_event("anonymizedIPAddress") == "sign-in from an anonymous IP address"
    assert plain_event("unfamiliarFeatures") == "unfamiliar sign-in properties"
    assert plain_event("leakedCredentials") == "leaked credentials"
    assert plain_event("impossibleTravel") == "impossible travel"
    # the names Microsoft gives these detections ("What are risk detections?"), not guesses from the type
    assert plain_event("riskyIPAddress") == "activity from an anonymous IP address (Defender for Cloud Apps)"
    assert plain_event("nationStateIP").startswith("sign-in from a verified threat actor's IP address")
    assert plain_event("mcasFinSuspiciousFileAccess") == "mass access to sensitive files"
    assert plain_event("malwareInfectedIPAddress") == "sign-in from a malware-infected IP address"
    assert plain_event("newCountry") == "activity from an infrequent country"
    for known in (
        "maliciousIPAddress",
        "passwordSpray",
        "tokenIssuerAnomaly",
        "anomalousToken",
        "attackerinTheMiddle",
        "mcasSuspiciousInboxManipulationRules",
        "suspiciousInboxForwarding",
        "unlikelyTravel",
        "maliciousIPAddressValidCredentialsBlockedIP",
        "investigationsThreatIntelligence",
        "generic",
    ):
        assert plain_event(known) in EVENT_WORDS.values(), known
    assert plain_event("someFutureDetectionType") == "some future detection type"
    assert plain_event(None) == "risky activity"


def test_thresholds_and_quiet_states() -> None:
    assert meets("high", "medium") and meets("medium", "medium") and not meets("low", "medium")
    assert meets("low", "low") and not meets("none", "low") and meets("hidden", "high")
    assert _det(risk_state="dismissed").quiet and _det(risk_state="confirmedSafe").quiet
    # passing MFA under a risk policy "remediates" a sign-in, and an adversary-in-the-middle passes MFA: still alerted
    remediated = _det(risk_state="remediated")
    assert not remediated.quiet
    card = json.dumps(alert_card(new_card("c" * 32, "T0", "conv", [remediated], NOW)), ensure_ascii=False)
    assert "High (remediated: MFA was passed or the password reset; check it was the user)" in card
    assert _det(risk_level="none").quiet and not _det().quiet


def test_untrusted_text_cannot_make_links_and_odd_ids_make_no_url() -> None:
    hostile = _det(
        user_name="[Reset your password](https://evil.example) <b>",
        upn="x@t0.example",
        user_id="../../evil",
        app="![img](https://evil.example/p.png)",
    )
    card = alert_card(new_card("c" * 32, "T0", "conv", [hostile], NOW))
    assert_valid_card(card)
    text = json.dumps(card, ensure_ascii=False)
    assert "](" not in text and "<b>" not in text
    assert not [a for a in card["actions"] if a["type"] == "Action.OpenUrl"]


def test_a_busy_users_card_and_a_big_digest_stay_valid_and_small() -> None:
    dets = [
        _det(n, event_type=("impossibleTravel", "leakedCredentials", "unfamiliarFeatures")[n % 3], city="Ville" * 20)
        for n in range(120)
    ]
    doc = add_detections(new_card("c" * 32, "T0", "conv", dets[:1], NOW), dets[1:])
    doc.events = [
        Event(what="Dismissed risk", actor="a" * 300, at="2026-11-27T21:00:00Z", outcome="failed", detail="d" * 2000)
        for _ in range(30)
    ]
    card = alert_card(doc)
    assert_valid_card(card)
    assert "120 for this user" in json.dumps(card)
    digest = {
        "started_at": "2026-11-27T21:00:00Z",
        "message_id": "m",
        "count": 400,
        "items": [d.to_json() for d in dets[:50]],
        "ids": [],
    }
    card = digest_card(digest)
    assert_valid_card(card)
    assert "and 375 more" in json.dumps(card)


async def test_a_risky_user_change_without_a_detection_posts_a_risky_user_card(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        await w.say("alerts on --tenant T0")
        user = w.user(0, 5)
        w.risk(0).set_risky_user(ip.risky_user(user, changed=w.clock.now - dt.timedelta(minutes=2), level="high"))
        w.risk(0).set_risky_user(
            {**ip.risky_user(w.user(0, 6), changed=w.clock.now), "riskState": "remediated", "riskLevel": "none"}
        )
        results = await w.poll()
        assert [(r.user, r.status) for r in results] == [("user5@t0.example", "sent")]
        card = w.cards()[-1]
        assert_valid_card(card)
        assert "Risky user" in json.dumps(card, ensure_ascii=False)
        assert "the user's risk level changed" in json.dumps(card, ensure_ascii=False)
        assert await w.poll() == []  # the same change is not alerted twice


async def test_status_of_many_tenants_fits_one_card_and_puts_this_conversation_first(tmp_path) -> None:
    async with alerts_world(tmp_path, tenants=30) as w:
        for i, tid in enumerate(w.tenant_ids):
            await st.subscribe(
                w.services.storage,
                st.Subscription(
                    tenant_id=tid,
                    tenant_name=f"T{i}",
                    conversation_id=f"19:other-{i}@thread.v2",
                    conversation_kind="channel",
                    level="medium",
                    created_by="someone",
                    created_at=st.iso(w.clock.now),
                ),
            )
        await w.say("alerts on --tenant T29")
        await w.say("alerts status")
        card = w.cards()[-1]
        assert_valid_card(card)
        text = json.dumps(card, ensure_ascii=False)
        assert "and 18 more tenant(s)" in text
        assert text.index("**T29**") < text.index("**T0**")


async def test_the_users_risk_changing_after_the_sign_in_keeps_the_sign_in_on_the_card(tmp_path) -> None:
    """Identity Protection raises the user's risk minutes after a risky sign-in: the card of that sign-in is updated,
    but keeps what a technician acts on (IP, place, app, what happened) and lists the user's change below it."""
    async with alerts_world(tmp_path) as w:
        await w.say("alerts on --tenant T0")
        sign_in = w.detect(0, 1, minutes_ago=2, event="anonymizedIPAddress", level="medium")
        assert [r.status for r in await w.poll()] == ["sent"]
        w.clock.advance(minutes=5)
        w.risk(0).set_risky_user(ip.risky_user(w.user(0, 1), changed=w.clock.now, level="high"))
        assert [r.status for r in await w.poll()] == ["updated"]
        card = w.bot.connector.updates(w.channel.id)[-1].cards[0]
        assert_valid_card(card)
        text = json.dumps(card, ensure_ascii=False)
        assert "Risky sign-in" in text and sign_in["ipAddress"] in text and "Stockholm, SE" in text
        assert "sign-in from an anonymous IP address" in text and "Office 365 Exchange Online" in text
        assert "the user's risk level changed" in text and "2 for this user" in text
