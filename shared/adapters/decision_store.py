"""Approvals, deferrals, the write ledger and the audit trail, in Table Storage.

- ``<prefix>approvals`` (partition ``approval``, row = hold key): decreases held for a human,
  and the decision taken (who, when, why). One row per distinct decrease: holding the same
  decrease again the next day finds the row instead of asking twice.
- ``<prefix>deferrals`` (partition = tenant, row = hold key): decreases scheduled for a
  subscription's renewal date.
- ``<prefix>intents`` (partition = tenant, row = change id): a write about to be made, stored
  before the PSA call and removed once the write is read back and recorded in the ledger (or
  known not to have happened). One left behind is settled against the PSA by the next attempt.
- ``<prefix>ledger`` (partition = tenant, row = change id): every write SeatSync made to a PSA,
  with the run that made it and, when its own bookkeeping did not finish, the run that found it;
  its kind, line, tag and the quantity written. It is SeatSync's own record of the lines it
  created: a line the PSA no longer shows was deleted there (``created_lines``).
- ``<prefix>contactlinks`` (partition = tenant, row = ``<PSA>~<company id>~<user id>``): the PSA
  contacts SeatSync manages, each tied to its Microsoft user (recorded when SeatSync creates the
  contact or matches a licensed user to it; see shared.domain.contacts).
- ``<prefix>audit`` (partition = tenant, row = ``<UTC time>~<change id>~<event>``): every PSA
  write and every held, deferred, approved, rejected, failed or recovered change, with the run,
  who started it, before and after, the prorate amount and the reason. Partition ``runs`` holds
  the events of runs themselves: a run found dead, a run lease cleared (and by whom).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode

from shared.adapters.serialization import change_from_json, change_to_json
from shared.adapters.tables import TableStore, partition, query, row_range, submit_batches, upsert
from shared.domain.contacts import ContactLink
from shared.domain.decreases import Approval, Deferral
from shared.domain.model import ChangeKind, PlannedChange
from shared.domain.planning import CreatedLine, Decisions
from shared.errors import ConflictError, NotFoundError

_APPROVALS = "approval"
RUN_EVENTS = "runs"  # the audit partition of run events (tenant partitions are GUIDs)
_COMPARISONS = 14  # Table Storage evaluates at most 15 comparisons in one filter


def _either(field: str, values: list[str]) -> tuple[str, dict[str, str]]:
    """``(field eq @v0 or field eq @v1 ...)`` and its parameters."""
    names = [f"v{i}" for i in range(len(values))]
    # spaces around each parameter: the SDK finds them between spaces
    return "( " + " or ".join(f"{field} eq @{n}" for n in names) + " )", dict(zip(names, values, strict=True))


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[i:i + _COMPARISONS] for i in range(0, len(values), _COMPARISONS)]


class DecisionError(ConflictError):
    """An approval that was already decided (or superseded, or applied)."""


@dataclass(frozen=True)
class ApprovalRecord:
    hold_key: str
    tenant_id: str
    status: str  # pending, approved, rejected, superseded, applied
    change: PlannedChange
    held_at: datetime
    held_in_run: str
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None

    def as_approval(self) -> Approval:
        status = self.status if self.status in ("pending", "approved", "rejected", "superseded") else "approved"
        return Approval(self.hold_key, status, self.change.old_quantity or 0,  # type: ignore[arg-type]
                        self.change.new_quantity, self.decided_by, self.decided_at, self.change.mapping_key)


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    tenant_id: str
    tenant_name: str
    event: str  # applied, failed, held, deferred, approved, rejected, superseded
    run_id: str | None
    trigger: str | None
    requested_by: str | None
    change_id: str
    kind: str
    psa: str
    company_id: str
    agreement_id: str
    line_id: str | None
    licence: str
    before: int | None
    after: int | None
    amount: Decimal | None
    unit_price: Decimal | None
    reason: str
    error: str | None = None
    actor: str | None = None
    old_unit_price: Decimal | None = None

    @classmethod
    def of(cls, change: PlannedChange, event: str, at: datetime, tenant_name: str, *, run_id: str | None = None,
           trigger: str | None = None, requested_by: str | None = None, error: str | None = None,
           actor: str | None = None, reason: str | None = None) -> AuditEntry:
        return cls(at=at, tenant_id=change.tenant_id, tenant_name=tenant_name, event=event, run_id=run_id,
                   trigger=trigger, requested_by=requested_by, change_id=change.change_id, kind=change.kind.value,
                   psa=change.psa, company_id=change.company_id, agreement_id=change.agreement_id,
                   line_id=change.line_id, licence=change.label or change.sku_id, before=change.old_quantity,
                   after=None if change.about_contact else change.new_quantity, amount=change.amount,
                   unit_price=change.unit_price,
                   reason=reason or change.reason, error=error, actor=actor, old_unit_price=change.old_unit_price)


@dataclass(frozen=True)
class WriteIntent:
    """A write SeatSync is about to make (or made without finishing its bookkeeping)."""

    change: PlannedChange
    run_id: str
    at: datetime


@dataclass(frozen=True)
class LedgerEntry:
    tenant_id: str
    change_id: str
    run_id: str
    at: datetime
    kind: str
    line_id: str | None
    tag: str | None
    recovered_by: str | None = None
    quantity: int | None = None  # None: recorded before the ledger kept quantities


@dataclass(frozen=True)
class RunEvent:
    """Something that happened to a run as a whole: ``died`` (found dead by a later run or by an
    unlock), ``lease-cleared`` (someone cleared its lease)."""

    at: datetime
    event: str
    run_id: str
    actor: str
    reason: str


def _link_key(link: ContactLink) -> str:
    return f"{link.psa}~{link.company_id}~{link.user_id}"


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def _ledger_entry(entity: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(tenant_id=str(entity["PartitionKey"]), change_id=str(entity["RowKey"]),
                       run_id=str(entity["RunId"]), at=_entity_time(entity["At"]), kind=str(entity["Kind"]),
                       line_id=str(entity.get("LineId") or "") or None, tag=str(entity.get("Tag") or "") or None,
                       recovered_by=str(entity.get("RecoveredBy") or "") or None,
                       quantity=_whole(entity.get("Quantity")))


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _entity_time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


def _ledger_row(change: PlannedChange, run_id: str, at: datetime, result_line: str | None,
                recovered_by: str | None = None) -> dict[str, Any]:
    return {"PartitionKey": change.tenant_id, "RowKey": change.change_id, "RunId": run_id, "At": at.isoformat(),
            "Kind": change.kind.value, "LineId": result_line or "", "Tag": change.tag or "",
            "RecoveredBy": recovered_by or "", "Quantity": change.new_quantity}


def _intent_row(change: PlannedChange, run_id: str, at: datetime) -> dict[str, Any]:
    return {"PartitionKey": change.tenant_id, "RowKey": change.change_id, "RunId": run_id, "At": at.isoformat(),
            "Change": change_to_json(change)}


_sequence_lock = threading.Lock()
_last_sequence = 0


def _next_sequence() -> int:
    """The clock in nanoseconds, strictly increasing within the process (two entries written
    together never share a row key)."""
    global _last_sequence
    with _sequence_lock:
        _last_sequence = max(time.time_ns(), _last_sequence + 1)
        return _last_sequence


def _audit_row(entry: AuditEntry) -> dict[str, Any]:
    stamp = _stamp(entry.at)
    sequence = f"{_next_sequence():020d}"  # keeps the order of events recorded at the same instant
    return {
        "PartitionKey": entry.tenant_id, "RowKey": f"{stamp}~{sequence}~{entry.change_id}~{entry.event}",
        "Entry": json.dumps({**asdict(entry), "at": entry.at.isoformat(),
                             "amount": None if entry.amount is None else str(entry.amount),
                             "unit_price": None if entry.unit_price is None else str(entry.unit_price),
                             "old_unit_price": (None if entry.old_unit_price is None
                                                else str(entry.old_unit_price))}),
    }


def _deferral(entity: Any) -> tuple[Deferral, PlannedChange]:
    change = change_from_json(str(entity["Change"]))
    return Deferral(str(entity["RowKey"]), date.fromisoformat(str(entity["Due"])), change.mapping_key), change


def decisions_from(approvals: list[ApprovalRecord], deferrals: list[tuple[Deferral, PlannedChange]]) -> Decisions:
    """What the planner is told of a tenant's decided approvals and its deferrals."""
    return Decisions(approvals={r.hold_key: r.as_approval() for r in approvals if r.status in ("approved", "rejected")},
                     deferrals={d.hold_key: d for d, _ in deferrals})


