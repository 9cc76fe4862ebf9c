"""An HTTPS server on 127.0.0.1 for MTA-STS policy files, answering per Host header, in its own thread.

    server = PolicyServer(ca.server_context(["mta-sts.example.test"]),
                          {"mta-sts.example.test": Policy(body="version: STSv1\\n...")}).start()
    HttpsOptions(ssl_context=ca.client_context(), port=server.port, allow_private=True)

A host not in the table gets 404. `Policy` sets the status, content type, body and extra headers (a redirect's
Location), so every way a policy host can be wrong can be served.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Policy:
    body: str | bytes = ""
    status: int = 200
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)


class PolicyServer:
    def __init__(self, context: ssl.SSLContext, policies: dict[str, Policy]) -> None:
        self.context = context
        self.policies = policies
        self.port = 0
        self.requests: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        host = request.host.rsplit(":", 1)[0].lower()
        self.requests.append(f"{host}{request.path}")
        policy = self.policies.get(host)
        if policy is None or request.path != "/.well-known/mta-sts.txt":
            return web.Response(status=404, text="not found")
        body = policy.body.encode() if isinstance(policy.body, str) else policy.body
        return web.Response(
            status=policy.status, body=body, headers={"Content-Type": policy.content_type, **policy.headers}
        )

    def start(self) -> PolicyServer:
        ready = threading.Event()

        async def serve() -> None:
            app = web.Application()
            app.router.add_route("GET", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.context)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="policy-server", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the policy server did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop

        async def shutdown() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None
