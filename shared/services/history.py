"""History: the runs, newest first, and a tenant's licence counts over time.

The CLI (``seatsync runs list``, ``seatsync history``) and the HTTP API (``GET /api/runs``,
``GET /api/tenants/{tenantId}/history``) share these functions and their response models. A
tenant's history is read by tenant id from what the runs stored (the licence counts of each
snapshot and what the PSA billed), so it stays readable after the tenant has left the
configuration.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from pydantic import Field

from shared.adapters.run_store import BilledCount, Lease, RunRecord, RunRepository
from shared.adapters.snapshot_store import LicenceCount, SnapshotRepository
from shared.config.input_limits import key_problem
from shared.config.schema import SeatSyncConfig, is_guid
from shared.contracts import Message, RunProgress, RunStatus, Trigger
from shared.domain.sku_names import sku_display_name
from shared.errors import NotFoundError, RequestValidationError
from shared.services.lease import unfinished_state

DEFAULT_PAGE = 20
MAX_PAGE = 200


class RunTotals(Message):
    """What a finished run did."""

    tenants_total: int
    tenants_ok: int
    tenants_failed: int
    changes_applied: int
    changes_dry_run: int
    changes_held: int
    changes_deferred: int
    changes_failed: int
    problems: int


class RunListItem(Message):
    run_id: str
    status: RunStatus
    dry_run: bool
    trigger: Trigger
    requested_by: str
    started_at: datetime
    finished_at: datetime | None = None
    tenants: list[str] | None = Field(default=None, description="the tenants asked for; None: every enabled one")
    totals: RunTotals | None = Field(default=None, description="once the run has finished")
    progress: RunProgress | None = Field(default=None, description="while the run is running")
    error: str | None = None


class RunPage(Message):
    runs: list[RunListItem]
    next_before: str | None = Field(
        default=None, description="pass as 'before' for the next (older) page; None on the last page")


def parse_limit(value: str | int | None, field: str = "limit") -> int:
    """A page size from 1 to ``MAX_PAGE`` (``DEFAULT_PAGE`` when absent)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_PAGE
    try:
        limit = int(value)
    except ValueError:
        raise RequestValidationError(field, f"{value!r} is not a whole number") from None
    if not 1 <= limit <= MAX_PAGE:
        raise RequestValidationError(field, f"must be from 1 to {MAX_PAGE}, got {limit}")
    return limit


def _item(record: RunRecord, live: RunProgress | None, lease: Lease | None) -> RunListItem:
    request, summary = record.request, record.summary
    progress = None
    if summary is None:
        if live is not None and live.run_id == request.run_id:
            progress = live
        elif record.progress is not None:
            progress = RunProgress.model_validate(record.progress)
    status: RunStatus = summary.status if summary else "died"
    error = summary.error if summary else record.died
    if summary is None and record.status != "died":
        state, error = unfinished_state(request.run_id, lease)
        status = "running" if state == "running" else "died"
    return RunListItem(
        run_id=request.run_id, status=status, dry_run=request.dry_run, trigger=request.trigger,
        requested_by=request.requested_by, started_at=request.requested_at,
        finished_at=summary.finished_at if summary else None, tenants=request.tenants,
        totals=RunTotals(**{name: getattr(summary, name) for name in RunTotals.model_fields}) if summary else None,
        progress=progress, error=error)


def run_page(runs: RunRepository, limit: int = DEFAULT_PAGE, before: str | None = None,
             live: RunProgress | None = None) -> RunPage:
    """A page of runs, newest first. ``live`` is the running orchestration's own progress (the
    Durable custom status), preferred to what the store recorded. ``before`` must be a recorded
    run (the ``nextBefore`` of the previous page): an unknown one is ``NotFoundError``, not a
    silent first page."""
    if before is not None:
        problem = key_problem(before)
        if problem is not None:
            raise RequestValidationError("before", f"the run id {problem}")
        if runs.request(before) is None:
            raise NotFoundError("before", f"no run {before} is recorded")
    records = runs.run_page(limit + 1, before)
    more = len(records) > limit
    records = records[:limit]
    lease = runs.lease() if any(r.summary is None for r in records) else None
    return RunPage(runs=[_item(r, live, lease) for r in records],
                   next_before=records[-1].request.run_id if more and records else None)


def live_progress(runs: RunRepository, run_id: str, durable_status: object | None) -> RunProgress | None:
    """A running run's progress: Durable's custom status when it is this run's, otherwise what
    the host that runs it recorded (the local runner); None once the run has finished."""
    if runs.summary(run_id) is not None:
        return None
    if isinstance(durable_status, dict) and durable_status.get("runId") == run_id:
        return RunProgress.model_validate(durable_status)
    stored = runs.progress(run_id)
    return RunProgress.model_validate(stored) if stored else None


