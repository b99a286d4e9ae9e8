"""Notify the MSP about a finished run: gather what the run stored, build the alerts, pick what
each channel has not been told yet (digests), send, and record what was sent or why not.

A channel that cannot deliver never fails the run: its failure is recorded with the reason,
the other channels still get their message, and the alerts stay due for the next run. Only a
failure of Table Storage itself propagates.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from shared.adapters.alert_spool import AlertSpool
from shared.adapters.margin_store import MarginRepository
from shared.adapters.notification_store import PRUNE_AFTER, DeliveryRecord, DeliveryStatus, NotificationRepository
from shared.adapters.run_store import RunRepository
from shared.adapters.snapshot_store import SnapshotRepository
from shared.adapters.tables import StoreError, is_transient
from shared.config.notifications import AlertKind, NotificationSettings, PsaTicketChannel
from shared.config.schema import SeatSyncConfig
from shared.contracts import RunSummary, StartedRun
from shared.domain.model import TenantSnapshot
from shared.domain.reconciliation import renewal_order, renewals
from shared.errors import ConfigError, SeatSyncError
from shared.notifications.alerts import (
    ALERTED_CHANGES,
    DEFAULT_AUTHORITY,
    KIND_ORDER,
    Alert,
    AlertTally,
    BuiltAlerts,
    Links,
    RunData,
    TenantRow,
    build_alerts,
    count_by_kind,
    for_alerts,
    iter_alerts,
    sort_key,
)
from shared.notifications.digest import SentRecord, is_due, join_history
from shared.notifications.ports import DeliveryError, Notifier
from shared.notifications.render import (
    AlertMessage,
    MessageBuilder,
    MessageContext,
    RenderedEmail,
    group_alerts,
    render_card,
    render_email,
)
from shared.notifications.tickets import TicketChannel, ticket_kinds
from shared.ports import SecretReader, TicketPort
from shared.services.reconcile import line_changes, line_order, reconcile_tenant
from shared.telemetry import ContextThreadPool

if TYPE_CHECKING:
    from shared.adapters.http import RetryingHttp
    from shared.bootstrap import Services

log = logging.getLogger(__name__)
T = TypeVar("T")


class NotifyError(SeatSyncError):
    """The run cannot be notified about (unknown, or not finished)."""


@dataclass(frozen=True)
class ChannelResult:
    channel: str
    status: DeliveryStatus
    sent: int = 0
    suppressed: int = 0
    attempts: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "status": self.status, "sent": self.sent,
                "suppressed": self.suppressed, "attempts": self.attempts, "error": self.error}


@dataclass(frozen=True)
class NotifyResult:
    run_id: str
    alerts: int
    excluded: int
    channels: tuple[ChannelResult, ...] = ()

    @property
    def sent(self) -> int:
        """Alerts delivered, summed over channels."""
        return sum(c.sent for c in self.channels)

    @property
    def suppressed(self) -> int:
        return sum(c.suppressed for c in self.channels)

    @property
    def failed(self) -> int:
        """Channels whose delivery failed."""
        return sum(1 for c in self.channels if c.status == "failed")

    def to_json(self) -> dict[str, Any]:
        return {"runId": self.run_id, "alerts": self.alerts, "excluded": self.excluded, "sent": self.sent,
                "suppressed": self.suppressed, "failed": self.failed,
                "channels": [c.to_json() for c in self.channels]}


@dataclass
class NotifyServices:
    """What ``notify_run`` needs; ``from_services`` builds it from the app's ``Services``."""

    runs: RunRepository
    snapshots: SnapshotRepository
    notifications: NotificationRepository
    config: Callable[[], SeatSyncConfig]
    notifiers: Callable[[NotificationSettings], Sequence[Notifier]]
    links: Callable[[NotificationSettings], Links]
    clock: Callable[[], datetime]
    spool: Callable[[str], AlertSpool]
    """Where a run's alerts are kept while they are sent (``shared.adapters.alert_spool``)."""
    max_workers: int = 8
    margins: MarginRepository | None = None
    ticket_psa: Callable[[str], object] | None = None
    """The client of a PSA connection, by name, for the PSA ticket channel."""
    config_version: Callable[[], str | None] = lambda: None
    """The id of the configuration version ``config`` answers, naming the run's stored preview."""
    started: Callable[[str], StartedRun | None] | None = None
    """What a run set out to do, as the process keeps it (``Services.started``); read from the
    run when not given."""

    @classmethod
    def from_services(cls, services: Services, *, teams_http: RetryingHttp | None = None,
                      sleep: Callable[[float], None] = time.sleep) -> NotifyServices:
        from shared.adapters.teams import TeamsWebhookClient
        from shared.notifications.channels import build_notifiers

        teams_client = TeamsWebhookClient(teams_http, verify=services.settings.tls_verify)

        def notifiers(settings: NotificationSettings) -> Sequence[Notifier]:
            return build_notifiers(settings, secrets=services.secrets, mail=services.graph,
                                   teams_client=teams_client, sleep=sleep)

        return cls(runs=services.runs, snapshots=services.snapshots,
                   notifications=NotificationRepository(services.store), config=services.activity_config,
                   notifiers=notifiers, links=lambda s: links_for(services, s), clock=services.clock,
                   spool=lambda run_id: AlertSpool(services.store, run_id),
                   margins=services.margins, ticket_psa=lambda name: services.psa_clients(services.config())(name),
                   config_version=lambda: version.version_id if (version := services.config_repository.current()[1])
                   else None, started=services.started)


