"""The HTTP side of a tenant's `GraphServiceClient`: token only to the Graph host, and Cordon's retry policy.

kiota's own RetryHandler retries 429/503/504 three times and gives up on a long Retry-After, with no overall
budget; it is left out and replaced by `BudgetRetryHandler`: Retry-After honoured, exponential backoff with jitter
when Graph sends none (Identity Protection), transport errors retried when the request is safe to repeat, all
within one time budget per request. A request may carry a `RetryBudget` option to change the budget (the alert
poller sets 0 to do its own pacing). `host_guard` drops the Authorization header from any request not aimed at
the configured Graph origin, as a second line behind the token provider's own check.

Every tenant's client shares one SSL context (`default_ssl_context`, made once by the gateway): the CA store is
~0.8 MB, so a context per tenant made 500 tenants cost ~400 MB. The connection pool stays per tenant (a few KB):
one pool shared by all tenants measured slower in bench/poller.py (httpcore scans the whole pool for each request,
so its cost grows with every tenant's connections), and a tenant's connections then carry only its own requests.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator
from kiota_abstractions.request_option import RequestOption
from kiota_http.middleware.middleware import REQUEST_OPTIONS_KEY, BaseMiddleware

from adapters.graph.credentials import TokenSource
from adapters.graph.errors import parse_retry_after
from adapters.retry import RetryPolicy

__all__ = [
    "BudgetRetryHandler",
    "RetryBudget",
    "RetryPolicy",
    "build_client",
    "close_client",
    "default_ssl_context",
    "host_guard",
    "origin",
]

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})
# POST actions that only read (or are idempotent), so a lost answer may be asked again
SAFE_POST_SUFFIXES = (
    "/checkmembergroups",
    "/checkmemberobjects",
    "/getmembergroups",
    "/getmemberobjects",
    "/getbyids",
    "/revokesigninsessions",
    "/confirmcompromised",
    "/dismiss",
)
# errors raised before the request could have reached Graph: always safe to retry
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


class RetryBudget(RequestOption):
    """Per-request override of the retry budget (seconds); 0 means "no retries, tell me at once"."""

    KEY = "CordonRetryBudget"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    @staticmethod
    def get_key() -> str:
        return RetryBudget.KEY


def _safe_to_repeat(request: httpx.Request) -> bool:
    return request.method in IDEMPOTENT or (
        request.method == "POST" and request.url.path.lower().endswith(SAFE_POST_SUFFIXES)
    )


class BudgetRetryHandler(BaseMiddleware):
    def __init__(self, policy: RetryPolicy, on_attempt: Callable[[httpx.Request], None] | None = None) -> None:
        super().__init__()
        self.policy = policy
        self.on_attempt = on_attempt

    async def send(self, request: httpx.Request, transport: httpx.AsyncBaseTransport) -> httpx.Response:
        options = request.extensions.get(REQUEST_OPTIONS_KEY) or {}
        override = options.get(RetryBudget.KEY)
        budget = override.seconds if isinstance(override, RetryBudget) else self.policy.budget_seconds
        started = self.policy.monotonic()
        attempt = 0
        while True:
            attempt += 1
            if attempt > 1:  # the last middleware removed the options; later handlers may still want them
                request.extensions[REQUEST_OPTIONS_KEY] = options
            if self.on_attempt is not None:
                self.on_attempt(request)
            try:
                response = await super().send(request, transport)
            except httpx.TransportError as exc:
                if not (isinstance(exc, NOT_SENT) or _safe_to_repeat(request)):
                    raise
                delay = self.policy.backoff(attempt)
                if self.policy.gives_up(attempt, started, delay, budget):
                    raise
                log.info(
                    "Graph %s %s: %s, retry %d in %.1f s",
                    request.method,
                    request.url.path,
                    type(exc).__name__,
                    attempt,
                    delay,
                )
                await self.policy.sleep(delay)
                continue
            if response.status_code not in RETRY_STATUSES:
                return response
            if response.status_code != 429 and not _safe_to_repeat(request):
                return response  # a 503/504 on a POST may have been applied: do not repeat it
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            delay = retry_after if retry_after is not None else self.policy.backoff(attempt)
            if self.policy.gives_up(attempt, started, delay, budget):
                return response
            log.info(
                "Graph %s %s: HTTP %d, retry %d in %.1f s%s",
                request.method,
                request.url.path,
                response.status_code,
                attempt,
                delay,
                " (Retry-After)" if retry_after is not None else "",
            )
            await response.aclose()
            await self.policy.sleep(delay)


def host_guard(graph_endpoint: str) -> Callable[[httpx.Request], Awaitable[None]]:
    """An httpx request hook: never let a bearer token leave for another origin (a nextLink elsewhere, a bug).

    A hook rather than a kiota middleware because msgraph's transport skips the middleware for requests that
    kiota did not build; the hook sees every request the client sends.
    """
    allowed = origin(graph_endpoint)

    async def guard(request: httpx.Request) -> None:
        if origin(str(request.url)) != allowed and "Authorization" in request.headers:
            log.warning("refused to send a Graph token to %s", request.url.host)
            del request.headers["Authorization"]

    return guard


class MsalTokenProvider(AccessTokenProvider):
    """kiota's token hook: a token only for URLs on the configured Graph origin (scheme, host and port)."""

    def __init__(self, source: TokenSource, graph_endpoint: str) -> None:
        self.source = source
        self.origin = origin(graph_endpoint)
        self._validator = AllowedHostsValidator([self.origin[1]])

    async def get_authorization_token(
        self,
        uri: str,
        additional_authentication_context: dict[str, Any] = {},  # noqa: B006
    ) -> str:
        if origin(uri) != self.origin:
            log.warning("not sending a Graph token to %s", urlsplit(uri).hostname)
            return ""
        return await self.source.token()

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._validator


