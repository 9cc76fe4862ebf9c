"""`python app.py poll-once` in a real subprocess, sharing the SQLite store with the server: it sends what is due
through the stored conversation reference (--dev: unauthenticated, loopback only) and prints it as JSON."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from adapters.storage import SQLiteStorage
from tests.support.botapp import TECH, TENANT, BotApp, channel_chat
from tests.support.graph_standin import GraphStandin, payloads
from tests.support.graph_standin import identity_protection as ip
from tests.support.graph_standin.alerts_world import Clock, tenant_id
from tests.support.stores import SharedStore

ROOT = Path(__file__).resolve().parents[1]
T0 = tenant_id(0)


async def _poll_once(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "app.py",
        "poll-once",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode, out.decode(), err.decode()


def _toml(db: Path, graph_url: str, tenants: int = 1, alerts: tuple[str, ...] = (), storage: str | None = None) -> str:
    lines = [
        f'allowed_tenants = ["{TENANT}"]',
        "[roles]",
        f'technicians = ["{TECH.aad_id}"]',
        *((storage.strip(),) if storage else ("[storage]", f'path = "{db}"')),
        "[graph]",
        f'endpoint = "{graph_url}"',
        "[alerts]",
        "interval_seconds = 60",
        *alerts,
    ]
    for i in range(tenants):
        lines += [
            "[[tenants]]",
            f'name = "T{i}"',
            f'tenant_id = "{tenant_id(i)}"',
            f'domains = ["t{i}.example"]',
            'credential = "managed_identity"',
        ]
    return "\n".join([*lines, ""])


@asynccontextmanager
async def _server(
    tmp_path: Path,
    level: str,
    *,
    latency: float = 0.0,
    alerts: tuple[str, ...] = (),
    shared: SharedStore | None = None,
) -> AsyncIterator[tuple[GraphStandin, BotApp, Any, dict[str, str]]]:
    """A running Cordon (dev, SQLite at tmp_path or the `shared` store) with a channel subscribed to T0 at `level`,
    the Graph stand-in, and the environment a `poll-once` child process needs to share its configuration and store."""
    db = tmp_path / "cordon.db"
    async with GraphStandin(home_tenant=T0, extensions=[ip.register], latency=latency) as graph:
        graph.tenant(T0).skus = payloads.premium_skus("P2")
        config_file = tmp_path / "cordon.toml"
        config_file.write_text(
            _toml(db, graph.url, alerts=alerts, storage=shared.toml() if shared else None), encoding="utf-8"
        )
        from adapters.config import load_config

        store = shared.open() if shared else SQLiteStorage(db)
        channel = channel_chat()
        try:
            async with BotApp.started(
                config=load_config(config_file), storage=store, dev=True, app_id="", clock=Clock()
            ) as bot:
                await bot.install(channel)
                said = await bot.send_message(f"alerts on {level} --tenant T0", conversation=channel)
                assert said.status < 300 and "will be posted here" in bot.replies(channel.id)[-1].text
                env = {k: v for k, v in (shared.env if shared else os.environ).items() if not k.startswith("Microsoft")}
                env.update(graph.environ(), CORDON_CONFIG=str(config_file), PYTHONPATH=str(ROOT))
                yield graph, bot, channel, env
        finally:
            await store.close()


async def test_poll_once_sends_with_the_servers_store_and_prints_json(tmp_path: Path) -> None:
    async with _server(tmp_path, "high") as (graph, bot, channel, env):
        user = payloads.user("alice@t0.example", "Alice")
        risk = ip.data(graph, T0)
        now = dt.datetime.now(dt.UTC)
        alert = risk.add_detection(ip.risk_detection(user, detected=now - dt.timedelta(minutes=2)))
        risk.add_detection(ip.risk_detection(user, detected=now - dt.timedelta(minutes=1), level="low"))
        code, out, err = await _poll_once(env, "--json", "--dev")
        assert code == 0, err
        assert json.loads(out) == [
            {
                "detection_id": alert["id"],
                "user": "alice@t0.example",
                "risk_level": "high",
                "conversation": channel.id,
                "status": "sent",
            }
        ]
        cards = [c for call in bot.replies(channel.id) for c in call.cards]
        assert len(cards) == 1 and "alice@t0.example" in json.dumps(cards[0])
        assert bot.connector.calls[-1].authorization is None  # --dev: unauthenticated, to loopback
        code, out, err = await _poll_once(env, "--json", "--dev")
        assert code == 0 and json.loads(out) == []  # shared de-duplication: nothing twice
        code, out, err = await _poll_once(env, "--tenant", "Nowhere", "--dev")
        assert code == 2 and "not a tenant Cordon acts in" in err
        code, out, err = await _poll_once({k: v for k, v in env.items()}, "--json")
        assert code == 2 and "MicrosoftAppId" in err


async def test_two_processes_polling_one_store_at_once_alert_once_per_detection(
    tmp_path: Path, shared_store: SharedStore
) -> None:
    """Two Cordon processes (two `poll-once`, started together) share the store (SQLite file or Azure Table storage
    on Azurite): the lease lets one of them poll the tenant, and seen ids and the outbox make every detection one
    alert, whichever process sent it."""
    async with _server(
        tmp_path, "low", latency=0.3, alerts=("max_cards_per_10_minutes = 100",), shared=shared_store
    ) as (graph, bot, channel, env):
        now = dt.datetime.now(dt.UTC)
        expected = {}
        for n in range(6):
            user = payloads.user(f"user{n}@t0.example", f"User {n}")
            det = ip.data(graph, T0).add_detection(
                ip.risk_detection(user, detected=now - dt.timedelta(minutes=3 - n / 2), level="medium")
            )
            expected[det["id"]] = user["userPrincipalName"]
        runs = [
            *await asyncio.gather(_poll_once(env, "--json", "--dev"), _poll_once(env, "--json", "--dev")),
            await _poll_once(env, "--json", "--dev"),
        ]  # the third: anything the first two left behind
        sent = []
        for code, out, err in runs:
            assert code == 0, err
            sent += [(r["detection_id"], r["status"]) for r in json.loads(out)]
        assert sorted(sent) == sorted((d, "sent") for d in expected)  # each once, none lost
        cards = [c for call in bot.replies(channel.id) for c in call.cards]
        shown = sorted(next(u for u in expected.values() if u in json.dumps(c)) for c in cards)
        assert shown == sorted(expected.values())  # one card per detection (one user each)


async def test_poll_once_names_an_unlicensed_or_unsubscribed_tenant_and_exits_3_when_asked_for_it(
    tmp_path: Path,
) -> None:
    from dialogs.alerts import state as st

    db = tmp_path / "cordon.db"
    async with GraphStandin(home_tenant=T0, extensions=[ip.register]) as graph:
        config_file = tmp_path / "cordon.toml"
        config_file.write_text(_toml(db, graph.url), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("Microsoft")}
        env.update(graph.environ(), CORDON_CONFIG=str(config_file), PYTHONPATH=str(ROOT))
        code, out, err = await _poll_once(env, "--tenant", "T0", "--dev")
        assert code == 0 and "T0: no channel or chat subscribes" in err
        store = SQLiteStorage(db)
        try:
            await st.subscribe(
                store,
                st.Subscription(
                    tenant_id=T0,
                    tenant_name="T0",
                    conversation_id="19:x@thread.v2",
                    conversation_kind="channel",
                    level="medium",
                    created_by="tess",
                    created_at="2026-11-27T21:00:00Z",
                ),
            )
        finally:
            await store.close()
        graph.tenant(T0).skus = payloads.premium_skus("P1")
        code, out, err = await _poll_once(env, "--tenant", "T0", "--dev", "--json")
        assert code == 3 and json.loads(out) == []
        assert "T0: not licensed" in err and "Entra ID P2" in err
        code, out, err = await _poll_once(env, "--dev", "--json")  # every tenant: a licence is not an error
        assert code == 0 and "T0: not licensed" in err
