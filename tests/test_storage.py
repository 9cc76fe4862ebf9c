"""State: compare-and-set under concurrent writers (tasks, instances, processes), restart, append-only audit."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.storage import AuditEntry, Conflict, Document, MemoryStorage, SQLiteStorage, Storage, update
from tests.support.stores import SharedStore

ROOT = Path(__file__).resolve().parents[1]
WRITERS = 40


class YieldingMemoryStorage(MemoryStorage):
    """MemoryStorage whose reads give way to other tasks, as a networked store would: real interleaving."""

    async def get(self, key: str) -> Document | None:
        await asyncio.sleep(0)
        doc = await super().get(key)
        await asyncio.sleep(0)
        return doc


@pytest.fixture(params=["memory", "sqlite", "azure"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    storage: Storage
    if request.param == "azure":
        storage = request.getfixturevalue("azure_store_factory")()
    else:
        storage = YieldingMemoryStorage() if request.param == "memory" else SQLiteStorage(tmp_path / "s.db")
    yield storage
    await storage.close()


async def race(attempts: list[Callable[[], Any]]) -> tuple[list[Any], int]:
    """Start every attempt at once; returns the winners' results and how many lost with Conflict."""
    gate = asyncio.Event()

    async def one(attempt: Callable[[], Any]) -> Any:
        await gate.wait()
        return await attempt()

    tasks = [asyncio.create_task(one(a)) for a in attempts]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, Conflict)]
    assert not unexpected, unexpected
    return [r for r in results if not isinstance(r, BaseException)], sum(isinstance(r, Conflict) for r in results)


async def test_create_has_exactly_one_winner_among_concurrent_writers(store: Storage) -> None:
    winners, losers = await race([lambda n=n: store.put("lease", {"owner": n}, None) for n in range(WRITERS)])
    assert winners == [1] and losers == WRITERS - 1
    doc = await store.get("lease")
    assert doc is not None and doc.version == 1 and 0 <= doc.value["owner"] < WRITERS


async def test_stale_version_loses_and_only_one_update_of_a_version_wins(store: Storage) -> None:
    await store.put("approval", {"state": "pending"}, None)
    winners, losers = await race(
        [lambda n=n: store.put("approval", {"state": "approved", "by": n}, 1) for n in range(WRITERS)]
    )
    assert winners == [2] and losers == WRITERS - 1
    with pytest.raises(Conflict):
        await store.put("approval", {"state": "rejected"}, 1)  # decided on a stale read
    with pytest.raises(Conflict):
        await store.put("approval", {"state": "rejected"}, None)  # "must not exist" but it does
    doc = await store.get("approval")
    assert doc is not None and doc.value["state"] == "approved" and doc.version == 2


async def test_delete_is_version_checked(store: Storage) -> None:
    await store.put("k", {"a": 1}, None)
    with pytest.raises(Conflict):
        await store.delete("k", 7)
    with pytest.raises(Conflict):
        await store.delete("missing", 1)
    await store.delete("k", 1)
    assert await store.get("k") is None
    assert await store.put("k", {"a": 2}, None) == 1  # a deleted key can be created again


async def test_update_helper_loses_no_increment_under_contention(store: Storage) -> None:
    def bump(value: dict[str, Any] | None) -> dict[str, Any]:
        value = value or {"n": 0, "who": []}
        return {"n": value["n"] + 1, "who": value["who"]}

    results, losers = await race([lambda: update(store, "counter", bump) for _ in range(WRITERS)])
    assert losers == 0
    doc = await store.get("counter")
    assert doc is not None and doc.value["n"] == WRITERS and doc.version == WRITERS
    assert sorted(version for _, version in results) == list(range(1, WRITERS + 1))


async def test_list_matches_the_prefix_literally(store: Storage) -> None:
    for key in ("conv:a_1", "conv:ab1", "conv:a%", "other:a_1"):
        await store.put(key, {"key": key}, None)
    assert [k for k, _ in await store.list("conv:a_")] == ["conv:a_1"]
    assert [k for k, _ in await store.list("conv:a%")] == ["conv:a%"]
    assert [k for k, _ in await store.list("conv:")] == ["conv:a%", "conv:a_1", "conv:ab1"]