def links_for(services: Services, settings: NotificationSettings) -> Links:
    graph = services.settings.graph
    return Links(base_url=settings.link_base_url or services.settings.public_url,
                 graph_client_id=graph.client_id if graph else None,
                 authority_host=graph.authority_host if graph else DEFAULT_AUTHORITY,
                 partner_clients=partner_client_ids(services.config(), services.secrets))


def partner_client_ids(config: SeatSyncConfig, secrets: SecretReader) -> dict[str, str]:
    """The app id of each further partner account, for its tenants' consent links (an id that
    cannot be read leaves those links out; the tenants' alerts still say what to do)."""
    found: dict[str, str] = {}
    for account in config.partner_accounts:
        try:
            found[account.name] = (account.client_id if isinstance(account.client_id, str)
                                   else secrets.get(account.client_id.reference).strip().lower())
        except SeatSyncError as exc:
            log.warning("notify: the app id of partner account %s cannot be read (%s)", account.name, exc)
    return found


# --------------------------------------------------------------------------- the run's data


PART_TENANTS = 50
"""How many tenants' licences, snapshots and money a notification holds at once."""


def gather_run_level(runs: RunRepository, config: SeatSyncConfig, run_id: str,
                     summary: RunSummary | None = None, started: StartedRun | None = None) -> RunData:
    """What the whole run says: its summary, what it set out to do (``started``, when the caller
    holds it already), each tenant's outcome and the changes alerts are made from (failed,
    recovered, held, deferred), read a page at a time. The tenants' licences, snapshots and
    money come in parts (``iter_run_parts``)."""
    summary = summary or runs.summary(run_id)
    if summary is None:
        if runs.request(run_id) is None:
            raise NotifyError(f"no run {run_id}")
        raise NotifyError(f"run {run_id} has not finished")
    started = started or runs.started(run_id)
    names: dict[str, str] | None = None  # the names the run set out with, mapped only if a row has none

    def started_names() -> dict[str, str]:
        """The names the run set out with, read from its tenants' rows the first time asked."""
        nonlocal names
        if names is None:
            names = ({t.tenant_id: t.name for t in runs.iter_started_tenants(started)}
                     if started is not None else {})
        return names

    def name_of(tenant_id: str) -> str:
        """The name the run set out with, else the configuration's (read for this tenant only)."""
        known = started_names()
        if tenant_id in known:
            return known[tenant_id]
        configured = config.tenant(tenant_id)
        return configured.name if configured is not None else tenant_id

    tenants = []
    for row in runs.iter_tenant_rows(run_id):
        outcome = row["outcome"]
        tenant_id = str(row["tenantId"])
        name = outcome.name if outcome is not None and outcome.name else name_of(tenant_id)
        tenants.append(TenantRow(tenant_id, name, outcome, row["pushError"], tuple(row["problems"])))
    tenants.sort(key=lambda t: t.name.lower())
    changes = tuple((change, error) for change, error in runs.iter_changes(run_id) if change.status in ALERTED_CHANGES)
    return RunData(run_id=run_id, summary=summary, started=started, started_names=started_names,
                   tenants=tuple(tenants), changes=changes)


