"""Start and stop Azurite's Table service on a free loopback port.

Used by ``make run``, the CLI's ``--azurite`` mode and the test suite: the store is always the
real Table Storage emulator, never a mock. Azurite comes from the project's pinned npm
dependency (``package.json``), installed by the Makefile.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# Azurite's documented, well-known development key: it only opens the local emulator.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteError(RuntimeError):
    """Azurite could not be started."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def azurite_executable() -> Path:
    candidate = PROJECT_ROOT / "node_modules" / ".bin" / "azurite-table"
    if candidate.exists():
        return candidate
    found = shutil.which("azurite-table")
    if found:
        return Path(found)
    raise AzuriteError(
        "azurite-table not found: run `npm ci` in the project root (the Makefile does this)"
    )


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


@dataclass
class Azurite:
    """A running Azurite Table service."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def connection_string(self) -> str:
        return connection_string(self.port)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def __enter__(self) -> Azurite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _started(log_path: Path, port: int) -> bool:
    """Whether this Azurite (not another process that took the same free port meanwhile, such as
    a parallel test worker's Azurite) says it listens: it logs the address once bound."""
    try:
        return f"successfully started on 127.0.0.1:{port}" in log_path.read_text(errors="replace")
    except OSError:
        return False


def start_azurite(log_dir: Path | None = None, attempts: int = 3, timeout: float = 30.0) -> Azurite:
    """Start an in-memory Azurite Table service on a free port and wait until it listens.

    A free port can be taken by another process between ``free_port`` and Azurite's bind; then
    this Azurite exits with EADDRINUSE while the port answers for the other process, so readiness
    is read from this Azurite's own log, and a failed start is retried on another port."""
    executable = azurite_executable()
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="seatsync-azurite-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    last_error = ""
    for _ in range(attempts):
        port = free_port()
        log_path = log_dir / f"azurite-{port}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [str(executable), "--inMemoryPersistence", "--disableTelemetry",
                 "--skipApiVersionCheck", "--tableHost", "127.0.0.1", "--tablePort", str(port)],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=log_dir, env={**os.environ, "NODE_NO_WARNINGS": "1"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if _started(log_path, port) and process.poll() is None and _listening(port):
                return Azurite(process, port, log_path)
            time.sleep(0.05)
        with contextlib.suppress(Exception):
            process.kill()
            process.wait(timeout=5)
        last_error = log_path.read_text(errors="replace")[-2000:]
    raise AzuriteError(f"Azurite did not start after {attempts} attempts; last log:\n{last_error}")
