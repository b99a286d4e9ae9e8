"""Plan and push the changes of a group of collected tenants to their PSAs.

For each tenant: read what its PSAs bill now (agreements, lines, catalogue prices), settle the
write intents an earlier attempt left open (``shared.services.bookkeeping``), plan with the pure
core, record the plan, then write: an intent before each PSA call, one read-back of the
affected agreements after the tenant's writes, and each write recorded as applied only when
the PSA holds it. Exactly-once: every write is planned from the PSA's state read just before,
SeatSync's records carry deterministic tags and a prorate line is written before the base
quantity it accompanies; so a retried activity, a crash between a PSA write and its
bookkeeping, or a second run on the same day finds the work already done instead of doing it
twice, and records it. Held and deferred decreases are recorded for a human or for their
renewal date; every write and every decision is audited.

Contact sync (``shared.domain.contacts``) rides the same mechanism: the contacts of each company
that syncs them are read with the tenant's lines, their writes are planned after its billing and
written, read back, recorded and audited like billing writes (contact change kinds).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import partial

import requests
from azure.core.exceptions import AzureError

from shared import checkpoints, deadline, telemetry
from shared.adapters.decision_store import ApprovalRecord, DecisionRepository, LedgerEntry, WriteIntent, decisions_from
from shared.adapters.margin_store import MarginRepository
from shared.adapters.run_store import ReconciliationRow, RunRepository, UnlinkedLicence
from shared.adapters.shared_reads_store import RunReads
from shared.adapters.snapshot_store import LatestLicences, SnapshotRepository
from shared.adapters.tables import StoreError
from shared.config.schema import SeatSyncConfig, TenantConfig
from shared.contracts import PushRequest, PushSummary, StartedRun, TenantWork
from shared.deadline import DeadlineReached
from shared.domain.billing import unlinked_licences
from shared.domain.contacts import CONTACT_FIELDS, CompanyKey, contact_companies, plan_contacts
from shared.domain.decreases import Deferral
from shared.domain.model import (
    BilledLine,
    ChangeKind,
    ChangeStatus,
    ContactDetails,
    PlannedChange,
    PsaContact,
    TenantSnapshot,
)
from shared.domain.planning import (
    AgreementKey,
    CreatedLine,
    Decisions,
    PsaView,
    TenantPlan,
    plan_tenant,
    required_reads,
    stale_decisions,
)
from shared.domain.problems import Problem, count_by_kind
from shared.domain.sku_names import sku_display_name
from shared.domain.subscriptions import StateRecord, licence_state
from shared.domain.writes import CREATING
from shared.errors import PsaError, SeatSyncError
from shared.ports import NewLine, PsaPort
from shared.services.bookkeeping import (
    PSA_FAILURES,
    Attempt,
    Bookkeeping,
    PsaLookup,
    PsaRecords,
    answered_no,
    confirm,
    held_now,
    reconcile_writes,
    settle,
)
from shared.services.psa_reads import SharedReads, read_shared
from shared.services.push_records import PushRecords
from shared.services.reconcile import tenant_facts

log = logging.getLogger(__name__)


class TenantReadError(SeatSyncError):
    """The PSA state of a tenant could not be read completely: nothing is planned for it."""


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
                known = [shared.agreements[(psa, a)] for a in wanted]
                for line in psa_for(psa).list_lines(wanted, known=known):
                    by_agreement.setdefault(line.agreement_id, []).append(line)
            lines.update({(psa, a): tuple(found) for a, found in by_agreement.items()})
    except DeadlineReached:
        raise
    except (PsaError, SeatSyncError, requests.RequestException) as exc:
        raise TenantReadError(f"PSA lines could not be read, nothing planned: {exc}") from exc
    return PsaView(shared.agreements, lines, shared.products, shared.capabilities)


@dataclass(frozen=True)
class ContactReads:
    """The contacts of a tenant's companies that sync them, as read just before planning; the
    companies whose contacts could not be read (and why); the contact fields each PSA takes."""

    contacts: dict[CompanyKey, Sequence[PsaContact]]
    unread: dict[CompanyKey, str]
    fields: dict[str, frozenset[str]]


def read_contacts(tenant: TenantConfig, psa_for: PsaLookup) -> ContactReads:
    """Each contact-syncing company's contacts, read completely or not at all (a company that
    cannot be read is reported and left alone; the tenant's billing goes on)."""
    reads = ContactReads({}, {}, {})
    for company in contact_companies(tenant):
        key = (company.psa, company.company_id)
        try:
            client = psa_for(company.psa)
            reads.fields.setdefault(company.psa, client.capabilities.contact_fields or CONTACT_FIELDS)
            reads.contacts[key] = tuple(client.list_contacts(company.company_id))
        except (PsaError, SeatSyncError, ValueError, requests.RequestException) as exc:
            log.warning("tenant %s: the contacts of %s company %s could not be read: %s", tenant.tenant_id,
                        company.psa, company.company_id, exc)
            reads.unread[key] = str(exc)
    return reads


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


