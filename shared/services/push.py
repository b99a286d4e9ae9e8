"""Plan and push the changes of a group of collected tenants to their PSAs.

For each tenant: read what its PSAs bill now (agreements, lines, catalogue prices), plan with
the pure core, record the plan, then write. Exactly-once: every write is planned from the
PSA's state read just before, SeatSync's records carry deterministic tags, a prorate line is
written before the base quantity it accompanies, and the ledger records each write; so a
retried activity, a crash between a PSA write and its bookkeeping, or a second run on the same
day finds the work already done instead of doing it twice. Held and deferred decreases are
recorded for a human or for their renewal date; every write and every decision is audited.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime

import requests

from shared import telemetry
from shared.adapters.decision_store import AuditEntry, DecisionRepository
from shared.adapters.margin_store import MarginRepository
from shared.adapters.run_store import ReconciliationRow, RunRepository, UnlinkedLicence
from shared.adapters.snapshot_store import SnapshotRepository
from shared.config.schema import SeatSyncConfig, TenantConfig
from shared.contracts import PushRequest, PushSummary, SyncRequest
from shared.domain.billing import unlinked_licences
from shared.domain.model import (
    Agreement,
    BilledLine,
    ChangeKind,
    ChangeStatus,
    PlannedChange,
    Product,
    PsaCapabilities,
    TenantSnapshot,
)
from shared.domain.planning import AgreementKey, PsaView, TenantPlan, plan_tenant, required_reads
from shared.domain.problems import Problem, count_by_kind
from shared.domain.sku_names import sku_display_name
from shared.domain.subscriptions import StateRecord, licence_state
from shared.errors import PsaError, SeatSyncError
from shared.ports import NewLine, PsaPort
from shared.services.reconcile import record_tenant as record_margins

log = logging.getLogger(__name__)
PsaLookup = Callable[[str], PsaPort]


class TenantReadError(SeatSyncError):
    """The PSA state of a tenant could not be read completely: nothing is planned for it."""


@dataclass
class SharedReads:
    """What a batch of tenants shares: their agreements, the billing profiles' products and each
    PSA's capabilities, read once per push instead of once per tenant."""

    agreements: dict[AgreementKey, Agreement]
    products: dict[AgreementKey, Product]
    capabilities: dict[str, PsaCapabilities]
    error: str | None = None


def read_shared(config: SeatSyncConfig, tenants: list[TenantConfig], psa_for: PsaLookup) -> SharedReads:
    agreements_needed: set[AgreementKey] = set()
    products_needed: set[AgreementKey] = set()
    for tenant in tenants:
        agreements, products = required_reads(config, tenant)
        agreements_needed |= agreements
        products_needed |= products
    shared = SharedReads({}, {}, {})
    try:
        for psa in sorted({p for p, _ in agreements_needed} | {p for p, _ in products_needed}):
            client = psa_for(psa)
            shared.capabilities[psa] = client.capabilities
            wanted = sorted(a for p, a in agreements_needed if p == psa)
            for agreement in client.get_agreements(wanted):
                shared.agreements[(psa, agreement.agreement_id)] = agreement
            for product_id in sorted(i for p, i in products_needed if p == psa):
                shared.products[(psa, product_id)] = client.get_product(product_id)
    except (PsaError, SeatSyncError, requests.RequestException) as exc:
        shared.error = f"PSA agreements and products could not be read, nothing planned: {exc}"
    return shared


def read_view(config: SeatSyncConfig, tenant: TenantConfig, shared: SharedReads, psa_for: PsaLookup) -> PsaView:
    """What the planner needs for one tenant: the shared reads and the lines of its agreements
    (those that exist), read completely or not at all."""
    if shared.error is not None:
        raise TenantReadError(shared.error)
    agreements_needed, _ = required_reads(config, tenant)
    lines: dict[AgreementKey, tuple[BilledLine, ...]] = {}
    try:
        for psa in sorted({p for p, _ in agreements_needed}):
            wanted = sorted(a for p, a in agreements_needed if p == psa and (p, a) in shared.agreements)
            by_agreement: dict[str, list[BilledLine]] = {a: [] for a in wanted}
            if wanted:
                for line in psa_for(psa).list_lines(wanted):
                    by_agreement.setdefault(line.agreement_id, []).append(line)
            lines.update({(psa, a): tuple(found) for a, found in by_agreement.items()})
    except (PsaError, SeatSyncError, requests.RequestException) as exc:
        raise TenantReadError(f"PSA lines could not be read, nothing planned: {exc}") from exc
    return PsaView(shared.agreements, lines, shared.products, shared.capabilities)


@dataclass
class _Context:
    config: SeatSyncConfig
    runs: RunRepository
    decisions: DecisionRepository
    psa_for: PsaLookup
    request: PushRequest
    run: SyncRequest | None
    now: datetime

    def audit(self, change: PlannedChange, event: str, tenant: TenantConfig, **extra: str | None) -> None:
        self.decisions.audit(AuditEntry.of(
            change, event, self.now, tenant.name, run_id=self.request.run_id,
            trigger=self.run.trigger if self.run else None,
            requested_by=self.run.requested_by if self.run else None, **extra))


