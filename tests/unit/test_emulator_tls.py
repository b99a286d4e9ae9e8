"""The emulators' throwaway CA: made once with trustme, trusted through SEATSYNC_CA_BUNDLE."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from emulators.tls import ensure_tls_files


def test_a_loopback_certificate_signed_by_a_local_ca_is_made_once(tmp_path: Path) -> None:
    files = ensure_tls_files(tmp_path)
    ca = x509.load_pem_x509_certificate(files.ca_certificate.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_certificate.read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    assert server.not_valid_after_utc < datetime.now(UTC) + timedelta(days=400)
    assert oct(files.server_key.stat().st_mode & 0o777) == "0o600"
    context = ssl.create_default_context(cafile=str(files.ca_certificate))
    context.load_cert_chain(files.server_certificate, files.server_key)  # the key matches the certificate
    before = files.server_certificate.read_bytes()
    assert ensure_tls_files(tmp_path) == files
    assert files.server_certificate.read_bytes() == before, "a valid certificate is kept"
