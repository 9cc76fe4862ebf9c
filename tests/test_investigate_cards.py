"""The investigate and hunt cards under hostile and heavy input, and the buttons' stored references."""

from __future__ import annotations

import datetime as dt
import json

from adapters.config import parse_config
from adapters.graph.containment import InboxRule
from adapters.graph.incident import AuditEvent, Device, Grant, SignIn
from adapters.storage import MemoryStorage
from dialogs.cards import size_of
from dialogs.investigate import analysis, refs
from dialogs.investigate.cards import CARD_BUDGET, hunt_card, investigation_card
from dialogs.investigate.hunt import Hunt
from dialogs.investigate.report import Report
from tests.support.cards import assert_valid_card

NOW = dt.datetime(2026, 11, 27, 22, 0, tzinfo=dt.UTC)
TENANT = parse_config(
    {
        "tenants": [
            {
                "name": "Contoso",
                "tenant_id": "3f1e6f43-7d38-4b0e-9a51-1c0f3f0c7a11",
                "domains": ["contoso.com"],
                "credential": "managed_identity",
            }
        ]
    }
).tenants[0]
HOSTILE = "😈" * 60 + " [click](https://evil.example) ![x](https://evil.example/i.png) "


def heavy_report() -> Report:
    window = [
        SignIn(
            NOW - dt.timedelta(minutes=i),
            f"203.0.{i % 250}.{i % 200}",
            f"C{i % 90}",
            HOSTILE,
            float(i % 80),
            float(i % 170),
            f"{HOSTILE}{i % 40}",
            "IMAP4" if i % 3 else "Browser",
            i % 4 != 0,
            0,
            "high" if i % 7 == 0 else "none",
            "atRisk" if i % 7 == 0 else "none",
            ("anonymizedIPAddress",),
            HOSTILE,
        )
        for i in range(3000)
    ]
    report = Report(
        user_id="u",
        upn="victim@contoso.com",
        name=HOSTILE,
        tenant=TENANT,
        start=NOW - dt.timedelta(days=7),
        end=NOW,
        window=window,
    )
    report.audits = [
        AuditEvent(
            NOW - dt.timedelta(minutes=i),
            f"Consent to application {HOSTILE}",
            "x",
            "success",
            HOSTILE,
            "203.0.113.1",
            HOSTILE,
            HOSTILE,
        )
        for i in range(200)
    ]
    report.rules = [
        InboxRule(
            id=f"r{i}",
            name=HOSTILE,
            enabled=True,
            forward_to=(f"x{i}@evil.example",),
            conditions=(f"subjectContains: {HOSTILE}",),
        )
        for i in range(100)
    ]
    report.grants = [Grant(f"g{i}", f"c{i}", HOSTILE, "Mail.Read " * 40, "Principal") for i in range(100)]
    report.devices = [
        Device(f"d{i}", HOSTILE, "Windows", HOSTILE, "noncompliant", NOW, None, None, HOSTILE) for i in range(20)
    ]
    report.not_read = [{"part": "x", "reason": HOSTILE * 3, "kind": "permission"}] * 5
    findings = analysis.sign_in_findings(window, analysis.Baseline())
    findings += analysis.audit_findings(report.audits) + analysis.rule_findings(report.rules, ["contoso.com"])
    report.findings = analysis.ordered(findings)
    return report


def test_a_heavy_hostile_investigation_card_fits_and_carries_no_link() -> None:
    card = investigation_card(heavy_report(), {"ref": "2026-11-27.abc", "nonce": "n"})
    assert_valid_card(card)
    assert size_of(card) <= CARD_BUDGET
    text = json.dumps(card, ensure_ascii=False)
    assert "](" not in text and "![" not in text
    assert "Disable this rule" in text and "Revoke this consent" in text  # the buttons survive the trimming


def test_a_hunt_card_with_many_accounts_fits() -> None:
    hunt = Hunt(tenant=TENANT, start=NOW - dt.timedelta(days=7), end=NOW, seed_ips=["203.0.113.66"] * 50)
    for i in range(300):
        hunt.consider(
            SignIn(
                NOW,
                "203.0.113.66",
                "SE",
                "",
                None,
                None,
                "",
                "",
                True,
                0,
                "high",
                "atRisk",
                (),
                "",
                f"id{i}",
                f"{HOSTILE}{i}@contoso.com",
            )
        )
    card = hunt_card(hunt, {"ref": "r", "nonce": "n"})
    assert_valid_card(card)
    assert "and 190 more" in json.dumps(card, ensure_ascii=False)


async def test_references_need_their_nonce_and_are_pruned_after_a_week() -> None:
    storage = MemoryStorage()
    old = await refs.save(storage, NOW - dt.timedelta(days=8), {"user_id": "a"})
    assert (await refs.load(storage, old))["user_id"] == "a"
    assert await refs.load(storage, {**old, "nonce": "guess"}) is None
    assert await refs.load(storage, {"ref": "../lockdown/request/x", "nonce": old["nonce"]}) is None
    fresh = await refs.save(storage, NOW, {"user_id": "b"})
    assert await refs.load(storage, old) is None and (await refs.load(storage, fresh))["user_id"] == "b"
    assert [key for key, _ in await storage.list(refs.PREFIX)] == [refs.PREFIX + fresh["ref"]]
