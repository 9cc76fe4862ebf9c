"""How much DNS one check, and the whole process, may ask at once (issue 9).

Anyone may run `check` and `spf`, and a domain's owner writes the records that decide what those commands ask:
without bounds one hostile SPF tree made tens of thousands of queries at once, exhausted the process's file
descriptors (each UDP query holds a socket) and stalled every other user. So every `CheckResolver` has:

- a query budget: at most `MAX_QUERIES_PER_CHECK` questions are sent for one check (a real complex domain needs
  under 100); past it, questions fail with reason "queries" ("could not check"). The same budget bounds how much
  Cordon can be made to ask of a third party's name servers;
- an in-flight cap per check (`MAX_IN_FLIGHT_PER_CHECK`) and one shared by every check of the process
  (`MAX_IN_FLIGHT_PER_PROCESS`): sockets are a shared resource.

The process-wide cap is one semaphore per event loop (asyncio primitives belong to one loop; tests and the CLI
run several loops in one process).
"""

from __future__ import annotations

import asyncio
import weakref

MAX_QUERIES_PER_CHECK = 300
MAX_IN_FLIGHT_PER_CHECK = 32  # a real check asks ~30 questions at once; 16 made it ~25 % slower at 20 ms RTT
MAX_IN_FLIGHT_PER_PROCESS = 64

_process_in_flight = MAX_IN_FLIGHT_PER_PROCESS
_semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def process_semaphore() -> asyncio.Semaphore:
    """The in-flight cap shared by every check running on the current event loop."""
    loop = asyncio.get_running_loop()
    semaphore = _semaphores.get(loop)
    if semaphore is None:
        semaphore = asyncio.Semaphore(_process_in_flight)
        _semaphores[loop] = semaphore
    return semaphore


def set_process_in_flight(limit: int) -> None:
    """Change the process-wide cap (tests, the bench); takes effect for loops that have not asked yet."""
    global _process_in_flight
    if limit < 1:
        raise ValueError("the in-flight cap must be at least 1")
    _process_in_flight = limit
    _semaphores.clear()
