"""State: keyed JSON documents with compare-and-set writes, and an append-only audit log.

Every state change that must happen once (an approval, a lease, a watermark) is a version-checked write: a write
with a stale version raises `Conflict`, so concurrent presses or two Cordon processes sharing one SQLite file
cannot both win. SQLite work runs in a thread so the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from adapters.retry import CAS_POLICY, RetryPolicy, retrying

if TYPE_CHECKING:
    from adapters.config import StorageConfig

T = TypeVar("T")


class Conflict(Exception):
    """A compare-and-set write lost: the document changed (or appeared, or vanished) since it was read."""


@dataclass(frozen=True)
class Document:
    value: dict[str, Any]
    version: int


AUDIT_TARGET_LIMIT = 200


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    command: str
    outcome: str
    tenant: str | None = None
    conversation: str | None = None
    target: str | None = None
    detail: str | None = None
    at: str = ""  # UTC ISO time, filled in on append when empty
    actor_name: str | None = None  # "Name <upn>" as Teams' roster gave it when the entry was written

    def stamped(self) -> AuditEntry:
        """As stored: timed, and with `target` (often typed or card data) inert and on one line, so an entry
        cannot carry a link or forge another line when it is shown or exported."""
        from adapters.safe_text import inert_line

        now = self.at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        target = inert_line(self.target, AUDIT_TARGET_LIMIT) if self.target is not None else None
        return AuditEntry(**{**asdict(self), "at": now, "target": target})


# Aliases: inside the classes below, `list` names the method, not the built-in.
Listing = list[tuple[str, Document]]
AuditTail = list[AuditEntry]


class Storage(Protocol):
    async def get(self, key: str) -> Document | None: ...

    async def put(self, key: str, value: dict[str, Any], expected_version: int | None) -> int:
        """Write `value` if the stored version equals `expected_version` (None: the key must not exist).

        Returns the new version; raises `Conflict` otherwise."""

    async def delete(self, key: str, expected_version: int) -> None: ...

    async def list(self, prefix: str) -> Listing: ...

    async def append_audit(self, entry: AuditEntry) -> None: ...

    async def audit_tail(self, limit: int, tenant: str | None = None) -> AuditTail: ...

    async def ping(self) -> None:
        """Raise if the store cannot be reached (readiness probe)."""

    async def close(self) -> None: ...


def storage_kind(storage: Storage) -> str:
    """ "sqlite", "azure" or "memory": what /readyz and the logs say (never a path or a connection string)."""
    return str(getattr(storage, "kind", type(storage).__name__))


def open_storage(config: StorageConfig, environ: Mapping[str, str] | None = None) -> Storage:
    """The store `[storage]` names. Raises `ConfigError` naming the key when it cannot be made."""
    from adapters.config import ConfigError

    if config.backend == "sqlite":
        return SQLiteStorage(config.path)
    from adapters.azure_storage import AzureTableStorage, managed_identity_credential

    env = os.environ if environ is None else environ
    if config.connection_string_env is not None:
        connection_string = env.get(config.connection_string_env, "")
        if not connection_string.strip():
            raise ConfigError(
                f"storage.connection_string_env: the environment variable "
                f"{config.connection_string_env} is not set (it must hold the storage account's "
                f"connection string)"
            )
        try:
            from azure.data.tables._base_client import parse_connection_str

            parse_connection_str(connection_string, None, {})  # no network: the same parse the client does
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"storage.connection_string_env: {config.connection_string_env} does not hold a "
                f"usable connection string ({str(exc).split(chr(10))[0][:120]})"
            ) from None
        return AzureTableStorage(prefix=config.prefix, connection_string=connection_string)
    return AzureTableStorage(
        prefix=config.prefix, account_url=config.account_url, credential=managed_identity_credential()
    )


Change = Callable[[dict[str, Any] | None], dict[str, Any]]


async def update(
    storage: Storage, key: str, change: Change, *, policy: RetryPolicy = CAS_POLICY
) -> tuple[dict[str, Any], int]:
    """Read-modify-write, tried again on `Conflict` (jittered backoff: writers that collided spread out).
    `change(value_or_None)` returns the new value; `Conflict` when writers kept colliding past the policy."""

    async def once() -> tuple[dict[str, Any], int]:
        doc = await storage.get(key)
        new_value = change(None if doc is None else dict(doc.value))
        return new_value, await storage.put(key, new_value, None if doc is None else doc.version)

    return await retrying(once, Conflict, policy)


async def delete_if_present(storage: Storage, key: str, *, policy: RetryPolicy = CAS_POLICY) -> None:
    """Delete `key` whatever its version (tried again if it changes meanwhile); nothing when absent."""

    async def once() -> None:
        doc = await storage.get(key)
        if doc is not None:
            await storage.delete(key, doc.version)

    await retrying(once, Conflict, policy)


class MemoryStorage:
    """In-process store for tests and the console's throwaway mode."""

    kind = "memory"

    def __init__(self) -> None:
        self._docs: dict[str, Document] = {}
        self._audit: list[AuditEntry] = []
        self._lock = asyncio.Lock()

    async def get(self, key: str) -> Document | None:
        doc = self._docs.get(key)
        return None if doc is None else Document(json.loads(json.dumps(doc.value)), doc.version)

    async def put(self, key: str, value: dict[str, Any], expected_version: int | None) -> int:
        async with self._lock:
            current = self._docs.get(key)
            if (current.version if current else None) != expected_version:
                raise Conflict(key)
            version = (current.version if current else 0) + 1
            self._docs[key] = Document(json.loads(json.dumps(value)), version)
            return version

    async def delete(self, key: str, expected_version: int) -> None:
        async with self._lock:
            current = self._docs.get(key)
            if current is None or current.version != expected_version:
                raise Conflict(key)
            del self._docs[key]

    async def list(self, prefix: str) -> Listing:
        found = [(k, await self.get(k)) for k in sorted(self._docs) if k.startswith(prefix)]
        return [(k, doc) for k, doc in found if doc is not None]

    async def append_audit(self, entry: AuditEntry) -> None:
        self._audit.append(entry.stamped())

    async def audit_tail(self, limit: int, tenant: str | None = None) -> AuditTail:
        rows = [e for e in self._audit if tenant is None or e.tenant == tenant]
        return list(reversed(rows[-limit:])) if limit > 0 else []

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    tenant TEXT,
    conversation TEXT,
    command TEXT NOT NULL,
    target TEXT,
    outcome TEXT NOT NULL,
    detail TEXT,
    actor_name TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_append_only_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


