"""The steps `investigate`'s buttons ask for, run by the same approved, CAS-recorded lock-down machinery:
scan the user's managed devices, disable one inbox rule, revoke one OAuth consent.

What a step acts on (a rule id, a grant id) was stored in the request's `params` by the server when the request
was made (read from Graph, never from the card), so an approver approves exactly what the card shows. Devices are
listed again when the step runs: a device enrolled since the request is scanned too.
"""

from __future__ import annotations

from typing import Any

from adapters.graph.containment import Containment
from adapters.graph.errors import GraphProblem
from adapters.graph.incident import IncidentReader
from dialogs.lockdown.model import LockdownRequest

OK, FAILED = "ok", "failed"


async def execute(key: str, request: LockdownRequest, graph: Containment) -> dict[str, Any]:
    """Run one remediation step; a Graph refusal becomes a failed outcome naming what is missing."""
    user_id = request.target.id
    params = request.params
    reader = IncidentReader(graph.gateway, graph.tenant)
    try:
        if key == "scan_devices":
            return await _scan(reader, user_id)
        if key == "disable_rule":
            await graph.disable_rule(user_id, params["rule_id"])
            return {
                "status": OK,
                "detail": f"Inbox rule “{params.get('rule_name') or params['rule_id']}” disabled (not deleted).",
            }
        if key == "revoke_consent":
            await reader.revoke_grant(params["grant_id"])
            return {
                "status": OK,
                "detail": f"Consent to {params.get('app') or 'the app'} revoked. Tokens the app "
                "already holds stay valid until they expire (revoke sessions to end refresh tokens).",
            }
    except GraphProblem as problem:
        return {"status": FAILED, "detail": problem.user_message}
    raise ValueError(f"unknown remediation step {key!r}")


async def _scan(reader: IncidentReader, user_id: str) -> dict[str, Any]:
    """A quick Defender scan on every Intune-managed Windows device of the user, reported per device."""
    devices = [d for d in await reader.devices(user_id, protection=False) if d.windows and d.id]
    if not devices:
        return {
            "status": OK,
            "detail": "The user has no Intune-managed Windows device: nothing to scan.",
            "data": {"devices": []},
        }
    rows: list[dict[str, str]] = []
    for device in devices:
        try:
            await reader.defender_scan(device.id)
            rows.append({"device": device.name, "id": device.id, "outcome": "quick scan started"})
        except GraphProblem as problem:
            rows.append({"device": device.name, "id": device.id, "outcome": f"failed: {problem.user_message}"})
    started = sum(1 for r in rows if r["outcome"] == "quick scan started")
    detail = "; ".join(f"{r['device']}: {r['outcome']}" for r in rows)
    status = OK if started == len(rows) else FAILED
    return {
        "status": status,
        "detail": f"Defender quick scan started on {started} of {len(rows)} device(s). " + detail,
        "data": {"devices": rows},
    }
