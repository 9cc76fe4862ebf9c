"""`check` in Teams: through the real router and registry, against NSD; the card is valid AC 1.5 under 28 KB even
with dozens of findings; "Check again" re-runs the check."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from adapters.config import CordonConfig
from adapters.emailauth.mta_sts import HttpsOptions
from adapters.emailauth.report import CheckOptions, check_domain
from adapters.roles import RoleResolver
from adapters.storage import MemoryStorage
from dialogs import cards
from dialogs.contract import Actor, Conversation, Reply, Services
from dialogs.emailauth_card import RECHECK_VERB, report_card
from dialogs.router import Router
from tests.support.cards import assert_valid_card

CONVERSATION = Conversation(id="19:emailauth@thread.tacv2", kind="channel", tenant_id=None)
ANYONE = Actor(aad_id="99999999-9999-9999-9999-999999999999", upn="someone@example.com")


class Outbox:
    def __init__(self) -> None:
        self.typing_shown = 0

    async def send(self, reply: Reply, conversation_id: str | None = None) -> str | None:
        return "m1"

    async def update(self, message_id: str, reply: Reply, conversation_id: str | None = None) -> None:
        return None

    async def typing(self) -> None:
        self.typing_shown += 1

    async def send_private(self, user_aad_id: str, reply: Reply) -> str | None:
        return None


@pytest.fixture
def router(dns_zones) -> Router:
    config = CordonConfig()
    options = CheckOptions(nameservers=[dns_zones.address], https=HttpsOptions(port=1), budget=5.0)
    services = Services(config=config, storage=MemoryStorage(), check_options=options)
    return Router(services, RoleResolver(config.roles))


def texts(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False)


async def test_check_command_answers_with_a_valid_card(router) -> None:
    outbox = Outbox()
    replies = await router.handle_text("check ea-weak.test selector1", ANYONE, None, CONVERSATION, outbox)
    assert len(replies) == 1 and outbox.typing_shown == 1
    card = replies[0].card
    assert_valid_card(card)
    body = texts(card)
    assert "ea-weak.test" in body and "DMARC" in body and "MTA-STS" in body and "p=none only monitors" in body
    toggle, again = card["actions"]
    assert toggle["type"] == "Action.ToggleVisibility" and toggle["targetElements"] == ["findings"]
    data = {"domain": "ea-weak.test", "selectors": ["selector1"]}
    assert (again["type"], again["title"], again["verb"], again["data"]) == (
        "Action.Execute",
        "Check again",
        RECHECK_VERB,
        data,
    )
    if "fallback" in again:  # Teams clients without Universal Actions submit the same verb and data
        assert again["fallback"]["data"] == {**data, "verb": RECHECK_VERB}


async def test_aliases_and_bad_input(router) -> None:
    replies = await router.handle_text("dns EA-GOOD.test.", ANYONE, None, CONVERSATION, Outbox())
    assert_valid_card(replies[0].card)
    bad = await router.handle_text("emailauth https://contoso.com", ANYONE, None, CONVERSATION, Outbox())
    assert bad[0].card is None and "URL" in bad[0].text
    empty = await router.handle_text("check", ANYONE, None, CONVERSATION, Outbox())
    assert "Give a domain" in empty[0].text


async def test_check_again_reruns_the_check(router) -> None:
    result = await router.handle_action(
        RECHECK_VERB, {"domain": "ea-good.test", "selectors": ["custom2024"]}, ANYONE, None, CONVERSATION, Outbox()
    )
    assert_valid_card(result.card)
    assert "custom2024 (rsa 2048)" in texts(result.card)
    refused = await router.handle_action(RECHECK_VERB, {"domain": "not a domain"}, ANYONE, None, CONVERSATION, Outbox())
    assert refused.card is None and "no dot" in refused.message


async def test_many_findings_fit_in_a_valid_card(dns_zones) -> None:
    report = await check_domain(
        "ea-many.test", CheckOptions(nameservers=[dns_zones.address], https=HttpsOptions(port=1))
    )
    card = report_card(report)
    assert_valid_card(card)
    huge = copy.deepcopy(report)
    filler = {"severity": "warning", "code": "mx.host_no_address", "message": "M" * 500, "fix": "F" * 800}
    for area in huge["checks"].values():
        area["findings"].extend([dict(filler) for _ in range(40)])
    big_card = report_card(huge)
    assert_valid_card(big_card)
    assert cards.size_of(big_card) < cards.MAX_CARD_BYTES and "more. Run" in texts(big_card)


async def test_card_says_which_areas_could_not_be_checked(dns_proxy) -> None:
    dns_proxy.add("_dmarc.ea-good.test", "TXT", rcode="SERVFAIL")
    report = await check_domain(
        "ea-good.test", CheckOptions(nameservers=[dns_proxy.address], https=HttpsOptions(port=1))
    )
    card = report_card(report)
    assert_valid_card(card)
    assert "Could not check DMARC (DNS failed or timed out)" in texts(card)
    assert "No DMARC record" not in texts(card)


async def test_teams_check_uses_the_dns_config_and_the_tenants_initial_domain(dns_zones) -> None:
    """No test options: the `[dns]` section chooses the resolver, and a configured tenant's *.onmicrosoft.com
    completes the Microsoft 365 DKIM records to publish."""
    host, port = dns_zones.address
    config = CordonConfig.model_validate(
        {
            "dns": {"nameservers": [f"{host}:{port}"], "timeout_seconds": 1, "budget_seconds": 5},
            "tenants": [
                {
                    "name": "EA",
                    "tenant_id": "11111111-2222-3333-4444-555555555555",
                    "domains": ["ea-m365new.test", "eam365.onmicrosoft.com"],
                }
            ],
        }
    )
    services = Services(config=config, storage=MemoryStorage())
    replies = await Router(services, RoleResolver(config.roles)).handle_text(
        "check ea-m365new.test", ANYONE, None, CONVERSATION, Outbox()
    )
    assert_valid_card(replies[0].card)
    assert "selector2-ea-m365new-test._domainkey.eam365.onmicrosoft.com" in texts(replies[0].card)


def test_dns_config_rejects_a_nameserver_that_is_not_an_ip() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        CordonConfig.model_validate({"dns": {"nameservers": ["dns.example.com"]}})


async def test_nothing_checkable_shows_could_not_check_and_no_letter(dns_proxy) -> None:
    for name in ("ea-good.test", "_dmarc.ea-good.test", "_dmarc.test"):
        dns_proxy.add(name, None, rcode="SERVFAIL")
    report = await check_domain(
        "ea-good.test", CheckOptions(nameservers=[dns_proxy.address], https=HttpsOptions(port=1))
    )
    assert (report["status"], report["grade"]) == ("could_not_check", None)
    card = report_card(report)
    assert_valid_card(card)
    grade_column = card["body"][0]["columns"][1]["items"]
    assert [item["text"] for item in grade_column] == ["Could not check", "no grade"]
    assert "so there is no grade" in texts(card) and "counts them as unprotected" not in texts(card)


async def test_a_domain_that_does_not_exist_is_one_line_not_eight_rows(dns_zones) -> None:
    report = await check_domain(
        "nothing-here.rfc.test", CheckOptions(nameservers=[dns_zones.address], https=HttpsOptions(port=1))
    )
    card = report_card(report)
    assert_valid_card(card)
    lines = [block["text"] for block in card["body"]]
    assert lines[-1] == (
        "nothing-here.rfc.test does not exist (NXDOMAIN): there is nothing to check — is the name spelled right?"
    )
    assert len(card["body"]) == 3 and "ColumnSet" not in texts(card)
    assert [action["title"] for action in card["actions"]] == ["Check again"]
