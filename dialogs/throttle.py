"""How many DNS-heavy runs (`check`, `spf` and their "Check again" buttons) start, per user and per process.

Anyone in an allowed tenant may run these commands, and each one sends DNS queries chosen by whoever publishes
the domain's records. The resolver bounds one run (`adapters/dns/limits.py`); this bounds how many runs there are
(issue 9): a user may start `per_user` runs per `window_seconds`, and at most `max_running` run at once in the
process — the next `max_waiting` wait their turn (up to `wait_seconds`), anyone beyond is told that Cordon is
busy. Cheap commands (`help`) never wait here, so they keep answering while checks queue.

One `Throttle` per process: `services.runtimes.of(Throttle)` (a test may `put` its own there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from dialogs.contract import Actor, Services

log = logging.getLogger(__name__)

BUSY = "Cordon is busy with other checks right now; try again in a minute."


@dataclass(frozen=True)
class ThrottleSettings:
    max_running: int = 4  # runs at once in the process (together at most 64 DNS queries in flight)
    max_waiting: int = 16  # runs queued behind them
    wait_seconds: float = 30.0  # longest wait in the queue before "busy"
    per_user: int = 10  # runs one user may start per window
    window_seconds: float = 60.0


class Refused(Exception):
    """This run may not start; the message says why and when to try again."""


class Busy(Refused):
    """No run slot: the queue is full, or the wait was too long."""

    def __init__(self) -> None:
        super().__init__(BUSY)


@dataclass
class Throttle:
    settings: ThrottleSettings = field(default_factory=ThrottleSettings)
    clock: Callable[[], float] = time.monotonic
    running: int = 0
    _waiters: deque[asyncio.Future[None]] = field(default_factory=deque, repr=False)
    _starts: dict[str, deque[float]] = field(default_factory=dict, repr=False)

    @property
    def waiting(self) -> int:
        return sum(1 for waiter in self._waiters if not waiter.done())

    def refuse_user(self, actor: Actor) -> str | None:
        """None (and the start counted) when this person may start another run now, else the message to show."""
        now, window = self.clock(), self.settings.window_seconds
        key = actor.aad_id or actor.label
        starts = self._starts.setdefault(key, deque())
        while starts and starts[0] <= now - window:
            starts.popleft()
        if len(starts) >= self.settings.per_user:
            wait = max(1, math.ceil(starts[0] + window - now))
            log.warning("rate limit: %s started %d DNS checks within %g s", key, len(starts), window)
            return f"You have started {len(starts)} checks in the last {window:g} s; try again in {wait} s."
        starts.append(now)
        if len(self._starts) > 10_000:  # bounded state: forget people whose window has passed
            for old in [k for k, v in self._starts.items() if not v or v[-1] <= now - window]:
                del self._starts[old]
        return None

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the `max_running` run slots; raises `Busy` when none comes in time."""
        await self._acquire()
        try:
            yield
        finally:
            self._release()

    async def _acquire(self) -> None:
        if self.running < self.settings.max_running and not self.waiting:
            self.running += 1
            return
        if self.waiting >= self.settings.max_waiting:
            raise Busy
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, self.settings.wait_seconds)
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():  # a slot was handed over just as the wait ended
                self._release()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise Busy from None
            raise

    def _release(self) -> None:
        """Hand the slot to the first live waiter, else free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.running -= 1


def throttle_for(services: Services) -> Throttle:
    """The process's throttle (created on first use)."""
    return services.runtimes.of(Throttle)


@contextlib.asynccontextmanager
async def dns_run(services: Services, actor: Actor) -> AsyncIterator[None]:
    """Around one check/spf run: the person's rate limit, then a run slot; raises `Refused` with the message."""
    throttle = throttle_for(services)
    refusal = throttle.refuse_user(actor)
    if refusal is not None:
        raise Refused(refusal)
    async with throttle.slot():
        yield
