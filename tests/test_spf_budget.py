"""Issue 9 item 1: bounded DNS work per check. The attack zone — 59 includes, each holding hundreds of
a/mx/exists terms — is served by NSD; a check of it must stop where RFC 7208 stops an evaluator, stay inside the
per-check query budget and in-flight cap, and say on the card and in the JSON that it stopped."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from adapters.config import CordonConfig, RolesConfig
from adapters.dns.limits import MAX_IN_FLIGHT_PER_CHECK, MAX_QUERIES_PER_CHECK
from adapters.dns.resolver import CheckResolver, DnsFailure
from adapters.emailauth.report import CheckOptions, check_domain
from adapters.emailauth.spf_lint import analyse_spf
from adapters.roles import RoleResolver
from adapters.storage import MemoryStorage
from dialogs.contract import Actor, Conversation, Reply, Services
from dialogs.router import Router
from tests.support.cards import assert_valid_card
from tests.support.spf_attack import attack_zone

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(nsd_factory):
    return nsd_factory({"t": attack_zone()})


@pytest.fixture
def proxy(server, dns_proxy_factory):
    proxy = dns_proxy_factory(server.address)
    yield proxy
    proxy.clear()


def sent(proxy) -> int:
    """Questions that reached the server (a truncated UDP answer retried over TCP counts twice)."""
    return sum(proxy.seen.values())


def codes(result: dict) -> set[str]:
    return {f["code"] for f in result["findings"]}


def message(result: dict, code: str) -> str:
    return next(f["message"] for f in result["findings"] if f["code"] == code)


async def test_the_attack_stops_at_the_rfc_limit_within_the_query_budget(proxy):
    report = await check_domain("atk.t", CheckOptions(nameservers=[proxy.address], budget=20, query_timeout=2))
    spf = report["checks"]["spf"]
    assert spf["status"] == "fail" and "spf.too_many_lookups" in codes(spf)
    assert message(spf, "spf.too_many_lookups").startswith("Stopped after 10 lookups: the record is over the limit")
    assert spf["dns_lookups"] > 10 and spf["void_lookups"] == 0
    assert report["dns_queries"] <= MAX_QUERIES_PER_CHECK and sent(proxy) <= 1000
    assert proxy.max_in_flight <= MAX_IN_FLIGHT_PER_CHECK
    # what an evaluator reaches: include:i0.t (lookup 1), then i0's first nine terms (lookups 2-10); the other
    # includes' records are not fetched past the tenth, and no term of theirs is probed
    probed = {name for name, _ in proxy.seen if re.fullmatch(r"\d+k\d+", name.split(".")[0])}
    assert probed == {f"0k{k}.t" for k in range(9)}
    assert proxy.seen[("i10.t", "TXT")] == 0 and proxy.seen[("i58.t", "TXT")] == 0


async def test_the_void_variant_stops_at_the_third_void_lookup(proxy):
    resolver = CheckResolver(nameservers=[proxy.address], timeout=2)
    spf = await analyse_spf("vatk.t", resolver)
    assert spf["status"] == "fail" and spf["void_lookups"] == 3
    assert message(spf, "spf.too_many_void_lookups").startswith(
        "Stopped after 4 lookups: the record is over the void-lookup limit"
    )
    assert resolver.queries <= 40 and "spf.void_lookup" in codes(spf)


async def test_the_lint_alone_asks_only_what_an_evaluator_would(proxy):
    resolver = CheckResolver(nameservers=[proxy.address], timeout=2)
    result = await analyse_spf("atk.t", resolver)
    # the root's TXT, SPF and MX, the first ten includes' TXT, then i0's nine first terms (A+AAAA for a:)
    assert resolver.queries <= 3 + 10 + 2 * 9
    assert result["void_lookups"] == 0 and "spf.void_lookup" not in codes(result)


async def test_the_query_budget_is_a_hard_cap_whatever_asks(proxy):
    resolver = CheckResolver(nameservers=[proxy.address], timeout=2, max_queries=5)
    outcomes = await asyncio.gather(*(resolver.query(f"{k}x.t", "A") for k in range(20)), return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, DnsFailure)]
    assert resolver.queries == 5 and sent(proxy) == 5 and len(refused) == 15
    assert all(o.reason == "queries" and "query budget" in str(o) for o in refused)


async def test_a_spent_query_budget_is_could_not_check_never_missing(proxy):
    # the root's TXT, SPF and MX use the budget: no include can be fetched
    result = await analyse_spf("atk.t", CheckResolver(nameservers=[proxy.address], timeout=2, max_queries=3))
    assert result["status"] == "error" and "spf.include_dns_error" in codes(result)
    assert "query budget exhausted" in message(result, "spf.include_dns_error")
    assert "spf.missing" not in codes(result) and "spf.include_missing" not in codes(result)


async def test_in_flight_queries_are_capped_per_check_and_per_process(proxy):
    proxy.delay_ms = 30
    resolver = CheckResolver(nameservers=[proxy.address], timeout=2, max_in_flight=4)
    await asyncio.gather(*(resolver.query(f"{k}y.t", "A") for k in range(24)))
    assert 2 <= proxy.max_in_flight <= 4
    proxy.clear()
    proxy.delay_ms = 30
    from adapters.dns import limits

    limits.set_process_in_flight(6)
    try:
        resolvers = [CheckResolver(nameservers=[proxy.address], timeout=2) for _ in range(5)]
        await asyncio.gather(*(r.query(f"{k}z{i}.t", "A") for i, r in enumerate(resolvers) for k in range(10)))
    finally:
        limits.set_process_in_flight(limits.MAX_IN_FLIGHT_PER_PROCESS)
    assert 2 <= proxy.max_in_flight <= 6


def test_the_cli_json_says_it_stopped(server) -> None:
    done = subprocess.run(
        [sys.executable, "app.py", "check", "atk.t", "--nameserver", f"127.0.0.1:{server.port}", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    spf = report["checks"]["spf"]
    assert spf["status"] == "fail"
    assert message(spf, "spf.too_many_lookups").startswith("Stopped after 10 lookups: the record is over the limit")
    assert report["dns_queries"] <= MAX_QUERIES_PER_CHECK


# ---------------------------------------------------------------- the chat side: the card, and other users


class Outbox:
    async def send(self, reply: Reply, conversation_id: str | None = None) -> str | None:
        return "m-1"

    async def update(self, message_id: str, reply: Reply, conversation_id: str | None = None) -> None:
        return None

    async def typing(self) -> None:
        return None

    async def send_private(self, user_aad_id: str, reply: Reply) -> str | None:
        return None


ATTACKER = Actor(aad_id="aaaaaaaa-0000-0000-0000-000000000001", upn="attacker@example.com")
OTHER = Actor(aad_id="bbbbbbbb-0000-0000-0000-000000000002", upn="other@example.com")
CONVERSATION = Conversation(id="19:budget@thread.tacv2", kind="channel", tenant_id="t-1")


def router_for(address: tuple[str, int]) -> Router:
    services = Services(
        config=CordonConfig(),
        storage=MemoryStorage(),
        check_options=CheckOptions(nameservers=[address], query_timeout=2, budget=20),
    )
    return Router(services, RoleResolver(RolesConfig()))


def card_text(card: dict[str, Any] | None) -> str:
    return json.dumps(card, ensure_ascii=False)


async def test_the_card_says_it_stopped_and_help_answers_meanwhile(proxy):
    proxy.delay_ms = 40  # every answer waits, so the attack check is still running when the other user asks
    router = router_for(proxy.address)
    attack = asyncio.ensure_future(router.handle_text("check atk.t", ATTACKER, "t-1", CONVERSATION, Outbox()))
    while sent(proxy) < 5:  # the attack check is under way
        await asyncio.sleep(0.01)
    help_replies = await router.handle_text("help", OTHER, "t-1", CONVERSATION, Outbox())
    assert not attack.done()  # help was answered while the attack check was still running
    assert help_replies and help_replies[-1].card is not None and "check" in card_text(help_replies[-1].card)
    replies = await attack
    assert_valid_card(replies[-1].card)
    assert "Stopped after 10 lookups: the record is over the limit" in card_text(replies[-1].card)
