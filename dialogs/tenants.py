"""`tenants`: the tenants Cordon acts in, with their Entra ID licence level (which features work where)."""

from __future__ import annotations

import asyncio
from typing import Any

from dialogs.contract import Command, DialogContext, Reply, Role
from dialogs.registry import command

CREDENTIAL_NAMES = {
    "managed_identity": "managed identity",
    "client_secret": "client secret",
    "certificate": "certificate",
}


async def tenant_rows(gateway: Any) -> list[tuple[str, str, str, str, str]]:
    """(name, id, domains, credential, licence) per tenant; licences read concurrently (cached 24 h)."""
    from adapters.graph.errors import GraphProblem

    async def licence(tenant: Any) -> str:
        try:
            return f"Entra ID {await gateway.licence(tenant)}"
        except GraphProblem as problem:
            return f"licence unknown ({problem.kind}: {problem.user_message})"

    levels = await asyncio.gather(*(licence(t) for t in gateway.tenants))
    return [
        (t.name, t.tenant_id, ", ".join(t.domains), CREDENTIAL_NAMES[t.credential], level)
        for t, level in zip(gateway.tenants, levels, strict=True)
    ]


@command(
    "tenants",
    summary="List the tenants Cordon acts in, with their Entra ID licence level.",
    usage="tenants",
    role=Role.TECHNICIAN,
    slow=True,
)
async def tenants_command(cmd: Command, ctx: DialogContext) -> list[Reply]:
    from dialogs.mfa import NO_GRAPH
    from dialogs.mfa_cards import tenants_card

    gateway = ctx.services.graph
    if gateway is None or not gateway.tenants:
        return [Reply(text=NO_GRAPH)]
    return [Reply(card=tenants_card(await tenant_rows(gateway)))]
