"""Alerts as PSA tickets: one ticket per alert kind and tenant, opened in the configured PSA (a
ConnectWise service board, an Autotask queue, a HaloPSA ticket type) for the tenant's company,
given a note while the alert stays open (when its digest says it is due again, or it changed), and
closed when the alert clears.

Never duplicated across runs, in the same way a billing write is done exactly once: each ticket
ends its summary with a marker made from the channel and the alert group's key
(``[SeatSync 1a2b3c4d5e6f]``). Before the PSA is asked to open a ticket, SeatSync records its
intent (a record ``opening``, with the id of the group's previous ticket, if any); once the PSA
answers, the record is ``open`` with the ticket's id. A run that finds an ``opening`` record (the
run that wrote it died, its create timed out, or storage refused the record) looks for the ticket
by its marker among the board/queue/type's tickets, closed ones included, newer than the group's
previous ticket: found, it is recorded (open, or acknowledged when a person already closed it),
never opened twice; not found, the create did not happen and the ticket is opened. A group with
no record at all is first looked for among the open tickets by its marker too.

A group clears only when the run looked at what it is about: a tenant's alerts when the tenant was
collected and pushed in this run (its sign-in alert when it was tried at all), the partner's
customer-list alerts when the customers were listed, a run's own alerts with every run. A tenant
left out of a run, or one that failed, keeps its tickets open.

A ticket a person closed (or deleted) in the PSA while its alert stays is **acknowledged**: it is
left closed and no other ticket is opened for the group while the problem is the same, whatever
the digest's reminders say. Each record keeps the digest of what its ticket told (the
fingerprints of the group's alerts: shared.notifications.alerts); when the group's alerts differ
from it (another licence, another count, a new problem), a new ticket is opened. Once the group's
alerts clear, the acknowledgement ends with them: the problem coming back opens a ticket.

A PSA that refuses a ticket write fails the channel's delivery for this run, recorded with the
reason like any channel's failure (never the run's); the other groups still go on, and what was
not done is done by the next run.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from shared.config.notifications import ALERT_KINDS, RUN_KINDS, AlertKind, Digest, PsaTicketChannel
from shared.config.schema import SeatSyncConfig
from shared.domain.model import TicketSpec
from shared.errors import PsaError
from shared.notifications.alerts import KINDS, Alert, RunData
from shared.notifications.digest import SentRecord, select_due
from shared.notifications.render import MessageContext
from shared.ports import TicketPort

log = logging.getLogger(__name__)

DETAILS_LIMIT = 7500
"""Characters of a ticket's description or note (Autotask's description holds 8,000)."""
CUSTOMER_LIST_KINDS: frozenset[str] = frozenset({"gdap-not-added", "gdap-ended", "gdap-expiring", "tenant-guarded"})
"""Kinds about the partner's customer list: they clear only when the run listed the customers."""
UNCONFIGURED_KINDS: frozenset[str] = frozenset({"gdap-not-added"})
"""Kinds about tenants not in the configuration: they have no company but the channel's own."""
SIGN_IN_KINDS: frozenset[str] = frozenset({"auth-failed"})
"""Kinds that clear when the run tried to sign in to the tenant, whatever came of it."""
PSA_FAILURES: tuple[type[BaseException], ...] = (PsaError, ValueError)
"""What a ticket write may meet in the PSA (or in a configured id): it fails that ticket, not the
others. A failure of Table Storage propagates."""

TicketStatus = Literal["opening", "open", "closed", "acknowledged"]
TICKET_STATUSES: tuple[TicketStatus, ...] = ("opening", "open", "closed", "acknowledged")


@dataclass(frozen=True)
class TicketRecord:
    """SeatSync's record of the ticket of one alert group on one channel. ``opening``: the ticket
    is about to be opened (``ticket_id`` is the group's previous ticket, "" when none); ``open``;
    ``closed`` (by SeatSync, or its group cleared); ``acknowledged``: closed by a person while its
    alerts stayed. ``digest``: what the ticket told (``group_digest``)."""

    key: str
    kind: str
    tenant_id: str | None
    ticket_id: str
    company_id: str
    marker: str
    status: TicketStatus
    opened_at: datetime
    opened_in_run: str
    closed_at: datetime | None = None
    digest: str = ""

    @property
    def open(self) -> bool:
        return self.status == "open"

    def closed(self, now: datetime) -> TicketRecord:
        return replace(self, status="closed", closed_at=now)


