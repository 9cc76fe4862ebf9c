"""A local stand-in for the Bot Connector service (the `serviceUrl` Teams gives the bot), on 127.0.0.1.

It runs aiohttp on its own event loop in a daemon thread, so it answers whatever the bot does on the test's loop
(the SDK mixes blocking and async HTTP). It records every call in `calls` and can be told to fail:

    connector.fail("19:abc@thread.tacv2", status=429, retry_after=7)   # every call to that conversation
    connector.add_member(conversation_id=None, aad_id=..., upn=..., name=...)  # the roster (None: any conversation)
    connector.teams_ids_only = True   # a chat opened with an object id answers UserNotFound, like the Playground

Endpoints: POST /v3/conversations (createConversation; one 1:1 chat per user is reused), POST
/v3/conversations/{id}/activities[/{activityId}] (send / reply), PUT .../activities/{activityId} (update),
DELETE .../activities/{activityId}, GET /v3/conversations/{id}/members[/{memberId}] (roster).
When `expected_app_id` and `openid` are given, calls must carry the bot's outbound token (else 401).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Call:
    """One request to the stand-in. `conversation_id` is the one in the URL. `activity_id`: for "send" (a new
    message in the conversation) the id the stand-in gave it; otherwise the activity id in the URL (the one a
    "reply" answers, an "update" changes). `new_id`: the id given to what a "send" or "reply" posted."""

    kind: str  # "send" | "reply" | "update" | "delete" | "create" | "member" | "members"
    conversation_id: str
    activity_id: str | None
    body: dict[str, Any] | None
    authorization: str | None
    status: int
    new_id: str | None = None

    @property
    def reply_to_id(self) -> str | None:
        """The `replyToId` the posted activity carried (None: a new message, not a reply)."""
        return (self.body or {}).get("replyToId")

    @property
    def text(self) -> str | None:
        return (self.body or {}).get("text")

    @property
    def cards(self) -> list[dict[str, Any]]:
        return [
            a.get("content")
            for a in (self.body or {}).get("attachments") or []
            if a.get("contentType") == "application/vnd.microsoft.card.adaptive"
        ]


@dataclass
class Failure:
    status: int
    retry_after: float | None = None
    times: int | None = None  # None: until cleared
    code: str = "Failure"


@dataclass
class Member:
    aad_id: str
    upn: str
    name: str
    tenant_id: str | None = None
    teams_id: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.teams_id or f"29:{self.aad_id}",
            "name": self.name,
            "aadObjectId": self.aad_id,
            "userPrincipalName": self.upn,
            "email": self.upn,
            "givenName": self.name.split(" ")[0],
            "surname": self.name.split(" ")[-1],
            "tenantId": self.tenant_id,
            "userRole": "user",
        }


@dataclass
class ConnectorStandIn:
    expected_app_id: str | None = None
    openid: Any = None  # tests.support.openid.OpenIdServer, to verify outbound tokens
    calls: list[Call] = field(default_factory=list)
    failures: dict[str, Failure] = field(default_factory=dict)
    members: dict[tuple[str | None, str], Member] = field(default_factory=dict)
    roster_status: int | None = None  # answer every roster call with this status (e.g. 500) when set
    private_chats: dict[str, str] = field(default_factory=dict)  # user id -> 1:1 conversation id
    # as the Microsoft 365 Agents Playground (0.2.28): createConversation with anything but a roster member's Teams id
    # (`29:…`) creates a chat whose every message answers 404 UserNotFound; False: any id works (an object id too)
    teams_ids_only: bool = False

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- control --------------------------------------------------------------------------------------------------
    def start(self) -> ConnectorStandIn:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            app = web.Application(client_max_size=4 * 1024 * 1024)
            app.router.add_post("/v3/conversations", self._create)
            app.router.add_post("/v3/conversations/{conv}/activities", self._send)
            app.router.add_post("/v3/conversations/{conv}/activities/{aid}", self._reply)
            app.router.add_put("/v3/conversations/{conv}/activities/{aid}", self._update)
            app.router.add_delete("/v3/conversations/{conv}/activities/{aid}", self._delete)
            app.router.add_get("/v3/conversations/{conv}/members", self._members)
            app.router.add_get("/v3/conversations/{conv}/members/{member}", self._member)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = self._runner.addresses[0][1]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="connector-stand-in", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(10)
            self._loop = None

    def __enter__(self) -> ConnectorStandIn:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The serviceUrl to put in activities (with the trailing slash Teams uses)."""
        return f"http://127.0.0.1:{self.port}/"

    def fail(
        self, conversation_id: str, status: int, *, retry_after: float | None = None, times: int | None = None
    ) -> None:
        with self._lock:
            self.failures[conversation_id] = Failure(status, retry_after, times)

    def clear_failures(self) -> None:
        with self._lock:
            self.failures.clear()

    def add_member(
        self,
        aad_id: str,
        upn: str,
        name: str,
        *,
        tenant_id: str | None = None,
        conversation_id: str | None = None,
        teams_id: str = "",
    ) -> Member:
        member = Member(aad_id=aad_id, upn=upn, name=name, tenant_id=tenant_id, teams_id=teams_id)
        with self._lock:
            self.members[(conversation_id, member.aad_id)] = member
            self.members[(conversation_id, member.as_json()["id"])] = member
        return member

    def posted(self, conversation_id: str | None = None, kinds: tuple[str, ...] = ("send", "reply")) -> list[Call]:
        """Messages the bot posted (optionally to one conversation), oldest first."""
        with self._lock:
            return [
                c
                for c in self.calls
                if c.kind in kinds
                and c.status < 300
                and (conversation_id is None or c.conversation_id == conversation_id)
            ]

    def updates(self, conversation_id: str | None = None) -> list[Call]:
        return self.posted(conversation_id, kinds=("update",))

    async def wait_for(self, predicate: Callable[[list[Call]], bool], timeout: float = 10.0) -> list[Call]:
        """Wait (without blocking the loop) until `predicate(calls)` holds; returns the calls."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                snapshot = list(self.calls)
            if predicate(snapshot):
                return snapshot
            if time.monotonic() > deadline:
                raise AssertionError(f"connector stand-in: condition not met in {timeout}s; calls: {snapshot}")
            await asyncio.sleep(0.02)

    # --- handlers -------------------------------------------------------------------------------------------------
    def _check(
        self,
        request: web.Request,
        kind: str,
        conv: str,
        aid: str | None,
        body: dict[str, Any] | None,
        new_id: str | None = None,
    ) -> web.Response | None:
        auth = request.headers.get("Authorization")
        status = 200
        answer: web.Response | None = None
        if self.expected_app_id and self.openid is not None:
            token = auth.split(" ", 1)[1] if auth and auth.startswith("Bearer ") else ""
            if not self.openid.verify_outbound(token, self.expected_app_id):
                status, answer = 401, web.json_response({"error": {"code": "Unauthorized"}}, status=401)
        with self._lock:
            failure = self.failures.get(conv)
            if answer is None and failure is not None:
                status = failure.status
                headers = {"Retry-After": str(int(failure.retry_after))} if failure.retry_after is not None else {}
                answer = web.json_response(
                    {"error": {"code": failure.code, "message": f"told to answer {status}"}},
                    status=status,
                    headers=headers,
                )
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        del self.failures[conv]
            posted = new_id if status < 300 else None
            self.calls.append(Call(kind, conv, posted if kind == "send" else aid, body, auth, status, posted))
        return answer

    def _new_id(self) -> str:
        return f"act-{next(self._ids)}"

    async def _send(self, request: web.Request) -> web.Response:
        conv = request.match_info["conv"]
        body = await request.json()
        new_id = self._new_id()
        return self._check(request, "send", conv, None, body, new_id) or web.json_response({"id": new_id})

    async def _reply(self, request: web.Request) -> web.Response:
        conv, aid = request.match_info["conv"], request.match_info["aid"]
        body = await request.json()
        new_id = self._new_id()
        return self._check(request, "reply", conv, aid, body, new_id) or web.json_response({"id": new_id})

    async def _update(self, request: web.Request) -> web.Response:
        conv, aid = request.match_info["conv"], request.match_info["aid"]
        body = await request.json()
        return self._check(request, "update", conv, aid, body) or web.json_response({"id": aid})

    async def _delete(self, request: web.Request) -> web.Response:
        conv, aid = request.match_info["conv"], request.match_info["aid"]
        return self._check(request, "delete", conv, aid, None) or web.Response(status=200)

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        members = body.get("members") or []
        user = members[0].get("id", "") if members else ""
        with self._lock:
            known = any(m.as_json()["id"] == user for m in self.members.values())
            conv = self.private_chats.get(user) or f"a:1:1-{user}"
        failed = self._check(request, "create", conv, None, body)
        if failed is not None:
            return failed
        with self._lock:
            self.private_chats.setdefault(user, conv)
            if self.teams_ids_only and not known:
                self.failures[conv] = Failure(404, code="UserNotFound")
        return web.json_response({"id": conv, "activityId": self._new_id(), "serviceUrl": self.url})

    def _find_member(self, conv: str, member_id: str) -> Member | None:
        with self._lock:
            return self.members.get((conv, member_id)) or self.members.get((None, member_id))

    async def _member(self, request: web.Request) -> web.Response:
        conv, member_id = request.match_info["conv"], request.match_info["member"]
        failed = self._check(request, "member", conv, member_id, None)
        if failed is not None:
            return failed
        if self.roster_status is not None:
            return web.json_response({"error": {"code": "Failure"}}, status=self.roster_status)
        member = self._find_member(conv, member_id)
        if member is None:
            return web.json_response({"error": {"code": "MemberNotFoundInConversation"}}, status=404)
        return web.json_response(member.as_json())

    async def _members(self, request: web.Request) -> web.Response:
        conv = request.match_info["conv"]
        failed = self._check(request, "members", conv, None, None)
        if failed is not None:
            return failed
        with self._lock:
            seen = {id(m): m for (c, _), m in self.members.items() if c in (None, conv)}
        return web.json_response([m.as_json() for m in seen.values()])