class DecisionRepository:
    def __init__(self, store: TableStore) -> None:
        self._approvals = store.table("approvals")
        self._deferrals = store.table("deferrals")
        self._ledger = store.table("ledger")
        self._intents = store.table("intents")
        self._audit = store.table("audit")
        self._contact_links = store.table("contactlinks")

    # approvals ---------------------------------------------------------------------------
    def _approval(self, entity: dict[str, Any]) -> ApprovalRecord:
        return ApprovalRecord(
            hold_key=str(entity["RowKey"]), tenant_id=str(entity["TenantId"]), status=str(entity["Status"]),
            change=change_from_json(str(entity["Change"])), held_at=_entity_time(entity["HeldAt"]),
            held_in_run=str(entity.get("HeldInRun", "")), decided_by=entity.get("DecidedBy") or None,
            decided_at=_entity_time(entity["DecidedAt"]) if entity.get("DecidedAt") else None,
            comment=entity.get("Comment") or None,
        )

    def approval(self, hold_key: str) -> ApprovalRecord | None:
        try:
            return self._approval(dict(self._approvals.get_entity(_APPROVALS, hold_key)))
        except ResourceNotFoundError:
            return None

    def approvals(self, status: str | None = None, tenant_id: str | None = None) -> list[ApprovalRecord]:
        clauses, params = ["PartitionKey eq @pk"], {"pk": _APPROVALS}
        if status:
            clauses.append("Status eq @status")
            params["status"] = status
        if tenant_id:
            clauses.append("TenantId eq @tenant")
            params["tenant"] = tenant_id.lower()
        records = [self._approval(e) for e in query(self._approvals, " and ".join(clauses), **params)]
        return sorted(records, key=lambda r: r.held_at)

    def approvals_of(self, tenant_ids: list[str]) -> dict[str, list[ApprovalRecord]]:
        """Every tenant's approvals (any status), a few tenants per query."""
        found: dict[str, list[ApprovalRecord]] = {t.lower(): [] for t in tenant_ids}
        for chunk in _chunks(sorted(found)):
            clause, params = _either("TenantId", chunk)
            for entity in query(self._approvals, f"PartitionKey eq @pk and {clause}", pk=_APPROVALS, **params):
                record = self._approval(entity)
                found.setdefault(record.tenant_id, []).append(record)
        return {tenant: sorted(records, key=lambda r: r.held_at) for tenant, records in found.items()}

    def hold(self, change: PlannedChange, run_id: str, at: datetime) -> bool:
        """Record a held decrease; False when the same decrease is already recorded."""
        assert change.hold_key is not None
        try:
            self._approvals.create_entity({
                "PartitionKey": _APPROVALS, "RowKey": change.hold_key, "TenantId": change.tenant_id,
                "MappingKey": change.mapping_key, "Status": "pending", "Change": change_to_json(change),
                "HeldAt": at.isoformat(), "HeldInRun": run_id,
            })
        except ResourceExistsError:
            return False
        return True

    def supersede(self, pending: list[ApprovalRecord], mapping_key: str, keep: str | None, at: datetime
                  ) -> list[ApprovalRecord]:
        """Mark the ``pending`` approvals of a mapping other than ``keep`` as superseded: their
        source moved on."""
        gone = []
        for record in pending:
            if record.status == "pending" and record.change.mapping_key == mapping_key and record.hold_key != keep:
                self._approvals.upsert_entity({"PartitionKey": _APPROVALS, "RowKey": record.hold_key,
                                               "Status": "superseded", "DecidedAt": at.isoformat(),
                                               "DecidedBy": "seatsync", "Comment": "the licence count moved on"},
                                              mode=UpdateMode.MERGE)
                gone.append(record)
        return gone

    def supersede_decided(self, hold_key: str, at: datetime) -> ApprovalRecord | None:
        """Mark an approved or rejected decrease superseded: it no longer stands (the count moved on
        before it applied). Returns the record as it was, None when it is not approved or rejected."""
        record = self.approval(hold_key)
        if record is None or record.status not in ("approved", "rejected"):
            return None
        self._approvals.upsert_entity({"PartitionKey": _APPROVALS, "RowKey": hold_key, "Status": "superseded",
                                       "SupersededAt": at.isoformat()}, mode=UpdateMode.MERGE)
        return record

    def decide(self, hold_key: str, approve: bool, by: str, comment: str | None, at: datetime) -> ApprovalRecord:
        """Approve or reject a pending decrease (only once: a decided one raises)."""
        try:
            entity = self._approvals.get_entity(_APPROVALS, hold_key)
        except ResourceNotFoundError:
            raise NotFoundError("id", f"no held change {hold_key} (see 'seatsync approvals list')") from None
        record = self._approval(dict(entity))
        if record.status != "pending":
            raise DecisionError(f"held change {hold_key} is already {record.status}")
        status = "approved" if approve else "rejected"
        try:
            self._approvals.update_entity(
                {"PartitionKey": _APPROVALS, "RowKey": hold_key, "Status": status, "DecidedBy": by,
                 "DecidedAt": at.isoformat(), "Comment": comment or ""},
                mode=UpdateMode.MERGE, etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified)
        except ResourceModifiedError as exc:
            raise ConflictError(f"held change {hold_key} was decided by someone else at the same time") from exc
        return replace(record, status=status, decided_by=by, decided_at=at, comment=comment)

    def mark_applied(self, hold_key: str, at: datetime) -> None:
        self._approvals.upsert_entity({"PartitionKey": _APPROVALS, "RowKey": hold_key, "Status": "applied",
                                       "AppliedAt": at.isoformat()}, mode=UpdateMode.MERGE)

    # deferrals ---------------------------------------------------------------------------
    def defer(self, change: PlannedChange, run_id: str, at: datetime) -> bool:
        assert change.hold_key is not None and change.due_date is not None
        try:
            self._deferrals.create_entity({
                "PartitionKey": change.tenant_id, "RowKey": change.hold_key, "Due": change.due_date.isoformat(),
                "Change": change_to_json(change), "DeferredAt": at.isoformat(), "DeferredInRun": run_id,
            })
        except ResourceExistsError:
            return False
        return True

    def deferrals(self, tenant_id: str) -> list[tuple[Deferral, PlannedChange]]:
        return [_deferral(entity) for entity in partition(self._deferrals, tenant_id)]

    def clear_deferral(self, tenant_id: str, hold_key: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self._deferrals.delete_entity(tenant_id, hold_key)

    def deferrals_of(self, tenant_ids: list[str]) -> dict[str, list[tuple[Deferral, PlannedChange]]]:
        """Every tenant's deferrals, a few tenants per query."""
        found: dict[str, list[tuple[Deferral, PlannedChange]]] = {t: [] for t in tenant_ids}
        for chunk in _chunks(sorted(found)):
            clause, params = _either("PartitionKey", chunk)
            for entity in query(self._deferrals, clause, **params):
                found.setdefault(str(entity["PartitionKey"]), []).append(_deferral(entity))
        return found

    def decisions_for(self, tenant_id: str) -> Decisions:
        return decisions_from(self.approvals(tenant_id=tenant_id), self.deferrals(tenant_id))

    # write intents and the ledger ---------------------------------------------------------
    def open_intent(self, change: PlannedChange, run_id: str, at: datetime) -> None:
        """Record that ``change`` is about to be written (before the PSA call)."""
        upsert(self._intents, _intent_row(change, run_id, at))

    def open_intents(self, changes: list[PlannedChange], run_id: str, at: datetime) -> None:
        """Record that each of ``changes`` is about to be written, a transaction per tenant (of at
        most 100 intents): every one is stored when this returns, before the first PSA call."""
        submit_batches(self._intents, [("upsert", _intent_row(change, run_id, at), {"mode": UpdateMode.REPLACE})
                                       for change in changes])

    def intents_of(self, tenant_ids: list[str]) -> dict[str, list[WriteIntent]]:
        """Every tenant's open intents, oldest first, a few tenants per query."""
        found: dict[str, list[WriteIntent]] = {t: [] for t in tenant_ids}
        for chunk in _chunks(sorted(found)):
            clause, params = _either("PartitionKey", chunk)
            for e in query(self._intents, clause, **params):
                found.setdefault(str(e["PartitionKey"]), []).append(
                    WriteIntent(change_from_json(str(e["Change"])), str(e["RunId"]), _entity_time(e["At"])))
        return {tenant: sorted(items, key=lambda i: (i.at, i.change.change_id)) for tenant, items in found.items()}

    def close_intents(self, keys: list[tuple[str, str]]) -> None:
        """Several ``close_intent`` (tenant, change id), a transaction per tenant; an intent
        already gone is no error."""
        try:
            submit_batches(self._intents, [("delete", {"PartitionKey": t, "RowKey": c}) for t, c in keys])
        except (TableTransactionError, ResourceNotFoundError):
            for tenant_id, change_id in keys:  # one of them was closed meanwhile: close the others one by one
                self.close_intent(tenant_id, change_id)

    def ledger_entries(self, tenant_id: str, change_ids: list[str]) -> dict[str, LedgerEntry]:
        """The ledger entries among ``change_ids`` of a tenant, a few per query."""
        found: dict[str, LedgerEntry] = {}
        for chunk in _chunks(sorted(set(change_ids))):
            clause, params = _either("RowKey", chunk)
            for entity in query(self._ledger, f"PartitionKey eq @pk and {clause}", pk=tenant_id, **params):
                entry = _ledger_entry(dict(entity))
                found[entry.change_id] = entry
        return found

    def intents(self, tenant_id: str | None = None) -> list[WriteIntent]:
        """Open intents, of one tenant or of all, oldest first."""
        entities = partition(self._intents, tenant_id) if tenant_id else self._intents.list_entities()
        found = [WriteIntent(change_from_json(str(e["Change"])), str(e["RunId"]), _entity_time(e["At"]))
                 for e in entities]
        return sorted(found, key=lambda i: (i.at, i.change.change_id))

    def close_intent(self, tenant_id: str, change_id: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self._intents.delete_entity(tenant_id, change_id)

    def written(self, tenant_id: str, change_id: str) -> bool:
        return self.ledger_entry(tenant_id, change_id) is not None

    def ledger_entry(self, tenant_id: str, change_id: str) -> LedgerEntry | None:
        try:
            return _ledger_entry(dict(self._ledger.get_entity(tenant_id, change_id)))
        except ResourceNotFoundError:
            return None

    def record_write(self, change: PlannedChange, run_id: str, at: datetime, result_line: str | None,
                     recovered_by: str | None = None) -> None:
        """Record a write the PSA holds: made by ``run_id``; ``recovered_by`` is the run that found
        it in the PSA when the writing run's bookkeeping did not finish."""
        upsert(self._ledger, _ledger_row(change, run_id, at, result_line, recovered_by))

    def record_writes(self, writes: list[tuple[PlannedChange, str, datetime, str | None, str | None]]) -> None:
        """Several ``record_write`` (change, run id, at, line, recovered by), a transaction per tenant."""
        submit_batches(self._ledger, [("upsert", _ledger_row(*write), {"mode": UpdateMode.REPLACE})
                                      for write in writes])

    def created_lines(self, tenant_id: str) -> dict[str, tuple[CreatedLine, ...]]:
        """The tenant's lines SeatSync created for its licences (``create-line`` writes), by the tag
        they were given, oldest first: one query within the tenant's ledger partition. (A query
        naming several partitions with ``or`` is served by scanning the table between them, and the
        ledger only grows, so the push reads a tenant's when its plan needs them.)"""
        found: dict[str, list[CreatedLine]] = {}
        for entity in query(self._ledger, "PartitionKey eq @pk and Kind eq @kind", pk=tenant_id,
                            kind=ChangeKind.CREATE_LINE.value):
            entry = _ledger_entry(dict(entity))
            if entry.tag and entry.line_id:
                found.setdefault(entry.tag, []).append(CreatedLine(entry.line_id, entry.at.date(), entry.run_id))
        return {tag: tuple(sorted(lines, key=lambda c: (c.created, c.line_id))) for tag, lines in found.items()}

    def emptied_by_seatsync(self, tenant_id: str, line_ids: list[str]) -> frozenset[str]:
        """Of ``line_ids``, those SeatSync itself set to 0 seats (a ``set-quantity`` write to 0), or
        whose quantity writes were recorded before the ledger kept quantities (it cannot tell)."""
        emptied: set[str] = set()
        ids = sorted(set(line_ids))
        # two comparisons (partition, kind) beside the line ids: within the 15 a filter may hold
        for chunk in (ids[i:i + _COMPARISONS - 1] for i in range(0, len(ids), _COMPARISONS - 1)):
            clause, params = _either("LineId", chunk)
            for entity in query(self._ledger, f"PartitionKey eq @pk and Kind eq @kind and {clause}", pk=tenant_id,
                                kind=ChangeKind.SET_QUANTITY.value, **params):
                entry = _ledger_entry(dict(entity))
                if entry.line_id and (entry.quantity is None or entry.quantity == 0):
                    emptied.add(entry.line_id)
        return frozenset(emptied)

    def ledger(self, tenant_id: str) -> list[LedgerEntry]:
        return sorted((_ledger_entry(e) for e in partition(self._ledger, tenant_id.lower())), key=lambda e: e.at)

    # contacts SeatSync manages -------------------------------------------------------------
    def contact_links(self, tenant_id: str) -> list[ContactLink]:
        return [ContactLink(psa=str(e["Psa"]), company_id=str(e["CompanyId"]), user_id=str(e["UserId"]),
                            contact_id=str(e["ContactId"]), user_principal_name=str(e.get("Upn") or ""),
                            name=str(e.get("Name") or ""))
                for e in partition(self._contact_links, tenant_id.lower())]

    def link_contacts(self, tenant_id: str, links: list[ContactLink], run_id: str, at: datetime) -> None:
        for link in links:
            upsert(self._contact_links, {
                "PartitionKey": tenant_id.lower(), "RowKey": _link_key(link), "Psa": link.psa,
                "CompanyId": link.company_id, "UserId": link.user_id, "ContactId": link.contact_id,
                "Upn": link.user_principal_name, "Name": link.name, "LinkedInRun": run_id, "LinkedAt": at.isoformat()})

    def forget_contacts(self, tenant_id: str, links: list[ContactLink]) -> None:
        for link in links:
            with contextlib.suppress(ResourceNotFoundError):
                self._contact_links.delete_entity(tenant_id.lower(), _link_key(link))

    # audit -------------------------------------------------------------------------------
    def audit(self, entry: AuditEntry) -> None:
        upsert(self._audit, _audit_row(entry))

    def audit_many(self, entries: list[AuditEntry]) -> None:
        """Several audit entries, in their order, a transaction per tenant."""
        submit_batches(self._audit, [("upsert", _audit_row(entry), {"mode": UpdateMode.REPLACE})
                                     for entry in entries])

    def audit_trail(self, tenant_id: str, start: datetime | None = None, end: datetime | None = None
                    ) -> list[AuditEntry]:
        low = _stamp(start) if start else ""
        high = _stamp(end) if end else "~"
        entries = []
        for entity in row_range(self._audit, tenant_id.lower(), low, high):
            raw = json.loads(str(entity["Entry"]))
            raw["at"] = datetime.fromisoformat(raw["at"])
            for key in ("amount", "unit_price", "old_unit_price"):
                raw[key] = None if raw.get(key) is None else Decimal(raw[key])
            entries.append(AuditEntry(**raw))
        return entries  # in row key order: time, then the order recorded

    def audit_run_event(self, event: RunEvent) -> None:
        upsert(self._audit, {"PartitionKey": RUN_EVENTS,
                             "RowKey": f"{_stamp(event.at)}~{time.time_ns():020d}~{event.run_id}~{event.event}",
                             "Entry": json.dumps({**asdict(event), "at": event.at.isoformat()})})

    def run_events(self, start: datetime | None = None, end: datetime | None = None) -> list[RunEvent]:
        events = []
        for entity in row_range(self._audit, RUN_EVENTS, _stamp(start) if start else "", _stamp(end) if end else "~"):
            raw = json.loads(str(entity["Entry"]))
            raw["at"] = datetime.fromisoformat(raw["at"])
            events.append(RunEvent(**raw))
        return events