def execute_contact(change: PlannedChange, client: PsaPort,
                    contacts: Mapping[CompanyKey, Sequence[PsaContact]]) -> str:
    """Make one contact write; returns the id of the contact written."""
    details = change.contact or ContactDetails()
    if change.kind == ChangeKind.CREATE_CONTACT:
        return client.create_contact(change.company_id, details).contact_id
    contact = next((c for c in contacts.get((change.psa, change.company_id), ()) if c.contact_id == change.line_id),
                   None)
    if contact is None:
        raise PsaError(change.psa, "the contact to change is no longer in the company",
                       f"company {change.company_id} contact {change.line_id}")
    active = {ChangeKind.DEACTIVATE_CONTACT: False, ChangeKind.REACTIVATE_CONTACT: True}.get(change.kind)
    return client.update_contact(contact, details, active=active).contact_id


def execute(change: PlannedChange, view: PsaView, client: PsaPort,
            contacts: Mapping[CompanyKey, Sequence[PsaContact]] | None = None) -> str | None:
    """Make one write; returns the id of the line (or contact) written."""
    if change.about_contact:
        return execute_contact(change, client, contacts or {})
    if change.kind in CREATING:
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


def _record_decisions(book: Bookkeeping, tenant: TenantConfig, plan: TenantPlan, decided: Decisions,
                      pending: list[ApprovalRecord]) -> None:
    """Record the plan's held and deferred decreases and retire the decisions that no longer stand;
    ``pending``: the tenant's approvals waiting for a decision (read with the batch), of which those
    the count moved past are superseded."""
    decisions, run_id, now = book.decisions, book.run_id, book.now
    _retire_stale(book, tenant, plan, decided)
    current = {c.hold_key for c in plan.changes if c.hold_key}
    for change in plan.changes:
        if change.status == ChangeStatus.HELD and book.keep("a held decrease",
                                                             partial(decisions.hold, change, run_id, now)):
            book.audit(change, "held")
        elif change.status == ChangeStatus.DEFERRED and book.keep("a deferred decrease",
                                                                   partial(decisions.defer, change, run_id, now)):
            book.audit(change, "deferred")
    # a pending approval whose decrease no longer stands (the count moved on) is superseded
    if not pending:
        return
    for mapping_key in {c.mapping_key for c in plan.changes} | {o.item.mapping_key for o in plan.outcomes}:
        keep = next((c.hold_key for c in plan.changes if c.mapping_key == mapping_key and c.hold_key in current
                     and c.status == ChangeStatus.HELD), None)
        superseded = book.keep("superseding approvals", partial(decisions.supersede, pending, mapping_key, keep, now))
        for record in superseded:
            book.audit(record.change, "superseded", reason="the licence count moved on before a decision")


def _retire_stale(book: Bookkeeping, tenant: TenantConfig, plan: TenantPlan, decided: Decisions) -> None:
    """Approved or rejected decreases and deferrals that no longer stand are superseded (audited),
    so that they never apply to a later decrease that happens to have the same from and to."""
    approvals, deferrals = stale_decisions(plan, decided)
    decisions, now = book.decisions, book.now
    reason = "the licence count moved on before the decision applied; a later decrease is decided afresh"
    for key in approvals:
        record = book.keep("superseding a decided decrease", partial(decisions.supersede_decided, key, now))
        if record is not None:
            book.audit(record.change, "superseded", reason=reason)
    if deferrals:
        for deferral, change in book.keep("the tenant's deferrals", partial(decisions.deferrals, tenant.tenant_id)):
            if deferral.hold_key in deferrals:
                book.keep("clearing a deferral", partial(decisions.clear_deferral, tenant.tenant_id, deferral.hold_key))
                book.audit(change, "superseded", reason=reason)


