"""Approvals of held decreases, the audit trail and unlinked licences: what an MSP's billing
admin reviews between runs (CLI and HTTP share these functions)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from shared.adapters.decision_store import ApprovalRecord, AuditEntry, DecisionRepository
from shared.adapters.snapshot_store import SnapshotRepository
from shared.adapters.tables import StoreRetry
from shared.config.schema import SeatSyncConfig, TenantConfig, is_guid
from shared.domain.billing import unlinked_licences, unmapped
from shared.domain.sku_names import sku_display_name
from shared.errors import RequestValidationError

APPROVAL_STATES = ("pending", "approved", "rejected", "superseded", "applied")


def approval_json(record: ApprovalRecord, config: SeatSyncConfig | None = None) -> dict[str, Any]:
    change = record.change
    tenant = config.tenant(record.tenant_id) if config else None
    return {
        "id": record.hold_key, "status": record.status, "tenantId": record.tenant_id,
        "tenantName": tenant.name if tenant else None, "licence": change.label or change.sku_id,
        "psa": change.psa, "companyId": change.company_id, "agreementId": change.agreement_id,
        "lineId": change.line_id, "from": change.old_quantity, "to": change.new_quantity,
        "reason": change.reason, "heldAt": record.held_at.isoformat(), "heldInRun": record.held_in_run,
        "decidedBy": record.decided_by, "decidedAt": record.decided_at.isoformat() if record.decided_at else None,
        "comment": record.comment,
    }


def list_approvals(decisions: DecisionRepository, status: str | None = "pending") -> list[ApprovalRecord]:
    if status is not None and status not in APPROVAL_STATES:
        raise RequestValidationError("status", f"must be one of {', '.join(APPROVAL_STATES)}, got {status!r}")
    return decisions.approvals(status)


def decide(decisions: DecisionRepository, config: SeatSyncConfig, hold_key: str, approve: bool, by: str,
           comment: str | None, now: datetime) -> ApprovalRecord:
    """Approve or reject a held decrease and audit the decision. An approved decrease is applied
    by the next push, re-planned first: if the count moved on meanwhile it is not applied stale."""
    record = decisions.decide(hold_key, approve, by, comment, now)
    tenant = config.tenant(record.tenant_id)
    entry = AuditEntry.of(record.change, "approved" if approve else "rejected", now, tenant.name if tenant else "",
                          actor=by, reason=comment or ("approved" if approve else "rejected"))
    # the decision is stored: its audit entry rides out a brief storage outage rather than be lost
    DECISION_AUDIT_RETRY.call(f"the audit entry of the decision on {hold_key}", lambda: decisions.audit(entry))
    return record


DECISION_AUDIT_RETRY = StoreRetry(attempts=4, first_wait=0.5, max_wait=4.0)
"""About ten seconds: a person waits for the answer."""


def resolve_customer(config: SeatSyncConfig, customer: str) -> TenantConfig:
    """A configured tenant by id or by (unambiguous, case-insensitive) name or name prefix."""
    if is_guid(customer):
        tenant = config.tenant(customer)
        if tenant is None:
            raise RequestValidationError("customer", f"tenant {customer} is not configured")
        return tenant
    wanted = customer.strip().casefold()
    exact = [t for t in config.tenants if t.name.casefold() == wanted]
    matches = exact or [t for t in config.tenants if t.name.casefold().startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RequestValidationError("customer", f"no configured tenant is named {customer!r}")
    names = ", ".join(t.name for t in matches[:5])
    raise RequestValidationError("customer", f"{customer!r} matches several tenants ({names}); give the tenant id")


def parse_day(value: str | None, field: str) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise RequestValidationError(field, f"{value!r} is not a date (YYYY-MM-DD)") from None


@dataclass(frozen=True)
class AuditQuery:
    """Whose audit trail, and which days. ``tenant_name`` is empty for a tenant that has left the
    configuration: its trail stays readable by tenant id, each entry carrying the name it had."""

    tenant_id: str
    tenant_name: str
    start: date | None
    end: date | None


def audit_query(config: SeatSyncConfig, customer: str | None, start: str | None, end: str | None) -> AuditQuery:
    if not customer:
        raise RequestValidationError("customer", "give the customer (tenant id or name)")
    if is_guid(customer) and config.tenant(customer) is None:
        tenant_id, name = customer.lower(), ""  # an offboarded customer: read by id
    else:
        tenant = resolve_customer(config, customer)
        tenant_id, name = tenant.tenant_id, tenant.name
    query = AuditQuery(tenant_id, name, parse_day(start, "from"), parse_day(end, "to"))
    if query.start and query.end and query.end < query.start:
        raise RequestValidationError("to", f"{query.end} is before {query.start}")
    return query


def audit_trail(decisions: DecisionRepository, query: AuditQuery) -> list[AuditEntry]:
    """Entries of one customer from the start of ``start`` to the end of ``end`` (UTC days)."""
    start = datetime.combine(query.start, time(0), UTC) if query.start else None
    end = datetime.combine(query.end + timedelta(days=1), time(0), UTC) if query.end else None
    return decisions.audit_trail(query.tenant_id, start, end)


AUDIT_COLUMNS = ("at", "event", "tenant_name", "licence", "kind", "before", "after", "amount", "old_unit_price",
                 "unit_price", "psa", "company_id", "agreement_id", "line_id", "run_id", "trigger", "requested_by",
                 "actor", "reason", "error", "change_id", "tenant_id")


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {column: _plain(getattr(entry, column)) for column in AUDIT_COLUMNS}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, (int, str)):
        return value
    return str(value)


AUDIT_NUMBER_COLUMNS = frozenset({"before", "after", "amount", "old_unit_price", "unit_price"})
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: str) -> str:
    """``value`` as a spreadsheet shows it as text, never runs it: a cell beginning with ``=``,
    ``+``, ``-``, ``@``, tab or carriage return gets a leading single quote (OWASP, CSV Injection)."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def audit_csv(entries: list[AuditEntry]) -> str:
    """The audit trail as CSV that is safe to open in a spreadsheet (OWASP's guidance on CSV
    injection): every text cell is quoted, so a separator or a quote inside it cannot start a new
    cell, and neutralised by ``spreadsheet_text``; the number columns (seats before and after,
    amount, prices) are written as plain numbers, so a negative amount stays ``-13.20``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(AUDIT_COLUMNS)
    for entry in entries:
        row = audit_json(entry)
        writer.writerow([_csv_cell(column, row[column]) for column in AUDIT_COLUMNS])
    return out.getvalue()


def _csv_cell(column: str, value: Any) -> str | int | Decimal:
    if value is None:
        return ""
    if column in AUDIT_NUMBER_COLUMNS:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        number = Decimal(str(value))
        if not number.is_finite():
            raise ValueError(f"the audit column {column} holds {value!r}, not a number")
        return number
    return spreadsheet_text(str(value))


def unlinked(config: SeatSyncConfig, snapshots: SnapshotRepository) -> list[dict[str, Any]]:
    """Licences of configured tenants that no mapping bills and no exclusion covers, from each
    tenant's latest snapshot (tenants never collected are listed as such). The billable licences
    of every tenant's latest snapshot are read at once (``latest_licences``); only a tenant
    missing there has its snapshot read."""
    rows: list[dict[str, Any]] = []
    latest = snapshots.latest_licences()
    for tenant in config.tenants:
        if not tenant.enabled:
            continue
        kept = latest.get(tenant.tenant_id)
        if kept is not None:
            skus, collected_at = unmapped(config, tenant, kept.skus), kept.collected_at
        else:
            snapshot = snapshots.latest(tenant.tenant_id)
            if snapshot is None:
                rows.append({"tenantId": tenant.tenant_id, "tenantName": tenant.name, "skuId": None,
                             "licence": None, "purchased": None, "assigned": None,
                             "note": "never collected: no snapshot yet"})
                continue
            skus, collected_at = unlinked_licences(config, tenant, snapshot), snapshot.collected_at
        for sku in skus:
            rows.append({"tenantId": tenant.tenant_id, "tenantName": tenant.name, "skuId": sku.sku_id,
                         "licence": sku_display_name(sku.sku_id, sku.sku_part_number),
                         "skuPartNumber": sku.sku_part_number, "purchased": sku.purchased,
                         "assigned": sku.consumed, "collectedAt": collected_at.isoformat(), "note": None})
    return rows
