"""A throwaway certificate authority for the emulators.

The real services are HTTPS only, and azure-identity refuses an authority that is not https,
so the emulators serve TLS with a server certificate for 127.0.0.1/localhost signed by a local
CA. Clients trust that CA through ``SEATSYNC_CA_BUNDLE``, the same setting an MSP behind a TLS
inspecting proxy would use; nothing in the product is switched off for the emulators.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme
from cryptography import x509

VALIDITY = timedelta(days=365)


@dataclass(frozen=True)
class TlsFiles:
    ca_certificate: Path
    server_certificate: Path
    server_key: Path


def _write(path: Path, data: bytes, private: bool = False) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    if private:
        os.chmod(tmp, 0o600)
    tmp.replace(path)


def ensure_tls_files(directory: Path) -> TlsFiles:
    """Create (once) a CA and a loopback server certificate in ``directory``, with ``trustme``
    (a library made for throwaway test CAs): a certificate for 127.0.0.1 and localhost, valid for
    a year; made again when it has less than a day left."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    if all(p.is_file() for p in (files.ca_certificate, files.server_certificate, files.server_key)):
        certificate = x509.load_pem_x509_certificate(files.server_certificate.read_bytes())
        if certificate.not_valid_after_utc > datetime.now(UTC) + timedelta(days=1):
            return files

    now = datetime.now(UTC)
    ca = trustme.CA(organization_name="SeatSync emulators local CA")
    server = ca.issue_cert("127.0.0.1", "localhost", common_name="localhost",
                           not_before=now - timedelta(minutes=5), not_after=now + VALIDITY)
    _write(files.ca_certificate, ca.cert_pem.bytes())
    _write(files.server_key, server.private_key_pem.bytes(), private=True)
    _write(files.server_certificate, server.cert_chain_pems[0].bytes())
    return files
