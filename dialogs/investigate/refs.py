"""What an investigation's or a hunt's buttons may act on, kept by the server.

A card carries only `{"ref": <id>, "nonce": ..., "item": "rule:2"}`; the tenant, the user, the rule id, the grant
id and the seed IPs are read back from storage here, so an edited card cannot point a button at another user,
tenant or rule. Documents are filed under the day they were made and pruned after `RETENTION_DAYS` by the next
writer (bounded state, no background sweep needed).
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from typing import Any

from adapters.storage import Conflict, Storage

PREFIX = "investigate/ref/"
RETENTION_DAYS = 7


def _day(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d")


async def save(storage: Storage, now: dt.datetime, value: dict[str, Any]) -> dict[str, str]:
    """Store `value`; returns the button data (`ref`, `nonce`) that names it."""
    ref = _day(now) + "." + base64.b32encode(secrets.token_bytes(10)).decode().lower()
    nonce = secrets.token_urlsafe(12)
    await storage.put(PREFIX + ref, {**value, "nonce": nonce, "created_at": now.isoformat()}, None)
    await _prune(storage, now)
    return {"ref": ref, "nonce": nonce}


async def load(storage: Storage, data: dict[str, Any]) -> dict[str, Any] | None:
    """The stored document a button names, or None when unknown, pruned, or the nonce does not match."""
    ref, nonce = data.get("ref"), data.get("nonce")
    if not isinstance(ref, str) or not isinstance(nonce, str) or len(ref) > 40 or "/" in ref:
        return None
    doc = await storage.get(PREFIX + ref)
    if doc is None or not secrets.compare_digest(str(doc.value.get("nonce", "")).encode(), nonce.encode()):
        return None
    return doc.value


async def _prune(storage: Storage, now: dt.datetime) -> None:
    oldest = _day(now - dt.timedelta(days=RETENTION_DAYS))
    for key, doc in await storage.list(PREFIX):
        if key[len(PREFIX) : len(PREFIX) + 10] >= oldest:
            continue
        try:
            await storage.delete(key, doc.version)
        except Conflict:
            pass