def _found_written(book: Bookkeeping, change: PlannedChange, ledger: Mapping[str, LedgerEntry]) -> PlannedChange | None:
    """A change the plan found already in the PSA (a prorate line found by its tag): this run's
    own write (an earlier attempt) stays applied; a write no record holds is recovered; another
    run's recorded write is not this run's change (None). ``ledger``: the tenant's entries of the
    plan's changes."""
    entry = ledger.get(change.change_id)
    if entry is None:
        reason = (f"{change.reason}; no record of this write existed: found in the PSA by its tag and recorded by "
                  f"run {book.run_id}")
        recovered = replace(change, status=ChangeStatus.RECOVERED, reason=reason)
        book.record_applied(change, change.line_id, recovered=True)
        book.audit(recovered, "recovered", reason=reason)
        return recovered
    return change if entry.run_id == book.run_id else None


def _creates(change: PlannedChange) -> bool:
    """Whether the change creates a record (a line or a contact): never made twice."""
    return change.kind in CREATING or change.kind == ChangeKind.CREATE_CONTACT


def _apply(book: Bookkeeping, plan: TenantPlan, view: PsaView, summary: PushSummary,
           guard: Callable[[], None], ledger: Mapping[str, LedgerEntry],
           contacts: Mapping[CompanyKey, Sequence[PsaContact]] | None = None) -> None:
    """Write a tenant's changes, then read them back and record each. The intents of every write
    the tenant may make are stored together (one request) before its first PSA call; an intent
    whose write is then not sent (an earlier write of its licence failed) is closed with the
    tenant's records, and one left open by a crash is settled like any other."""
    broken: set[str] = set()  # mappings whose earlier write failed: their later writes wait for the next run
    attempts: list[Attempt] = []
    unsent: list[PlannedChange] = []
    sendable = [c for c in plan.changes if c.writes and not (_creates(c) and c.change_id in ledger)]
    opened = False
    for change in plan.changes:
        if not change.writes:
            continue
        if change.mapping_key in broken:
            book.update_change(replace(change, status=ChangeStatus.FAILED),
                               "not attempted: an earlier write of this licence failed")
            summary.failed += 1
            unsent.append(change)
            continue
        if _creates(change) and change.change_id in ledger:
            # the PSA no longer shows a line (or contact) SeatSync created today: never created twice
            what, where = ("contact", "company's contacts") if change.about_contact else ("line", "agreement")
            error = (f"this {what} was written earlier today (see the ledger) but the PSA no longer shows it; it is "
                     f"not created twice: check the {where}")
            failed = replace(change, status=ChangeStatus.FAILED)
            book.update_change(failed, error)
            book.audit(failed, "failed", error=error)
            broken.add(change.mapping_key)
            summary.failed += 1
            continue
        guard()
        if not opened:
            book.open_intents(sendable)  # no intent, no write: every intent is stored before the first call
            opened = True
        checkpoints.reached("before-psa-write")
        try:
            written = execute(change, view, book.psa_for(change.psa), contacts)
        except PSA_FAILURES as exc:
            log.warning("change %s: the PSA write failed: %s", change.change_id, exc)
            refused = answered_no(exc)
            found = None if refused else held_now(book, change)
            if found is None:
                broken.add(change.mapping_key)  # the licence's later writes wait for the next run
            attempts.append(Attempt(change, line_id=found, error=str(exc), refused=refused))
            continue
        checkpoints.reached("after-psa-write")
        attempts.append(Attempt(change, line_id=written))
    if not attempts:
        return
    with book.batched():  # the writes' records and the closing of every intent, in a few requests
        confirm(book, attempts, summary)
        for change in unsent:
            if opened:
                book.close_intent(change)  # never sent: nothing to settle later
    checkpoints.reached("after-bookkeeping")