class _Cursor(Generic[T]):
    """A per-tenant iterator in the store's order (by tenant id), taken a part at a time."""

    def __init__(self, items: Iterator[tuple[str, T]]) -> None:
        self._items = items
        self._next: tuple[str, T] | None = next(items, None)

    def upto(self, last: str | None) -> list[tuple[str, T]]:
        """The items up to tenant ``last``, or all that are left when ``last`` is None."""
        taken = []
        while self._next is not None and (last is None or self._next[0] <= last):
            taken.append(self._next)
            self._next = next(self._items, None)
        return taken


def iter_run_parts(runs: RunRepository, snapshots: SnapshotRepository, config: SeatSyncConfig, run: RunData, *,
                   with_snapshots: bool = True, max_workers: int = 8, margins: MarginRepository | None = None,
                   size: int = PART_TENANTS) -> Iterator[RunData]:
    """The run's tenants, ``size`` at a time in the order of their ids, each part with what the
    tenant alerts (``TENANT_PART_KINDS``) are made from: their reconciliation rows and unlinked
    licences, the licences first seen in this run, their snapshots (slimmed, ``for_alerts``) and
    their money (licences reconciled, renewals with unused seats). The run's reconciliation and
    money documents are read a tenant at a time, in step with the parts, so one part is held."""
    run_id = run.run_id
    rows = {t.tenant_id: t for t in run.tenants}
    ids = sorted(rows)
    lines = _Cursor(((tenant, (found, unlinked)) for tenant, found, unlinked in runs.iter_reconciliation(run_id)))
    request = runs.request(run_id) if margins is not None else None
    money = _Cursor(margins.iter_facts(run_id)) if margins is not None and request is not None else None
    changes = line_changes(runs, run_id) if money is not None else {}
    currency = config.notifications.currency.upper()
    days = config.notifications.alerts.renewal_unused.days_before

    def snapshot(tenant_id: str) -> TenantSnapshot | None:
        try:
            read = snapshots.get(tenant_id, run_id)
            return for_alerts(read) if read is not None else None
        except StoreError as exc:
            log.warning("notify: the snapshot of tenant %s in run %s cannot be read (%s); its licence "
                        "alerts are left out", tenant_id, run_id, exc)
            return None

    def is_new(item: tuple[str, str]) -> bool:
        tenant_id, sku_id = item
        first = next(iter(snapshots.licence_history(tenant_id, sku_id)), None)
        return first is None or first.run_id >= run_id

    with ContextThreadPool(max_workers=max(1, max_workers), thread_name_prefix="notify") as pool:
        for start in range(0, max(len(ids), 1), size):
            chunk = ids[start:start + size]
            last = chunk[-1] if start + size < len(ids) else None  # the last part takes what is left
            reconciled = lines.upto(last)
            facts = money.upto(last) if money is not None else []
            collected = [t for t in chunk if (row := rows[t]).outcome is not None and row.outcome.status == "ok"]
            read = list(pool.map(snapshot, collected)) if with_snapshots else []
            # keyed by the rows' ids: the alerts keep their tenant's id, and then keep that one string
            kept = {t: s for t, s in zip(collected, read, strict=False) if s is not None}  # read: none or all
            unread = tuple(t for t, s in zip(collected, read, strict=False) if s is None)
            unlinked = [u for _tenant, (_found, tenant_unlinked) in reconciled for u in tenant_unlinked]
            pairs = sorted({(u.tenant_id, u.sku_id) for u in unlinked})
            new_skus: dict[str, set[str]] = {}
            for (tenant_id, sku_id), new in zip(pairs, pool.map(is_new, pairs), strict=True):
                if new:
                    new_skus.setdefault(tenant_id, set()).add(sku_id)
            licences = [line for _tenant, tenant_facts in facts
                        for line in reconcile_tenant(tenant_facts, changes, currency)]
            held = dict.fromkeys([*chunk, *(t for t, _ in reconciled), *(t for t, _ in facts)])
            yield RunData(
                run_id=run_id, summary=run.summary, tenants=tuple(rows[t] for t in held if t in rows),
                reconciliation=tuple(r for _tenant, (found, _unlinked) in reconciled for r in found),
                unlinked=tuple(unlinked), snapshots=kept,
                new_skus={t: frozenset(s) for t, s in new_skus.items()}, licences=tuple(licences),
                renewals=tuple(renewals(licences, request.requested_at.date(), days)) if request else (),
                unread_snapshots=unread,
            )


