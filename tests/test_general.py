"""`help` and `audit [n]` through the real registry and router."""

from __future__ import annotations

import json

import pytest

from adapters.config import CordonConfig, RolesConfig
from adapters.roles import RoleResolver
from adapters.storage import AuditEntry, MemoryStorage
from dialogs.contract import Actor, Conversation, Reply, Services
from dialogs.general import AUDIT_DEFAULT, AUDIT_MAX
from dialogs.router import Router
from tests.support.cards import assert_valid_card
from tests.test_router import RecordingOutbox

TECH = "11111111-1111-1111-1111-111111111111"
PLAIN = "33333333-3333-3333-3333-333333333333"
TENANT = "55555555-5555-5555-5555-555555555555"
OTHER_TENANT = "66666666-6666-6666-6666-666666666666"
CHAT = Conversation(id="a:1:personal", kind="personal", tenant_id=TENANT)


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def router(storage: MemoryStorage) -> Router:
    roles = RolesConfig(technicians=[TECH])
    return Router(Services(config=CordonConfig(roles=roles), storage=storage), RoleResolver(roles))


async def say(router: Router, text: str, aad_id: str, tenant: str = TENANT) -> list[Reply]:
    return await router.handle_text(text, Actor(aad_id=aad_id), tenant, CHAT, RecordingOutbox())


def words(reply: Reply) -> str:
    return json.dumps(reply.card, ensure_ascii=False) if reply.card else (reply.text or "")


async def test_help_for_a_plain_user_leaves_out_technician_commands(router: Router) -> None:
    [reply] = await say(router, "help", PLAIN)
    assert_valid_card(reply.card)
    assert "**help" in words(reply) and "**audit" not in words(reply)
    assert "need the technician or approver role" in words(reply)
    every_listed = [spec.name for spec in router.registry.visible() if f"**{spec.name}**" in words(reply)]
    assert all(router.registry.commands[name].role.value == "anyone" for name in every_listed)


async def test_help_for_a_technician_lists_audit(router: Router) -> None:
    [reply] = await say(router, "?", TECH)  # the alias
    assert_valid_card(reply.card)
    assert "**audit**" in words(reply)


async def test_audit_is_refused_to_a_plain_user(router: Router, storage: MemoryStorage) -> None:
    [reply] = await say(router, "audit", PLAIN)
    assert "only Cordon technicians may run `audit`" in reply.text
    [entry] = await storage.audit_tail(1)
    assert (entry.actor, entry.command, entry.outcome) == (PLAIN, "audit", "refused")


async def test_audit_with_no_entries_says_so(router: Router) -> None:
    [reply] = await say(router, "audit", TECH, tenant=OTHER_TENANT)
    assert reply.text == "The audit log has no entries for this tenant yet."


async def test_audit_shows_the_latest_entries_newest_first(router: Router, storage: MemoryStorage) -> None:
    for n in range(5):
        await storage.append_audit(
            AuditEntry(actor=PLAIN, command=f"cmd{n}", outcome="refused", tenant=TENANT, target=f"target{n}")
        )
    await storage.append_audit(AuditEntry(actor=PLAIN, command="elsewhere", outcome="ok", tenant=OTHER_TENANT))
    [reply] = await say(router, "AUDIT   2", TECH)
    assert_valid_card(reply.card)
    shown = words(reply)
    assert "Latest 2 entries" in shown
    assert shown.index("cmd4") < shown.index("cmd3")
    assert "cmd2" not in shown and "elsewhere" not in shown


@pytest.mark.parametrize("arg", ["x", "0", str(AUDIT_MAX + 1), "-3", "2.5", "²", "0020"])
async def test_audit_rejects_a_bad_count_and_says_what_it_takes(router: Router, arg: str) -> None:
    [reply] = await say(router, f"audit {arg}", TECH)
    assert reply.card is None
    assert f"from 1 to {AUDIT_MAX}" in reply.text


