"""Plan and push the changes of a group of collected tenants to their PSAs.

The plan is recorded before anything is written, each write's result is recorded after it,
and a tenant whose PSA lines cannot be read is not planned at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import date

import requests

from shared.adapters.run_store import RunRepository
from shared.adapters.snapshot_store import SnapshotRepository
from shared.config.schema import SeatSyncConfig
from shared.contracts import PushRequest, PushSummary
from shared.domain.model import BilledLine, ChangeStatus
from shared.domain.planning import LineKey, plan_tenant, referenced_agreements
from shared.errors import PsaError, SeatSyncError
from shared.ports import PsaPort

log = logging.getLogger(__name__)


def _read_lines(tenant_agreements: list[tuple[str, str]],
                psa_for: Callable[[str], PsaPort]) -> dict[LineKey, BilledLine]:
    by_psa: dict[str, list[str]] = {}
    for psa, agreement in tenant_agreements:
        by_psa.setdefault(psa, []).append(agreement)
    lines: dict[LineKey, BilledLine] = {}
    for psa, agreements in by_psa.items():
        for line in psa_for(psa).list_lines(agreements):
            lines[(psa, line.line_id)] = line
    return lines


def push_changes(config: SeatSyncConfig, snapshots: SnapshotRepository, runs: RunRepository,
                 psa_for: Callable[[str], PsaPort], request: PushRequest, today: date) -> PushSummary:
    summary = PushSummary()
    for tenant_id in request.tenant_ids:
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
            lines = _read_lines(referenced_agreements(tenant), psa_for)
        except (PsaError, SeatSyncError, requests.RequestException) as exc:
            log.warning("tenant %s: PSA lines could not be read: %s", tenant_id, exc)
            runs.record_problems(request.run_id, tenant_id, [],
                                 push_error=f"PSA lines could not be read, nothing planned: {exc}")
            summary.tenants_failed.append(tenant_id)
            continue
        plan = plan_tenant(tenant, snapshot, lines, today)
        summary.unchanged += len(plan.unchanged)
        summary.problems += len(plan.problems)
        summary.planned += len(plan.changes)
        runs.record_problems(request.run_id, tenant_id, list(plan.problems))
        if request.dry_run:
            runs.record_changes(request.run_id, [replace(c, status=ChangeStatus.DRY_RUN) for c in plan.changes])
            summary.dry_run += len(plan.changes)
            continue
        runs.record_changes(request.run_id, list(plan.changes))
        for change in plan.changes:
            assert change.line_id is not None  # set-quantity changes always name their line
            line = lines[(change.psa, change.line_id)]
            try:
                psa_for(change.psa).set_quantity(line, change.new_quantity, today)
            except (PsaError, requests.RequestException) as exc:
                log.warning("change %s failed: %s", change.change_id, exc)
                runs.update_change(request.run_id, replace(change, status=ChangeStatus.FAILED), str(exc))
                summary.failed += 1
            else:
                runs.update_change(request.run_id, replace(change, status=ChangeStatus.APPLIED))
                summary.applied += 1
    return summary