def gather_run_data(runs: RunRepository, snapshots: SnapshotRepository, config: SeatSyncConfig, run_id: str,
                    summary: RunSummary | None = None, *, with_snapshots: bool = True,
                    max_workers: int = 8, margins: MarginRepository | None = None) -> RunData:
    """What the run stored, in the form alerts are built from, all of it at once: for a run's
    preview on demand and the command line. Notifying a run takes it in parts instead."""
    run = gather_run_level(runs, config, run_id, summary)
    parts = list(iter_run_parts(runs, snapshots, config, run, with_snapshots=with_snapshots,
                                max_workers=max_workers, margins=margins))
    return replace(
        run, reconciliation=tuple(r for p in parts for r in p.reconciliation),
        unlinked=tuple(u for p in parts for u in p.unlinked),
        snapshots={t: s for p in parts for t, s in p.snapshots.items()},
        new_skus={t: s for p in parts for t, s in p.new_skus.items()},
        licences=tuple(sorted((line for p in parts for line in p.licences), key=line_order)),
        renewals=tuple(sorted((r for p in parts for r in p.renewals), key=renewal_order)),
        unread_snapshots=tuple(t for p in parts for t in p.unread_snapshots),
    )


def message_context(data: RunData, settings: NotificationSettings, links: Links, now: datetime,
                    banner: str | None = None) -> MessageContext:
    return MessageContext(run_id=data.run_id, status=data.summary.status, dry_run=data.summary.dry_run,
                          generated_at=now, zone=settings.zone, report_url=links.run_report(data.run_id),
                          banner=banner)


# --------------------------------------------------------------------------- notify


def _log_summary(summary: RunSummary) -> None:
    level = logging.INFO if summary.status == "succeeded" else logging.WARNING
    log.log(level, "SeatSync run %s %s: %d/%d tenants synced, %d changes applied, %d failed, "
            "%d planned (dry run), %d problems", summary.run_id, summary.status, summary.tenants_ok,
            summary.tenants_total, summary.changes_applied, summary.changes_failed,
            summary.changes_dry_run, summary.problems)


def sent_history(channel: str, dry_run: bool) -> str:
    """Where a channel's deliveries are remembered for digests. A dry run's are kept apart: what a
    dry run sent never stands for the day's (week's, month's) message of the real runs, so a real
    run later the same day still sends its alerts; dry runs have their own digest."""
    return f"{channel}~dry-run" if dry_run else channel


def message_items(settings: NotificationSettings) -> int:
    """How many alerts of a kind a message is made with: as many as the longest list shows."""
    return max(settings.card_items, settings.email_items)


