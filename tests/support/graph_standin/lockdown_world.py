"""A ready-made Contoso for lock-down tests: a victim with hostile inbox rules, an admin, a break-glass account,
sign-ins from two countries, a security method registered yesterday; plus a controllable clock and config.

    data, people = populate(standin)                         # LockdownData + {"alice": user payload, ...}
    config = lockdown_config(standin.url, lockdown={"expiry_minutes": 30})
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.config import CordonConfig, parse_config
from tests.support.graph_standin import payloads
from tests.support.graph_standin.fixtures import CONTOSO
from tests.support.graph_standin.lockdown_payloads import (
    mail_folder,
    message_rule,
    registered_security_info,
    risky_user,
    sign_in,
)
from tests.support.graph_standin.lockdown_routes import LockdownData

START = dt.datetime(2026, 11, 27, 22, 0, tzinfo=dt.UTC)
TECH_ID = "11111111-1111-4111-8111-111111111111"
APPROVER_ID = "22222222-2222-4222-8222-222222222222"
APPROVER2_ID = "44444444-4444-4444-8444-444444444444"


class Clock:
    """A clock tests move by hand (`clock.advance(minutes=31)`)."""

    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def lockdown_config(url: str, *, roles: dict[str, list[str]] | None = None, **sections: Any) -> CordonConfig:
    return parse_config(
        {
            "graph": {"endpoint": url},
            "roles": roles
            or {"technicians": [TECH_ID, APPROVER_ID, APPROVER2_ID], "approvers": [APPROVER_ID, APPROVER2_ID, TECH_ID]},
            "tenants": [
                {
                    "name": "Contoso",
                    "tenant_id": CONTOSO,
                    "domains": ["contoso.com", "contoso.onmicrosoft.com"],
                    "credential": "managed_identity",
                    "break_glass": ["breakglass@contoso.com"],
                }
            ],
            **sections,
        }
    )


def populate(standin: Any, *, licence: str = "P2", now: dt.datetime = START) -> tuple[LockdownData, dict[str, Any]]:
    state = standin.state
    state.skus = payloads.premium_skus(licence)
    data = LockdownData.of(state)
    alice = state.add_user(
        "alice@contoso.com",
        display_name="Alice Victim",
        methods=[payloads.authenticator_method("iPhone 15"), payloads.phone_method("+1 425 555 0100", created=now)],
        last_sign_in=now - dt.timedelta(hours=1),
    )
    bob = state.add_user(
        "bob@contoso.com",
        display_name="Bob Admin",
        roles=[payloads.directory_role("Global Administrator", payloads.GLOBAL_ADMIN)],
    )
    glass = state.add_user("breakglass@contoso.com", display_name="Emergency Access")
    aid = alice["id"]
    rss = data.add_folder(aid, mail_folder("RSS Feeds"))
    deleted = data.add_folder(aid, mail_folder("Deleted Items"), "deleteditems")
    data.add_folder(aid, mail_folder("Junk Email"), "junkemail")
    newsletters = data.add_folder(aid, mail_folder("Newsletters"))
    data.rules[aid] = [
        message_rule("..", forward_to=["collector@evil.example"], sequence=1),
        message_rule("Hide replies", move_to_folder=rss["id"], mark_as_read=True, sequence=2),
        message_rule("Clean", delete=True, sequence=3),
        message_rule(
            "To my manager", redirect_to=["carol@contoso.com"], sequence=4, conditions={"subjectContains": ["urgent"]}
        ),
        message_rule(
            "Newsletters", move_to_folder=newsletters["id"], sequence=5, conditions={"senderContains": ["news@"]}
        ),
        message_rule("Old trash", move_to_folder=deleted["id"], sequence=6, enabled=False),
    ]
    data.sign_ins += [
        sign_in(alice, now - dt.timedelta(days=1), ip="203.0.113.7", country="NG", app="Office 365 Exchange Online"),
        sign_in(
            alice,
            now - dt.timedelta(days=1, hours=1),
            ip="203.0.113.7",
            country="NG",
            app="Office 365",
            error_code=50126,
        ),
        sign_in(alice, now - dt.timedelta(days=2), ip="198.51.100.20", country="US", app="Microsoft Teams"),
        sign_in(alice, now - dt.timedelta(days=9), ip="198.51.100.20", country="US", app="Microsoft Teams"),
    ]
    data.audits.append(registered_security_info(alice, now - dt.timedelta(hours=20), "Mobile phone", "203.0.113.7"))
    data.risky[aid] = risky_user(alice, "high", "atRisk")
    return data, {"alice": alice, "bob": bob, "breakglass": glass}


class RecordingMessenger:
    """Proactive sends recorded in order (the dialog-level tests' Teams side; end-to-end tests use the real bot)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.updates: list[tuple[str, str, Any]] = []
        self.private: list[tuple[str, str, Any]] = []

    async def send(self, conversation_id: str, reply: Any) -> str:
        self.sent.append((conversation_id, reply))
        return f"proactive-{len(self.sent)}"

    async def update(self, conversation_id: str, message_id: str, reply: Any) -> None:
        self.updates.append((conversation_id, message_id, reply))

    async def send_private(self, tenant_id: str, user_aad_id: str, reply: Any) -> str:
        self.private.append((tenant_id, user_aad_id, reply))
        return f"private-{len(self.private)}"


class RecordingOutbox:
    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.updates: list[tuple[str, Any]] = []
        self.private: list[tuple[str, Any]] = []

    async def send(self, reply: Any, conversation_id: str | None = None) -> str:
        self.sent.append(reply)
        return f"msg-{len(self.sent)}"

    async def update(self, message_id: str, reply: Any, conversation_id: str | None = None) -> None:
        self.updates.append((message_id, reply))

    async def typing(self) -> None:
        return None

    async def send_private(self, user_aad_id: str, reply: Any) -> str:
        self.private.append((user_aad_id, reply))
        return f"private-{len(self.private)}"


class World:
    """Stand-in + config + gateway + clock; `services(storage)` builds the Services a Cordon process would have."""

    def __init__(self, standin: Any, data: LockdownData, people: dict[str, Any], config: CordonConfig) -> None:
        from tests.support.graph_standin.fixtures import make_gateway

        self.standin, self.data, self.people, self.config = standin, data, people, config
        self.clock = Clock()
        self.gateways = [make_gateway(config)]
        self.gateway = self.gateways[0]

    def services(
        self, storage: Any, *, messenger: Any = None, config: CordonConfig | None = None, own_gateway: bool = False
    ) -> Any:
        from dialogs.contract import Services
        from tests.support.graph_standin.fixtures import make_gateway

        gateway = self.gateway
        if own_gateway:  # a second Cordon process has its own Graph clients
            gateway = make_gateway(config or self.config)
            self.gateways.append(gateway)
        return Services(
            config=config or self.config, storage=storage, clock=self.clock, messenger=messenger, graph=gateway
        )

    def router(self, services: Any) -> Any:
        from adapters.roles import RoleResolver
        from dialogs.router import Router

        return Router(services, RoleResolver(services.config.roles))

    def writes(self, kind: str) -> list[Any]:
        """Recorded Graph writes of one kind: block / enable / password / revoke / confirm / rule."""

        def matches(method: str, path: str, body: Any) -> bool:
            return {
                "block": body == {"accountEnabled": False},
                "enable": body == {"accountEnabled": True},
                "password": bool(body and "passwordProfile" in body),
                "revoke": path.endswith("/revokeSignInSessions"),
                "confirm": path.endswith("/confirmCompromised"),
                "rule": "/messageRules/" in path,
            }[kind]

        return [w for w in self.data.writes if matches(*w)]

    async def close(self) -> None:
        for gateway in self.gateways:
            await gateway.close()


@pytest.fixture(name="world")
async def world_fixture(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    from tests.support.graph_standin.fixtures import CONTOSO
    from tests.support.graph_standin.lockdown_routes import register
    from tests.support.graph_standin.server import GraphStandin

    async with GraphStandin(home_tenant=CONTOSO, extensions=[register]) as standin:
        for key, value in standin.environ().items():
            monkeypatch.setenv(key, value)
        data, people = populate(standin)
        w = World(standin, data, people, lockdown_config(standin.url))
        yield w
        await w.close()
