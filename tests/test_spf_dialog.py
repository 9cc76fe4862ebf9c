"""The `spf` chat command and its card, through the real router and registry, against NSD."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.config import CordonConfig, RolesConfig
from adapters.emailauth.report import CheckOptions
from adapters.roles import RoleResolver
from adapters.storage import MemoryStorage
from dialogs.contract import Actor, Conversation, Reply, Services
from dialogs.router import Router
from tests.support.cards import assert_valid_card

CONVERSATION = Conversation(id="19:spf@thread.tacv2", kind="channel", tenant_id="t-1")
NOBODY = Actor(aad_id="99999999-9999-9999-9999-999999999999", upn="someone@example.com")
ZONE = {
    "@": [("TXT", "v=spf1 include:_spf.dialog.test -all exp=why.dialog.test")],
    "_spf": [("TXT", "v=spf1 ip4:192.0.2.0/24 ~all")],
    "why": [("TXT", "Not allowed: " + "%{i} " * 60)],
    "md": [("TXT", "v=spf1 -all exp=mdwhy.dialog.test")],
    "mdwhy": [("TXT", "See [our policy](https://evil.example/login)")],
}


class Outbox:
    def __init__(self) -> None:
        self.sent: list[Reply] = []

    async def send(self, reply: Reply, conversation_id: str | None = None) -> str | None:
        self.sent.append(reply)
        return "m-1"

    async def update(self, message_id: str, reply: Reply, conversation_id: str | None = None) -> None:
        self.sent.append(reply)

    async def typing(self) -> None:
        return None

    async def send_private(self, user_aad_id: str, reply: Reply) -> str | None:
        return None


@pytest.fixture(scope="module")
def server(nsd_factory):
    return nsd_factory({"dialog.test": ZONE})


def router_for(address: tuple[str, int], timeout: float = 1.0) -> Router:
    services = Services(
        config=CordonConfig(),
        storage=MemoryStorage(),
        check_options=CheckOptions(nameservers=[address], query_timeout=timeout),
    )
    return Router(services, RoleResolver(RolesConfig()))


async def say(router: Router, text: str) -> list[Reply]:
    return await router.handle_text(text, NOBODY, "t-1", CONVERSATION, Outbox())


def card_text(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False)


async def test_anyone_gets_a_valid_card_with_the_deciding_term_and_path(server):
    replies = await say(router_for(server.address), "spf dialog.test 192.0.2.7")
    card = replies[-1].card
    assert card is not None
    assert_valid_card(card)
    text = card_text(card)
    assert "pass" in text and "ip4:192.0.2.0/24" in text and "include:_spf.dialog.test" in text
    button = card["actions"][0]
    assert button["verb"] == "spf.recheck" and button["data"]["ip"] == "192.0.2.7"


async def test_fail_shows_the_explanation_bounded(server):
    replies = await say(router_for(server.address), "SPF Dialog.Test 198.51.100.1 ann@dialog.test")
    card = replies[-1].card
    assert_valid_card(card)
    text = card_text(card)
    assert "fail" in text and "Not allowed: 198.51.100.1" in text and "ann@dialog.test" in text


async def test_dns_failure_says_could_not_check(dns_proxy):
    dns_proxy.add("dialog.test", None, rcode="SERVFAIL")
    replies = await say(router_for(dns_proxy.address), "spf dialog.test 192.0.2.7")
    card = replies[-1].card
    assert_valid_card(card)
    assert "temperror" in card_text(card) and "Could not check" in card_text(card)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("spf", "Give a domain and an IP address"),
        ("spf dialog.test", "Give a domain and an IP address"),
        ("spf dialog.test 300.1.1.1", "not an IP address"),
        ("spf not_a_domain 192.0.2.1", "no dot"),
        ("spf dialog.test 192.0.2.1 a@b.test extra", "Too many words"),
    ],
)
async def test_bad_input_gets_a_clear_message(server, text, expected):
    replies = await say(router_for(server.address), text)
    assert replies[-1].card is None and expected in (replies[-1].text or "")


async def test_check_again_button_evaluates_again(server):
    router = router_for(server.address)
    result = await router.handle_action(
        "spf.recheck",
        {"domain": "dialog.test", "ip": "192.0.2.8", "sender": "postmaster@dialog.test", "helo": "dialog.test"},
        NOBODY,
        "t-1",
        CONVERSATION,
        Outbox(),
        card_message_id="m-1",
    )
    assert result.card is not None and "192.0.2.8" in card_text(result.card)
    assert_valid_card(result.card)
    refused = await router.handle_action(
        "spf.recheck", {"domain": "x", "ip": "nope"}, NOBODY, "t-1", CONVERSATION, Outbox(), card_message_id="m-1"
    )
    assert refused.card is None and refused.message


async def test_explanation_from_dns_cannot_make_a_markdown_link(server):
    replies = await say(router_for(server.address), "spf md.dialog.test 192.0.2.7")
    text = card_text(replies[-1].card)
    assert "[our policy] (https://evil.example/login)" in text and "](" not in text
