"""State on Azure Table storage: the same contract as SQLite, so several Cordon instances share one store.

Why Tables (azure-data-tables, async): an entity's ETag gives compare-and-set (`If-Match`, and insert fails when
the row exists), a range query on RowKey lists a key prefix in one request per 1,000 documents, values come back
with the listing (blobs would need a download each), and a RowKey that counts down in time reads the audit log
newest-first. Leases, the Identity Protection pacer and the delivery locks are documents here like any other, so
they hold across instances.

Layout (table names are `{prefix}docs` and `{prefix}audit`, so several bots can share an account):
- documents: PartitionKey "d", RowKey = the key escaped (`/ \\ # ?`, `%`, control and non-ASCII characters
  become `%XX`, so every RowKey is ASCII and a key prefix stays a RowKey prefix), `version` (int), and the JSON
  value split into ≤ 30,000-character string properties `v0..vN` (a string property holds 32 K characters).
- audit: PartitionKey "a", RowKey = (10^19 − nanoseconds since 1970, at least one more than this process's last)
  + a random suffix, so ascending RowKeys are newest first; `tenant` for the filter; the entry as JSON in `e0..eN`.
  Cordon only ever inserts there (the append-only guarantee is Cordon's: Table storage has no insert-only role).
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import secrets
import time
from typing import TYPE_CHECKING, Any

from adapters.storage import AuditEntry, Conflict, Document, prefix_end

if TYPE_CHECKING:
    from azure.data.tables.aio import TableClient, TableServiceClient

DOC_PARTITION = "d"
AUDIT_PARTITION = "a"
CHUNK = 30_000  # characters per string property (the service allows 32 K UTF-16 characters)
MAX_CHUNKS = 15  # an entity holds at most 1 MiB; strings count 2 bytes a character
MAX_KEY = 1024  # RowKey limit (1 KiB)
_COUNTDOWN = 10**19
_UNSAFE = set("/\\#?%")
_PAGE = 1000


class DocumentTooLarge(ValueError):
    """A document does not fit in one Table entity (about 450,000 characters of JSON)."""


def escape_key(key: str) -> str:
    """A RowKey for `key`: every character a RowKey may not hold (and `%`, and anything non-ASCII) as `%XX`.

    Each character maps to itself or to a `%XX` group and no raw `%` remains, so the mapping is prefix-free:
    `escape(p)` is a prefix of `escape(k)` exactly when `p` is a prefix of `k`."""
    out: list[str] = []
    for ch in key:
        if " " <= ch <= "~" and ch not in _UNSAFE:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    escaped = "".join(out)
    if len(escaped) > MAX_KEY:
        raise ValueError(f"storage key too long for Azure Table storage ({len(escaped)} > {MAX_KEY}): {key[:80]}…")
    return escaped


def unescape_key(row_key: str) -> str:
    from urllib.parse import unquote

    return unquote(row_key, encoding="utf-8", errors="surrogatepass")


def _chunks(text: str, letter: str, what: str) -> dict[str, str]:
    parts = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]
    if len(parts) > MAX_CHUNKS:
        raise DocumentTooLarge(
            f"{what} is {len(text)} characters of JSON; Azure Table storage holds at most "
            f"{CHUNK * MAX_CHUNKS} in one document"
        )
    return {f"{letter}{n}": part for n, part in enumerate(parts)}


def _joined(entity: Any, letter: str) -> str:
    parts: list[str] = []
    while (part := entity.get(f"{letter}{len(parts)}")) is not None:
        parts.append(part)
    return "".join(parts)


def _value(entity: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(_joined(entity, "v"))
    return value


class AzureTableStorage:
    """Documents and the audit log in two Azure tables; made from a connection string or an account URL."""

    kind = "azure"

    def __init__(
        self,
        *,
        prefix: str = "cordon",
        connection_string: str | None = None,
        account_url: str | None = None,
        credential: Any = None,
    ) -> None:
        if (connection_string is None) == (account_url is None):
            raise ValueError("give exactly one of connection_string / account_url")
        self.prefix = prefix
        self.docs_table = f"{prefix}docs"
        self.audit_table = f"{prefix}audit"
        self._connection_string = connection_string
        self._account_url = account_url
        self._credential = credential
        self._service: TableServiceClient | None = None
        self._docs: TableClient | None = None
        self._audit: TableClient | None = None
        self._opening: asyncio.Lock | None = None
        self._etags: dict[str, tuple[int, str]] = {}  # key -> (version, ETag) last seen by this instance
        self._last_ns = 0

    @property
    def where(self) -> str:
        """Where the state lives, for logs and /readyz (never the connection string: it holds the key)."""
        if self._account_url:
            return f"Azure Table storage {self._account_url} (tables {self.docs_table}, {self.audit_table})"
        endpoint = ""
        for part in (self._connection_string or "").split(";"):
            name, _, value = part.partition("=")
            if name.strip().lower() == "tableendpoint":
                endpoint = value.strip()
            elif name.strip().lower() == "accountname" and not endpoint:
                endpoint = f"account {value.strip()}"
        return f"Azure Table storage {endpoint or '(connection string)'} (tables {self.docs_table}, {self.audit_table})"

    async def _open(self) -> tuple[TableClient, TableClient]:
        if self._docs is not None and self._audit is not None:
            return self._docs, self._audit
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._docs is None or self._audit is None:
                from azure.core.exceptions import ResourceExistsError
                from azure.data.tables.aio import TableServiceClient

                if self._connection_string is not None:
                    service = TableServiceClient.from_connection_string(self._connection_string)
                else:
                    assert self._account_url is not None
                    service = TableServiceClient(endpoint=self._account_url, credential=self._credential)
                for name in (self.docs_table, self.audit_table):
                    try:
                        await service.create_table(name)
                    except ResourceExistsError:
                        pass
                self._service = service
                self._docs = service.get_table_client(self.docs_table)
                self._audit = service.get_table_client(self.audit_table)
        return self._docs, self._audit

    # --- documents ----------------------------------------------------------------------------------------------

    async def _entity(self, key: str) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        docs, _ = await self._open()
        try:
            entity = await docs.get_entity(DOC_PARTITION, escape_key(key))
        except ResourceNotFoundError:
            self._etags.pop(key, None)
            return None
        self._etags[key] = (int(entity["version"]), str(entity.metadata["etag"]))
        return entity

    async def get(self, key: str) -> Document | None:
        entity = await self._entity(key)
        return None if entity is None else Document(_value(entity), int(entity["version"]))

    async def put(self, key: str, value: dict[str, Any], expected_version: int | None) -> int:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        docs, _ = await self._open()
        data = json.dumps(value, separators=(",", ":"), ensure_ascii=True)  # ASCII: characters = UTF-16 units
        version = 1 if expected_version is None else expected_version + 1
        entity = {
            "PartitionKey": DOC_PARTITION,
            "RowKey": escape_key(key),
            "version": version,
            **_chunks(data, "v", f"document {key[:80]}"),
        }
        if expected_version is None:
            try:
                meta = await docs.create_entity(entity)
            except ResourceExistsError:
                raise Conflict(key) from None
            self._etags[key] = (version, str(meta["etag"]))
            return version
        for fresh in (False, True):
            known = self._etags.get(key)
            if fresh or known is None or known[0] != expected_version:
                current = await self._entity(key)
                if current is None or int(current["version"]) != expected_version:
                    raise Conflict(key)
                known = self._etags[key]
            try:
                meta = await docs.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=known[1], match_condition=MatchConditions.IfNotModified
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                if fresh:
                    raise Conflict(key) from None
                continue  # the remembered ETag may be from an earlier life of the key: read once more
            self._etags[key] = (version, str(meta["etag"]))
            return version
        raise Conflict(key)  # not reached

    async def delete(self, key: str, expected_version: int) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError

        docs, _ = await self._open()
        current = await self._entity(key)  # the SDK reports a missing row as deleted: read first
        if current is None or int(current["version"]) != expected_version:
            raise Conflict(key)
        statuses: list[int] = []
        try:
            await docs.delete_entity(
                DOC_PARTITION,
                escape_key(key),
                etag=current.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
                raw_response_hook=lambda response: statuses.append(response.http_response.status_code),
            )
        except ResourceModifiedError:
            raise Conflict(key) from None
        finally:
            self._etags.pop(key, None)
        if statuses and statuses[-1] == 404:  # deleted by someone else in between
            raise Conflict(key)

    async def list(self, prefix: str) -> list[tuple[str, Document]]:
        docs, _ = await self._open()
        low = escape_key(prefix) if prefix else ""
        high = prefix_end(low)
        query = "PartitionKey eq @p and RowKey ge @low" + ("" if high is None else " and RowKey lt @high")
        params: dict[str, Any] = {"p": DOC_PARTITION, "low": low}
        if high is not None:
            params["high"] = high
        found: list[tuple[str, Document]] = []
        async for entity in docs.query_entities(query, parameters=params, results_per_page=_PAGE):
            key = unescape_key(entity["RowKey"])
            if key.startswith(prefix):
                version = int(entity["version"])
                self._etags[key] = (version, str(entity.metadata["etag"]))
                found.append((key, Document(_value(entity), version)))
        found.sort(key=lambda item: item[0])  # the order of the keys, not of their escaped forms
        return found

    # --- audit --------------------------------------------------------------------------------------------------

    def _audit_row_key(self) -> str:
        now = max(time.time_ns(), self._last_ns + 1)
        self._last_ns = now
        return f"{_COUNTDOWN - now:020d}-{secrets.token_hex(4)}"

    async def append_audit(self, entry: AuditEntry) -> None:
        from dataclasses import asdict

        _, audit = await self._open()
        stamped = entry.stamped()
        data = json.dumps(asdict(stamped), separators=(",", ":"), ensure_ascii=True)
        row: dict[str, Any] = {
            "PartitionKey": AUDIT_PARTITION,
            "RowKey": self._audit_row_key(),
            **_chunks(data, "e", "audit entry"),
        }
        if stamped.tenant is not None:
            row["tenant"] = stamped.tenant
        await audit.create_entity(row)

    async def audit_tail(self, limit: int, tenant: str | None = None) -> builtins.list[AuditEntry]:
        if limit <= 0:
            return []
        _, audit = await self._open()
        query = "PartitionKey eq @p" + ("" if tenant is None else " and tenant eq @t")
        params = {"p": AUDIT_PARTITION, **({} if tenant is None else {"t": tenant})}
        entries: builtins.list[AuditEntry] = []
        async for row in audit.query_entities(query, parameters=params, results_per_page=min(limit, _PAGE)):
            entries.append(AuditEntry(**json.loads(_joined(row, "e"))))
            if len(entries) >= limit:
                break
        return entries

    # --- lifecycle ----------------------------------------------------------------------------------------------

    async def ping(self) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        docs, _ = await self._open()
        try:
            await docs.get_entity(DOC_PARTITION, "%00ping")  # a key no document can have (escaped NUL)
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) == "TableNotFound":
                raise

    async def close(self) -> None:
        for client in (self._docs, self._audit, self._service):
            if client is not None:
                await client.close()
        self._docs = self._audit = self._service = None
        if self._credential is not None and hasattr(self._credential, "close"):
            await self._credential.close()


def managed_identity_credential() -> Any:
    """The app's managed identity (azure-identity, async): the user-assigned one named by AZURE_CLIENT_ID, or by
    MicrosoftAppId when the bot itself runs as `UserAssignedMSI`; otherwise the system-assigned identity."""
    from azure.identity.aio import ManagedIdentityCredential

    client_id = os.environ.get("AZURE_CLIENT_ID")
    if not client_id and os.environ.get("MicrosoftAppType", "").lower() == "userassignedmsi":
        client_id = os.environ.get("MicrosoftAppId") or None
    return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
