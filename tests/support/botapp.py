"""End-to-end harness: the real Cordon app (`app.build_app`) on a free 127.0.0.1 port, with real JWT validation
against a local OpenID/JWKS server and a local Bot Connector stand-in that records what the bot posts.

Use it from any async test:

    from tests.support.botapp import BotApp, TECH, APPROVER, TENANT, channel_chat

    async def test_lockdown_asks_an_approver(tmp_path):
        async with BotApp.started(config=BotApp.config(lockdown={"expiry_minutes": 5}),
                                  storage=MemoryStorage(), clock=my_clock) as bot:
            result = await bot.send_message("lockdown alice@contoso.com", actor=TECH)
            assert result.status == 201
            card = bot.replies()[-1].cards[0]                 # what reached the connector stand-in
            pressed = await bot.invoke_action("lockdown.approve", {"request_id": "..."}, actor=APPROVER,
                                              card_message_id=bot.replies()[-1].activity_id)
            assert pressed.status == 200 and pressed.body["type"] == "application/vnd.microsoft.card.adaptive"

- Users: TECH (technician), APPROVER (approver), NOBODY (no role), FOREIGN (in OTHER_TENANT); all are in the
  connector's roster (`bot.connector.add_member(...)` adds more). `BotApp.config(**sections)` builds a CordonConfig
  with TENANT allowed and TECH/APPROVER in their roles, plus whatever sections you pass (dicts or models).
- Conversations: `personal_chat(user)` (default for a user), `group_chat(id)`, `channel_chat(team, channel)`.
  `bot.install(conversation)` sends the conversationUpdate that saves its reference (needed for proactive sends).
- Requests: `send_message(text, actor=, tenant=, conversation=, mention=True)`, `invoke_action(verb, data, ...)`
  (Action.Execute), `submit_action(verb, data, ...)` (Action.Submit), `post(activity_dict, token=...)` for anything
  else; each returns `Result(status, body)`. Tokens are signed properly unless you pass `token=` yourself
  (`bot.token(**claim_overrides)` mints variants; `token=None` sends no Authorization header).
- What the bot sent: `bot.replies(conversation_id)` (messages), `bot.connector.updates()`, `bot.connector.calls`;
  `await bot.connector.wait_for(lambda calls: ...)` for background work. `bot.messenger` sends proactively;
  `bot.services` is the Services the dialogs see. `bot.connector.fail(conversation_id, 403)` injects failures.
- `limits=bot.http_guard.Limits(...)` changes the server's timeouts and connection cap (default: `serve`'s).
- `background=[...]` picks BACKGROUND entries to start (default: none, so tests start only what they test).
- `tenant=` is MicrosoftAppTenantId (default empty, a MultiTenant bot): the allowed tenants come from the config,
  and Microsoft Graph is used only for the `[[tenants]]` the config names (no managed-identity calls in tests).
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from adapters.config import BotSettings, CordonConfig, parse_config
from tests.support.connector import Call, ConnectorStandIn
from tests.support.openid import OpenIdServer

APP_ID = "5e6f7a8b-1c2d-4e3f-9a0b-c1d2e3f4a5b6"
BOT_ID = f"28:{APP_ID}"
BOT_NAME = "Cordon"
TENANT = "72f988bf-0000-4000-8000-00000000c0de"
OTHER_TENANT = "0badc0de-0000-4000-8000-000000000bad"
CHANNEL_ID = "msteams"


@dataclass(frozen=True)
class User:
    aad_id: str
    upn: str
    name: str
    tenant: str = TENANT

    @property
    def teams_id(self) -> str:
        return f"29:{self.aad_id}"


@dataclass(frozen=True)
class Chat:
    id: str
    kind: str  # personal | groupChat | channel
    team_id: str | None = None
    channel_id: str | None = None


TECH = User("11111111-1111-4111-8111-111111111111", "tess.tech@contoso.com", "Tess Tech")
APPROVER = User("22222222-2222-4222-8222-222222222222", "avery.approver@contoso.com", "Avery Approver")
NOBODY = User("33333333-3333-4333-8333-333333333333", "nora.nobody@contoso.com", "Nora Nobody")
FOREIGN = User("44444444-4444-4444-8444-444444444444", "finn@fabrikam.com", "Finn Foreign", OTHER_TENANT)


def personal_chat(user: User) -> Chat:
    return Chat(id=f"a:personal-{user.aad_id}", kind="personal")


def group_chat(chat_id: str = "19:group-chat-1@thread.v2") -> Chat:
    return Chat(id=chat_id, kind="groupChat")


def channel_chat(
    team_id: str = "19:team-general@thread.tacv2", channel_id: str | None = None, message_id: str | None = None
) -> Chat:
    channel = channel_id or team_id
    conv = channel + (f";messageid={message_id}" if message_id else "")
    return Chat(id=conv, kind="channel", team_id=team_id, channel_id=channel)


@dataclass
class Result:
    status: int
    body: Any


_shared_openid: OpenIdServer | None = None


def shared_openid() -> OpenIdServer:
    """One OpenID server per test process (RSA key generation is the slow part)."""
    global _shared_openid
    if _shared_openid is None:
        _shared_openid = OpenIdServer().start()
    return _shared_openid


class BotApp:
    def __init__(
        self,
        *,
        config: CordonConfig,
        storage: Any,
        clock: Any,
        dev: bool,
        background: list[str],
        app_id: str,
        tenant: str,
        limits: Any = None,
    ) -> None:
        self.limits = limits
        self.openid = shared_openid()
        self.app_id = "" if dev and not app_id else app_id
        self.dev = dev
        self.tenant = tenant
        self.connector = ConnectorStandIn(expected_app_id=self.app_id or None, openid=self.openid)
        self.config = config
        self.storage = storage
        self.clock = clock
        self.background = background
        self.runner: web.AppRunner | None = None
        self.session: aiohttp.ClientSession | None = None
        self.web_app: web.Application | None = None
        self.base_url = ""
        self._ids = itertools.count(1)

    @staticmethod
    def config(**sections: Any) -> CordonConfig:
        data: dict[str, Any] = {
            "allowed_tenants": [TENANT],
            "roles": {"technicians": [TECH.aad_id], "approvers": [APPROVER.aad_id]},
        }
        for key, value in sections.items():
            data[key] = value.model_dump() if hasattr(value, "model_dump") else value
        return parse_config(data)

    @classmethod
    @asynccontextmanager
    async def started(
        cls,
        *,
        config: CordonConfig | None = None,
        storage: Any = None,
        clock: Any = None,
        dev: bool = False,
        background: list[str] | None = None,
        app_id: str = APP_ID,
        tenant: str = "",
        limits: Any = None,
    ) -> AsyncIterator[BotApp]:
        if storage is None:
            from adapters.storage import MemoryStorage

            storage = MemoryStorage()
        bot = cls(
            config=config or cls.config(),
            storage=storage,
            clock=clock,
            dev=dev,
            background=background or [],
            app_id=app_id,
            tenant=tenant,
            limits=limits,
        )
        await bot.start()
        try:
            yield bot
        finally:
            await bot.close()

    @property
    def settings(self) -> BotSettings:
        return BotSettings(
            app_id=self.app_id,
            app_password="",
            app_type="MultiTenant",
            app_tenant_id=self.tenant,
            host="127.0.0.1",
            port=0,
            openid_metadata=self.openid.metadata_url,
        )

    async def start(self) -> None:
        import app as entry

        self.connector.start()
        for user in (TECH, APPROVER, NOBODY, FOREIGN):
            self.connector.add_member(user.aad_id, user.upn, user.name, tenant_id=user.tenant)
        self.web_app = entry.build_app(
            self.settings,
            self.config,
            dev=self.dev,
            storage=self.storage,
            clock=self.clock,
            token_provider=None if not self.app_id else self.openid.outbound_token,
            background=self.background,
        )
        from bot.http_guard import GuardedAppRunner

        self.runner = GuardedAppRunner(self.web_app, limits=self.limits)  # what `serve` runs
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self.runner is not None:
            await self.runner.cleanup()
        self.connector.stop()

    # --- what the bot uses ----------------------------------------------------------------------------------------
    @property
    def services(self) -> Any:
        from bot.server import SERVICES

        assert self.web_app is not None
        return self.web_app[SERVICES]

    @property
    def messenger(self) -> Any:
        return self.services.messenger

    def replies(self, conversation_id: str | None = None) -> list[Call]:
        return self.connector.posted(conversation_id)

    # --- building and sending activities --------------------------------------------------------------------------
    def token(self, **overrides: Any) -> str:
        """A bearer token as the Bot Connector would send it (override claims / `key=` / `kid=` / `alg=`)."""
        return self.openid.channel_token(self.app_id, overrides.pop("service_url", self.connector.url), **overrides)

    def activity(
        self,
        kind: str,
        *,
        actor: User = TECH,
        tenant: str | None = None,
        conversation: Chat | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        chat = conversation or personal_chat(actor)
        tenant_id = tenant or actor.tenant
        channel_data: dict[str, Any] = {"tenant": {"id": tenant_id}}
        if chat.team_id:
            channel_data["team"] = {"id": chat.team_id, "name": "Security"}
            channel_data["channel"] = {"id": chat.channel_id, "name": "General"}
        activity = {
            "type": kind,
            "id": f"msg-{next(self._ids)}-{uuid.uuid4().hex[:6]}",
            "timestamp": "2026-01-01T00:00:00.000Z",
            "channelId": CHANNEL_ID,
            "serviceUrl": self.connector.url,
            "from": {"id": actor.teams_id, "name": actor.name, "aadObjectId": actor.aad_id},
            "conversation": {
                "id": chat.id,
                "conversationType": chat.kind,
                "tenantId": tenant_id,
                "isGroup": chat.kind != "personal",
            },
            "recipient": {"id": BOT_ID, "name": BOT_NAME},
            "channelData": channel_data,
            "locale": "en-US",
        }
        activity.update(fields)
        return activity

    async def post(
        self,
        activity: dict[str, Any] | None = None,
        *,
        token: Any = ...,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Result:
        """POST to /api/messages. `token=...` (default) signs properly, `None` sends no Authorization header."""
        assert self.session is not None
        sent_headers = {"Content-Type": "application/json"}
        if token is ...:
            token = None if self.dev and not self.app_id else self.token()
        if token is not None:
            sent_headers["Authorization"] = token if " " in token else f"Bearer {token}"
        sent_headers.update(headers or {})
        data = raw if raw is not None else json.dumps(activity).encode()
        async with self.session.post(f"{self.base_url}/api/messages", data=data, headers=sent_headers) as response:
            text = await response.text()
            try:
                body = await response.json(content_type=None) if text else None
            except ValueError:
                body = text
            return Result(response.status, body)

    async def send_message(
        self,
        text: str,
        *,
        actor: User = TECH,
        tenant: str | None = None,
        conversation: Chat | None = None,
        mention: bool = True,
        token: Any = ...,
        **fields: Any,
    ) -> Result:
        """A user's message; in channels and group chats (or with mention=True) it @mentions the bot."""
        chat = conversation or personal_chat(actor)
        fields.setdefault("textFormat", "plain")
        if mention:
            at = f"<at>{BOT_NAME}</at>"
            fields["text"] = f"{at} {text}"
            fields["entities"] = [{"type": "mention", "mentioned": {"id": BOT_ID, "name": BOT_NAME}, "text": at}]
        else:
            fields["text"] = text
        return await self.post(
            self.activity("message", actor=actor, tenant=tenant, conversation=chat, **fields), token=token
        )

    async def invoke_action(
        self,
        verb: str,
        data: dict[str, Any] | None = None,
        *,
        actor: User = TECH,
        tenant: str | None = None,
        conversation: Chat | None = None,
        card_message_id: str | None = None,
        token: Any = ...,
    ) -> Result:
        """An Adaptive Card Action.Execute press (`adaptiveCard/action` invoke); the body is the invoke response."""
        value = {"action": {"type": "Action.Execute", "verb": verb, "data": data or {}}, "trigger": "manual"}
        fields: dict[str, Any] = {"name": "adaptiveCard/action", "value": value}
        if card_message_id:
            fields["replyToId"] = card_message_id
        return await self.post(
            self.activity("invoke", actor=actor, tenant=tenant, conversation=conversation, **fields), token=token
        )

    async def submit_action(
        self,
        verb: str,
        data: dict[str, Any] | None = None,
        *,
        actor: User = TECH,
        tenant: str | None = None,
        conversation: Chat | None = None,
        card_message_id: str | None = None,
        token: Any = ...,
    ) -> Result:
        """An Action.Submit press from an older client: a message whose `value` holds the verb and data."""
        fields: dict[str, Any] = {"value": {"verb": verb, **(data or {})}}
        if card_message_id:
            fields["replyToId"] = card_message_id
        return await self.post(
            self.activity("message", actor=actor, tenant=tenant, conversation=conversation, **fields), token=token
        )

    async def install(self, conversation: Chat, *, actor: User = TECH, tenant: str | None = None) -> Result:
        """The conversationUpdate Teams sends when the app is added (saves the conversation reference)."""
        return await self.post(
            self.activity(
                "conversationUpdate",
                actor=actor,
                tenant=tenant,
                conversation=conversation,
                membersAdded=[{"id": BOT_ID, "name": BOT_NAME}],
            )
        )