def _add_actor_name(conn: sqlite3.Connection) -> None:
    """Files written before the audit kept the actor's name get the column (the log stays append-only)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(audit)")}
    if "actor_name" in columns:
        return
    try:
        conn.execute("ALTER TABLE audit ADD COLUMN actor_name TEXT")
    except sqlite3.OperationalError as exc:  # another process added it first
        if "duplicate column" not in str(exc).lower():
            raise


def prefix_end(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix` (UTF-8 byte order is code point order)."""
    for cut in range(len(prefix) - 1, -1, -1):
        code = ord(prefix[cut]) + 1
        if code == 0xD800:
            code = 0xE000  # surrogates cannot be stored
        if code <= 0x10FFFF:
            return prefix[:cut] + chr(code)
    return None  # an empty (or all-maximal) prefix: no upper bound


class SQLiteStorage:
    """The embedded default. Safe for several processes on one file (WAL, busy timeout, version checks in SQL)."""

    kind = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        conn = self._conn()
        conn.executescript(_SCHEMA)
        _add_actor_name(conn)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a crashed process loses nothing it committed; only a power cut may drop the last
            # commits (never corrupts). Syncing every write instead made the poller 2.4x slower.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._guard:
                self._connections.append(conn)
        return conn

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    def _get(self, key: str) -> Document | None:
        row = self._conn().execute("SELECT value, version FROM documents WHERE key = ?", (key,)).fetchone()
        return None if row is None else Document(json.loads(row[0]), row[1])

    def _put(self, key: str, value: dict[str, Any], expected: int | None) -> int:
        data = json.dumps(value, separators=(",", ":"))
        conn = self._conn()
        if expected is None:
            cur = conn.execute(
                "INSERT INTO documents(key, value, version) VALUES (?, ?, 1) ON CONFLICT(key) DO NOTHING", (key, data)
            )
            if cur.rowcount != 1:
                raise Conflict(key)
            return 1
        cur = conn.execute(
            "UPDATE documents SET value = ?, version = version + 1 WHERE key = ? AND version = ?",
            (data, key, expected),
        )
        if cur.rowcount != 1:
            raise Conflict(key)
        return expected + 1

    def _delete(self, key: str, expected: int) -> None:
        cur = self._conn().execute("DELETE FROM documents WHERE key = ? AND version = ?", (key, expected))
        if cur.rowcount != 1:
            raise Conflict(key)

    def _list(self, prefix: str) -> list[tuple[str, Document]]:
        # A key range on the primary key (not LIKE, which scans every row and ignores case): listing a small
        # prefix such as the live lock-down requests costs the same however many documents the store holds.
        end = prefix_end(prefix)
        bound = "" if end is None else " AND key < ?"
        rows = self._conn().execute(
            f"SELECT key, value, version FROM documents WHERE key >= ?{bound} AND substr(key, 1, ?) = ? ORDER BY key",
            (prefix, *(() if end is None else (end,)), len(prefix), prefix),
        )
        return [(k, Document(json.loads(v), ver)) for k, v, ver in rows]

    def _append(self, e: AuditEntry) -> None:
        self._conn().execute(
            "INSERT INTO audit(at, actor, tenant, conversation, command, target, outcome, detail, actor_name)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (e.at, e.actor, e.tenant, e.conversation, e.command, e.target, e.outcome, e.detail, e.actor_name),
        )

    def _tail(self, limit: int, tenant: str | None) -> AuditTail:
        sql = "SELECT at, actor, tenant, conversation, command, target, outcome, detail, actor_name FROM audit"
        params: tuple[Any, ...] = ()
        if tenant is not None:
            sql += " WHERE tenant = ?"
            params = (tenant,)
        sql += " ORDER BY seq DESC LIMIT ?"
        rows = self._conn().execute(sql, (*params, max(limit, 0)))
        return [
            AuditEntry(
                at=at, actor=a, tenant=t, conversation=c, command=cmd, target=tg, outcome=o, detail=d, actor_name=n
            )
            for at, a, t, c, cmd, tg, o, d, n in rows
        ]

    async def get(self, key: str) -> Document | None:
        return await self._run(self._get, key)

    async def put(self, key: str, value: dict[str, Any], expected_version: int | None) -> int:
        return await self._run(self._put, key, value, expected_version)

    async def delete(self, key: str, expected_version: int) -> None:
        await self._run(self._delete, key, expected_version)

    async def list(self, prefix: str) -> Listing:
        return await self._run(self._list, prefix)

    async def append_audit(self, entry: AuditEntry) -> None:
        await self._run(self._append, entry.stamped())

    async def audit_tail(self, limit: int, tenant: str | None = None) -> AuditTail:
        return await self._run(self._tail, limit, tenant)

    async def ping(self) -> None:
        await self._run(lambda: self._conn().execute("SELECT 1").fetchone())

    async def close(self) -> None:
        with self._guard:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
