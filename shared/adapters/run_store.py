"""Runs, their per-tenant outcomes and every planned change, in Table Storage.

- ``<prefix>runs``: partition ``runs``, row = run id (sortable by time): the run's request and,
  once finished, its summary. Partition = run id: what the run set out to do (a document,
  ``started~NNNNN``) and its tenants, a row each in the run's order (``work~NNNNNNN``, the
  tenant's work as JSON), written as the start makes them.
- ``<prefix>runtenants``: partition = run id, row = tenant id: collection outcome, plus the
  problems the plan found for the tenant.
- ``<prefix>changes``: partition = run id, row = change id: each planned change and what
  became of it (applied, dry-run, failed with the reason).
- ``<prefix>runlines``: partition = run id, row = tenant id: the run's reconciliation of each
  mapped licence (a document).
- ``<prefix>rundigests``: partition = run id, row = a name: documents derived from a finished run
  for the dashboard's pages: its digest (``shared.services.run_digest``, written when the run
  ends) and the notifications preview rendered from it (``preview-<configuration version>``). The
  run's money is also kept on its row of ``<prefix>runs`` (``Money``), so that a month's runs are
  summed in one query.
- ``<prefix>billedcounts``: partition = tenant id, row = ``<mapping key>~<run id>``: what the PSA
  billed for each mapped licence when the run read it, and what the run computed it should bill.
  Only ever added to, like the licence counts: the billing side of a tenant's history, readable
  by tenant id even after the tenant has left the configuration.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast, get_args

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.adapters.serialization import change_from_json, change_to_json
from shared.adapters.tables import (
    LARGE_ROWS_PAGE,
    DocumentRef,
    JsonText,
    StoreError,
    TableStore,
    committed_documents,
    partition,
    query,
    read_document,
    read_document_json,
    row_range,
    submit_batches,
    submit_streamed,
    upsert,
    write_committed_document,
    write_committed_documents,
    write_document,
)
from shared.contracts import RunStatus, RunSummary, StartedRun, SyncRequest, TenantOutcome, TenantWork
from shared.domain.model import ChangeStatus, PlannedChange
from shared.domain.problems import Problem, problem_from_json, problem_to_json

_RUNS_PK = "runs"
_LEASE_PK = "lease"
_LEASE_RK = "sync"


@dataclass(frozen=True)
class Lease:
    """The single run lease: which run holds it, until when (renewed while the run lives) and,
    for a run of the command line, the process that runs it (host, pid and the process's start
    time, so that a reused pid is not mistaken for it)."""

    run_id: str
    expires: datetime
    renewed: datetime
    host: str | None = None
    pid: int | None = None
    process_started: str | None = None
    etag: str = ""


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
class BilledCount:
    """One mapped licence of a tenant in one run: what the PSA billed when the run read it
    (``billed``, None when the line did not exist yet) and what the run computed it should bill
    (``target``)."""

    tenant_id: str
    tenant_name: str
    run_id: str
    mapping_key: str
    source: str
    label: str
    purchased: int | None
    counted: int
    target: int
    billed: int | None


@dataclass(frozen=True)
class RunRecord:
    """A run as the runs list shows it: its request, its summary once finished, and its last
    progress while it runs (when the host that runs it records progress in the store)."""

    request: SyncRequest
    status: RunStatus
    summary: RunSummary | None
    progress: dict[str, Any] | None
    died: str | None = None
    """Why the run is recorded as died (``status`` ``died``)."""


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
_WORK_CHARS = 15_000
_WORK_PARTS = 15
"""A run's tenant row holds its work's JSON in up to 15 properties of 15,000 characters (64 KiB
of UTF-16 each whatever the characters), within an entity's 1 MiB: a tenant counting thousands
of groups fits."""


def _work_key(position: int) -> str:
    return f"work~{position:07d}"


def _clip(text: str) -> str:
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 20] + " ...(truncated)"


_RUN_STATUSES: frozenset[str] = frozenset(get_args(RunStatus))


def _run_status(run_id: str, value: Any) -> RunStatus:
    """A stored run status, checked against the statuses a run can have."""
    if not isinstance(value, str) or value not in _RUN_STATUSES:
        raise StoreError(f"run {run_id} has the stored status {value!r}, which is none of "
                         f"{', '.join(sorted(_RUN_STATUSES))}")
    return cast(RunStatus, value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def change_to_entity(run_id: str, change: PlannedChange, error: str | None = None) -> dict[str, Any]:
    return {"PartitionKey": run_id, "RowKey": change.change_id, "TenantId": change.tenant_id,
            "Status": change.status.value, "Change": change_to_json(change), "Error": _clip(error or "")}


def change_from_entity(entity: dict[str, Any]) -> tuple[PlannedChange, str | None]:
    return change_from_json(str(entity["Change"])), (str(entity.get("Error") or "") or None)


def _problems_entity(run_id: str, tenant_id: str, problems: list[Problem], push_error: str | None) -> dict[str, Any]:
    """The part of a tenant's row of the run that the push records (merged with its outcome)."""
    items = [problem_to_json(p) for p in problems]
    text = json.dumps(items)
    while len(text) > _TEXT_LIMIT and items:  # a property holds 64 KiB: the first problems are kept
        items = items[:-1]
        text = json.dumps([*items, {"kind": "unclassified", "tenantId": tenant_id,
                                    "message": f"{len(problems) - len(items)} more problems not shown"}])
    return {"PartitionKey": run_id, "RowKey": tenant_id, "Problems": text, "PushError": _clip(push_error or "")}


