"""Every place Cordon reaches past the Bot Framework SDK's public API, one small function each.

botbuilder 4.17.1 is the last release, so these attributes will not move under us; but if a replacement or a
patched SDK moves one, `tests/test_sdk_internals.py` fails naming it, instead of a setting silently not applying.
"""

from __future__ import annotations

import asyncio
from typing import Any


def requests_driver(client: Any) -> Any:
    """The msrest requests driver under a ConnectorClient (`client._client.config.pipeline._sender.driver`), whose
    `session` carries the retry policy and connection pool; None if the SDK no longer has one."""
    return getattr(getattr(client._client.config.pipeline, "_sender", None), "driver", None)


def reapply_session_config(driver: Any) -> None:
    """msrest set the session up when the client was built: re-run its setup so a changed retry policy applies."""
    driver._init_session(driver.session)


def refresh_openid_metadata(metadata: Any) -> None:
    """Fetch the signing keys now (blocking: call from a worker thread). The SDK's `_OpenIdMetadata._refresh` is
    a coroutine doing blocking `requests.get`; its public `get` refreshes only when the keys are 24 h old."""
    asyncio.run(metadata._refresh())
