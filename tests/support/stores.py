"""One name for "a store several processes share", for tests that run on both SQLite and Azure Table storage.

A spec is `sqlite:<path>` or `azure:<table prefix>` (the connection string then comes from
CORDON_STORAGE_CONNECTION_STRING, as a real Cordon reads it through `storage.connection_string_env`), so a child
process opens the very store its parent uses.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.storage import SQLiteStorage, Storage

CONNECTION_ENV = "CORDON_STORAGE_CONNECTION_STRING"


def open_spec(spec: str) -> Storage:
    kind, _, rest = spec.partition(":")
    if kind == "sqlite":
        return SQLiteStorage(rest)
    if kind == "azure":
        from adapters.azure_storage import AzureTableStorage

        return AzureTableStorage(prefix=rest, connection_string=os.environ[CONNECTION_ENV])
    raise ValueError(f"unknown store spec {spec!r}")


@dataclass(frozen=True)
class SharedStore:
    """A store that several instances and processes open by `spec`; `env` is what a child process needs."""

    kind: str
    spec: str
    env: dict[str, str]

    def open(self) -> Storage:
        return open_spec(self.spec)

    def toml(self) -> str:
        """The `[storage]` section a Cordon process is started with."""
        if self.kind == "sqlite":
            return f'[storage]\npath = "{self.spec.partition(":")[2]}"\n'
        return (
            f'[storage]\nbackend = "azure"\nconnection_string_env = "{CONNECTION_ENV}"\n'
            f'prefix = "{self.spec.partition(":")[2]}"\n'
        )


@pytest.fixture(params=["sqlite", "azure"])
def shared_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SharedStore]:
    if request.param == "sqlite":
        db = tmp_path / "shared.db"
        SQLiteStorage(db)  # the schema once, as the server does at start
        yield SharedStore("sqlite", f"sqlite:{db}", dict(os.environ))
        return
    server = request.getfixturevalue("azurite")
    monkeypatch.setenv(CONNECTION_ENV, server.connection_string)
    yield SharedStore("azure", f"azure:{server.new_prefix()}", {**os.environ, CONNECTION_ENV: server.connection_string})