TENANT_POOL_LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=10)


def default_ssl_context() -> Any:
    """httpx's default verification (certifi, or SSL_CERT_FILE / SSL_CERT_DIR): build once, give to every client."""
    return httpx.create_ssl_context()


async def close_client(client: Any) -> None:
    """Close a GraphServiceClient's connections. msgraph's middleware transport does not pass `aclose` on to the
    httpx transport it wraps, so closing the httpx client alone would leave the pool's sockets open."""
    http = client.request_adapter._http_client
    for transport in (http._transport, *(t for t in http._mounts.values() if t is not None)):
        inner = getattr(transport, "transport", None)
        if inner is not None:
            await inner.aclose()
    await http.aclose()


MiddlewareFactory = Callable[[str], BaseMiddleware]  # tenant id -> middleware (added after the retry handler)


def build_client(
    source: TokenSource,
    *,
    endpoint: str,
    timeout: float,
    policy: RetryPolicy,
    extra: list[MiddlewareFactory] | None = None,
    on_attempt: Callable[[httpx.Request], None] | None = None,
    ssl_context: Any = None,
) -> Any:
    """A GraphServiceClient for one tenant (call inside the running loop: httpx binds to it).

    Its own token provider, host guard, middleware (retry budget, per-tenant pacing) and connection pool; the SSL
    context is `ssl_context` when given (share one across tenants), else httpx builds one for this client.
    """
    from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
    from kiota_http.middleware import ParametersNameDecodingHandler, UserAgentHandler
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph_core import GraphClientFactory
    from msgraph_core.middleware import GraphTelemetryHandler

    base_url = f"{endpoint}/v1.0"
    http = httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        limits=TENANT_POOL_LIMITS,
        event_hooks={"request": [host_guard(endpoint)]},
        verify=True if ssl_context is None else ssl_context,
    )  # proxy mounts get it too
    middleware: list[BaseMiddleware] = [BudgetRetryHandler(policy, on_attempt)]
    middleware += [factory(source.tenant.tenant_id) for factory in extra or ()]
    middleware += [ParametersNameDecodingHandler(), UserAgentHandler(), GraphTelemetryHandler()]
    http = GraphClientFactory.create_with_custom_middleware(middleware, client=http)
    auth = BaseBearerTokenAuthenticationProvider(MsalTokenProvider(source, endpoint))
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = base_url
    return GraphServiceClient(request_adapter=adapter)
