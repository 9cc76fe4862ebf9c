"""The SDK internals Cordon relies on are still where it reaches for them (bot/sdk_internals.py,
adapters/graph/transport.py close_client). If one moves, these fail naming it, rather than a retry policy, a pool
size, a key refresh or a socket close silently not happening."""

from __future__ import annotations

import inspect

import httpx

from adapters.config import CordonConfig
from bot.sdk_internals import reapply_session_config, requests_driver


def test_connector_client_still_has_the_msrest_requests_driver_and_its_session_setup() -> None:
    from botframework.connector import ConnectorClient
    from msrest.authentication import BasicAuthentication

    client = ConnectorClient(BasicAuthentication("u", "p"), base_url="http://127.0.0.1:9/")
    driver = requests_driver(client)
    assert driver is not None, "ConnectorClient._client.config.pipeline._sender.driver is gone"
    assert hasattr(driver, "session") and callable(getattr(driver, "_init_session", None)), (
        "msrest's requests driver no longer has session/_init_session"
    )
    client.config.retry_policy.policy.total = 0
    reapply_session_config(driver)  # applies without error
    adapter = driver.session.get_adapter("http://127.0.0.1:9/")
    assert adapter.max_retries.total == 0, "re-running the session setup no longer applies the retry policy"


def test_openid_metadata_still_has_a_refresh_coroutine_and_the_fields_read() -> None:
    from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor

    metadata = JwtTokenExtractor.get_open_id_metadata("http://127.0.0.1:9/.well-known/openid-configuration")
    assert inspect.iscoroutinefunction(getattr(metadata, "_refresh", None)), "_OpenIdMetadata._refresh moved"
    for name in ("url", "keys", "last_updated"):
        assert hasattr(metadata, name), f"_OpenIdMetadata.{name} moved"


async def test_graph_client_close_still_reaches_the_wrapped_httpx_transport() -> None:
    from adapters.graph.credentials import TokenSource
    from adapters.graph.transport import RetryPolicy, build_client, close_client

    config = CordonConfig.model_validate(
        {"tenants": [{"name": "T", "tenant_id": "11111111-1111-4111-8111-111111111111", "domains": ["t.example"]}]}
    )
    source = TokenSource(config.tenants[0], config.graph)
    client = build_client(source, endpoint="http://127.0.0.1:9", timeout=5, policy=RetryPolicy())
    http = client.request_adapter._http_client
    assert isinstance(http, httpx.AsyncClient), "GraphRequestAdapter._http_client moved"
    inner = getattr(http._transport, "transport", None)
    assert isinstance(inner, httpx.AsyncHTTPTransport), "msgraph's middleware transport no longer wraps .transport"
    closed: list[object] = []
    real_close = inner.aclose

    async def recording_close() -> None:
        closed.append(inner)
        await real_close()

    inner.aclose = recording_close  # type: ignore[method-assign]
    await close_client(client)
    assert http.is_closed and closed == [inner]  # the real pool is closed, not only the wrapper
