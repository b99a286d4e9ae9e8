"""Validation of a manual sync request (``POST /api/sync`` and ``seatsync sync``)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config.input_limits import read_json
from shared.config.schema import SeatSyncConfig, is_guid
from shared.errors import RequestValidationError

_FIELDS = {"tenants", "dryRun"}


@dataclass(frozen=True)
class ManualSync:
    tenants: list[str] | None
    dry_run: bool


def validate_tenants(tenants: list[str], config: SeatSyncConfig, field: str = "tenants") -> list[str]:
    """Every id must be a GUID of a configured, enabled tenant."""
    result: list[str] = []
    for index, value in enumerate(tenants):
        where = f"{field}[{index}]"
        if not isinstance(value, str) or not is_guid(value):
            raise RequestValidationError(where, f"{value!r} is not a tenant id (a GUID)")
        tenant = config.tenant(value)
        if tenant is None:
            raise RequestValidationError(where, f"tenant {value} is not configured in SeatSync")
        if not tenant.enabled:
            raise RequestValidationError(where, f"tenant {value} ({tenant.name}) is disabled")
        if tenant.tenant_id not in result:
            result.append(tenant.tenant_id)
    return result


def parse_sync_body(body: bytes, config: SeatSyncConfig) -> ManualSync:
    """``{"tenants": [...], "dryRun": true}``, both optional; an empty body syncs everything."""
    if not body or not body.strip():
        return ManualSync(tenants=None, dry_run=False)
    document = read_json(body, "body")
    if not isinstance(document, dict):
        raise RequestValidationError("body", "must be a JSON object like {\"tenants\": [...], \"dryRun\": true}")
    unknown = sorted(set(document) - _FIELDS)
    if unknown:
        raise RequestValidationError(unknown[0], "unknown field (expected 'tenants' and/or 'dryRun')")
    dry_run = document.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise RequestValidationError("dryRun", f"must be true or false, got {dry_run!r}")
    tenants = document.get("tenants")
    if tenants is None:
        return ManualSync(tenants=None, dry_run=dry_run)
    if not isinstance(tenants, list) or not tenants:
        raise RequestValidationError("tenants", "must be a non-empty list of tenant ids")
    return ManualSync(tenants=validate_tenants(tenants, config), dry_run=dry_run)