def push_changes(config: SeatSyncConfig, snapshots: SnapshotRepository, runs: RunRepository,
                 decisions: DecisionRepository, psa_for: PsaLookup, request: PushRequest, today: date,
                 now: datetime, margins: MarginRepository | None = None, *,
                 sleep: Callable[[float], None] | None = None,
                 guard: Callable[[], None] = lambda: None,
                 prepared: RunReads | None = None,
                 started: StartedRun | None = None) -> PushSummary:
    """Plan and write a batch of tenants. ``guard`` runs before every PSA write and raises when
    the run may no longer write (it lost its lease); ``sleep`` is how storage retries wait;
    ``prepared``: the agreements and products the run read for its pushes; ``started``: what the
    run set out to do (read from the run's record when not given).

    Under a deadline (``shared.deadline``), a tenant is started only while the time left exceeds
    twice the longest tenant so far (at least ``TENANT_RESERVE_SECONDS``); the first is always
    started. The others are handed back in ``tenants_left``, as are the tenants whose reads a PSA's
    request window would have delayed past the deadline (nothing of theirs is written)."""
    summary = PushSummary()
    book = Bookkeeping(config, runs, decisions, psa_for, request.run_id, None, now, sleep=sleep)
    book.run = book.keep("the run's request", lambda: runs.request(request.run_id))
    configured = [t for t in (config.tenant(i) for i in request.tenant_ids) if t is not None]
    try:
        shared = read_shared(config, configured, psa_for, prepared)
    except DeadlineReached:
        summary.tenants_left = list(request.tenant_ids)
        return summary
    run = started if started is not None else runs.started(request.run_id)
    guarded = {w.tenant_id: w for w in run.guarded()} if run is not None else {}  # the push reads only their guard
    # the batch's approvals, deferrals and open intents in a few queries instead of a few per tenant
    ids = list(request.tenant_ids)
    approvals = book.keep("the tenants' approvals", partial(decisions.approvals_of, ids))
    deferrals = book.keep("the tenants' deferrals", partial(decisions.deferrals_of, ids))
    intents = {} if request.dry_run else book.keep("the open write intents", partial(decisions.intents_of, ids))
    book.known_approvals = {r.hold_key: r for found in approvals.values() for r in found}
    book.known_deferrals = {(t, d.hold_key) for t, found in deferrals.items() for d, _ in found}
    longest = 0.0
    pending = PushRecords(request.run_id)
    try:
        for position, tenant_id in enumerate(request.tenant_ids):
            limit = deadline.current()
            if position and limit is not None and limit.remaining < max(TENANT_RESERVE_SECONDS, 2 * longest):
                summary.tenants_left = list(request.tenant_ids[position:])
                break
            began = time.monotonic()
            try:
                created = CreatedLines(partial(book.keep, "the lines SeatSync created",
                                               partial(decisions.created_lines, tenant_id)))
                records = TenantRecords(approvals.get(tenant_id, []), deferrals.get(tenant_id, []),
                                        intents.get(tenant_id, []), created)
                _push_tenant(config, snapshots, runs, decisions, psa_for, request, today, margins, book, shared,
                             summary, tenant_id, guard, guarded.get(tenant_id), records, pending)
            except DeadlineReached:
                summary.tenants_left = list(request.tenant_ids[position:])
                break
            longest = max(longest, time.monotonic() - began)
    except Exception:
        pending.write_after_failure(runs, snapshots, margins)
        raise
    pending.write(book.keep, runs, snapshots, margins)
    return summary


@dataclass(frozen=True)
class TenantRecords:
    """A tenant's approvals, deferrals, open write intents and the lines SeatSync created for its
    licences (by tag), as read for its batch."""

    approvals: list[ApprovalRecord]
    deferrals: list[tuple[Deferral, PlannedChange]]
    intents: list[WriteIntent]
    created: Mapping[str, tuple[CreatedLine, ...]]


class CreatedLines(Mapping[str, tuple[CreatedLine, ...]]):
    """A tenant's lines SeatSync created, by tag, read from its ledger the first time the plan asks:
    only a licence whose line the PSA no longer shows (or shows empty) needs them, so a tenant whose
    lines all bill costs no read (``DecisionRepository.created_lines``)."""

    def __init__(self, read: Callable[[], dict[str, tuple[CreatedLine, ...]]]) -> None:
        self._read = read
        self._lines: dict[str, tuple[CreatedLine, ...]] | None = None

    def _loaded(self) -> dict[str, tuple[CreatedLine, ...]]:
        if self._lines is None:
            self._lines = self._read()
        return self._lines

    def __getitem__(self, tag: str) -> tuple[CreatedLine, ...]:
        return self._loaded()[tag]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    @property
    def read(self) -> bool:
        """Whether the ledger was read (tests: a tenant whose lines all bill costs no read)."""
        return self._lines is not None


