"""pytest fixtures around the Graph stand-in; import them into a test module (`from ... import graph_standin`).

`graph_standin` is a started stand-in with its managed-identity endpoint in the environment; `gateway_for`
builds a `GraphGateway` for it with a recording, non-sleeping retry policy (so tests never wait on backoff).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from adapters.config import CordonConfig, parse_config
from tests.support.graph_standin.server import GraphStandin

CONTOSO = "3f1e6f43-7d38-4b0e-9a51-1c0f3f0c7a11"
FABRIKAM = "9b2d2a8e-6c1e-4c55-8a0a-5f4f8b7d6e22"


def standin_config(url: str, *, tenants: list[dict[str, Any]] | None = None, **graph: Any) -> CordonConfig:
    """Config for the stand-in: Contoso (managed identity) unless `tenants` is given."""
    return parse_config(
        {
            "graph": {"endpoint": url, **graph},
            "tenants": tenants
            if tenants is not None
            else [
                {"name": "Contoso", "tenant_id": CONTOSO, "domains": ["contoso.com"], "credential": "managed_identity"}
            ],
        }
    )


class SleepRecorder:
    """A RetryPolicy.sleep that records the waits and only yields to the loop."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        import asyncio

        self.waits.append(seconds)
        await asyncio.sleep(0)


def make_gateway(
    config: CordonConfig, *, budget: float = 60.0, sleeper: SleepRecorder | None = None, seed: int = 7
) -> Any:
    from adapters.graph import GraphGateway
    from adapters.graph.transport import RetryPolicy

    policy = RetryPolicy(budget_seconds=budget, rng=random.Random(seed), sleep=sleeper or SleepRecorder())
    return GraphGateway(config, retry=policy)


@pytest.fixture
async def graph_standin(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[GraphStandin]:
    async with GraphStandin(home_tenant=CONTOSO) as standin:
        for key, value in standin.environ().items():
            monkeypatch.setenv(key, value)
        yield standin


@pytest.fixture
async def gateway_for(graph_standin: GraphStandin) -> AsyncIterator[Callable[..., Any]]:
    """`gateway_for(**graph_config)` -> (gateway, sleeper) for the running stand-in; closed after the test."""
    made: list[Any] = []

    def build(*, tenants: list[dict[str, Any]] | None = None, budget: float = 60.0, **graph: Any) -> Any:
        sleeper = SleepRecorder()
        gateway = make_gateway(
            standin_config(graph_standin.url, tenants=tenants, **graph), budget=budget, sleeper=sleeper
        )
        made.append(gateway)
        return gateway, sleeper

    yield build
    for gateway in made:
        await gateway.close()