async def test_audit_default_count(router: Router, storage: MemoryStorage) -> None:
    for n in range(AUDIT_DEFAULT + 5):
        await storage.append_audit(AuditEntry(actor=PLAIN, command=f"c{n}", outcome="ok", tenant=TENANT))
    [reply] = await say(router, "audit", TECH)
    assert f"Latest {AUDIT_DEFAULT} entries" in words(reply)


async def test_audit_of_the_maximum_with_long_entries_stays_a_valid_card(
    router: Router, storage: MemoryStorage
) -> None:
    for n in range(AUDIT_MAX + 10):
        await storage.append_audit(
            AuditEntry(
                actor=f"user{n}@contoso.example",
                command="lockdown",
                outcome="refused",
                tenant=TENANT,
                target="t" * 200,
                detail="needs technician",
            )
        )
    [reply] = await say(router, f"audit {AUDIT_MAX}", TECH)
    assert_valid_card(reply.card)  # also asserts the card is under Teams' 28 KB
    assert f"user{AUDIT_MAX + 9}@contoso.example" in words(reply)  # the newest is shown


async def test_audit_leaves_out_old_entries_rather_than_exceed_a_teams_message(
    router: Router, storage: MemoryStorage
) -> None:
    for n in range(AUDIT_MAX):
        await storage.append_audit(
            AuditEntry(
                actor=f"{n:03d}" + "a" * 200,
                command="c" * 200,
                outcome="o" * 200,
                tenant=TENANT,
                target="t" * 200,
                detail="d" * 200,
            )
        )
    [reply] = await say(router, f"audit {AUDIT_MAX}", TECH)
    assert_valid_card(reply.card)
    shown = words(reply)
    assert "older entries left out to fit one Teams message" in shown
    assert f"{AUDIT_MAX - 1:03d}" in shown  # newest kept


async def test_audit_shows_typed_targets_without_live_markdown_links(router: Router, storage: MemoryStorage) -> None:
    await storage.append_audit(
        AuditEntry(
            actor=PLAIN,
            command="lookup",
            outcome="refused",
            tenant=TENANT,
            target="[approved](https://phish.example) `x`",
        )
    )
    [reply] = await say(router, "audit", TECH)
    assert_valid_card(reply.card)
    shown = words(reply)
    assert "](https://phish.example)" not in shown and "[approved] (https[:]//phish.example) 'x'" in shown


async def test_audit_names_people_by_name_and_upn_and_shows_object_ids_only_when_asked(router: Router) -> None:
    """The roster's name and UPN are stored with each entry; an object id alone tells a technician nothing."""
    plain = Actor(aad_id=PLAIN, upn="nora.nobody@contoso.com", name="Nora Nobody")
    await router.handle_text("audit", plain, TENANT, CHAT, RecordingOutbox())  # refused, and audited
    tech = Actor(aad_id=TECH, upn="tess.tech@contoso.com", name="Tess Tech")
    [reply] = await router.handle_text("audit 5", tech, TENANT, CHAT, RecordingOutbox())
    assert_valid_card(reply.card)
    # the roster's name and UPN, with the angle brackets made inert (a display name is not Cordon's to trust)
    shown = words(reply)
    assert "by Nora Nobody ‹nora.nobody@contoso.com› → refused" in shown
    assert PLAIN not in shown and "`audit ids` adds the Entra object ids" in shown
    [reply] = await router.handle_text("audit ids 5", tech, TENANT, CHAT, RecordingOutbox())
    assert_valid_card(reply.card)
    assert f"by Nora Nobody ‹nora.nobody@contoso.com› ({PLAIN}) → refused" in words(reply)
    assert f"by Tess Tech ‹tess.tech@contoso.com› ({TECH}) → ok" in words(reply)  # the first `audit 5` itself


async def test_audit_of_an_entry_without_a_name_shows_what_it_has(router: Router, storage: MemoryStorage) -> None:
    await storage.append_audit(AuditEntry(actor="cordon", command="lockdown:finished", outcome="done", tenant=TENANT))
    [reply] = await say(router, "audit 1", TECH)
    assert "by cordon → done" in words(reply)
