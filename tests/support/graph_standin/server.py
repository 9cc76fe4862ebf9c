"""The Graph stand-in: a real aiohttp server on 127.0.0.1 speaking enough Microsoft Graph v1.0 for Cordon.

It checks bearer tokens it issued itself (through its managed-identity endpoint, App Service or IMDS style),
records every request (host, path, whether a token came with it), injects faults, and pages like Graph
(`$top` capped, `@odata.nextLink`). Route modules register their endpoints with `register(router, standin)`;
other helpers pass their own modules in `extensions=` without editing this file.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tests.support.graph_standin.state import Fault, Recorded, TenantState, error_body

Extension = Callable[[web.UrlDispatcher, "GraphStandin"], None]
TENANT_KEY = web.RequestKey("standin_tenant", str)

_STRING = r"'(?:[^']|'')*'"
_CLAUSE = re.compile(rf"\s*([A-Za-z][A-Za-z0-9/]*)\s+eq\s+({_STRING})\s*")


def parse_filter(text: str) -> list[tuple[str, str]]:
    """A strict parser for `prop eq 'literal' [or prop eq 'literal' ...]`; ValueError for anything else."""
    clauses: list[tuple[str, str]] = []
    rest = text
    while True:
        match = _CLAUSE.match(rest)
        if not match:
            raise ValueError(text)
        clauses.append((match.group(1), match.group(2)[1:-1].replace("''", "'")))
        rest = rest[match.end() :]
        if not rest:
            return clauses
        if not rest.startswith("or "):
            raise ValueError(text)
        rest = rest[3:]


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(payload).encode(), status=status, headers=headers, content_type="application/json"
    )


def graph_error(status: int, code: str | None = None, message: str | None = None) -> web.Response:
    return json_response(error_body(status, code, message), status)


class GraphStandin:
    """Start with `async with GraphStandin(home_tenant=...) as graph:`; `graph.url` is the Graph endpoint."""

    def __init__(
        self,
        *,
        home_tenant: str,
        extensions: Iterable[Extension] = (),
        latency: float = 0.0,
        max_page: int = 999,
        default_page: int = 100,
        record: bool = True,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.home_tenant = home_tenant
        self.tenants: dict[str, TenantState] = {home_tenant: TenantState(home_tenant)}
        self.faults: list[Fault] = []
        self.requests: list[Recorded] = []
        self.latency = latency
        self.max_page = max_page
        self.default_page = default_page
        self.record = record
        self.request_count = 0
        self.tokens: dict[str, str] = {}  # token -> tenant id
        self.identity_header = secrets.token_hex(12)
        self.identity_requests = 0
        self.next_link_base: str | None = None  # send nextLinks to another origin (token-leak tests)
        self.extensions = list(extensions)
        self.models: dict[str, str] = {}  # GET route -> msgraph model ("module:Class") its answers must parse into
        self.apps: dict[tuple[str, str], Any] = {}  # (tenant, client id) -> authority.AppRegistration
        self.token_requests: list[dict[str, str]] = []
        self.tls = tls
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.authority_url = ""  # https://localhost:PORT, when started with `tls` (msal needs https)

    # --- state ---------------------------------------------------------------------------------------------------
    @property
    def state(self) -> TenantState:
        return self.tenants[self.home_tenant]

    def tenant(self, tenant_id: str) -> TenantState:
        return self.tenants.setdefault(tenant_id, TenantState(tenant_id))

    def state_for(self, request: web.Request) -> TenantState:
        return self.tenants[request[TENANT_KEY]]

    def issue_token(self, tenant_id: str) -> str:
        """An access token shaped like Entra's (a JWT whose `tid` names the tenant it is for)."""
        import jwt

        claims = {
            "tid": tenant_id,
            "aud": "https://graph.microsoft.com",
            "iat": int(time.time()),
            "exp": int(time.time()) + 3600,
            "jti": "standin." + secrets.token_urlsafe(12),
        }
        token = jwt.encode(claims, secrets.token_bytes(32), algorithm="HS256")
        self.tokens[token] = tenant_id
        return token

    def describe(self, router: web.UrlDispatcher, path: str, handler: Callable[..., Any], model: str) -> None:
        """Add a GET route and name the msgraph-sdk model its payloads must parse into (checked by a test)."""
        router.add_get(path, handler)
        self.models[path] = model

    def add_fault(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def environ(self) -> dict[str, str]:
        """App Service managed-identity variables pointing at this stand-in."""
        return {"IDENTITY_ENDPOINT": f"{self.url}/msi/token", "IDENTITY_HEADER": self.identity_header}

    def graph_requests(self, path_part: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith("/v1.0") and path_part in r.path]

    # --- paging --------------------------------------------------------------------------------------------------
    def page_size(self, request: web.Request) -> int:
        top = request.query.get("$top")
        if top is None:
            return self.default_page
        if not top.isdigit() or not 1 <= int(top) <= self.max_page:
            raise web.HTTPBadRequest(
                body=json.dumps(
                    error_body(
                        400,
                        "Request_BadRequest",
                        f"Invalid page size specified: '{top}'. Must be between 1 and {self.max_page} inclusive.",
                    )
                ),
                content_type="application/json",
            )
        return int(top)

    def page(
        self,
        request: web.Request,
        total: int,
        items: Callable[[int, int], list[dict[str, Any]]],
    ) -> web.Response:
        """A collection page starting at `$skiptoken`, with a nextLink when more remain."""
        size = self.page_size(request)
        token = request.query.get("$skiptoken", "0")
        start = int(token, 16) if re.fullmatch(r"[0-9a-f]{1,12}", token) else 0
        selected = set(request.query.get("$select", "").split(",")) - {""}
        page = items(start, size)
        if selected:  # as Graph does: only the selected properties (and the type annotations)
            page = [{k: v for k, v in item.items() if k in selected or k.startswith("@")} for item in page]
        payload: dict[str, Any] = {"value": page}
        if start + size < total:
            query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = format(start + size, "x")
            base = self.next_link_base or f"{request.scheme}://{request.host}"
            payload["@odata.nextLink"] = f"{base}{request.path}?{urlencode(query)}"
        return json_response(payload)

    # --- middleware ----------------------------------------------------------------------------------------------
    @web.middleware
    async def _graph_front(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        if not request.path.startswith("/v1.0/") and not request.path.startswith("/beta/"):
            return await handler(request)
        self.request_count += 1
        auth = request.headers.get("Authorization", "")
        tenant = self.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if self.record:
            self.requests.append(
                Recorded(
                    request.method,
                    request.path,
                    request.query_string,
                    request.headers.get("Host", ""),
                    bool(auth),
                    tenant,
                )
            )
        if tenant is None:
            return graph_error(401, message="Access token is empty." if not auth else None)
        request[TENANT_KEY] = tenant
        path_qs = request.path_qs
        for fault in self.faults:
            if not fault.matches(request.method, path_qs):
                continue
            fault.hits += 1
            if fault.times > 0:
                fault.times -= 1
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status:
                return json_response(fault.body or error_body(fault.status), fault.status, fault.headers)
            if fault.malformed:
                return web.Response(body=b'{"value": [{"id": "12', content_type="application/json")
            break
        if self.latency:
            await asyncio.sleep(self.latency)
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.content_type == "application/json":
                raise
            return graph_error(exc.status)

    # --- managed identity ----------------------------------------------------------------------------------------
    def _mi_token(self, resource: str) -> tuple[str, int]:
        self.identity_requests += 1
        return self.issue_token(self.home_tenant), 3600

    async def _app_service_token(self, request: web.Request) -> web.Response:
        if request.headers.get("X-IDENTITY-HEADER") != self.identity_header:
            return json_response({"statusCode": 400, "message": "Unable to load the proper Managed Identity."}, 400)
        if request.query.get("api-version") != "2019-08-01" or not request.query.get("resource"):
            return json_response({"statusCode": 400, "message": "Bad request"}, 400)
        token, lifetime = self._mi_token(request.query["resource"])
        return json_response(
            {
                "access_token": token,
                "expires_on": str(int(time.time()) + lifetime),
                "resource": request.query["resource"],
                "token_type": "Bearer",
                "client_id": request.query.get("client_id", "system-assigned"),
            }
        )

    async def _imds_token(self, request: web.Request) -> web.Response:
        if request.headers.get("Metadata") != "true" or not request.query.get("resource"):
            return json_response({"error": "invalid_request", "error_description": "Required metadata header"}, 400)
        token, lifetime = self._mi_token(request.query["resource"])
        return json_response(
            {
                "access_token": token,
                "expires_in": str(lifetime),
                "resource": request.query["resource"],
                "token_type": "Bearer",
            }
        )

    # --- lifecycle -----------------------------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        from tests.support.graph_standin import authority, routes_directory, routes_mfa

        app = web.Application(middlewares=[self._graph_front])
        app.router.add_get("/msi/token", self._app_service_token)
        app.router.add_get("/metadata/identity/oauth2/token", self._imds_token)
        for register in (authority.register, routes_directory.register, routes_mfa.register, *self.extensions):
            register(app.router, self)
        return app

    async def start(self) -> GraphStandin:
        self._runner = web.AppRunner(self.build_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        if self.tls is not None:
            secure = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls)
            await secure.start()
            self.authority_url = f"https://localhost:{secure._server.sockets[0].getsockname()[1]}"  # type: ignore
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> GraphStandin:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