def state_history(snapshots: SnapshotRepository, snapshot: TenantSnapshot) -> dict[str, list[StateRecord]]:
    """For each licence of the tenant with seats that are not active, the states earlier runs
    recorded (to say since when); licences whose seats are all active need none."""
    history: dict[str, list[StateRecord]] = {}
    for sku in snapshot.skus:
        if licence_state(sku, snapshot.subscriptions) is None:
            continue
        history[sku.sku_id] = [StateRecord(row.collected_at.date(), row.state)
                               for row in snapshots.licence_history(snapshot.tenant_id, sku.sku_id)]
    return history


def acknowledged(config: SeatSyncConfig, problem: Problem) -> bool:
    """Whether a person acknowledged the problem by excluding its alert (per tenant, licence or
    problem kind): it is still reported, but no longer makes the run need attention."""
    return config.notifications.excluded("billing-problem", problem.tenant_id, problem.sku_id, problem.kind)


def _line_of(view: PsaView, change: PlannedChange) -> BilledLine:
    for line in view.lines.get((change.psa, change.agreement_id), ()):
        if line.line_id == change.line_id:
            return line
    raise PsaError(change.psa, "the line to change is no longer on the agreement",
                   f"agreement {change.agreement_id} line {change.line_id}")


def execute(change: PlannedChange, view: PsaView, client: PsaPort) -> str | None:
    """Make one write; returns the id of the line written."""
    if change.kind in (ChangeKind.PRORATE, ChangeKind.CREDIT, ChangeKind.PERIOD_RECORD, ChangeKind.CREATE_LINE):
        assert change.product_id is not None and change.effective_date is not None
        created = client.create_line(NewLine(
            agreement_id=change.agreement_id, product_id=change.product_id, quantity=change.new_quantity,
            effective_date=change.effective_date, unit_price=change.unit_price,
            bill_mode=change.bill_mode or NewLine.bill_mode, description=(change.description or change.label)[:200],
            invoice_description=change.description or "", end_date=change.end_date, tag=change.tag,
            unit_cost=change.unit_cost, billing=change.billing))
        return created.line_id
    line = _line_of(view, change)
    if change.kind == ChangeKind.SET_QUANTITY:
        assert change.effective_date is not None
        client.set_quantity(line, change.new_quantity, change.effective_date)
    else:
        client.update_line(line, invoice_description=change.description, unit_price=change.unit_price)
    return line.line_id


def _reconciliation(tenant: TenantConfig, snapshot: TenantSnapshot, plan: TenantPlan, config: SeatSyncConfig
                    ) -> tuple[list[ReconciliationRow], list[UnlinkedLicence]]:
    rows = [ReconciliationRow(
        tenant_id=tenant.tenant_id, tenant_name=tenant.name, psa=o.item.company.psa,
        company_id=o.item.company.company_id, agreement_id=o.agreement_id, line_id=o.line_id,
        mapping_key=o.item.mapping_key, source=o.item.licence.source, label=o.item.label,
        purchased=o.item.purchased, counted=o.item.counted, target=o.item.quantity, billed_before=o.billed_before,
        unit_price=o.unit_price) for o in plan.outcomes]
    unlinked = [UnlinkedLicence(tenant_id=tenant.tenant_id, tenant_name=tenant.name, sku_id=s.sku_id,
                                sku_part_number=s.sku_part_number, label=sku_display_name(s.sku_id, s.sku_part_number),
                                purchased=s.purchased, assigned=s.consumed)
                for s in unlinked_licences(config, tenant, snapshot)]
    return rows, unlinked


def _record_decisions(ctx: _Context, tenant: TenantConfig, plan: TenantPlan) -> None:
    current = {c.hold_key for c in plan.changes if c.hold_key}
    for change in plan.changes:
        if change.status == ChangeStatus.HELD and ctx.decisions.hold(change, ctx.request.run_id, ctx.now):
            ctx.audit(change, "held", tenant)
        elif change.status == ChangeStatus.DEFERRED and ctx.decisions.defer(change, ctx.request.run_id, ctx.now):
            ctx.audit(change, "deferred", tenant)
    # a pending approval whose decrease no longer stands (the count moved on) is superseded
    pending = ctx.decisions.approvals("pending", tenant.tenant_id)
    if not pending:
        return
    for mapping_key in {c.mapping_key for c in plan.changes} | {o.item.mapping_key for o in plan.outcomes}:
        keep = next((c.hold_key for c in plan.changes if c.mapping_key == mapping_key and c.hold_key in current
                     and c.status == ChangeStatus.HELD), None)
        for record in ctx.decisions.supersede(pending, mapping_key, keep, ctx.now):
            ctx.audit(record.change, "superseded", tenant, reason="the licence count moved on before a decision")