def _deliver(services: NotifyServices, notifier: Notifier, spool: AlertSpool, settings: NotificationSettings,
             context: MessageContext, now: datetime) -> ChannelResult:
    """Decide what is due on one channel, send it and record it, reading the run's alerts from
    ``spool`` and the channel's history in the same order (``join_history``): the message holds
    each kind's count and first items, the decision one flag per alert."""
    channel = notifier.channel_id
    remembered = sent_history(channel, context.dry_run)
    store = services.notifications
    stale_before = now - PRUNE_AFTER
    stale: list[str] = []

    def history() -> Iterator[tuple[str, SentRecord]]:
        for row, record in store.iter_sent(remembered):
            if record.sent_at < stale_before:
                stale.append(row)
            yield row, record

    builder = MessageBuilder(message_items(settings))
    flags = bytearray()  # due or not, for each alert the channel accepts, in the spool's order
    fingerprints: list[str] = []
    kinds: dict[AlertKind, int] = {}
    wanted = ((row, alert) for row, alert in spool.read() if notifier.accepts(alert.kind))
    for alert, last in join_history(wanted, history()):
        due = is_due(alert, last, digest=settings.alerts.digest(alert.kind), now=now, run_id=context.run_id,
                     zone=settings.zone)
        flags.append(due)
        if due:
            builder.add(alert)
            fingerprints.append(alert.fingerprint)
            kinds[alert.kind] = kinds.get(alert.kind, 0) + 1
    store.prune_rows(remembered, stale)
    suppressed = len(flags) - len(fingerprints)
    record = DeliveryRecord(run_id=context.run_id, channel=channel, channel_type=notifier.channel_type,
                            status="nothing-due", at=now, suppressed=suppressed)
    if not fingerprints:
        store.record_delivery(record)
        return ChannelResult(channel, "nothing-due", suppressed=suppressed)
    kinds = dict(sorted(kinds.items(), key=lambda item: KIND_ORDER[item[0]]))  # in display order, as the message
    fields: dict[str, Any] = {"alerts": len(fingerprints), "kinds": kinds, "fingerprints": tuple(fingerprints)}
    try:
        delivered = notifier.send(builder.message(), context)
    except DeliveryError as exc:
        log.warning("notify: %s could not be delivered after %d attempts: %s", channel, exc.attempts, exc.reason)
        failed = replace(record, **fields, status="failed", attempts=exc.attempts, error=exc.reason)
        store.record_delivery(failed)
        return ChannelResult(channel, "failed", suppressed=suppressed, attempts=exc.attempts, error=exc.reason)
    except Exception as exc:  # a defect in one channel must not cost the others their message
        log.exception("notify: %s failed unexpectedly", channel)
        reason = f"{type(exc).__name__}: {exc}"
        failed = replace(record, **fields, status="failed", error=reason)
        store.record_delivery(failed)
        return ChannelResult(channel, "failed", suppressed=suppressed, error=reason)

    def told() -> Iterator[Alert]:
        decided = iter(flags)
        last = None  # one record per alert key: a transaction may not write a row twice
        for row, alert in spool.read():
            if notifier.accepts(alert.kind) and next(decided) and row != last:
                last = row
                yield alert

    store.record_sent(remembered, context.run_id, told(), now)
    store.record_delivery(replace(record, **fields, status="sent", attempts=delivered.attempts, size=delivered.size))
    return ChannelResult(channel, "sent", sent=len(fingerprints), suppressed=suppressed, attempts=delivered.attempts)