@dataclass(frozen=True)
class TicketGroup:
    """The alerts one ticket is about: one kind, one tenant (or the whole run)."""

    kind: AlertKind
    tenant_id: str | None
    tenant_name: str
    alerts: tuple[Alert, ...]

    @property
    def key(self) -> str:
        return group_key(self.kind, self.tenant_id)


def group_key(kind: str, tenant_id: str | None) -> str:
    return f"{kind}|{(tenant_id or 'run').lower()}"


def group_digest(group: TicketGroup) -> str:
    """A digest of what the group's alerts say (their fingerprints): it differs when the problem
    changes, not when only the wording or the day does."""
    return hashlib.sha256("|".join(sorted(a.fingerprint for a in group.alerts)).encode()).hexdigest()[:20]


def marker(channel_id: str, key: str) -> str:
    """The text a ticket's summary ends with so that SeatSync finds it again: stable for a channel
    and group, short enough for ConnectWise's 100-character summary."""
    return f"[SeatSync {hashlib.sha256(f'{channel_id}|{key}'.encode()).hexdigest()[:12]}]"


def ticket_kinds(channel: PsaTicketChannel) -> frozenset[str]:
    """The alert kinds the channel opens tickets for: those it names, else every kind but the run
    summary (a summary is not an alert); without a company of its own, not the kinds whose tickets
    would need one (about the whole run, or about tenants not configured)."""
    if channel.kinds:
        return frozenset(channel.kinds)
    kinds = {kind for kind in ALERT_KINDS if kind != "run-summary"}
    if channel.company_id is None:
        kinds -= RUN_KINDS | UNCONFIGURED_KINDS
    return frozenset(kinds)


def groups_of(alerts: Iterable[Alert], kinds: frozenset[str], names: Callable[[str], str]) -> list[TicketGroup]:
    """The alerts of ``kinds`` by kind and tenant, in a stable order."""
    by_key: dict[tuple[AlertKind, str | None], list[Alert]] = {}
    for alert in alerts:
        if alert.kind in kinds:
            tenant = alert.tenant_id.lower() if alert.tenant_id else None
            by_key.setdefault((alert.kind, tenant), []).append(alert)
    groups = [TicketGroup(kind, tenant, (found[0].tenant_name or names(tenant)) if tenant else "", tuple(found))
              for (kind, tenant), found in by_key.items()]
    return sorted(groups, key=lambda g: g.key)


def summary_of(group: TicketGroup) -> str:
    """``SeatSync: Billing problems - Fabrikam Ltd`` (the PSA adapter appends the marker)."""
    label = KINDS[group.kind].label
    return f"SeatSync: {label} - {group.tenant_name}" if group.tenant_id else f"SeatSync: {label}"


def details_of(group: TicketGroup, context: MessageContext, limit: int = DETAILS_LIMIT) -> str:
    """The ticket's text: each alert with its facts and what to do, within ``limit`` characters
    (ending with how many more there are)."""
    head = [f"SeatSync alert: {KINDS[group.kind].label}"]
    if group.tenant_id:
        head.append(f"Tenant: {group.tenant_name} ({group.tenant_id})")
    head.append(f"Run: {context.run_id}" + (f" ({context.status})" if context.status else "")
                + (f" - {context.report_url}" if context.report_url else ""))
    text = "\n".join(head)
    for index, alert in enumerate(group.alerts):
        lines = [f"- {alert.title}"] + [f"  {fact.title}: {fact.value}" for fact in alert.facts]
        if alert.action_text:
            lines.append(f"  What to do: {alert.action_text}")
        block = "\n\n" + "\n".join(lines)
        if len(text) + len(block) > limit - 60:
            return text + f"\n\n(+{len(group.alerts) - index} more: see the run report)"
        text += block
    return text


