"""Who holds which role: configured Entra object ids of users, and of groups resolved transitively.

Group membership comes from a `GroupChecker` (Microsoft Graph in production) and is cached for at most five
minutes, so removing someone from the approvers group takes effect quickly. If the check fails, only direct
user ids count: a Graph outage never grants a role.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from adapters.ttl_cache import TTLCache

if TYPE_CHECKING:
    from adapters.config import RolesConfig

log = logging.getLogger(__name__)


class Role(enum.StrEnum):
    """Who may run a command. An approver is not implicitly a technician: each is configured on its own."""

    ANYONE = "anyone"
    TECHNICIAN = "technician"
    APPROVER = "approver"


# (tenant_id, user_object_id, candidate_group_ids) -> the candidates the user is a transitive member of
GroupChecker = Callable[[str, str, list[str]], Awaitable[set[str]]]

CACHE_SECONDS = 300.0
CACHE_ENTRIES = 10_000  # (tenant, user) pairs: beyond it the least recently seen are asked again


class RoleResolver:
    def __init__(
        self,
        config: RolesConfig,
        group_checker: GroupChecker | None = None,
        *,
        ttl: float = CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._by_role = {
            Role.TECHNICIAN: {i.lower() for i in config.technicians},
            Role.APPROVER: {i.lower() for i in config.approvers},
        }
        self.group_checker = group_checker
        self._cache: TTLCache[tuple[str, str], frozenset[Role]] = TTLCache(ttl, CACHE_ENTRIES, monotonic=monotonic)

    async def roles(self, aad_id: str | None, tenant_id: str | None) -> frozenset[Role]:
        if not aad_id:
            return frozenset()
        user = aad_id.lower()
        key = (tenant_id or "", user)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        held = {role for role, ids in self._by_role.items() if user in ids}
        undecided = sorted({i for role, ids in self._by_role.items() if role not in held for i in ids} - {user})
        cacheable = True
        if undecided and self.group_checker is not None and tenant_id:
            try:
                groups = {g.lower() for g in await self.group_checker(tenant_id, user, undecided)}
            except Exception as exc:  # noqa: BLE001 - any failure means "not a member", never a grant
                log.warning("group membership check failed for %s in %s: %s", user, tenant_id, exc)
                groups = set()
                cacheable = False
            held |= {role for role, ids in self._by_role.items() if ids & groups}
        result = frozenset(held)
        if cacheable:
            self._cache.put(key, result)
        return result