def _sync_tickets(services: NotifyServices, config: SeatSyncConfig, channel: PsaTicketChannel, data: RunData,
                  spool: AlertSpool, context: MessageContext, now: datetime) -> ChannelResult:
    """The PSA ticket channel (``shared.notifications.tickets``); a dry run writes no ticket. It
    holds the run's alerts of the kinds it opens tickets for (one ticket per kind and tenant)."""
    channel_id = channel.channel_id
    record = DeliveryRecord(run_id=context.run_id, channel=channel_id, channel_type="psa-tickets",
                            status="nothing-due", at=now)
    if context.dry_run:
        log.info("notify: %s: a dry run opens, updates and closes no ticket", channel_id)
        services.notifications.record_delivery(record)
        return ChannelResult(channel_id, "nothing-due")
    try:
        if services.ticket_psa is None:
            raise NotifyError("no PSA client is available to the notifications")
        psa = services.ticket_psa(channel.psa)
        if not isinstance(psa, TicketPort):
            raise NotifyError(f"PSA connection '{channel.psa}' cannot hold tickets")
    except SeatSyncError as exc:
        reason = f"PSA connection '{channel.psa}': {exc}"
        log.warning("notify: %s: %s", channel_id, reason)
        services.notifications.record_delivery(replace(record, status="failed", error=reason))
        return ChannelResult(channel_id, "failed", error=reason)
    store = services.notifications
    history = store.sent(channel_id)
    store.prune(channel_id, history, now)
    kinds = ticket_kinds(channel)
    alerts = sorted((alert for _row, alert in spool.read() if alert.kind in kinds), key=sort_key)
    outcome = TicketChannel(channel, psa, config).sync(
        data, alerts, store.tickets(channel_id), history, context, now,
        config.notifications.alerts.digest, lambda ticket: store.record_ticket(channel_id, ticket))
    if outcome.told:
        services.notifications.record_sent(channel_id, context.run_id, outcome.told, now)
    status: DeliveryStatus = "failed" if outcome.errors else "sent" if outcome.written else "nothing-due"
    error = "; ".join(outcome.errors) or None
    services.notifications.record_delivery(replace(
        record, status=status, attempts=outcome.written, alerts=len(outcome.told),
        suppressed=outcome.unchanged + outcome.acknowledged,
        kinds=count_by_kind(outcome.told), fingerprints=tuple(a.fingerprint for a in outcome.told), error=error))
    log.info("notify: %s: %d tickets opened, %d found again by their marker, %d noted, %d closed, %d unchanged, "
             "%d closed by a person and left closed%s", channel_id, outcome.opened, outcome.found, outcome.noted,
             outcome.closed, outcome.unchanged, outcome.acknowledged, f"; failed: {error}" if error else "")
    return ChannelResult(channel_id, status, sent=len(outcome.told),
                         suppressed=outcome.unchanged + outcome.acknowledged, attempts=outcome.written, error=error)


def notify_run(services: NotifyServices, run_id: str, summary: RunSummary | None = None) -> NotifyResult:
    """Send what a finished run has to say to every configured channel (see the module doc)."""
    config = services.config()
    settings = config.notifications
    if summary is not None:
        _log_summary(summary)
    notifiers = list(services.notifiers(settings))
    tickets = settings.psa_tickets if settings.tickets_enabled else None
    data = gather_run_level(services.runs, config, run_id, summary,
                            services.started(run_id) if services.started is not None else None)
    parts = iter_run_parts(services.runs, services.snapshots, config, data,
                           with_snapshots=(settings.alerts.enabled("unused-licences")
                                           or settings.alerts.enabled("shared-mailbox-licensed")
                                           or settings.alerts.enabled("inactive-users")),
                           max_workers=services.max_workers, margins=services.margins)
    links = services.links(settings)
    now = services.clock()
    tally = AlertTally()
    alerts = iter_alerts(data, settings, links, config, parts, tally)  # a few tenants held at a time
    preview = MessageBuilder(message_items(settings))  # every alert, digests not applied
    if not notifiers and tickets is None:
        for alert in alerts:
            preview.add(alert)
        keep_preview(services, data, preview.message(), config, links, now)  # the Notifications page's
        return NotifyResult(run_id, alerts=0, excluded=0)
    spool = services.spool(run_id)
    spool.discard_abandoned(now)  # what a notification whose process died left behind
    try:
        spool.write(_seen(alerts, preview.add))
        keep_preview(services, data, preview.message(), config, links, now)
        context = message_context(data, settings, links, now)
        results = tuple(_deliver(services, n, spool, settings, context, now) for n in notifiers)
        if tickets is not None:
            results += (_sync_tickets(services, config, tickets, data, spool, context, now),)
    finally:
        spool.discard()
    result = NotifyResult(run_id, alerts=tally.alerts, excluded=tally.excluded, channels=results)
    log.info("notify: run %s: %d alerts (%d excluded); %s", run_id, result.alerts, result.excluded,
             ", ".join(f"{c.channel} {c.status} ({c.sent} sent, {c.suppressed} already sent)" for c in results))
    return result


def _seen(items: Iterator[T], see: Callable[[T], None]) -> Iterator[T]:
    for item in items:
        see(item)
        yield item


# --------------------------------------------------------------------------- preview and test


@dataclass(frozen=True)
class Preview:
    alerts: BuiltAlerts
    card: dict[str, Any]
    email: RenderedEmail


