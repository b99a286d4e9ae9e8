"""Exactly-once bookkeeping of PSA writes: an intent before every write, a read-back after, and
the settling of intents an earlier attempt left open.

The mechanism, whatever the fault (a PSA answer lost to a timeout, Table Storage refusing
connections for a while, the process killed between two lines of code):

1. before the PSA call, the write's *intent* is stored (retried while storage is unavailable;
   no intent, no write);
2. after a tenant's writes, the affected agreements' lines (and companies' contacts) are read
   back once, and each write is recorded as applied (ledger, run report, audit) only when the PSA
   holds it; a write the PSA does not show is a failed write, with what was found;
3. an intent still open when a later attempt starts (the next run, or the retried activity of
   the same run) is settled against the PSA before anything is planned: found, it is recorded
   as *recovered* (ledger, audit, this run's report, and the earlier run's record of the
   change); not found, as not written (and planned again from what the PSA bills).

Storage errors during bookkeeping are retried with backoff (``StoreRetry``); when they persist
the error propagates, the activity fails (and is retried), and the run says so: a write is
never reported as applied on the strength of bookkeeping that did not happen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar

import requests

from shared import checkpoints
from shared.adapters.decision_store import ApprovalRecord, AuditEntry, DecisionRepository, WriteIntent
from shared.adapters.run_store import RunRepository
from shared.adapters.tables import StoreRetry
from shared.config.schema import SeatSyncConfig
from shared.contracts import PushSummary, SyncRequest
from shared.deadline import DeadlineReached
from shared.domain.contacts import CompanyKey, ContactLink
from shared.domain.model import BilledLine, ChangeKind, ChangeStatus, PlannedChange, PsaContact
from shared.domain.planning import AgreementKey
from shared.domain.writes import WriteCheck, check_contact, check_write
from shared.errors import HttpServiceError, PsaError, SeatSyncError
from shared.ports import PsaPort

log = logging.getLogger(__name__)
T = TypeVar("T")
PsaLookup = Callable[[str], PsaPort]
LinesByAgreement = Mapping[AgreementKey, Sequence[BilledLine]]
ContactsByCompany = Mapping[CompanyKey, Sequence[PsaContact]]
PSA_FAILURES = (PsaError, SeatSyncError, requests.RequestException)


def answered_no(exc: BaseException) -> bool:
    """Whether a failed write certainly did not happen: refused before it was sent, answered with
    a 4xx other than 408/429, a validation error the PSA answers with a 5xx (``PsaError.refused``),
    or held back (a PSA's request window would have kept it past the activity's deadline). A
    timeout, a lost connection or another 5xx may have been acted on."""
    if isinstance(exc, DeadlineReached):
        return True
    if not isinstance(exc, HttpServiceError):
        return False
    if isinstance(exc, PsaError) and exc.refused:
        return True
    if exc.status is None:
        return exc.method is None
    return 400 <= exc.status < 500 and exc.status not in (408, 429)


@dataclass
class _Pending:
    """What ``Bookkeeping.batched`` holds until the block ends."""

    ledger: list[tuple[PlannedChange, str, datetime, str | None, str | None]] = field(default_factory=list)
    changes: list[tuple[str, PlannedChange, str | None]] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    intents: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Bookkeeping:
    """What a push (or the settling of open intents) records with: the repositories, the run,
    the instant, and how storage failures are ridden out. ``known_approvals`` and
    ``known_deferrals``: the approvals (by hold key) and deferrals (tenant, hold key) of the
    tenants being pushed, when they were read for the whole batch."""

    config: SeatSyncConfig
    runs: RunRepository
    decisions: DecisionRepository
    psa_for: PsaLookup
    run_id: str
    run: SyncRequest | None
    now: datetime
    retry: StoreRetry = field(default_factory=StoreRetry)
    sleep: Callable[[float], None] | None = None
    known_approvals: dict[str, ApprovalRecord] | None = None
    known_deferrals: set[tuple[str, str]] | None = None
    _pending: _Pending | None = None

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Record what the block records in a few requests instead of one each: when it ends, the
        ledger entries, then the records of the changes, then the audit entries, and last the
        closing of the write intents (each kind written only once the ones before are stored, so
        an intent is never closed before its write is recorded). A block that raises records
        nothing of what it held: its intents stay open and the next attempt settles them."""
        if self._pending is not None:
            yield
            return
        self._pending = _Pending()
        try:
            yield
        except BaseException:
            self._pending = None
            raise
        pending, self._pending = self._pending, None
        if pending.ledger:
            self.keep("the ledger entries", lambda: self.decisions.record_writes(pending.ledger))
        if pending.changes:
            self.keep("the records of the changes", lambda: self.runs.update_changes(pending.changes))
        if pending.audit:
            self.keep("the audit entries", lambda: self.decisions.audit_many(pending.audit))
        if pending.intents:
            self.keep("closing the write intents", lambda: self.decisions.close_intents(pending.intents))

    def keep(self, what: str, operation: Callable[[], T]) -> T:
        """A storage operation, retried while storage is unavailable."""
        if self.sleep is None:
            return self.retry.call(what, operation)
        return self.retry.call(what, operation, self.sleep)

    def tenant_name(self, tenant_id: str) -> str:
        tenant = self.config.tenant(tenant_id)
        return tenant.name if tenant else ""

    def audit(self, change: PlannedChange, event: str, **extra: str | None) -> None:
        entry = AuditEntry.of(change, event, self.now, self.tenant_name(change.tenant_id), run_id=self.run_id,
                              trigger=self.run.trigger if self.run else None,
                              requested_by=self.run.requested_by if self.run else None, **extra)
        if self._pending is not None:
            self._pending.audit.append(entry)
            return
        self.keep(f"the audit entry '{event}' of change {change.change_id}", lambda: self.decisions.audit(entry))

    def update_change(self, change: PlannedChange, error: str | None = None, run_id: str | None = None) -> None:
        target = run_id or self.run_id
        if self._pending is not None:
            self._pending.changes.append((target, change, error))
            return
        self.keep(f"the record of change {change.change_id} in run {target}",
                  lambda: self.runs.update_change(target, change, error))

    def open_intent(self, change: PlannedChange) -> None:
        self.keep(f"the write intent of change {change.change_id}",
                  lambda: self.decisions.open_intent(change, self.run_id, self.now))

    def open_intents(self, changes: Sequence[PlannedChange]) -> None:
        """The intents of several writes, stored (a transaction per tenant) before the first of
        them is sent: each write still has its intent stored before its PSA call. An intent whose
        write is then not sent is closed (``close_intent``); one left open is settled like any."""
        self.keep(f"the write intents of {len(changes)} changes",
                  lambda: self.decisions.open_intents(list(changes), self.run_id, self.now))

    def close_intent(self, change: PlannedChange) -> None:
        if self._pending is not None:
            self._pending.intents.append((change.tenant_id, change.change_id))
            return
        self.keep(f"closing the write intent of change {change.change_id}",
                  lambda: self.decisions.close_intent(change.tenant_id, change.change_id))

    def record_applied(self, change: PlannedChange, line_id: str | None, run_id: str | None = None,
                       recovered: bool = False) -> None:
        """The ledger entry of a write the PSA holds, and what a write settles: an approved
        decrease is applied, a deferral done."""
        writer = run_id or self.run_id
        recovered_by = self.run_id if recovered else None
        if self._pending is not None:
            self._pending.ledger.append((change, writer, self.now, line_id, recovered_by))
        else:
            self.keep(f"the ledger entry of change {change.change_id}", lambda: self.decisions.record_write(
                change, writer, self.now, line_id, recovered_by=recovered_by))
        if change.kind == ChangeKind.CREATE_CONTACT and line_id:
            self.link_contact(change, line_id)
        if change.hold_key and change.kind == ChangeKind.CREATE_LINE:
            hold_key = change.hold_key  # an approved recreation of a line the MSP deleted
            self.keep("marking an approval applied", lambda: self.decisions.mark_applied(hold_key, self.now))
        if change.hold_key and change.kind == ChangeKind.SET_QUANTITY:
            hold_key = change.hold_key
            approval = (self.known_approvals.get(hold_key) if self.known_approvals is not None
                        else self.keep("the approval of a held change", lambda: self.decisions.approval(hold_key)))
            if approval is not None:
                self.keep("marking an approval applied", lambda: self.decisions.mark_applied(hold_key, self.now))
            if self.known_deferrals is None or (change.tenant_id, hold_key) in self.known_deferrals:
                self.keep("clearing a deferral", lambda: self.decisions.clear_deferral(change.tenant_id, hold_key))


    def link_contact(self, change: PlannedChange, contact_id: str) -> None:
        """Record that the contact SeatSync created is the contact of the change's user: it is one
        SeatSync manages from now on (deactivated when the user loses its licences or leaves)."""
        user_id = change.sku_id.removeprefix("contact:")
        upn = change.contact.email if change.contact and change.contact.email else ""
        link = ContactLink(change.psa, change.company_id, user_id, contact_id, upn, change.label)
        self.keep(f"the contact link of change {change.change_id}",
                  lambda: self.decisions.link_contacts(change.tenant_id, [link], self.run_id, self.now))