class RunRepository:
    def __init__(self, store: TableStore) -> None:
        self._runs = store.table("runs")
        self._tenants = store.table("runtenants")
        self._changes = store.table("changes")
        self._lines = store.table("runlines")
        self._billed = store.table("billedcounts")
        self._digests = store.table("rundigests")

    # runs ------------------------------------------------------------------------------
    def start(self, request: SyncRequest) -> None:
        upsert(self._runs, {
            "PartitionKey": _RUNS_PK, "RowKey": request.run_id, "Status": "running",
            "Request": json.dumps(request.to_json()),
        })

    def record_started(self, started: StartedRun) -> None:
        """What the run set out to do (tenants, GDAP comparison); may be large, so a document,
        written from the models' JSON text (no dict of each of thousands of tenants between)."""
        text = JsonText([started.model_dump_json(by_alias=True).encode("utf-8")])
        ref = write_document(self._runs, started.run_id, "started", text)
        self._runs.upsert_entity({"PartitionKey": _RUNS_PK, "RowKey": started.run_id,
                                  **ref.to_entity_fields()}, mode=UpdateMode.MERGE)

    def started(self, run_id: str) -> StartedRun | None:
        """What the run set out to do. Parsed from its JSON text straight into the models: a run of
        thousands of tenants would otherwise hold a dict of every tenant beside them, in each
        process that first reads it (at 3,000 tenants the read peaked at 2.7 MB, 1.5 MB now)."""
        entity = self._run_entity(run_id)
        if not entity or "DocPrefix" not in entity:
            return None
        return StartedRun.model_validate_json(read_document_json(self._runs, DocumentRef.from_entity(entity)))

    def record_started_tenants(self, run_id: str, works: Iterable[TenantWork]) -> int:
        """Keep the run's tenants (``works``, a stream: one transaction of them is held at a time)
        in rows of their own, in their order; answers how many. A start run again writes the same
        positions over; what lies past the count of the record (``tenants_total``) is not read."""
        def rows() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
            for position, work in enumerate(works):
                text = work.model_dump_json(by_alias=True, exclude_defaults=True)
                if len(text) > _WORK_CHARS * _WORK_PARTS:
                    raise StoreError(f"tenant {work.tenant_id} of run {run_id} is {len(text)} characters of JSON, "
                                     f"more than the {_WORK_CHARS * _WORK_PARTS} a run's tenant row holds")
                entity: dict[str, Any] = {"PartitionKey": run_id, "RowKey": _work_key(position)}
                entity.update((f"Work{index}", text[start:start + _WORK_CHARS])
                              for index, start in enumerate(range(0, len(text), _WORK_CHARS)))
                yield "upsert", entity, {"mode": UpdateMode.REPLACE}  # no part of an earlier write left

        return submit_streamed(self._runs, rows())

    def iter_started_tenants(self, started: StartedRun, start: int = 0, stop: int | None = None,
                             page_size: int | None = LARGE_ROWS_PAGE) -> Iterator[TenantWork]:
        """The tenants the run set out to do, positions ``start`` to ``stop`` (all by default), in
        the run's order, a page at a time: from their rows (``tenants_stored``) or, for a run
        recorded before they were kept in rows, from its record. Rows past the record's count (a
        start that was run again with fewer tenants) are not read."""
        end = started.total if stop is None else min(stop, started.total)
        if not started.tenants_stored:
            yield from started.tenants[start:end]
            return
        if start >= end:
            return
        found = self._runs.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": started.run_id, "lo": _work_key(start), "hi": _work_key(end)},
            results_per_page=page_size)
        expected = start
        for entity in found:
            if str(entity["RowKey"]) != _work_key(expected):
                break
            text = "".join(str(entity[f"Work{index}"]) for index in range(_WORK_PARTS) if f"Work{index}" in entity)
            yield TenantWork.model_validate_json(text)
            expected += 1
        if expected != end:
            raise StoreError(f"run {started.run_id} set out to do {started.total} tenants, but the row of its "
                             f"tenant at position {expected} is missing")

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

    def status(self, run_id: str) -> RunStatus | None:
        """The run's stored status (None when there is no such run); a value no run can have is a
        ``StoreError`` naming the run and the value, never passed on as if it were a status."""
        entity = self._run_entity(run_id)
        return _run_status(run_id, entity.get("Status")) if entity else None

    def run_ids(self) -> list[str]:
        return sorted(str(e["RowKey"]) for e in self._runs.query_entities(
            "PartitionKey eq @pk", parameters={"pk": _RUNS_PK}, select=["RowKey"]))

    def run_page(self, limit: int, before: str | None = None) -> list[RunRecord]:
        """Up to ``limit`` runs, newest first, older than the run id ``before`` when given (the
        cursor of the next page). Ids are read alone first, so a page costs ``limit`` point reads
        whatever the number of runs."""
        filter_, parameters = "PartitionKey eq @pk", {"pk": _RUNS_PK}
        if before:
            filter_, parameters = filter_ + " and RowKey lt @before", {**parameters, "before": before}
        ids = sorted(str(e["RowKey"]) for e in self._runs.query_entities(filter_, parameters=parameters,
                                                                            select=["RowKey"]))
        records = []
        for run_id in reversed(ids[-limit:] if limit > 0 else []):
            entity = self._run_entity(run_id)
            if entity is None or not entity.get("Request"):
                continue
            summary = (RunSummary.model_validate_json(str(entity["Summary"])) if entity.get("Summary") else None)
            progress = json.loads(str(entity["Progress"])) if entity.get("Progress") and summary is None else None
            records.append(RunRecord(SyncRequest.model_validate_json(str(entity["Request"])),
                                     _run_status(run_id, entity.get("Status")),
                                     summary, progress, str(entity.get("DiedReason") or "") or None))
        return records

    def month_runs(self, month: str) -> list[tuple[str, SyncRequest, dict[str, Any] | None]]:
        """The runs of a month (``YYYYMM``), oldest first: id, request and the money recorded with
        its digest (None when it has none yet), in one query."""
        found = query(self._runs, "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high", pk=_RUNS_PK,
                      low=month, high=f"{month}~")
        runs = []
        for entity in sorted(found, key=lambda e: str(e["RowKey"])):
            if not entity.get("Request"):
                continue
            money = json.loads(str(entity["Money"])) if entity.get("Money") else None
            runs.append((str(entity["RowKey"]), SyncRequest.model_validate_json(str(entity["Request"])), money))
        return runs

    def record_digest(self, run_id: str, digest: dict[str, Any] | JsonText, money: dict[str, Any]) -> None:
        """Store a finished run's digest and, on the run's row, its money."""
        self.record_derived(run_id, "digest", digest)
        self._runs.upsert_entity({"PartitionKey": _RUNS_PK, "RowKey": run_id, "Money": json.dumps(money)},
                                 mode=UpdateMode.MERGE)

    def digest(self, run_id: str) -> dict[str, Any] | None:
        return self.derived(run_id, "digest")

    def record_derived(self, run_id: str, name: str, document: dict[str, Any] | JsonText) -> None:
        """Store a document derived from a finished run (its digest, a rendered preview), by name."""
        write_committed_document(self._digests, run_id, name, document, {"PartitionKey": run_id, "RowKey": name})

    def derived(self, run_id: str, name: str) -> dict[str, Any] | None:
        """A document derived from the run, None when none is stored (one query: the row that
        refers to it and its parts)."""
        entities = {str(e["RowKey"]): e for e in row_range(self._digests, run_id, name, f"{name}~~")}
        header = entities.get(name)
        if header is None:
            return None
        document = read_document(self._digests, DocumentRef.from_entity(header), entities)
        return document if isinstance(document, dict) else None

    def record_progress(self, run_id: str, progress: dict[str, Any]) -> None:
        """The run's progress (the orchestrator's custom status), for hosts other than Durable
        Functions, which keeps it itself."""
        self._runs.upsert_entity({"PartitionKey": _RUNS_PK, "RowKey": run_id, "Progress": json.dumps(progress)},
                                 mode=UpdateMode.MERGE)

    def progress(self, run_id: str) -> dict[str, Any] | None:
        """The last progress recorded for a run that has not finished."""
        entity = self._run_entity(run_id)
        if not entity or entity.get("Summary") or not entity.get("Progress"):
            return None
        value = json.loads(str(entity["Progress"]))
        return value if isinstance(value, dict) else None

    def latest_run_id(self) -> str | None:
        ids = self.run_ids()
        return ids[-1] if ids else None

    def _run_entity(self, run_id: str) -> dict[str, Any] | None:
        try:
            return dict(self._runs.get_entity(_RUNS_PK, run_id))
        except ResourceNotFoundError:
            return None

    # the run lease -------------------------------------------------------------------------
    def lease(self) -> Lease | None:
        """The run lease as stored (whether it is still live is the caller's judgement)."""
        try:
            entity = self._runs.get_entity(_LEASE_PK, _LEASE_RK)
        except ResourceNotFoundError:
            return None
        pid = entity.get("Pid")
        return Lease(run_id=str(entity["RunId"]), expires=datetime.fromisoformat(str(entity["Expires"])),
                     renewed=datetime.fromisoformat(str(entity.get("Renewed") or entity["Expires"])),
                     host=str(entity.get("Host") or "") or None, pid=int(pid) if pid else None,
                     process_started=str(entity.get("ProcessStarted") or "") or None,
                     etag=str(entity.metadata["etag"]))

    def take_lease(self, lease: Lease, replacing: Lease | None) -> bool:
        """Store ``lease`` if the stored one is still ``replacing`` (None: there is none); False
        when another writer got there first."""
        entity = {"PartitionKey": _LEASE_PK, "RowKey": _LEASE_RK, "RunId": lease.run_id,
                  "Expires": lease.expires.isoformat(), "Renewed": lease.renewed.isoformat(),
                  "Host": lease.host or "", "Pid": lease.pid or 0, "ProcessStarted": lease.process_started or ""}
        try:
            if replacing is None:
                self._runs.create_entity(entity)
            else:
                self._runs.update_entity(entity, mode=UpdateMode.REPLACE, etag=replacing.etag,
                                         match_condition=MatchConditions.IfNotModified)
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    def renew_lease(self, run_id: str, now: datetime, ttl: timedelta) -> bool:
        """Extend the lease of ``run_id`` to ``now + ttl``; False when the run no longer holds it
        (cleared, or taken over after it lapsed). Activities of the same run renew it at the same
        time: losing that race to one of them is a renewal too."""
        while True:
            current = self.lease()
            if current is None or current.run_id != run_id:
                return False
            if current.renewed >= now:
                return True  # renewed by another activity of the run meanwhile
            try:
                self._runs.update_entity({"PartitionKey": _LEASE_PK, "RowKey": _LEASE_RK,
                                          "Expires": (now + ttl).isoformat(), "Renewed": now.isoformat()},
                                         mode=UpdateMode.MERGE, etag=current.etag,
                                         match_condition=MatchConditions.IfNotModified)
            except ResourceModifiedError:
                continue  # changed meanwhile: read it again
            except ResourceNotFoundError:
                return False
            return True

    def clear_lease(self, lease: Lease) -> bool:
        """Delete the lease if it is still ``lease``; False when it changed meanwhile."""
        try:
            self._runs.delete_entity(_LEASE_PK, _LEASE_RK, etag=lease.etag,
                                     match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    def release_lease(self, run_id: str) -> None:
        current = self.lease()
        if current is not None and current.run_id == run_id:
            self.clear_lease(current)

    def mark_died(self, run_id: str, reason: str, at: datetime) -> bool:
        """Record that a run ended without finishing (unless it did finish); True when recorded."""
        entity = self._run_entity(run_id)
        if entity is None or entity.get("Summary"):
            return False
        self._runs.upsert_entity({"PartitionKey": _RUNS_PK, "RowKey": run_id, "Status": "died",
                                  "DiedAt": at.isoformat(), "DiedReason": _clip(reason)}, mode=UpdateMode.MERGE)
        return True

    def died(self, run_id: str) -> tuple[datetime, str] | None:
        """When and why a run was found dead, if it was."""
        entity = self._run_entity(run_id)
        if not entity or entity.get("Summary") or not entity.get("DiedAt"):
            return None
        return datetime.fromisoformat(str(entity["DiedAt"])), str(entity.get("DiedReason") or "")

    # tenants ---------------------------------------------------------------------------
    def record_tenant(self, run_id: str, outcome: TenantOutcome) -> None:
        self._tenants.upsert_entity({
            "PartitionKey": run_id, "RowKey": outcome.tenant_id,
            "Outcome": _clip(json.dumps(outcome.to_json())),
        }, mode=UpdateMode.MERGE)

    def record_problems(self, run_id: str, tenant_id: str, problems: list[Problem],
                        push_error: str | None = None) -> None:
        self.record_problems_of(run_id, [(tenant_id, problems, push_error)])

    def record_problems_of(self, run_id: str, tenants: Sequence[tuple[str, list[Problem], str | None]]) -> None:
        """Several tenants' ``record_problems`` (tenant id, problems, push error), in one
        transaction per 100 tenants (the run's partition)."""
        submit_batches(self._tenants, [("upsert", _problems_entity(run_id, tenant_id, problems, push_error),
                                        {"mode": UpdateMode.MERGE}) for tenant_id, problems, push_error in tenants])

    def tenant_rows(self, run_id: str) -> list[dict[str, Any]]:
        """Per tenant: ``outcome`` (TenantOutcome), ``problems`` (list of Problem), ``pushError``."""
        return list(self.iter_tenant_rows(run_id))

    def iter_tenant_rows(self, run_id: str, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """``tenant_rows`` one at a time in the store's order (by tenant id), read a page at a time."""
        for entity in partition(self._tenants, run_id, page_size=page_size or LARGE_ROWS_PAGE):
            outcome = (TenantOutcome.model_validate_json(str(entity["Outcome"]))
                       if entity.get("Outcome") else None)
            yield {
                "tenantId": str(entity["RowKey"]), "outcome": outcome,
                "problems": [problem_from_json(p, str(entity["RowKey"]))
                             for p in json.loads(str(entity.get("Problems") or "[]"))],
                "pushError": str(entity.get("PushError") or "") or None,
            }

    # changes ---------------------------------------------------------------------------
    def record_changes(self, run_id: str, changes: list[PlannedChange]) -> None:
        submit_batches(self._changes, [("upsert", change_to_entity(run_id, c), {"mode": UpdateMode.REPLACE})
                                       for c in changes])

    def update_change(self, run_id: str, change: PlannedChange, error: str | None = None) -> None:
        upsert(self._changes, change_to_entity(run_id, change, error))

    def update_changes(self, updates: list[tuple[str, PlannedChange, str | None]]) -> None:
        """Several ``update_change`` (run id, change, error) in as few transactions as the runs allow."""
        submit_batches(self._changes, [("upsert", change_to_entity(run_id, change, error), {"mode": UpdateMode.REPLACE})
                                       for run_id, change, error in updates])

    def changes(self, run_id: str) -> list[tuple[PlannedChange, str | None]]:
        return list(self.iter_changes(run_id))

    def iter_changes(self, run_id: str, page_size: int | None = None) -> Iterator[tuple[PlannedChange, str | None]]:
        """``changes`` one at a time in the store's order, read a page at a time."""
        for entity in partition(self._changes, run_id, page_size=page_size or LARGE_ROWS_PAGE):
            yield change_from_entity(entity)

    def abandon_changes(self, run_id: str, reason: str) -> int:
        """Record the changes a run planned but never wrote (it died) as failed, with ``reason``."""
        abandoned = [replace(change, status=ChangeStatus.FAILED) for change, _ in self.changes(run_id)
                     if change.status == ChangeStatus.PLANNED]
        submit_batches(self._changes, [("upsert", change_to_entity(run_id, c, reason), {"mode": UpdateMode.REPLACE})
                                       for c in abandoned])
        return len(abandoned)

    def change(self, run_id: str, change_id: str) -> tuple[PlannedChange, str | None] | None:
        try:
            return change_from_entity(dict(self._changes.get_entity(run_id, change_id)))
        except ResourceNotFoundError:
            return None

    def finished_at(self, run_id: str) -> datetime | None:
        summary = self.summary(run_id)
        return summary.finished_at if summary else None

    # reconciliation and unlinked licences ---------------------------------------------------
    def record_reconciliation(self, run_id: str, tenant_id: str, rows: list[ReconciliationRow],
                              unlinked: list[UnlinkedLicence]) -> None:
        """Per tenant and run: every mapped licence's counts and billing, and unlinked licences
        (one document per tenant, replaced when the tenant is pushed again in the run)."""
        self.record_reconciliations(run_id, [(tenant_id, rows, unlinked)])

    def record_reconciliations(self, run_id: str,
                               tenants: Sequence[tuple[str, list[ReconciliationRow], list[UnlinkedLicence]]]) -> None:
        """Several tenants' ``record_reconciliation`` (tenant id, rows, unlinked): their documents
        in the run's partition together (one transaction when they fit), then each tenant's
        billing history rows (a transaction per tenant)."""
        documents = [(f"{tenant_id}~lines", {
            "rows": [{**asdict(r), "unit_price": None if r.unit_price is None else str(r.unit_price)} for r in rows],
            "unlinked": [asdict(u) for u in unlinked],
        }, self._lines_commit(run_id, tenant_id, unlinked)) for tenant_id, rows, unlinked in tenants]
        write_committed_documents(self._lines, run_id, documents)
        submit_batches(self._billed, [("upsert", {
            "PartitionKey": tenant_id, "RowKey": f"{r.mapping_key}~{run_id}", "RunId": run_id,
            "TenantName": r.tenant_name, "MappingKey": r.mapping_key, "Source": r.source, "Label": r.label,
            "Purchased": r.purchased, "Counted": r.counted, "Target": r.target, "Billed": r.billed_before,
        }, {"mode": UpdateMode.REPLACE}) for tenant_id, rows, _ in tenants for r in rows])

    @staticmethod
    def _lines_commit(run_id: str, tenant_id: str, unlinked: list[UnlinkedLicence]) -> dict[str, Any]:
        """The entity committing a tenant's reconciliation, with its unlinked licences beside the
        document when the list is short (all but never): a run's list without its reconciliation."""
        listed = json.dumps([asdict(u) for u in unlinked], separators=(",", ":"))
        commit: dict[str, Any] = {"PartitionKey": run_id, "RowKey": tenant_id}
        if len(listed) <= _TEXT_LIMIT:
            commit["Unlinked"] = listed
        return commit

    def billed_history(self, tenant_id: str) -> list[BilledCount]:
        """Every run's billing of every mapped licence of a tenant, oldest run first."""
        found = [BilledCount(
            tenant_id=tenant_id, tenant_name=str(e.get("TenantName") or ""), run_id=str(e["RunId"]),
            mapping_key=str(e["MappingKey"]), source=str(e["Source"]), label=str(e.get("Label") or ""),
            purchased=_optional_int(e.get("Purchased")), counted=int(e["Counted"]), target=int(e["Target"]),
            billed=_optional_int(e.get("Billed"))) for e in partition(self._billed, tenant_id)]
        return sorted(found, key=lambda b: (b.run_id, b.mapping_key))

    def unlinked(self, run_id: str) -> list[UnlinkedLicence]:
        """The run's licences nobody bills, every tenant's: from the short list kept beside each
        tenant's reconciliation (one query of that column); a tenant recorded without it (a long
        list, or an older run) has its document read."""
        found: list[UnlinkedLicence] = []
        for entity in self._lines.query_entities("PartitionKey eq @pk", parameters={"pk": run_id},
                                                 select=["RowKey", "Unlinked"]):
            key = str(entity["RowKey"])
            if "~" in key:
                continue
            if entity.get("Unlinked") is None:
                return self.reconciliation(run_id)[1]
            found += [UnlinkedLicence(**u) for u in json.loads(str(entity["Unlinked"]))]
        return found

    def reconciliation(self, run_id: str) -> tuple[list[ReconciliationRow], list[UnlinkedLicence]]:
        rows: list[ReconciliationRow] = []
        unlinked: list[UnlinkedLicence] = []
        for _tenant, tenant_rows, tenant_unlinked in self.iter_reconciliation(run_id):
            rows += tenant_rows
            unlinked += tenant_unlinked
        return rows, unlinked

    def iter_reconciliation(self, run_id: str, page_size: int | None = None) -> Iterator[
            tuple[str, list[ReconciliationRow], list[UnlinkedLicence]]]:
        """Per tenant of the run, in the store's order: its reconciliation rows and unlinked
        licences, read a page at a time, one tenant's entities held at a time."""
        for entity, document in committed_documents(self._lines, run_id, page_size=page_size or LARGE_ROWS_PAGE):
            yield (str(entity["RowKey"]),
                   [ReconciliationRow(**{**r, "unit_price": None if r["unit_price"] is None
                                         else Decimal(r["unit_price"])}) for r in document["rows"]],
                   [UnlinkedLicence(**u) for u in document["unlinked"]])
