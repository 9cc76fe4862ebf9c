"""Lock-down background work for the server: resume interrupted runs, expire forgotten requests, and delete
requests ended more than `lockdown.retention_days` ago.

`start` is listed in app.py's BACKGROUND. It returns at once; its task checks every `lockdown.sweep_seconds`
(default 30) and stops on app cleanup, cancelling runs in flight (a later start resumes them). Runs interrupted by
a crash are picked up once their runner's lease has run out (state.LEASE). A sweep reads only live requests
(through their `lockdown/live/` markers), never the ended ones piling up until their retention ends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from dialogs.contract import Services
from dialogs.lockdown import retention, runner
from dialogs.lockdown.runtime import runtime, store

log = logging.getLogger(__name__)


async def sweep(services: Services) -> None:
    """One pass: expire what is due, resume what nobody runs, delete what ended long ago."""
    st = store(services)
    await retention.ensure_indexed(st)
    live = await st.live()
    await runner.expire_due(services, live)
    await runner.resume_interrupted(services, live)
    await retention.purge_ended(st, dt.timedelta(days=services.config.lockdown.retention_days))


async def start(app: Any, services: Services) -> None:
    interval = services.config.lockdown.sweep_seconds

    async def loop() -> None:
        while True:
            try:
                await sweep(services)
            except Exception:  # noqa: BLE001 - a failed sweep (storage hiccup) is retried next time
                log.exception("lock-down sweep failed")
            await asyncio.sleep(interval)

    task = asyncio.get_running_loop().create_task(loop(), name="lockdown-sweeper")

    async def stop(_app: Any) -> None:
        task.cancel()
        rt = runtime(services)
        for running in list(rt.tasks):
            running.cancel()
        await asyncio.gather(task, *rt.tasks, return_exceptions=True)

    app.on_cleanup.append(stop)