async def test_values_are_copies_not_shared_references(store: Storage) -> None:
    value = {"items": [1]}
    await store.put("k", value, None)
    value["items"].append(2)
    doc = await store.get("k")
    assert doc is not None and doc.value == {"items": [1]}
    doc.value["items"].append(3)
    again = await store.get("k")
    assert again is not None and again.value == {"items": [1]}


async def test_audit_tail_is_newest_first_filtered_by_tenant_and_stamped_in_utc(store: Storage) -> None:
    for n in range(5):
        await store.append_audit(
            AuditEntry(
                actor=f"a{n}",
                command="check",
                outcome="ok",
                tenant="t1" if n % 2 else "t2",
                conversation="c",
                target=f"x{n}",
            )
        )
    assert [e.actor for e in await store.audit_tail(3)] == ["a4", "a3", "a2"]
    assert [e.actor for e in await store.audit_tail(10, tenant="t1")] == ["a3", "a1"]
    assert await store.audit_tail(0) == []
    entry = (await store.audit_tail(1))[0]
    assert entry.at.endswith("+00:00") and entry.target == "x4" and entry.conversation == "c"


async def test_two_instances_on_one_store_have_exactly_one_winner(shared_store: SharedStore) -> None:
    first, second = shared_store.open(), shared_store.open()
    try:
        stores = [first, second]
        winners, losers = await race(
            [lambda n=n: stores[n % 2].put("lease", {"owner": n % 2}, None) for n in range(WRITERS)]
        )
        assert winners == [1] and losers == WRITERS - 1
        await first.put("approval", {"state": "pending"}, None)
        winners, losers = await race([lambda n=n: stores[n % 2].put("approval", {"by": n}, 1) for n in range(WRITERS)])
        assert winners == [2] and losers == WRITERS - 1
        doc_first, doc_second = await first.get("approval"), await second.get("approval")
        assert doc_first == doc_second and doc_first is not None and doc_first.version == 2
        # an instance that last saw version 2 loses to a write made through the other instance
        await second.put("approval", {"by": "second"}, 2)
        with pytest.raises(Conflict):
            await first.put("approval", {"by": "first"}, 2)
        await second.delete("approval", 3)
        assert await first.put("approval", {"by": "again"}, None) == 1
        with pytest.raises(Conflict):
            await second.delete("approval", 3)  # its last sight of the key is from an earlier life
    finally:
        await first.close()
        await second.close()


_RACER = textwrap.dedent("""
    import asyncio, json, os, sys, time
    sys.path.insert(0, sys.argv[1])
    from dataclasses import replace
    from adapters.retry import CAS_POLICY
    from adapters.storage import Conflict, update
    from tests.support.stores import open_spec

    async def main(spec, start_file, keys, bumps):
        store = open_spec(spec)
        await store.ping()
        while not os.path.exists(start_file):
            time.sleep(0.005)
        won = []
        for key in range(keys):
            try:
                await store.put(f"lease:{key}", {"pid": os.getpid()}, None)
                won.append(key)
            except Conflict:
                pass
        def bump(value):
            return {"n": (value or {"n": 0})["n"] + 1}
        for _ in range(bumps):
            await update(store, "counter", bump, policy=replace(CAS_POLICY, max_attempts=200))
        await store.close()
        print(json.dumps(won))

    asyncio.run(main(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
""")


async def test_processes_sharing_a_store_never_both_win(tmp_path: Path, shared_store: SharedStore) -> None:
    start, keys, bumps, processes = tmp_path / "go", 150, 60, 3
    if shared_store.kind == "azure":
        keys, bumps = 60, 25  # every write is an HTTP round trip to Azurite
    script = tmp_path / "racer.py"
    script.write_text(_RACER, encoding="utf-8")
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(ROOT), shared_store.spec, str(start), str(keys), str(bumps)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=shared_store.env,
        )
        for _ in range(processes)
    ]
    await asyncio.sleep(0.3)
    start.write_text("go")
    outputs = []
    for proc in procs:
        out, err = await asyncio.to_thread(proc.communicate, timeout=240)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out))
    every_win = [key for won in outputs for key in won]
    assert sorted(every_win) == list(range(keys))  # every lease has exactly one winner across the processes
    check = shared_store.open()
    try:
        doc = await check.get("counter")
        assert doc is not None and doc.value["n"] == processes * bumps and doc.version == processes * bumps
    finally:
        await check.close()