# -- read-back ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """A write sent to the PSA: the line id it answered with, or the error when it did not
    answer well (``refused``: it certainly did not act on it)."""

    change: PlannedChange
    line_id: str | None = None
    error: str | None = None
    refused: bool = False


def read_lines(keys: Iterable[AgreementKey], psa_for: PsaLookup) -> dict[AgreementKey, tuple[BilledLine, ...]]:
    """The lines of the agreements, one ``list_lines`` per PSA; raises when a read fails."""
    wanted = sorted(set(keys))
    found: dict[AgreementKey, list[BilledLine]] = {key: [] for key in wanted}
    for psa in sorted({p for p, _ in wanted}):
        for line in psa_for(psa).list_lines([a for p, a in wanted if p == psa]):
            found.setdefault((psa, line.agreement_id), []).append(line)
    return {key: tuple(lines) for key, lines in found.items()}


@dataclass
class PsaRecords:
    """What writes are checked against: the lines of agreements and the contacts of companies, as
    read from the PSA."""

    lines: dict[AgreementKey, Sequence[BilledLine]] = field(default_factory=dict)
    contacts: dict[CompanyKey, Sequence[PsaContact]] = field(default_factory=dict)

    @staticmethod
    def key(change: PlannedChange) -> tuple[str, str, str]:
        """What a change is checked on: (``lines``, PSA, agreement) or (``contacts``, PSA, company)."""
        if change.about_contact:
            return ("contacts", change.psa, change.company_id)
        return ("lines", change.psa, change.agreement_id)

    def holds_key(self, change: PlannedChange) -> bool:
        """Whether what the change is checked on was read."""
        kind, psa, ident = self.key(change)
        return (psa, ident) in (self.contacts if kind == "contacts" else self.lines)

    def check(self, change: PlannedChange, record_id: str | None = None) -> WriteCheck:
        kind, psa, ident = self.key(change)
        if kind == "contacts":
            return check_contact(change, self.contacts.get((psa, ident), ()), record_id)
        return check_write(change, self.lines.get((psa, ident), ()), record_id)

    def update(self, other: PsaRecords) -> None:
        self.lines.update(other.lines)
        self.contacts.update(other.contacts)


def read_records(changes: Iterable[PlannedChange], psa_for: PsaLookup) -> PsaRecords:
    """What the changes are checked on, read from the PSA: one ``list_lines`` per PSA for the
    agreements, one ``list_contacts`` per company; raises when a read fails."""
    keys = {PsaRecords.key(change) for change in changes}
    records = PsaRecords(lines=dict(read_lines({(p, i) for k, p, i in keys if k == "lines"}, psa_for)))
    for _, psa, company in sorted(k for k in keys if k[0] == "contacts"):
        records.contacts[(psa, company)] = tuple(psa_for(psa).list_contacts(company))
    return records


def held_now(book: Bookkeeping, change: PlannedChange) -> str | None:
    """After a write whose answer was lost: whether the PSA holds it already (one read of its
    agreement, or its company's contacts), so that the licence's next writes can go on; the id of
    the line or contact it is on, or None."""
    try:
        records = read_records([change], book.psa_for)
    except PSA_FAILURES as exc:
        log.warning("change %s: the PSA could not be read after its write failed: %s", change.change_id, exc)
        return None
    check = records.check(change)
    return check.found_id if check.held else None


def confirm(book: Bookkeeping, attempts: Sequence[Attempt], summary: PushSummary) -> None:
    """Read back the agreements and contacts the attempts touched (one read per PSA, and per
    company for contacts) and record each write as applied only when the PSA holds it."""
    if not attempts:
        return
    try:
        records: PsaRecords | None = read_records((a.change for a in attempts), book.psa_for)
        unread = None
    except PSA_FAILURES as exc:
        records, unread = None, f"{exc}"
    checkpoints.reached("after-read-back")
    with book.batched():  # the tenant's records in a few requests: ledger, changes, audit, then intents
        for attempt in attempts:
            change = attempt.change
            if records is None:
                error = (f"{attempt.error + '; ' if attempt.error else ''}not confirmed: reading it back from the PSA "
                         f"failed ({unread}); the next run checks whether the PSA holds it")
                _failed(book, change, error, "unconfirmed", summary)
                continue
            check = records.check(change, attempt.line_id)
            if check.held:
                line_id = check.found_id or attempt.line_id
                applied = replace(change, status=ChangeStatus.APPLIED, line_id=change.line_id or line_id)
                book.record_applied(change, line_id)
                note = None
                if attempt.error:
                    note = (f"{change.reason}; the PSA's answer was lost ({attempt.error}), reading it back shows "
                            f"the write was made ({check.detail})")
                    applied = replace(applied, reason=note)
                book.update_change(applied)
                book.audit(applied, "applied", reason=note)
                book.close_intent(change)
                summary.applied += 1
                count_money(summary, change)
                continue
            if attempt.error:
                error = f"{attempt.error}; reading it back: {check.detail}"
            else:
                error = f"the PSA accepted the write but reading it back shows {check.detail}"
            _failed(book, change, error, "failed", summary)
            if attempt.refused:
                book.close_intent(change)  # the PSA said no and does not hold it: nothing to settle later


def count_money(summary: PushSummary, change: PlannedChange) -> None:
    """The money a written change moves, for the run's telemetry: its prorated amount, and for a
    quantity change the recurring charge it changes (units changed times the unit price)."""
    if change.amount is not None:
        summary.prorated_amount += change.amount
    if change.kind == ChangeKind.SET_QUANTITY and change.unit_price is not None and change.old_quantity is not None:
        summary.recurring_change += (change.new_quantity - change.old_quantity) * change.unit_price


def _failed(book: Bookkeeping, change: PlannedChange, error: str, event: str, summary: PushSummary) -> None:
    log.warning("change %s failed: %s", change.change_id, error)
    failed = replace(change, status=ChangeStatus.FAILED)
    book.update_change(failed, error)
    book.audit(failed, event, error=error)
    summary.failed += 1


# -- settling open intents ------------------------------------------------------------------


@dataclass(frozen=True)
class Settled:
    """An open intent settled against the PSA."""

    intent: WriteIntent
    held: bool
    line_id: str | None
    detail: str

    @property
    def change(self) -> PlannedChange:
        return self.intent.change


def settle(book: Bookkeeping, intents: Sequence[WriteIntent], known: PsaRecords,
           summary: PushSummary) -> list[Settled]:
    """Settle open intents against the PSA: ``known`` records are used as read; the agreements and
    companies not among them are read (one read per PSA, and per company for contacts). Intents
    whose records cannot be read stay open."""
    if not intents:
        return []
    records = PsaRecords(dict(known.lines), dict(known.contacts))
    missing = [i.change for i in intents if not records.holds_key(i.change)]
    for kind, psa in sorted({PsaRecords.key(c)[:2] for c in missing}):
        group = [c for c in missing if PsaRecords.key(c)[:2] == (kind, psa)]
        try:
            records.update(read_records(group, book.psa_for))
        except PSA_FAILURES as exc:
            log.warning("open write intents on %s stay open: their %s could not be read (%s)", psa,
                        "contacts" if kind == "contacts" else "agreements", exc)
    settled = []
    with book.batched():
        for intent in intents:
            if not records.holds_key(intent.change):
                continue
            check = records.check(intent.change)
            result = Settled(intent, check.held, check.found_id, check.detail)
            _record_settled(book, result, summary)
            settled.append(result)
    return settled


def _record_settled(book: Bookkeeping, settled: Settled, summary: PushSummary) -> None:
    change, writer = settled.change, settled.intent.run_id
    same_run = writer == book.run_id
    who = "an earlier attempt of this run" if same_run else f"run {writer}"
    if settled.held:
        line_id = change.line_id or settled.line_id
        reason = (f"{change.reason}; written to the PSA by {who} on {settled.intent.at:%Y-%m-%d %H:%M} UTC, whose "
                  f"bookkeeping did not finish; found in the PSA ({settled.detail}) and recorded by run {book.run_id}")
        book.record_applied(change, settled.line_id, run_id=writer, recovered=True)
        book.update_change(replace(change, status=ChangeStatus.RECOVERED, line_id=line_id, reason=reason))
        if not same_run:
            book.update_change(replace(change, status=ChangeStatus.APPLIED, line_id=line_id, reason=reason),
                               run_id=writer)
        book.audit(replace(change, line_id=line_id), "recovered", reason=reason)
        summary.recovered += 1
        count_money(summary, change)
    else:
        reason = (f"not written: {who} recorded the intent on {settled.intent.at:%Y-%m-%d %H:%M} UTC but the PSA "
                  f"does not hold it ({settled.detail}); planned again from what the PSA bills")
        if not same_run:
            earlier = _recorded_status(book, writer, change.change_id)
            if earlier in (None, ChangeStatus.PLANNED):
                book.update_change(replace(change, status=ChangeStatus.FAILED), reason, run_id=writer)
        book.audit(change, "not-written", reason=reason)
        summary.not_written += 1
    book.close_intent(change)


def _recorded_status(book: Bookkeeping, run_id: str, change_id: str) -> ChangeStatus | None:
    record = book.keep(f"the record of change {change_id} in run {run_id}",
                       lambda: book.runs.change(run_id, change_id))
    return record[0].status if record else None


def reconcile_writes(book: Bookkeeping, summary: PushSummary) -> list[Settled]:
    """Settle every open intent (of every tenant): what a run does first, so that a write an
    earlier run made without finishing its bookkeeping is recorded even when its tenant is not
    synced now."""
    intents = book.keep("reading the open write intents", lambda: book.decisions.intents())
    return settle(book, intents, PsaRecords(), summary)
