"""Starting and finishing a run: which tenants it reads, through which partner account, and
which of them are guarded."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from functools import partial

import requests

from shared import checkpoints
from shared.adapters.decision_store import DecisionRepository
from shared.adapters.run_store import RunRepository
from shared.adapters.tables import StoreRetry
from shared.config.notifications import AlertKind
from shared.config.schema import SeatSyncConfig, TenantConfig
from shared.contracts import (
    ChunkRequest,
    EndingRelationshipNote,
    FanOut,
    RunSummary,
    StartedRun,
    SyncRequest,
    TenantWork,
)
from shared.domain.lifecycle import PartnerListing, ending_soon, tenant_access
from shared.errors import GraphError, SeatSyncError
from shared.ports import GraphPort
from shared.services.lease import ProcessRef, acquire

log = logging.getLogger(__name__)


GraphFor = Callable[[str], GraphPort]
"""The Graph client of a partner account, by name (``default``: the app settings' account)."""


def work_for(config: SeatSyncConfig, tenant: TenantConfig, *, partner: str | None = None,
             standing: str | None = None, guard: str | None = None) -> TenantWork:
    """What must be read from a tenant: only the groups, reports and devices its custom licences
    (and the shared-mailbox alert) use, and the users' sign-ins only for the inactive-users alert,
    so tenants that need less cost fewer Graph calls. Its access (partner account, standing and
    guard) is given here rather than by a copy with changes, which would keep a set of given
    fields of its own (about 700 bytes) for each of a run's tenants."""
    groups: dict[str, None] = {}
    notifications = config.notifications

    def alert_wanted(kind: AlertKind) -> bool:
        return (notifications.has_channels and notifications.alerts.enabled(kind)
                and not notifications.excluded(kind, tenant.tenant_id))

    mailboxes = alert_wanted("shared-mailbox-licensed")
    devices = False
    for company in tenant.companies:
        for licence in company.licences:
            definition = config.custom_licence(tenant, licence.custom) if licence.custom else None
            if definition is None:
                continue
            if definition.kind == "group-members" and definition.group_id:
                groups[definition.group_id] = None
            mailboxes = mailboxes or definition.kind == "mailboxes"
            devices = devices or definition.kind == "intune-devices"
    return TenantWork(tenant_id=tenant.tenant_id, name=tenant.name, group_ids=tuple(groups), mailboxes=bool(mailboxes),
                      managed_devices=devices, sign_ins=alert_wanted("inactive-users"), partner=partner,
                      standing=standing, guard=guard)


def read_listings(config: SeatSyncConfig, graph_for: GraphFor) -> tuple[dict[str, PartnerListing], int]:
    """Every partner account's GDAP customers and relationships (or why they could not be read),
    and the Graph requests that took."""
    listings: dict[str, PartnerListing] = {}
    calls = 0
    for name in config.partner_names():
        try:
            graph = graph_for(name)
        except SeatSyncError as exc:  # its secret cannot be read, say
            listings[name] = PartnerListing(name, {}, error=str(exc))
            continue
        before = graph.calls
        try:
            customers = graph.list_customer_tenants()
            relationships = graph.list_gdap_relationships()
        except (GraphError, requests.RequestException) as exc:
            log.warning("partner account %s: GDAP customers could not be listed: %s", name, exc)
            listings[name] = PartnerListing(name, {}, error=str(exc))
        else:
            # one string per customer id, shared with its relationships' (GraphClient interns both)
            listings[name] = PartnerListing(name, {sys.intern(c.tenant_id.lower()): c.display_name for c in customers},
                                            tuple(relationships))
        calls += graph.calls - before
    return listings, calls


def gdap_error_of(listings: Mapping[str, PartnerListing]) -> str | None:
    """What the run reports when a partner account's customers could not be listed."""
    failed = [(name, listing.error) for name, listing in listings.items() if listing.error is not None]
    if not failed:
        return None
    if len(listings) == 1:
        return failed[0][1]
    return "; ".join(f"partner account '{name}': {error}" for name, error in failed)


def start_run(config: SeatSyncConfig, graph_for: GraphFor, runs: RunRepository, decisions: DecisionRepository,
              request: SyncRequest, now: datetime, lease: timedelta, process: ProcessRef | None = None,
              *, listed: int | None = None) -> StartedRun:
    """Record the run, take the run lease and decide which tenants it collects, and through which
    partner account.

    The lease keeps runs one at a time (``shared.services.lease``); a run that finds it held by a
    dead run takes it over at once and says so (``tookOver``); ``process`` is the process of a
    command-line run, so that a later run on the same machine sees at once when it is gone.

    Configured, enabled tenants are synced (only the requested ones when the request names
    some). Every partner account's GDAP customers and relationships are read: each tenant is read
    through the first account whose relationship with it is usable, and a tenant none of them
    holds any more is guarded (its decreases wait for a person: shared.domain.lifecycle); customers
    not yet added and relationships that end soon are reported. A partner account whose listing
    cannot be read is reported but does not stop the configured tenants from syncing.

    Each tenant's work is written to the run's rows as it is made (``record_started_tenants``),
    never held for the whole run; the record, written after every row, holds their number and the
    guarded ones. The answer lists the tenants when there are at most ``listed`` (every one when
    ``listed`` is None: they are read back), else none.
    """
    checkpoints.reached("start-run")
    runs.start(request)
    taken = acquire(runs, decisions, request.run_id, lease, process)
    if taken.refused is not None:
        refused = StartedRun(run_id=request.run_id, tenants=[], refused=taken.refused)
        runs.record_started(refused)
        return refused
    listings, calls = read_listings(config, graph_for)
    accounts = config.partner_names()
    wanted = {t.lower() for t in request.tenants} if request.tenants else None
    rules = config.notifications.alerts
    days = rules.gdap_expiring.days_before
    first: list[TenantWork] = []
    guarded: list[TenantWork] = []
    vanished: list[TenantWork] = []
    ending: list[EndingRelationshipNote] = []

    def works() -> Iterator[TenantWork]:
        for tenant in config.tenants:
            access = tenant_access(tenant.tenant_id, access=tenant.access, pinned=tenant.partner, accounts=accounts,
                                   listings=listings, required_roles=config.gdap.required_roles, now=now)
            work = work_for(config, tenant, partner=access.partner, standing=access.standing, guard=access.guard)
            if access.standing == "vanished":
                vanished.append(work)
            if not tenant.enabled or (wanted is not None and tenant.tenant_id not in wanted):
                continue
            if listed is not None and len(first) < listed:
                first.append(work)  # listed in the answer if the run turns out that small
            if work.guard:
                guarded.append(work)
            soon = ending_soon(access, tenant.tenant_id, listings.get(access.partner), now, days)
            if soon is not None and soon.relationship.end is not None:
                ending.append(EndingRelationshipNote(
                    tenant_id=tenant.tenant_id, name=tenant.name, partner=soon.partner,
                    relationship=soon.relationship.display_name or soon.relationship.id,
                    end=soon.relationship.end, days_left=soon.days_left))
            yield work

    total = runs.record_started_tenants(request.run_id, works())
    not_configured: dict[str, TenantWork] = {}
    for name in accounts:
        listing = listings[name]
        for tenant_id, display_name in listing.customers.items():
            if tenant_id not in not_configured and not config.has_tenant(tenant_id):
                not_configured[tenant_id] = TenantWork(tenant_id=tenant_id, name=display_name, partner=name)
    started = StartedRun(
        run_id=request.run_id, tenants=[], tenants_total=total, tenants_stored=True, guarded_tenants=guarded,
        took_over=taken.took_over, gdap_not_configured=list(not_configured.values()),
        configured_not_in_gdap=vanished, gdap_error=gdap_error_of(listings), graph_calls=calls,
        relationships_ending=ending,
        partner_errors={name: listing.error for name, listing in listings.items() if listing.error is not None})
    runs.record_started(started)
    if listed is None:
        return started.model_copy(update={"tenants": list(runs.iter_started_tenants(started))})
    return started.model_copy(update={"tenants": first}) if total <= listed else started


def finish_run(runs: RunRepository, summary: RunSummary, sleep: Callable[[float], None] = time.sleep) -> None:
    """Store the run's summary and free the lease, riding out a storage outage (``StoreRetry``).
    A run whose start could not record it (storage unreachable then) is recorded here from its
    summary, so that it is listed, reported and alerted like any failed run."""
    checkpoints.reached("finish-run")
    retry = StoreRetry()
    if retry.call(f"the record of run {summary.run_id}", partial(runs.request, summary.run_id), sleep) is None:
        request = SyncRequest(run_id=summary.run_id, trigger=summary.trigger, requested_by=summary.requested_by,
                              requested_at=summary.started_at, dry_run=summary.dry_run)
        retry.call(f"the record of run {summary.run_id}", partial(runs.start, request), sleep)
    retry.call(f"the summary of run {summary.run_id}", partial(runs.finish, summary), sleep)
    retry.call(f"freeing the lease of run {summary.run_id}", partial(runs.release_lease, summary.run_id), sleep)


def fanned_out(started: StartedRun, fan: FanOut) -> StartedRun:
    """What the orchestrator is answered: a run of more tenants than a chunk holds answers their
    number and chunks (its tenants are in the run's rows, ``record_started_tenants``), so that the
    orchestration's history does not hold every tenant."""
    total = started.total
    if total <= fan.chunk_size and len(started.tenants) == total:
        return started.model_copy(update={"tenants_total": total, "fan_out": fan})
    return started.model_copy(update={"tenants": [], "tenants_total": total,
                                      "chunks": -(-total // fan.chunk_size), "fan_out": fan})


def chunk_of(runs: RunRepository, started: StartedRun, request: ChunkRequest) -> list[TenantWork]:
    """The tenants of one chunk of a run, in the run's order (read from the run's rows)."""
    size = request.chunk_size
    return list(runs.iter_started_tenants(started, request.chunk * size, (request.chunk + 1) * size))