TENANT_RESERVE_SECONDS = 30.0
"""The least time a push keeps for a tenant it starts under a deadline."""


def _emptied_by_seatsync(book: Bookkeeping, tenant_id: str, view: PsaView,
                         created: Mapping[str, tuple[CreatedLine, ...]]) -> frozenset[str]:
    """Of the lines SeatSync created that bill no seats now, those SeatSync emptied itself (the
    others were emptied in the PSA: see ``shared.domain.planning``). Read only when there are any."""
    empty = sorted({line.line_id for lines in view.lines.values() for line in lines
                    if line.quantity == 0 and line.tag is not None
                    and any(c.line_id == line.line_id for c in created.get(line.tag, ()))})
    if not empty:
        return frozenset()
    return book.keep("the quantities SeatSync wrote", partial(book.decisions.emptied_by_seatsync, tenant_id, empty))


def _push_tenant(config: SeatSyncConfig, snapshots: SnapshotRepository, runs: RunRepository,
                 decisions: DecisionRepository, psa_for: PsaLookup, request: PushRequest, today: date,
                 margins: MarginRepository | None, book: Bookkeeping, shared: SharedReads, summary: PushSummary,
                 tenant_id: str, guard: Callable[[], None], work: TenantWork | None,
                 records: TenantRecords, pending: PushRecords) -> None:
    """Plan and write one tenant of the batch (``DeadlineReached`` before its reads are done: nothing
    of it was recorded or written). What no write depends on is held in ``pending`` for the batch."""
    telemetry.set_tenant(tenant_id)
    tenant = config.tenant(tenant_id)
    summary.tenants += 1
    snapshot = book.keep("the tenant's snapshot", partial(snapshots.get, tenant_id, request.run_id))
    if tenant is None or snapshot is None:
        reason = ("the tenant is no longer configured" if tenant is None
                  else "no snapshot of this run was stored")
        pending.problem(tenant_id, [], reason)
        summary.tenants_failed.append(tenant_id)
        return
    try:
        view = read_view(config, tenant, shared, psa_for)
    except DeadlineReached:
        summary.tenants -= 1  # handed back: another push does it
        raise
    except TenantReadError as exc:
        log.warning("tenant %s: %s", tenant_id, exc)
        pending.problem(tenant_id, [], str(exc))
        summary.tenants_failed.append(tenant_id)
        return
    pending.licences[tenant_id] = LatestLicences.of(snapshot)
    contact_reads = read_contacts(tenant, psa_for)
    recovered: dict[str, PlannedChange] = {}
    if not request.dry_run:
        # writes an earlier attempt made without finishing its bookkeeping: recorded before planning
        known = PsaRecords(dict(view.lines), dict(contact_reads.contacts))
        for settled in settle(book, records.intents, known, summary):
            if settled.held:
                recovered[settled.change.change_id] = settled.change
        if any(c.about_contact for c in recovered.values()):
            contact_reads = read_contacts(tenant, psa_for)  # plan from the contacts as they now are
    decided = replace(decisions_from(records.approvals, records.deferrals), created=records.created,
                      emptied_by_seatsync=_emptied_by_seatsync(book, tenant_id, view, records.created))
    history = book.keep("the licences' states", partial(state_history, snapshots, snapshot))
    links = (book.keep("the tenant's contact links", partial(decisions.contact_links, tenant_id))
             if contact_reads.contacts or contact_reads.unread else None)
    contact_plan = None
    try:
        plan = plan_tenant(config, tenant, snapshot, view, today,
                           replace(decided, guard=work.guard if work is not None else None), history)
        if links is not None:
            contact_plan = plan_contacts(config, tenant, snapshot, contact_reads.contacts, links,
                                         contact_reads.fields, today, contact_reads.unread,
                                         work.guard if work is not None else None)
            plan = replace(plan, changes=plan.changes + contact_plan.changes,
                           problems=plan.problems + contact_plan.problems)
        rows, unlinked = _reconciliation(tenant, snapshot, plan, config)
    except (StoreError, AzureError):
        raise  # the ledger read the plan asked for (CreatedLines) failed: storage's path, not a defect
    except Exception as exc:  # a defect met planning one tenant: it fails alone, the batch goes on
        log.exception("tenant %s: planning failed unexpectedly", tenant_id)
        reason = (f"planning {tenant.name} ({tenant_id}) failed unexpectedly, so nothing was written for it: "
                  f"{type(exc).__name__}: {exc}")
        pending.problem(tenant_id, [], reason)
        summary.tenants_failed.append(tenant_id)
        return
    if contact_plan is not None and not request.dry_run and (contact_plan.links or contact_plan.forget):
        book.keep("the tenant's contact links", partial(decisions.link_contacts, tenant_id,
                                                        list(contact_plan.links), request.run_id, book.now))
        book.keep("the tenant's contact links", partial(decisions.forget_contacts, tenant_id,
                                                        list(contact_plan.forget)))
    pending.problem(tenant_id, list(plan.problems))
    pending.reconciliations[tenant_id] = (rows, unlinked)
    if margins is not None:
        pending.facts[tenant_id] = tenant_facts(config, tenant, snapshot, plan, view, today)
    summary.unchanged += plan.unchanged
    summary.count_problems(count_by_kind(plan.problems),
                           sum(1 for p in plan.problems if acknowledged(config, p)))
    summary.held += sum(1 for c in plan.changes if c.status == ChangeStatus.HELD)
    summary.deferred += sum(1 for c in plan.changes if c.status == ChangeStatus.DEFERRED)
    summary.rejected += sum(1 for c in plan.changes if c.status == ChangeStatus.REJECTED)
    to_write = [c for c in plan.changes if c.writes]
    summary.planned += len(to_write)
    if request.dry_run:
        pending.changes[tenant_id] = [replace(c, status=ChangeStatus.DRY_RUN) if c.writes else c
                                      for c in plan.changes]
        summary.dry_run += len(to_write)
        return
    # the ledger's entries of the changes found already written and of the records to create: one read
    looked_up = [c.change_id for c in plan.changes if c.change_id not in recovered and
                 (c.status == ChangeStatus.APPLIED or (c.writes and _creates(c)))]
    ledger = book.keep("the ledger", partial(decisions.ledger_entries, tenant_id, looked_up)) if looked_up else {}
    changes: list[PlannedChange] = []
    for change in plan.changes:
        if change.change_id in recovered:
            continue  # recorded as recovered above
        if change.status == ChangeStatus.APPLIED:
            found = _found_written(book, change, ledger)
            if found is None:
                continue
            summary.recovered += found.status == ChangeStatus.RECOVERED
            change = found
        changes.append(change)
    if to_write or recovered or any(c.status in (ChangeStatus.APPLIED, ChangeStatus.RECOVERED) for c in changes):
        # recorded before the writes, and with the ledger entries of what was found written
        book.keep("the planned changes", partial(runs.record_changes, request.run_id, changes))
    else:
        pending.changes[tenant_id] = changes  # held, deferred or unchanged: nothing depends on them
    _record_decisions(book, tenant, plan, decided, [r for r in records.approvals if r.status == "pending"])
    applied_before, failed_before = summary.applied, summary.failed
    _apply(book, plan, view, summary, guard, ledger, contact_reads.contacts)
    if to_write and summary.applied == applied_before and summary.failed > failed_before:
        summary.tenants_unwritten.append(tenant_id)  # the PSA took none of its writes


def reconcile_open_writes(config: SeatSyncConfig, runs: RunRepository, decisions: DecisionRepository,
                          psa_for: PsaLookup, run_id: str, now: datetime, *,
                          sleep: Callable[[float], None] | None = None) -> PushSummary:
    """What a run does before collecting: settle every open write intent against the PSA."""
    summary = PushSummary()
    book = Bookkeeping(config, runs, decisions, psa_for, run_id, None, now, sleep=sleep)
    book.run = book.keep("the run's request", lambda: runs.request(run_id))
    reconcile_writes(book, summary)
    return summary
