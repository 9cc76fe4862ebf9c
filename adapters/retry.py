"""One way to wait and try again: exponential backoff with jitter, bounded by attempts and a time budget.

Used by the Graph transport (429/503/504 and transport errors) and by compare-and-set writes in storage (a lost
`Conflict`). The Identity Protection pacer keeps its own schedule: its waits are shared by every request to a
tenant, not one caller's loop.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class RetryPolicy:
    """When and how long to wait before trying again.

    `full_jitter` waits uniform(0, ceiling) (writers that collided spread out); otherwise "equal jitter": half
    the ceiling fixed, half random (a server asked to be left alone gets at least half)."""

    budget_seconds: float = 60.0
    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 32.0
    full_jitter: bool = False
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    monotonic: Callable[[], float] = time.monotonic

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` (counting from 1)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        if self.full_jitter:
            return self.rng.uniform(0, ceiling)
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def gives_up(self, attempt: int, started: float, delay: float, budget: float | None = None) -> bool:
        """True when attempt number `attempt` was the last: too many, or waiting `delay` would pass the budget."""
        budget = self.budget_seconds if budget is None else budget
        return attempt >= self.max_attempts or self.monotonic() - started + delay > budget


# compare-and-set writes: many quick tries (a lost write means someone else just wrote), no time budget
CAS_POLICY = RetryPolicy(budget_seconds=math.inf, max_attempts=20, base_delay=0.002, max_delay=0.2, full_jitter=True)


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    policy: RetryPolicy,
) -> T:
    """`await attempt()` until it returns; on `retry_on` wait per `policy`, and re-raise the last one past it."""
    started = policy.monotonic()
    number = 0
    while True:
        number += 1
        try:
            return await attempt()
        except retry_on:
            delay = policy.backoff(number)
            if policy.gives_up(number, started, delay):
                raise
            await policy.sleep(delay)