def preview_name(version_id: str | None) -> str:
    """The name of a run's stored preview for one configuration version."""
    return f"preview-{version_id or 'default'}"


def preview_document(data: RunData, config: SeatSyncConfig, links: Links, now: datetime,
                     banner: str | None = None, message: AlertMessage | None = None) -> dict[str, Any]:
    """What the Notifications page shows of a run: its card (the Adaptive Card's content, as
    JSON text), the email's subject and HTML, and how many alerts. ``message``: the run's alerts
    when already made (from ``data`` and its parts, ``MessageBuilder``)."""
    settings = config.notifications
    if message is None:
        message = group_alerts(build_alerts(data, settings, links, config).alerts)
    card, email = _render(message, settings, message_context(data, settings, links, now, banner))
    content = card["attachments"][0]["content"] if card.get("attachments") else card
    return {"card": json.dumps(content, indent=2, ensure_ascii=False), "subject": email.subject,
            "html": email.html, "alerts": message.alerts}


def _render(alerts: Sequence[Alert] | AlertMessage, settings: NotificationSettings,
            context: MessageContext) -> tuple[dict[str, Any], RenderedEmail]:
    card = render_card(alerts, context, max_items=settings.card_items)
    subject_prefix = settings.email.subject_prefix if settings.email else "SeatSync"
    return card, render_email(alerts, context, max_items=settings.email_items, subject_prefix=subject_prefix)


def keep_preview(services: NotifyServices, data: RunData, message: AlertMessage, config: SeatSyncConfig,
                 links: Links, now: datetime) -> None:
    """Store the run's preview as notifying it has the run's data at hand: the Notifications page
    then reads one document instead of every tenant's snapshot. Only a view of what is sent, so a
    store that refuses it is logged and the notifications still go out."""
    name = preview_name(services.config_version())
    try:
        services.runs.record_derived(data.run_id, name, preview_document(data, config, links, now, message=message))
    except Exception as exc:
        if not (isinstance(exc, StoreError) or is_transient(exc)):
            raise
        log.warning("notify: the preview of run %s was not stored (%s); the Notifications page renders it when "
                    "first shown", data.run_id, exc)


def render_preview(data: RunData, settings: NotificationSettings, links: Links, now: datetime,
                   config: SeatSyncConfig | None = None, banner: str | None = None) -> Preview:
    """The card and the email with every alert of the run (digests are not applied)."""
    built = build_alerts(data, settings, links, config)
    card, email = _render(built.alerts, settings, message_context(data, settings, links, now, banner))
    return Preview(built, card, email)


def send_test(services: NotifyServices, data: RunData, banner: str = "Test message from SeatSync: "
              "sample data, no action needed") -> list[ChannelResult]:
    """Send ``data``'s alerts to every configured channel now, ignoring digests and recording
    nothing as sent (the deliveries are recorded, marked as tests)."""
    config = services.config()
    settings = config.notifications
    notifiers = list(services.notifiers(settings))
    if not notifiers:
        raise ConfigError("no notification channel is configured: add notifications.teams or notifications.email "
                          "(docs/notifications.md; a test opens no PSA ticket)", source="notifications")
    links = services.links(settings)
    built = build_alerts(data, settings, links, config)
    now = services.clock()
    context = message_context(data, settings, links, now, banner)
    results = []
    for notifier in notifiers:
        alerts = [a for a in built.alerts if notifier.accepts(a.kind)]
        record = DeliveryRecord(run_id=data.run_id, channel=notifier.channel_id, channel_type=notifier.channel_type,
                                status="sent", at=now, alerts=len(alerts), kinds=count_by_kind(alerts), test=True)
        try:
            delivered = notifier.send(alerts, context)
        except DeliveryError as exc:
            services.notifications.record_delivery(
                replace(record, status="failed", attempts=exc.attempts, error=exc.reason))
            results.append(ChannelResult(notifier.channel_id, "failed", attempts=exc.attempts, error=exc.reason))
            continue
        services.notifications.record_delivery(replace(record, attempts=delivered.attempts, size=delivered.size))
        results.append(ChannelResult(notifier.channel_id, "sent", sent=len(alerts), attempts=delivered.attempts))
    return results
