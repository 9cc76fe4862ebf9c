"""`python app.py poll-once` in a real subprocess, sharing the SQLite store with the server: it sends what is due
through the stored conversation reference (--dev: unauthenticated, loopback only) and prints it as JSON."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from adapters.storage import SQLiteStorage
from tests.support.botapp import TECH, TENANT, BotApp, channel_chat
from tests.support.graph_standin import GraphStandin, payloads
from tests.support.graph_standin import identity_protection as ip
from tests.support.graph_standin.alerts_world import Clock, tenant_id

ROOT = Path(__file__).resolve().parents[1]
T0 = tenant_id(0)


async def _poll_once(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "app.py", "poll-once", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode, out.decode(), err.decode()


def _toml(db: Path, graph_url: str) -> str:
    return "\n".join([
        f'allowed_tenants = ["{TENANT}"]',
        "[roles]", f'technicians = ["{TECH.aad_id}"]',
        "[storage]", f'path = "{db}"',
        "[graph]", f'endpoint = "{graph_url}"',
        "[alerts]", "interval_seconds = 60",
        "[[tenants]]", 'name = "T0"', f'tenant_id = "{T0}"', 'domains = ["t0.example"]',
        'credential = "managed_identity"', ""])


async def test_poll_once_sends_with_the_servers_store_and_prints_json(tmp_path: Path) -> None:
    db = tmp_path / "cordon.db"
    async with GraphStandin(home_tenant=T0, extensions=[ip.register]) as graph:
        graph.tenant(T0).skus = payloads.premium_skus("P2")
        config_file = tmp_path / "cordon.toml"
        config_file.write_text(_toml(db, graph.url), encoding="utf-8")
        from adapters.config import load_config

        config = load_config(config_file)
        store = SQLiteStorage(db)
        channel = channel_chat()
        try:
            async with BotApp.started(config=config, storage=store, dev=True, app_id="", clock=Clock()) as bot:
                await bot.install(channel)
                assert (await bot.send_message("alerts on high --tenant T0", conversation=channel)).status < 300
                assert "will be posted here" in bot.replies(channel.id)[-1].text
                user = payloads.user("alice@t0.example", "Alice")
                risk = ip.data(graph, T0)
                import datetime as dt

                now = dt.datetime.now(dt.UTC)
                alert = risk.add_detection(ip.risk_detection(user, detected=now - dt.timedelta(minutes=2)))
                risk.add_detection(ip.risk_detection(user, detected=now - dt.timedelta(minutes=1), level="low"))
                env = {k: v for k, v in os.environ.items() if not k.startswith("Microsoft")}
                env.update(graph.environ(), CORDON_CONFIG=str(config_file), PYTHONPATH=str(ROOT))
                code, out, err = await _poll_once(env, "--json", "--dev")
                assert code == 0, err
                assert json.loads(out) == [{"detection_id": alert["id"], "user": "alice@t0.example",
                                            "risk_level": "high", "conversation": channel.id, "status": "sent"}]
                cards = [c for call in bot.replies(channel.id) for c in call.cards]
                assert len(cards) == 1 and "alice@t0.example" in json.dumps(cards[0])
                assert bot.connector.calls[-1].authorization is None  # --dev: unauthenticated, to loopback
                code, out, err = await _poll_once(env, "--json", "--dev")
                assert code == 0 and json.loads(out) == []  # shared de-duplication: nothing twice
                code, out, err = await _poll_once(env, "--tenant", "Nowhere", "--dev")
                assert code == 2 and "not a tenant Cordon acts in" in err
                code, out, err = await _poll_once({k: v for k, v in env.items()}, "--json")
                assert code == 2 and "MicrosoftAppId" in err
        finally:
            await store.close()
