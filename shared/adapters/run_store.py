"""Runs, their per-tenant outcomes and every planned change, in Table Storage.

- ``<prefix>runs``: partition ``runs``, row = run id (sortable by time): the run's request and,
  once finished, its summary.
- ``<prefix>runtenants``: partition = run id, row = tenant id: collection outcome, plus the
  problems the plan found for the tenant.
- ``<prefix>changes``: partition = run id, row = change id: each planned change and what
  became of it (applied, dry-run, failed with the reason).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.adapters.serialization import change_from_json, change_to_json
from shared.adapters.tables import (
    DocumentRef,
    TableStore,
    partition,
    read_document,
    submit_batches,
    upsert,
    write_document,
)
from shared.contracts import RunSummary, StartedRun, SyncRequest, TenantOutcome
from shared.domain.model import PlannedChange
from shared.domain.planning import Problem

_RUNS_PK = "runs"
_LEASE_PK = "lease"
_LEASE_RK = "sync"


@dataclass(frozen=True)
class ReconciliationRow:
    """One mapped licence of a tenant in a run: what Microsoft says, what the PSA billed before
    the run, and what the run set it to (or would have, on a dry run). The material of the
    purchased-vs-assigned-vs-billed report and of the unused licences alert."""

    tenant_id: str
    tenant_name: str
    psa: str
    company_id: str
    agreement_id: str
    line_id: str | None
    mapping_key: str
    source: str
    label: str
    purchased: int | None
    counted: int
    target: int
    billed_before: int | None
    unit_price: Decimal | None


@dataclass(frozen=True)
class UnlinkedLicence:
    """A licence of a tenant that no mapping bills and no exclusion covers."""

    tenant_id: str
    tenant_name: str
    sku_id: str
    sku_part_number: str
    label: str
    purchased: int
    assigned: int
_TEXT_LIMIT = 30_000


def _clip(text: str) -> str:
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 20] + " ...(truncated)"


def change_to_entity(run_id: str, change: PlannedChange, error: str | None = None) -> dict[str, Any]:
    return {"PartitionKey": run_id, "RowKey": change.change_id, "TenantId": change.tenant_id,
            "Status": change.status.value, "Change": change_to_json(change), "Error": _clip(error or "")}


def change_from_entity(entity: dict[str, Any]) -> tuple[PlannedChange, str | None]:
    return change_from_json(str(entity["Change"])), (str(entity.get("Error") or "") or None)


class RunRepository:
    def __init__(self, store: TableStore) -> None:
        self._runs = store.table("runs")
        self._tenants = store.table("runtenants")
        self._changes = store.table("changes")
        self._lines = store.table("runlines")

    # runs ------------------------------------------------------------------------------
    def start(self, request: SyncRequest) -> None:
        upsert(self._runs, {
            "PartitionKey": _RUNS_PK, "RowKey": request.run_id, "Status": "running",
            "Request": json.dumps(request.to_json()),
        })

    def record_started(self, started: StartedRun) -> None:
        """What the run set out to do (tenants, GDAP comparison); may be large, so a document."""
        ref = write_document(self._runs, started.run_id, "started", started.to_json())
        self._runs.upsert_entity({"PartitionKey": _RUNS_PK, "RowKey": started.run_id,
                                  **ref.to_entity_fields()}, mode=UpdateMode.MERGE)

    def started(self, run_id: str) -> StartedRun | None:
        entity = self._run_entity(run_id)
        if not entity or "DocPrefix" not in entity:
            return None
        return StartedRun.model_validate(read_document(self._runs, DocumentRef.from_entity(entity)))

    def request(self, run_id: str) -> SyncRequest | None:
        entity = self._run_entity(run_id)
        return SyncRequest.model_validate_json(str(entity["Request"])) if entity else None

    def finish(self, summary: RunSummary) -> None:
        self._runs.upsert_entity({
            "PartitionKey": _RUNS_PK, "RowKey": summary.run_id, "Status": summary.status,
            "Summary": json.dumps(summary.to_json()),
        }, mode=UpdateMode.MERGE)

    def summary(self, run_id: str) -> RunSummary | None:
        entity = self._run_entity(run_id)
        if not entity or not entity.get("Summary"):
            return None
        return RunSummary.model_validate_json(str(entity["Summary"]))

    def status(self, run_id: str) -> str | None:
        entity = self._run_entity(run_id)
        return str(entity["Status"]) if entity else None

    def run_ids(self) -> list[str]:
        return sorted(str(e["RowKey"]) for e in self._runs.query_entities(
            "PartitionKey eq @pk", parameters={"pk": _RUNS_PK}, select=["RowKey"]))

    def latest_run_id(self) -> str | None:
        ids = self.run_ids()
        return ids[-1] if ids else None

    def _run_entity(self, run_id: str) -> dict[str, Any] | None:
        try:
            return dict(self._runs.get_entity(_RUNS_PK, run_id))
        except ResourceNotFoundError:
            return None

    # the run lease -------------------------------------------------------------------------
    def acquire_lease(self, run_id: str, now: datetime, ttl: timedelta) -> str | None:
        """Take the single run lease for ``run_id``; returns the holding run when another, live
        run has it. One run at a time, whatever started it (the Functions host or the CLI)."""
        entity: dict[str, Any] = {"PartitionKey": _LEASE_PK, "RowKey": _LEASE_RK, "RunId": run_id,
                                  "Expires": (now + ttl).isoformat()}
        try:
            current = self._runs.get_entity(_LEASE_PK, _LEASE_RK)
        except ResourceNotFoundError:
            try:
                self._runs.create_entity(entity)
            except ResourceExistsError:
                return "another run (it started at the same moment)"
            return None
        holder = str(current["RunId"])
        if holder != run_id and datetime.fromisoformat(str(current["Expires"])) > now:
            return holder
        try:
            self._runs.update_entity(entity, mode=UpdateMode.REPLACE, etag=current.metadata["etag"],
                                     match_condition=MatchConditions.IfNotModified)
        except ResourceModifiedError:
            return "another run (it started at the same moment)"
        return None

    def release_lease(self, run_id: str) -> None:
        try:
            current = self._runs.get_entity(_LEASE_PK, _LEASE_RK)
        except ResourceNotFoundError:
            return
        if str(current["RunId"]) == run_id:
            with contextlib.suppress(ResourceNotFoundError, ResourceModifiedError):
                self._runs.delete_entity(_LEASE_PK, _LEASE_RK, etag=current.metadata["etag"],
                                         match_condition=MatchConditions.IfNotModified)

    # tenants ---------------------------------------------------------------------------
    def record_tenant(self, run_id: str, outcome: TenantOutcome) -> None:
        self._tenants.upsert_entity({
            "PartitionKey": run_id, "RowKey": outcome.tenant_id,
            "Outcome": _clip(json.dumps(outcome.to_json())),
        }, mode=UpdateMode.MERGE)

    def record_problems(self, run_id: str, tenant_id: str, problems: list[Problem],
                        push_error: str | None = None) -> None:
        items = [{"message": p.message, "skuId": p.sku_id, "agreementId": p.agreement_id,
                  "lineId": p.line_id} for p in problems]
        text = json.dumps(items)
        while len(text) > _TEXT_LIMIT and items:
            items = items[:-1]
            text = json.dumps([*items, {"message": "more problems not shown"}])
        self._tenants.upsert_entity({
            "PartitionKey": run_id, "RowKey": tenant_id, "Problems": text,
            "PushError": _clip(push_error or ""),
        }, mode=UpdateMode.MERGE)

    def tenant_rows(self, run_id: str) -> list[dict[str, Any]]:
        """Per tenant: ``outcome`` (TenantOutcome), ``problems`` (list), ``pushError``."""
        rows = []
        for entity in partition(self._tenants, run_id):
            outcome = (TenantOutcome.model_validate_json(str(entity["Outcome"]))
                       if entity.get("Outcome") else None)
            rows.append({
                "tenantId": str(entity["RowKey"]), "outcome": outcome,
                "problems": json.loads(str(entity.get("Problems") or "[]")),
                "pushError": str(entity.get("PushError") or "") or None,
            })
        return rows

    # changes ---------------------------------------------------------------------------
    def record_changes(self, run_id: str, changes: list[PlannedChange]) -> None:
        submit_batches(self._changes, [("upsert", change_to_entity(run_id, c), {"mode": UpdateMode.REPLACE})
                                       for c in changes])

    def update_change(self, run_id: str, change: PlannedChange, error: str | None = None) -> None:
        upsert(self._changes, change_to_entity(run_id, change, error))

    def changes(self, run_id: str) -> list[tuple[PlannedChange, str | None]]:
        return [change_from_entity(e) for e in partition(self._changes, run_id)]

    def finished_at(self, run_id: str) -> datetime | None:
        summary = self.summary(run_id)
        return summary.finished_at if summary else None

    # reconciliation and unlinked licences ---------------------------------------------------
    def record_reconciliation(self, run_id: str, tenant_id: str, rows: list[ReconciliationRow],
                              unlinked: list[UnlinkedLicence]) -> None:
        """Per tenant and run: every mapped licence's counts and billing, and unlinked licences
        (one document per tenant, replaced when the tenant is pushed again in the run)."""
        document = {
            "rows": [{**asdict(r), "unit_price": None if r.unit_price is None else str(r.unit_price)} for r in rows],
            "unlinked": [asdict(u) for u in unlinked],
        }
        ref = write_document(self._lines, run_id, f"{tenant_id}~lines", document)
        upsert(self._lines, {"PartitionKey": run_id, "RowKey": tenant_id, **ref.to_entity_fields()})

    def reconciliation(self, run_id: str) -> tuple[list[ReconciliationRow], list[UnlinkedLicence]]:
        rows: list[ReconciliationRow] = []
        unlinked: list[UnlinkedLicence] = []
        for entity in partition(self._lines, run_id):
            if "~" in str(entity["RowKey"]):
                continue
            document = read_document(self._lines, DocumentRef.from_entity(entity))
            rows += [ReconciliationRow(**{**r, "unit_price": None if r["unit_price"] is None
                                          else Decimal(r["unit_price"])}) for r in document["rows"]]
            unlinked += [UnlinkedLicence(**u) for u in document["unlinked"]]
        return rows, unlinked