async def test_state_survives_reopening_and_a_new_process(tmp_path: Path, shared_store: SharedStore) -> None:
    store = shared_store.open()
    await store.put("conversation:19:abc", {"service_url": "https://smba.example"}, None)
    await store.put("conversation:19:abc", {"service_url": "https://smba2.example"}, 1)
    await store.append_audit(AuditEntry(actor="a", command="lockdown", outcome="approved", tenant="t"))
    await store.close()

    reopened = shared_store.open()
    doc = await reopened.get("conversation:19:abc")
    assert doc == Document({"service_url": "https://smba2.example"}, 2)
    assert [e.command for e in await reopened.audit_tail(5)] == ["lockdown"]
    await reopened.close()

    code = (
        "import asyncio, sys; sys.path.insert(0, sys.argv[1]); from tests.support.stores import open_spec\n"
        "async def main():\n s = open_spec(sys.argv[2]); d = await s.get('conversation:19:abc')\n"
        " a = await s.audit_tail(5); print(d.version, d.value['service_url'], a[0].outcome); await s.close()\n"
        "asyncio.run(main())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), shared_store.spec],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=shared_store.env,
    ).stdout
    assert out.split() == ["2", "https://smba2.example", "approved"]


async def test_an_audit_target_is_stored_inert_and_on_one_line_whoever_writes_it(store: Storage) -> None:
    """Card data and typed text reach the target: no second line, link or code span may come out of the log."""
    hostile = 'r-1\r\nok approved [Open](https://evil.example) <a href="https://x">`y`</a>' + "z" * 500
    await store.append_audit(
        AuditEntry(
            actor="a",
            command="action:lockdown.approve",
            outcome="refused",
            target=hostile,
            at="2026-01-01T00:00:00+00:00",
        )
    )
    [entry] = await store.audit_tail(1)
    assert entry.target.startswith("r-1 ok approved [Open] (https[:]//evil.example) ‹a href=")
    for forbidden in ("\n", "\r", "](", "://", "<", "`"):
        assert forbidden not in entry.target
    assert len(entry.target) <= 200 and entry.at == "2026-01-01T00:00:00+00:00"


async def test_sqlite_state_file_directory_is_created_on_first_use(tmp_path: Path) -> None:
    store = SQLiteStorage(tmp_path / "state" / "cordon.db")
    await store.put("k", {}, None)
    await store.close()
    assert (tmp_path / "state" / "cordon.db").exists()


