"""Starting and finishing a run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

import requests

from shared import checkpoints
from shared.adapters.decision_store import DecisionRepository
from shared.adapters.run_store import RunRepository
from shared.adapters.tables import StoreRetry
from shared.config.schema import SeatSyncConfig, TenantConfig
from shared.contracts import RunSummary, StartedRun, SyncRequest, TenantWork
from shared.errors import GraphError
from shared.ports import GraphPort
from shared.services.lease import ProcessRef, acquire

log = logging.getLogger(__name__)


def work_for(config: SeatSyncConfig, tenant: TenantConfig) -> TenantWork:
    """What must be read from a tenant: only the groups, reports and devices its custom licences
    (and the shared-mailbox alert) use, so tenants that need less cost fewer Graph calls."""
    groups: dict[str, None] = {}
    notifications = config.notifications
    mailboxes = (notifications.has_channels and notifications.alerts.enabled("shared-mailbox-licensed")
                 and not notifications.excluded("shared-mailbox-licensed", tenant.tenant_id))
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
    return TenantWork(tenant_id=tenant.tenant_id, name=tenant.name, group_ids=list(groups), mailboxes=bool(mailboxes),
                      managed_devices=devices)


def start_run(config: SeatSyncConfig, graph: GraphPort, runs: RunRepository, decisions: DecisionRepository,
              request: SyncRequest, now: datetime, lease: timedelta, process: ProcessRef | None = None
              ) -> StartedRun:
    """Record the run, take the run lease and decide which tenants it collects.

    The lease keeps runs one at a time (``shared.services.lease``); a run that finds it held by a
    dead run takes it over at once and says so (``tookOver``); ``process`` is the process of a
    command-line run, so that a later run on the same machine sees at once when it is gone.

    Configured, enabled tenants are synced (only the requested ones when the request names
    some). GDAP's customer list is compared with the configuration so that customers not yet
    added, and configured tenants GDAP no longer lists, can be reported; a failure to read it
    is reported but does not stop the configured tenants from syncing.
    """
    runs.start(request)
    taken = acquire(runs, decisions, request.run_id, lease, process)
    if taken.refused is not None:
        refused = StartedRun(run_id=request.run_id, tenants=[], refused=taken.refused)
        runs.record_started(refused)
        return refused
    wanted = {t.lower() for t in request.tenants} if request.tenants else None
    tenants = [work_for(config, t) for t in config.tenants if t.enabled and (wanted is None or t.tenant_id in wanted)]
    started = StartedRun(run_id=request.run_id, tenants=tenants, took_over=taken.took_over)
    calls_before = graph.calls
    try:
        customers = graph.list_customer_tenants()
    except (GraphError, requests.RequestException) as exc:
        log.warning("GDAP customers could not be listed: %s", exc)
        started.gdap_error = str(exc)
        started.graph_calls = graph.calls - calls_before
        runs.record_started(started)
        return started
    configured = {t.tenant_id for t in config.tenants}
    listed = {c.tenant_id.lower() for c in customers}
    started.gdap_not_configured = [
        TenantWork(tenant_id=c.tenant_id.lower(), name=c.display_name)
        for c in customers if c.tenant_id.lower() not in configured
    ]
    started.configured_not_in_gdap = [
        TenantWork(tenant_id=t.tenant_id, name=t.name) for t in config.tenants
        if t.tenant_id not in listed
    ]
    started.graph_calls = graph.calls - calls_before
    runs.record_started(started)
    return started


def finish_run(runs: RunRepository, summary: RunSummary, sleep: Callable[[float], None] = time.sleep) -> None:
    """Store the run's summary and free the lease, riding out a storage outage (``StoreRetry``)."""
    checkpoints.reached("finish-run")
    retry = StoreRetry()
    retry.call(f"the summary of run {summary.run_id}", partial(runs.finish, summary), sleep)
    retry.call(f"freeing the lease of run {summary.run_id}", partial(runs.release_lease, summary.run_id), sleep)
