"""Azurite (Microsoft's Azure Storage emulator, npm `azurite`) for the Azure Table storage backend's tests.

`bash tests/run` installs it (into /opt/cordon-azurite, or .venv/azurite when not root) and exports
`CORDON_AZURITE_TABLE` with the path of `azurite-table`. One Table service is started per test session on a free
port, in memory; each test gets its own table prefix, so tests never see each other's documents.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = [
    Path("/opt/cordon-azurite/node_modules/.bin/azurite-table"),
    ROOT / ".venv" / "azurite" / "node_modules" / ".bin" / "azurite-table",
]
# Azurite's well-known development account (public, documented by Microsoft; not a secret)
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_table_binary() -> str | None:
    named = os.environ.get("CORDON_AZURITE_TABLE")
    if named:
        return named if Path(named).exists() else None
    for candidate in CANDIDATES:
        if candidate.exists():
            return str(candidate)
    return shutil.which("azurite-table")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Azurite:
    port: int
    process: subprocess.Popen[bytes]
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"TableEndpoint=http://127.0.0.1:{self.port}/{ACCOUNT};"
        )

    def new_prefix(self) -> str:
        """A table prefix no other test uses (letters and digits, as Azure table names need)."""
        return f"t{uuid.uuid4().hex[:10]}{next(self._names)}"


def start_azurite(binary: str, workspace: str) -> Azurite:
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            str(port),
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--silent",
        ],
        cwd=workspace,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = (process.stderr.read() if process.stderr else b"").decode(errors="replace")
            raise RuntimeError(f"Azurite exited at start ({process.returncode}): {err[-800:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return Azurite(port, process)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("Azurite did not open its port within 60 s")


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    binary = azurite_table_binary()
    if binary is None:
        if os.environ.get("CORDON_AZURITE_TABLE"):
            pytest.fail(f"CORDON_AZURITE_TABLE={os.environ['CORDON_AZURITE_TABLE']} does not exist")
        pytest.skip("Azurite is not installed: `bash tests/run` installs it (npm package azurite)")
    with tempfile.TemporaryDirectory(prefix="cordon-azurite-") as workspace:
        server = start_azurite(binary, workspace)
        try:
            yield server
        finally:
            server.process.terminate()
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
