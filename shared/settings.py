"""App settings: read once, validated, in one place.

In Azure these are Function App settings (secrets as Key Vault references, which the platform
resolves into plain values); locally they come from the environment or a git-ignored
``local.settings.json``. Everything else (tenants, PSA connections, mappings) is configuration
kept in Table Storage, edited through the CLI or the config API. Secrets never live there:
the configuration names the app setting or Key Vault secret that holds each one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.errors import ConfigError

DEFAULT_SCHEDULE = "0 0 2 * * *"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_GRAPH_ENDPOINT = "https://graph.microsoft.com"
DEFAULT_RUN_LEASE_MINUTES = 5
MAX_RUN_LEASE_MINUTES = 120
DEFAULT_SYNC_CHUNK = 200
DEFAULT_SYNC_PARALLEL_CHUNKS = 4
DEFAULT_PUSH_ACTIVITY_SECONDS = 420
MAX_PUSH_ACTIVITY_SECONDS = 3600
DEFAULT_CONFIG_RECHECK_SECONDS = 30
MAX_CONFIG_RECHECK_SECONDS = 600
_TABLE_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,29}$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class GraphSettings:
    client_id: str
    partner_tenant_id: str
    client_secret: str | None = field(default=None, repr=False)
    client_certificate_path: str | None = None
    authority_host: str = DEFAULT_AUTHORITY_HOST
    endpoint: str = DEFAULT_GRAPH_ENDPOINT


@dataclass(frozen=True)
class Settings:
    """Every app setting SeatSync reads. See docs/configuration.md."""

    sync_schedule: str
    table_connection_string: str | None = field(default=None, repr=False)
    table_endpoint: str | None = None
    table_prefix: str = "seatsync"
    graph: GraphSettings | None = None
    ca_bundle: str | None = None
    key_vault_url: str | None = None
    public_url: str | None = None
    run_lease_minutes: int = DEFAULT_RUN_LEASE_MINUTES
    sync_chunk: int = DEFAULT_SYNC_CHUNK
    sync_parallel_chunks: int = DEFAULT_SYNC_PARALLEL_CHUNKS
    push_activity_seconds: int = DEFAULT_PUSH_ACTIVITY_SECONDS
    config_recheck_seconds: int = DEFAULT_CONFIG_RECHECK_SECONDS
    environment: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: ``os.environ``), naming every bad setting."""
        env = dict(os.environ if env is None else env)
        problems: list[str] = []

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        connection = get("SEATSYNC_STORAGE_CONNECTION_STRING")
        endpoint = get("SEATSYNC_TABLE_ENDPOINT")
        if connection is None and endpoint is None:
            problems.append(
                "set SEATSYNC_STORAGE_CONNECTION_STRING (a storage connection string) or "
                "SEATSYNC_TABLE_ENDPOINT (https://<account>.table.core.windows.net, used with "
                "the managed identity)"
            )
        if endpoint is not None and not endpoint.startswith(("https://", "http://")):
            problems.append(f"SEATSYNC_TABLE_ENDPOINT must be a URL, got {endpoint!r}")

        prefix = get("SEATSYNC_TABLE_PREFIX") or "seatsync"
        if not _TABLE_PREFIX.match(prefix):
            problems.append(
                f"SEATSYNC_TABLE_PREFIX must be a letter then up to 29 letters or digits, got {prefix!r}"
            )

        graph: GraphSettings | None = None
        client_id = get("GRAPH_CLIENT_ID")
        partner = get("GRAPH_PARTNER_TENANT_ID")
        secret = get("GRAPH_CLIENT_SECRET")
        certificate = get("GRAPH_CLIENT_CERTIFICATE_PATH")
        if client_id or partner or secret or certificate:
            if not client_id or not _GUID.match(client_id):
                problems.append(f"GRAPH_CLIENT_ID must be the app registration's GUID, got {client_id!r}")
            if not partner or not _GUID.match(partner):
                problems.append(
                    f"GRAPH_PARTNER_TENANT_ID must be the partner tenant's GUID, got {partner!r}"
                )
            if not secret and not certificate:
                problems.append("set GRAPH_CLIENT_SECRET or GRAPH_CLIENT_CERTIFICATE_PATH")
            if secret and secret.startswith("@Microsoft.KeyVault("):
                problems.append("GRAPH_CLIENT_SECRET is an unresolved Key Vault reference: store the secret "
                                "'graph-client-secret' in the vault and grant the app's identity "
                                "'Key Vault Secrets User'")
            if certificate and not Path(certificate).is_file():
                problems.append(f"GRAPH_CLIENT_CERTIFICATE_PATH names no file: {certificate}")
            authority = get("GRAPH_AUTHORITY_HOST") or DEFAULT_AUTHORITY_HOST
            graph_endpoint = get("GRAPH_ENDPOINT") or DEFAULT_GRAPH_ENDPOINT
            for name, url in (("GRAPH_AUTHORITY_HOST", authority), ("GRAPH_ENDPOINT", graph_endpoint)):
                if not url.startswith("https://"):
                    problems.append(f"{name} must be an https:// URL, got {url!r}")
            graph = GraphSettings(
                client_id=client_id or "",
                partner_tenant_id=partner or "",
                client_secret=secret,
                client_certificate_path=certificate,
                authority_host=authority.rstrip("/"),
                endpoint=graph_endpoint.rstrip("/"),
            )

        ca_bundle = get("SEATSYNC_CA_BUNDLE")
        if ca_bundle and not Path(ca_bundle).is_file():
            problems.append(f"SEATSYNC_CA_BUNDLE names no file: {ca_bundle}")

        lease_text = get("SEATSYNC_RUN_LEASE_MINUTES")
        lease_minutes = DEFAULT_RUN_LEASE_MINUTES
        if lease_text is not None:
            if not lease_text.isdigit() or not 1 <= int(lease_text) <= MAX_RUN_LEASE_MINUTES:
                problems.append(f"SEATSYNC_RUN_LEASE_MINUTES must be a whole number of minutes from 1 to "
                                f"{MAX_RUN_LEASE_MINUTES}, got {lease_text!r}")
            else:
                lease_minutes = int(lease_text)

        def whole(name: str, default: int, low: int, high: int, unit: str) -> int:
            text = get(name)
            if text is None:
                return default
            if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
                problems.append(f"{name} must be a whole number of {unit} from {low} to {high}, got {text!r}")
                return default
            return int(text)

        chunk = whole("SEATSYNC_SYNC_CHUNK", DEFAULT_SYNC_CHUNK, 10, 1000, "tenants")
        parallel = whole("SEATSYNC_SYNC_PARALLEL_CHUNKS", DEFAULT_SYNC_PARALLEL_CHUNKS, 1, 50, "sub-orchestrations")
        push_seconds = whole("SEATSYNC_PUSH_ACTIVITY_SECONDS", DEFAULT_PUSH_ACTIVITY_SECONDS, 60,
                             MAX_PUSH_ACTIVITY_SECONDS, "seconds")
        recheck = whole("SEATSYNC_CONFIG_RECHECK_SECONDS", DEFAULT_CONFIG_RECHECK_SECONDS, 0,
                        MAX_CONFIG_RECHECK_SECONDS, "seconds")

        if problems:
            raise ConfigError(problems, source="app settings")
        return cls(
            sync_schedule=get("SYNC_SCHEDULE") or DEFAULT_SCHEDULE,
            table_connection_string=connection,
            table_endpoint=endpoint,
            table_prefix=prefix,
            graph=graph,
            ca_bundle=ca_bundle,
            key_vault_url=get("SEATSYNC_KEY_VAULT_URL"),
            public_url=get("SEATSYNC_PUBLIC_URL"),
            run_lease_minutes=lease_minutes,
            sync_chunk=chunk,
            sync_parallel_chunks=parallel,
            push_activity_seconds=push_seconds,
            config_recheck_seconds=recheck,
            environment=env,
        )

    @property
    def tls_verify(self) -> bool | str:
        """What ``requests`` should verify TLS against."""
        return self.ca_bundle or True

    def require_graph(self) -> GraphSettings:
        if self.graph is None:
            raise ConfigError(
                "Microsoft Graph is not configured: set GRAPH_CLIENT_ID, GRAPH_PARTNER_TENANT_ID "
                "and GRAPH_CLIENT_SECRET (or GRAPH_CLIENT_CERTIFICATE_PATH)",
                source="app settings",
            )
        return self.graph


def load_local_settings(path: Path) -> dict[str, str]:
    """Values of a ``local.settings.json`` (the Functions host's local format)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}", source="local settings") from exc
    values = document.get("Values") if isinstance(document, dict) else None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected an object with a 'Values' object", source="local settings")
    return {str(k): str(v) for k, v in values.items()}