# ---------------------------------------------------------------------------- licence history


class LicencePoint(Message):
    """One run's counts of one licence. ``billed`` is what the PSA billed when the run read it
    (None where no mapping bills the licence or its line did not exist yet); ``to_bill`` is what
    the run computed it should bill."""

    run_id: str
    collected_at: datetime | None
    purchased: int | None
    assigned: int | None
    billed: int | None
    to_bill: int | None


class LicenceHistory(Message):
    licence: str
    sku_id: str | None = Field(description="None for a custom licence")
    sku_part_number: str | None
    points: list[LicencePoint]


class TenantHistory(Message):
    tenant_id: str
    tenant_name: str
    configured: bool = Field(description="false once the tenant has left the configuration")
    licences: list[LicenceHistory]


def _sku_of(source: str) -> str | None:
    """``sku:<id>`` or ``sku:<id>/sub:...`` -> the id; a custom licence has none."""
    return source.split("/")[0].removeprefix("sku:") if source.startswith("sku:") else None


def tenant_history(config: SeatSyncConfig, snapshots: SnapshotRepository, runs: RunRepository, tenant_id: str,
                   licence: str | None = None) -> TenantHistory:
    """A tenant's licences over time, oldest run first: purchased and assigned from each
    snapshot, billed and to bill from each push. ``licence`` (a SKU id, ``skuPartNumber``,
    product name or custom licence name) keeps one licence."""
    if not is_guid(tenant_id):
        raise RequestValidationError("tenant", f"{tenant_id!r} is not a tenant id (a GUID)")
    tenant_id = tenant_id.lower()
    counts: list[LicenceCount] = list(snapshots.licence_history(tenant_id))
    billed: list[BilledCount] = runs.billed_history(tenant_id)
    tenant = config.tenant(tenant_id)
    name = tenant.name if tenant else next((b.tenant_name for b in reversed(billed) if b.tenant_name), "")
    if tenant is None and not counts and not billed:
        raise NotFoundError("tenant", f"tenant {tenant_id} is not configured and has no recorded history")

    by_licence: dict[str, dict[str, LicencePoint]] = defaultdict(dict)
    labels: dict[str, tuple[str, str | None, str | None]] = {}
    for count in counts:
        key = f"sku:{count.sku_id}"
        labels[key] = (sku_display_name(count.sku_id, count.sku_part_number), count.sku_id,
                       count.sku_part_number or None)
        by_licence[key][count.run_id] = LicencePoint(
            run_id=count.run_id, collected_at=count.collected_at, purchased=count.purchased,
            assigned=count.assigned, billed=None, to_bill=None)
    for row in billed:
        sku = _sku_of(row.source)
        key = f"sku:{sku}" if sku else row.source
        labels.setdefault(key, (row.label or (sku_display_name(sku) if sku else row.source.removeprefix("custom:")),
                                sku, None))
        point = by_licence[key].get(row.run_id) or LicencePoint(
            run_id=row.run_id, collected_at=None, purchased=None,
            assigned=None if sku else row.counted, billed=None, to_bill=None)
        by_licence[key][row.run_id] = point.model_copy(update={
            "billed": None if row.billed is None and point.billed is None else (point.billed or 0) + (row.billed or 0),
            "to_bill": (point.to_bill or 0) + row.target})

    wanted = _select(licence, labels) if licence else set(labels)
    series = [LicenceHistory(licence=labels[key][0], sku_id=labels[key][1], sku_part_number=labels[key][2],
                             points=[by_licence[key][run] for run in sorted(by_licence[key])])
              for key in sorted(wanted, key=lambda k: labels[k][0].casefold())]
    return TenantHistory(tenant_id=tenant_id, tenant_name=name, configured=tenant is not None, licences=series)


def _select(licence: str, labels: dict[str, tuple[str, str | None, str | None]]) -> set[str]:
    wanted = licence.strip().casefold()
    found = {key for key, (label, sku, part) in labels.items()
             if wanted in {label.casefold(), (sku or "").casefold(), (part or "").casefold(),
                           key.removeprefix("custom:").casefold()}}
    if not found:
        known = ", ".join(sorted({label for label, _, _ in labels.values()})) or "none recorded"
        raise NotFoundError("licence", f"the tenant has no licence {licence!r} in its history "
                                                f"(known: {known})")
    return found