def assessed(data: RunData, kind: str, tenant_id: str | None) -> bool:
    """Whether this run looked at what a group is about, so that no alert means it cleared."""
    if kind in RUN_KINDS or tenant_id is None:
        return True
    if kind in CUSTOMER_LIST_KINDS:
        return data.started is not None and not data.summary.gdap_error
    row = data.row(tenant_id)
    if row is None or row.outcome is None:
        return False
    if kind in SIGN_IN_KINDS:
        return True
    return row.outcome.status == "ok" and not row.push_error


@dataclass
class TicketOutcome:
    """What the channel did in one run: tickets opened, found again by their marker, given a
    note, closed, left as they were; the alerts it told about; what it could not do."""

    opened: int = 0
    found: int = 0
    noted: int = 0
    closed: int = 0
    unchanged: int = 0
    acknowledged: int = 0
    told: list[Alert] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def written(self) -> int:
        return self.opened + self.noted + self.closed + self.found


@dataclass
class TicketChannel:
    """The PSA ticket channel of the configuration, reaching the PSA through ``psa``."""

    channel: PsaTicketChannel
    psa: TicketPort
    config: SeatSyncConfig

    @property
    def channel_id(self) -> str:
        return self.channel.channel_id

    @property
    def spec(self) -> TicketSpec:
        return TicketSpec(queue=str(self.channel.place), priority=_text(self.channel.priority),
                          closed_status=_text(self.channel.closed_status))

    def company_of(self, group: TicketGroup) -> str | None:
        """The tenant's (first) company on the channel's PSA, else the channel's own company."""
        tenant = self.config.tenant(group.tenant_id) if group.tenant_id else None
        if tenant is not None:
            for company in tenant.companies:
                if company.psa == self.channel.psa:
                    return company.company_id
        return self.channel.company_id

    def sync(self, data: RunData, alerts: Sequence[Alert], records: Mapping[str, TicketRecord],
             history: Mapping[str, SentRecord], context: MessageContext, now: datetime,
             digest_of: Callable[[AlertKind], Digest], save: Callable[[TicketRecord], None]) -> TicketOutcome:
        """Open, note and close the tickets of this run's alerts (see the module doc). ``save``
        records a ticket in Table Storage; its failure propagates."""
        outcome = TicketOutcome()
        groups = groups_of(alerts, ticket_kinds(self.channel), data.tenant_name)
        current = {group.key for group in groups}
        for group in groups:
            try:
                self._keep_open(group, records.get(group.key), history, context, now, digest_of, save, outcome)
            except PSA_FAILURES as exc:
                log.warning("psa tickets: %s of %s: %s", KINDS[group.kind].label, group.tenant_name or "the run", exc)
                outcome.errors.append(f"{summary_of(group)}: {exc}")
        for key, record in sorted(records.items()):
            if key in current or not assessed(data, record.kind, record.tenant_id) or record.status == "closed":
                continue
            try:
                if record.status == "opening":
                    record = self._settle(record, save)
                if not record.open:
                    # an acknowledged problem cleared (its return opens a ticket), or an intent whose
                    # create never happened
                    save(record.closed(now))
                    continue
                self._close(record, context, now, save)
                outcome.closed += 1
            except PSA_FAILURES as exc:
                log.warning("psa tickets: closing ticket %s: %s", record.ticket_id, exc)
                outcome.errors.append(f"closing ticket {record.ticket_id} ({record.kind}): {exc}")
        return outcome

    def _keep_open(self, group: TicketGroup, record: TicketRecord | None, history: Mapping[str, SentRecord],
                   context: MessageContext, now: datetime, digest_of: Callable[[AlertKind], Digest],
                   save: Callable[[TicketRecord], None], outcome: TicketOutcome) -> None:
        spec = self.spec
        digest = group_digest(group)
        if record is not None and record.status == "opening":
            record = self._settle(record, save)
        if record is not None and record.open:
            ticket = self.psa.get_ticket(spec, record.ticket_id)
            if ticket is not None and not ticket.closed:
                due = select_due(group.alerts, history, digest_of=digest_of, now=now, run_id=context.run_id,
                                 zone=context.zone).due
                if not due:
                    outcome.unchanged += 1
                    return
                self.psa.note_ticket(spec, ticket, "Still open.\n\n" + details_of(group, context))
                if digest != record.digest:
                    save(replace(record, digest=digest))
                outcome.noted += 1
                outcome.told.extend(group.alerts)
                return
            # closed (or removed) in the PSA by a person while the alert stays: acknowledged
            record = replace(record, status="acknowledged", closed_at=now, digest=record.digest or digest)
            save(record)
        if record is not None and record.status == "acknowledged" and record.digest == digest:
            outcome.acknowledged += 1  # the same problem a person closed the ticket of: not reopened
            return
        company = self.company_of(group)
        if company is None:
            raise ValueError(f"tenant {group.tenant_name or group.tenant_id} has no company on PSA connection "
                             f"'{self.channel.psa}': give notifications.psaTickets.companyId for its tickets")
        mark = marker(self.channel_id, group.key)
        found = self.psa.find_ticket(spec, mark)  # opened by a run that did not record it
        opened = found is None
        if found is None:
            # the intent, before the PSA call: a run that dies before recording the ticket leaves it
            save(TicketRecord(key=group.key, kind=group.kind, tenant_id=group.tenant_id,
                              ticket_id=record.ticket_id if record is not None else "", company_id=company,
                              marker=mark, status="opening", opened_at=now, opened_in_run=context.run_id,
                              digest=digest))
            found = self.psa.open_ticket(spec, company, summary_of(group), details_of(group, context), mark)
        save(TicketRecord(key=group.key, kind=group.kind, tenant_id=group.tenant_id, ticket_id=found.ticket_id,
                          company_id=found.company_id or company, marker=mark, status="open", opened_at=now,
                          opened_in_run=context.run_id, digest=digest))
        if opened:
            outcome.opened += 1
        else:
            self.psa.note_ticket(spec, found, "Still open.\n\n" + details_of(group, context))
            outcome.found += 1
        outcome.told.extend(group.alerts)

    def _settle(self, intent: TicketRecord, save: Callable[[TicketRecord], None]) -> TicketRecord:
        """An intent an earlier run left (it may have opened the ticket and died before recording
        it): the newest ticket with the group's marker, closed ones included, newer than the
        group's previous ticket, is the one it opened: recorded open, or acknowledged when a person
        has closed it since. The intent as it was when the PSA has none (the create did not happen)."""
        found = self.psa.find_ticket(self.spec, intent.marker, closed=True)
        previous = int(intent.ticket_id) if intent.ticket_id.isdigit() else None
        if found is None or (previous is not None and found.ticket_id.isdigit() and int(found.ticket_id) <= previous):
            return intent
        settled = replace(intent, ticket_id=found.ticket_id, company_id=found.company_id or intent.company_id,
                          status="acknowledged" if found.closed else "open",
                          closed_at=intent.opened_at if found.closed else None)
        save(settled)
        return settled

    def _close(self, record: TicketRecord, context: MessageContext, now: datetime,
               save: Callable[[TicketRecord], None]) -> None:
        spec = self.spec
        ticket = self.psa.get_ticket(spec, record.ticket_id)
        if ticket is not None and not ticket.closed:
            label = KINDS[record.kind].label if record.kind in KINDS else record.kind
            self.psa.close_ticket(spec, ticket, f"Cleared: run {context.run_id} no longer finds this ({label}).")
        save(record.closed(now))


def _text(value: int | None) -> str | None:
    return None if value is None else str(value)


__all__ = ["TICKET_STATUSES", "TicketChannel", "TicketGroup", "TicketOutcome", "TicketRecord", "assessed",
           "details_of", "group_digest", "group_key", "groups_of", "marker", "summary_of", "ticket_kinds"]