async def test_sqlite_audit_log_refuses_update_and_delete(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    store = SQLiteStorage(path)
    await store.append_audit(AuditEntry(actor="alice", command="lockdown", outcome="refused", tenant="t"))
    await store.close()
    conn = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit SET outcome = 'ok'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM audit")
        conn.rollback()
        assert conn.execute("SELECT actor, outcome FROM audit").fetchall() == [("alice", "refused")]
    finally:
        conn.close()
    reopened = SQLiteStorage(path)  # the triggers survive reopening (CREATE ... IF NOT EXISTS)
    conn = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM audit WHERE actor = 'alice'")
    finally:
        conn.close()
        await reopened.close()


async def test_memory_audit_entries_cannot_be_changed_through_what_is_returned() -> None:
    store = MemoryStorage()
    await store.append_audit(AuditEntry(actor="alice", command="c", outcome="refused"))
    entries = await store.audit_tail(5)
    with pytest.raises(AttributeError):
        entries[0].outcome = "ok"  # type: ignore[misc]
    entries.clear()
    assert [e.outcome for e in await store.audit_tail(5)] == ["refused"]


async def test_the_audit_keeps_the_actors_name_and_an_older_file_gains_the_column(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:  # the audit table as written before actor names were kept
        conn.executescript(
            "CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT "
            "NOT NULL, tenant TEXT, conversation TEXT, command TEXT NOT NULL, target TEXT, outcome "
            "TEXT NOT NULL, detail TEXT);"
            "INSERT INTO audit(at, actor, command, outcome) VALUES ('2026-01-01T00:00:00+00:00', "
            "'old-actor', 'audit', 'ok');"
        )
    conn.close()
    store = SQLiteStorage(db)
    await store.append_audit(
        AuditEntry(
            actor="11111111-1111-1111-1111-111111111111",
            command="help",
            outcome="ok",
            actor_name="Tess Tech <tess@contoso.com>",
        )
    )
    again = SQLiteStorage(db)  # a second process opening the upgraded file
    newest, oldest = await again.audit_tail(2)
    assert newest.actor_name == "Tess Tech <tess@contoso.com>" and oldest.actor_name is None
    assert oldest.actor == "old-actor"
    await store.close()
    await again.close()


async def test_keys_with_any_characters_round_trip_and_list_by_prefix(store: Storage) -> None:
    keys = [
        "ended:2026-11-27/abc",
        "x#1",
        "x?2",
        "x%3",
        "x\\4",
        "x/5",
        "x 6",
        "ü/é",
        "üb",
        "x'7",
        "conversation:19:abc@thread.tacv2;messageid=1",
        "x\t8",
        "x😀9",
    ]
    for key in keys:
        await store.put(key, {"key": key}, None)
    for key in keys:
        doc = await store.get(key)
        assert doc is not None and doc.value == {"key": key}, key
    assert [k for k, _ in await store.list("x")] == sorted(k for k in keys if k.startswith("x"))
    assert [k for k, _ in await store.list("ü/")] == ["ü/é"]
    assert [k for k, _ in await store.list("x%")] == ["x%3"]
    assert [k for k, _ in await store.list("ended:2026-11-27/")] == ["ended:2026-11-27/abc"]
    assert [k for k, _ in await store.list("")] == sorted(keys)
    await store.delete("x/5", 1)
    assert "x/5" not in [k for k, _ in await store.list("x")]


async def test_a_large_document_round_trips(store: Storage) -> None:
    seen = {f"detection-{n:06d}": ["2026-11-27T12:00:00+00:00", "2026-11-27T11:59:00+00:00"] for n in range(2500)}
    value = {"seen": seen, "note": "é" * 20_000}  # ~200,000 characters of JSON
    await store.put("alerts:tenant:big", value, None)
    doc = await store.get("alerts:tenant:big")
    assert doc is not None and doc.value == value
    await store.put("alerts:tenant:big", {**value, "more": 1}, 1)
    listed = dict(await store.list("alerts:tenant:"))
    assert listed["alerts:tenant:big"].value["more"] == 1 and listed["alerts:tenant:big"].version == 2


async def test_azure_refuses_a_document_too_large_for_one_entity_by_name(azure_store_factory: Any) -> None:
    from adapters.azure_storage import DocumentTooLarge

    store = azure_store_factory()
    try:
        with pytest.raises(DocumentTooLarge, match="document huge.*at most"):
            await store.put("huge", {"s": "a" * 600_000}, None)
        assert await store.get("huge") is None
    finally:
        await store.close()


async def test_azure_tables_use_the_prefix_so_bots_can_share_an_account(azure_store_factory: Any) -> None:
    one, two = azure_store_factory("botone"), azure_store_factory("bottwo")
    try:
        await one.put("k", {"bot": 1}, None)
        await one.append_audit(AuditEntry(actor="a", command="c", outcome="ok"))
        assert await two.get("k") is None and await two.audit_tail(5) == []
        assert await two.put("k", {"bot": 2}, None) == 1
        assert (await one.get("k")).value == {"bot": 1}  # type: ignore[union-attr]
    finally:
        await one.close()
        await two.close()
