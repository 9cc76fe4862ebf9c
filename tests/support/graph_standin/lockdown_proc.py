"""A second Cordon process for lock-down tests: presses Approve on a request stored in a shared store.

    python -m tests.support.graph_standin.lockdown_proc STORE GRAPH_URL REQUEST_ID NONCE PRESSES APPROVER_ID

STORE is a store spec (`sqlite:PATH` or `azure:PREFIX`, see tests/support/stores.py) or a SQLite file path.
It builds its own storage, Graph gateway and runtime (its own runner identity), presses Approve PRESSES times at
once through the real router, waits for the run, and prints {"won": n, "refused": m} as JSON. The managed-identity
endpoint comes from the environment (IDENTITY_ENDPOINT / IDENTITY_HEADER), like a real process.
"""

from __future__ import annotations

import asyncio
import json
import sys

from dialogs.contract import Actor, Conversation
from dialogs.lockdown.runtime import runtime
from tests.support.graph_standin.lockdown_world import (
    Clock,
    RecordingOutbox,
    lockdown_config,
)

TEAMS_TENANT = "72f988bf-0000-4000-8000-00000000c0de"


async def main(db: str, url: str, request_id: str, nonce: str, presses: int, approver: str) -> dict[str, int]:
    from adapters.roles import RoleResolver
    from dialogs.contract import Services
    from dialogs.router import Router
    from tests.support.graph_standin.fixtures import make_gateway
    from tests.support.stores import open_spec

    config = lockdown_config(url)
    storage = open_spec(db if db.startswith(("sqlite:", "azure:")) else f"sqlite:{db}")
    gateway = make_gateway(config)
    services = Services(config=config, storage=storage, clock=Clock(), graph=gateway)
    router = Router(services, RoleResolver(config.roles))
    actor = Actor(approver, "approver@contoso.com", "Approver")
    conversation = Conversation("19:lockdown@thread.tacv2", "channel", TEAMS_TENANT)
    results = await asyncio.gather(
        *(
            router.handle_action(
                "lockdown.approve",
                {"request_id": request_id, "nonce": nonce},
                actor,
                TEAMS_TENANT,
                conversation,
                RecordingOutbox(),
                "msg-1",
            )
            for _ in range(presses)
        )
    )
    print("pressed", flush=True)
    await runtime(services).drain()
    await gateway.close()
    await storage.close()
    return {"won": sum(1 for r in results if r.card is not None), "refused": sum(1 for r in results if r.message)}


if __name__ == "__main__":
    db, url, request_id, nonce, presses, approver = sys.argv[1:7]
    print(json.dumps(asyncio.run(main(db, url, request_id, nonce, int(presses), approver))), flush=True)