def _apply(ctx: _Context, tenant: TenantConfig, plan: TenantPlan, view: PsaView, summary: PushSummary) -> None:
    broken: set[str] = set()  # mappings whose earlier write failed: their later writes wait for the next run
    for change in plan.changes:
        if not change.writes:
            continue
        if change.mapping_key in broken:
            skipped = replace(change, status=ChangeStatus.FAILED)
            ctx.runs.update_change(ctx.request.run_id, skipped,
                                   "not attempted: an earlier write of this licence failed")
            summary.failed += 1
            continue
        if ctx.decisions.written(tenant.tenant_id, change.change_id):
            ctx.runs.update_change(ctx.request.run_id, replace(change, status=ChangeStatus.APPLIED),
                                   "already written by an earlier attempt")
            summary.applied += 1
            _count_money(summary, change)
            continue
        try:
            written = execute(change, view, ctx.psa_for(change.psa))
        except (PsaError, SeatSyncError, requests.RequestException) as exc:
            log.warning("change %s failed: %s", change.change_id, exc)
            broken.add(change.mapping_key)
            failed = replace(change, status=ChangeStatus.FAILED)
            ctx.runs.update_change(ctx.request.run_id, failed, str(exc))
            ctx.audit(failed, "failed", tenant, error=str(exc))
            summary.failed += 1
            continue
        ctx.decisions.record_write(change, ctx.request.run_id, ctx.now, written)
        applied = replace(change, status=ChangeStatus.APPLIED, line_id=change.line_id or written)
        ctx.runs.update_change(ctx.request.run_id, applied)
        ctx.audit(applied, "applied", tenant)
        if change.hold_key and change.kind == ChangeKind.SET_QUANTITY:
            if ctx.decisions.approval(change.hold_key) is not None:
                ctx.decisions.mark_applied(change.hold_key, ctx.now)
            ctx.decisions.clear_deferral(tenant.tenant_id, change.hold_key)
        summary.applied += 1
        _count_money(summary, change)


def _count_money(summary: PushSummary, change: PlannedChange) -> None:
    """The money a written change moves, for the run's telemetry: its prorated amount, and for a
    quantity change the recurring charge it changes (units changed times the unit price)."""
    if change.amount is not None:
        summary.prorated_amount += change.amount
    if change.kind == ChangeKind.SET_QUANTITY and change.unit_price is not None and change.old_quantity is not None:
        summary.recurring_change += (change.new_quantity - change.old_quantity) * change.unit_price


def push_changes(config: SeatSyncConfig, snapshots: SnapshotRepository, runs: RunRepository,
                 decisions: DecisionRepository, psa_for: PsaLookup, request: PushRequest, today: date,
                 now: datetime, margins: MarginRepository | None = None) -> PushSummary:
    summary = PushSummary()
    ctx = _Context(config, runs, decisions, psa_for, request, runs.request(request.run_id), now)
    configured = [t for t in (config.tenant(i) for i in request.tenant_ids) if t is not None]
    shared = read_shared(config, configured, psa_for)
    for tenant_id in request.tenant_ids:
        telemetry.set_tenant(tenant_id)
        summary.tenants += 1
        tenant = config.tenant(tenant_id)
        snapshot = snapshots.get(tenant_id, request.run_id)
        if tenant is None or snapshot is None:
            reason = ("the tenant is no longer configured" if tenant is None
                      else "no snapshot of this run was stored")
            runs.record_problems(request.run_id, tenant_id, [], push_error=reason)
            summary.tenants_failed.append(tenant_id)
            continue
        try:
            view = read_view(config, tenant, shared, psa_for)
        except TenantReadError as exc:
            log.warning("tenant %s: %s", tenant_id, exc)
            runs.record_problems(request.run_id, tenant_id, [], push_error=str(exc))
            summary.tenants_failed.append(tenant_id)
            continue
        plan = plan_tenant(config, tenant, snapshot, view, today, decisions.decisions_for(tenant_id),
                           state_history(snapshots, snapshot))
        runs.record_problems(request.run_id, tenant_id, list(plan.problems))
        runs.record_reconciliation(request.run_id, tenant_id, *_reconciliation(tenant, snapshot, plan, config))
        if margins is not None:
            record_margins(margins, request.run_id, config, tenant, snapshot, plan, view, today)
        summary.unchanged += plan.unchanged
        summary.count_problems(count_by_kind(plan.problems),
                               sum(1 for p in plan.problems if acknowledged(config, p)))
        summary.held += sum(1 for c in plan.changes if c.status == ChangeStatus.HELD)
        summary.deferred += sum(1 for c in plan.changes if c.status == ChangeStatus.DEFERRED)
        summary.rejected += sum(1 for c in plan.changes if c.status == ChangeStatus.REJECTED)
        to_write = [c for c in plan.changes if c.writes]
        summary.planned += len(to_write)
        if request.dry_run:
            runs.record_changes(request.run_id, [replace(c, status=ChangeStatus.DRY_RUN) if c.writes else c
                                                 for c in plan.changes])
            summary.dry_run += len(to_write)
            continue
        runs.record_changes(request.run_id, list(plan.changes))
        _record_decisions(ctx, tenant, plan)
        applied_before, failed_before = summary.applied, summary.failed
        _apply(ctx, tenant, plan, view, summary)
        if to_write and summary.applied == applied_before and summary.failed > failed_before:
            summary.tenants_unwritten.append(tenant_id)  # the PSA took none of its writes
    return summary
