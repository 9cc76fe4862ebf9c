"""The listening socket's own defences, below the /api/messages handler (aiohttp has no header timeout).

- Slow clients: a request head (request line and headers) must arrive within `head_timeout` of its first byte (or
  of the connection opening); the handler reads the body within `body_timeout` (`bot/server.py`); an idle
  keep-alive connection is closed after `keepalive_timeout`; a client still sending a body Cordon already answered
  gets `lingering_time` at most.
- At most `max_connections` open connections: a connection beyond them is answered 503 and closed at once.
- Malformed HTTP framing (Content-Length with chunked, over-long lines, bad headers): aiohttp answers 400 but logs
  a traceback at ERROR for every such request; here it is one WARNING line, with the peer and the reason escaped.

Reverse proxies and Azure App Service's front end add their own limits in front of these (see README, hosting).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from adapters.safe_text import for_log

log = logging.getLogger(__name__)

BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
    b"Connection: close\r\nRetry-After: 1\r\n\r\ntoo many open"
)
BUSY_LOG_SECONDS = 60.0  # at most one warning a minute about refused connections (with how many)


@dataclass(frozen=True)
class Limits:
    head_timeout: float = 5.0
    body_timeout: float = 10.0
    keepalive_timeout: float = 30.0
    lingering_time: float = 2.0
    max_connections: int = 512
    max_line_size: int = 8190
    max_field_size: int = 8190


class _Busy:
    """Counts refused connections and logs them at most once a minute (an attacker cannot flood the log)."""

    def __init__(self) -> None:
        self.refused = 0
        self.logged_at = float("-inf")

    def note(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self.refused += 1
        if loop.time() - self.logged_at >= BUSY_LOG_SECONDS:
            log.warning("%d connection(s) refused: %d connections already open (the limit)", self.refused, limit)
            self.refused, self.logged_at = 0, loop.time()


class GuardedRequestHandler(RequestHandler):
    """aiohttp's per-connection protocol with a request-head deadline, a connection cap and quiet framing errors.
    (It reads aiohttp's `_manager`, `_request_count`, `_current_request` and `_messages`; tests cover each path.)"""

    @property
    def limits(self) -> Limits:
        server = self._manager
        return server.limits if isinstance(server, GuardedServer) else Limits()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server: GuardedServer = self._manager  # type: ignore[assignment]
        crowded = len(server.connections) >= server.limits.max_connections
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        if crowded:
            server.busy.note(self._loop, server.limits.max_connections)
            transport.write(BUSY_RESPONSE)  # type: ignore[attr-defined]
            self.force_close()
            return
        self._arm()

    def _arm(self) -> None:
        self._cancel()
        self._head_timer = self._loop.call_later(self.limits.head_timeout, self._head_overdue, self._request_count)

    def _cancel(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None

    def _head_overdue(self, count: int) -> None:
        self._head_timer = None
        if self._force_close or self.transport is None:
            return
        if self._request_count != count or self._current_request is not None or self._messages:
            return  # a request head did arrive, or a request is being handled
        peer = self.transport.get_extra_info("peername")
        log.warning(
            "closed a connection from %s: no complete request head within %g s",
            for_log(peer, 60),
            self.limits.head_timeout,
        )
        self.force_close()

    def data_received(self, data: bytes) -> None:
        before = self._request_count
        super().data_received(data)
        if self._force_close or self._close:
            return
        if self._request_count != before:
            self._cancel()  # a whole request head arrived
        elif data and self._head_timer is None and self._current_request is None and not self._messages:
            self._arm()  # the first bytes of a new head (or of a body Cordon answered without reading)

    def log_access(self, request: Any, response: Any, time: float | None) -> None:
        self._cancel()  # a response is complete: whatever comes next starts its own deadline
        super().log_access(request, response, time)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            peer = self.transport.get_extra_info("peername") if self.transport is not None else None
            reason = exc.message if isinstance(exc.message, str) and exc.message.strip() else type(exc).__name__
            reason = reason.strip().splitlines()[0]
            log.warning("400 for a malformed HTTP request from %s: %s", for_log(peer, 60), for_log(reason, 160))
            return
        super().log_exception(*args, **kw)


class GuardedServer(web.Server):
    """`web.Server` whose connections are `GuardedRequestHandler`s sharing one `Limits`."""

    limits: Limits
    busy: _Busy

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """An `AppRunner` (startup, cleanup, sites as usual) serving through `GuardedServer`."""

    def __init__(self, app: web.Application, *, limits: Limits | None = None, **kwargs: Any) -> None:
        self.limits = limits or Limits()
        kwargs.setdefault("access_log", None)  # Cordon writes its own access line (bot/server.py)
        kwargs.setdefault("keepalive_timeout", self.limits.keepalive_timeout)
        kwargs.setdefault("lingering_time", self.limits.lingering_time)
        kwargs.setdefault("max_line_size", self.limits.max_line_size)
        kwargs.setdefault("max_field_size", self.limits.max_field_size)
        super().__init__(app, **kwargs)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = GuardedServer  # same state; only how it makes connections differs
        server.limits = self.limits  # type: ignore[attr-defined]
        server.busy = _Busy()  # type: ignore[attr-defined]
        return server


async def start(
    app: web.Application, host: str, port: int, *, limits: Limits | None = None, handle_signals: bool = False
) -> GuardedAppRunner:
    """Serve `app` on host:port through the guarded server; the caller cleans the runner up."""
    runner = GuardedAppRunner(app, limits=limits, handle_signals=handle_signals)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def serve_forever(app: web.Application, host: str, port: int, *, limits: Limits | None = None) -> None:
    """`web.run_app`, but through the guarded server; SIGINT/SIGTERM end it gracefully."""

    async def main() -> None:
        runner = await start(app, host, port, limits=limits, handle_signals=True)
        try:
            while True:
                await asyncio.sleep(3600)
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    except (web.GracefulExit, KeyboardInterrupt):
        pass
