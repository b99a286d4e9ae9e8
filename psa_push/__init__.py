"""The PSA push activities: settling the write intents earlier attempts left open, and planning
a batch of collected tenants against what their PSAs bill now and writing the changes (or
recording them only, on a dry run). Both renew the run's lease while they work; the push stops
writing if the run no longer holds it."""

from __future__ import annotations

from typing import Any

from durable_blueprint import Blueprint
from shared.functions import PUSH_CHANGES, RECONCILE_WRITES, SHARE_PSA_READS

# What the activities run is imported when they run, not when the app registers them.

bp = Blueprint()


@bp.function_name(RECONCILE_WRITES)
@bp.activity_trigger(input_name="payload")
def reconcile_writes(payload: dict[str, Any]) -> dict[str, Any]:
    from shared.bootstrap import get_services
    from shared.contracts import PushRequest
    from shared.services.push import reconcile_open_writes

    services = get_services()
    request = PushRequest.model_validate(payload)
    config = services.run_config(request.run_id)
    clients = services.psa_clients(config)
    with services.heartbeat(request.run_id, writes=True):
        summary = reconcile_open_writes(config, services.runs, services.decisions, clients, request.run_id,
                                        services.clock(), sleep=services.retry_sleep)
    summary.psa_calls = clients.calls
    return summary.to_json()


@bp.function_name(PUSH_CHANGES)
@bp.activity_trigger(input_name="payload")
def push_changes(payload: dict[str, Any]) -> dict[str, Any]:
    from functools import partial

    from shared import checkpoints, deadline, telemetry
    from shared.adapters.tables import StoreRetry
    from shared.bootstrap import get_services
    from shared.contracts import PushRequest
    from shared.services.push import push_changes as push_changes_service

    checkpoints.reached("push-started")
    services = get_services()
    request = PushRequest.model_validate(payload)
    with telemetry.activity(request.run_id) as tally, deadline.within(request.activity_seconds):
        config = services.run_config(request.run_id)
        clients = services.psa_clients(config)
        now = services.clock()
        # the push's first storage read (its configuration is the run's, read moments ago): retried
        # while Table Storage is unreachable, as every activity's first read is
        prepared = StoreRetry().call("the run's shared PSA reads", partial(services.shared_reads.load, request.run_id),
                                     services.retry_sleep)
        with services.heartbeat(request.run_id, writes=True) as heartbeat:
            summary = push_changes_service(config, services.snapshots, services.runs, services.decisions, clients,
                                           request, now.date(), now, margins=services.margins,
                                           sleep=services.retry_sleep, guard=heartbeat.check, prepared=prepared,
                                           started=services.started(request.run_id))
        summary.psa_calls = clients.calls
        telemetry.tenants_pushed(request.run_id, request.tenant_ids, summary.applied, summary.held, summary.deferred,
                                 summary.failed, summary.prorated_amount, summary.recurring_change, summary.psa_calls,
                                 request.dry_run, tally)
    return summary.to_json()


@bp.function_name(SHARE_PSA_READS)
@bp.activity_trigger(input_name="payload")
def share_psa_reads(payload: dict[str, Any]) -> dict[str, Any]:
    """Read once, for all the run's pushes, each PSA connection's agreements and products its
    tenants need, and store them (a connection that cannot be read is recorded so; the pushes
    then read it themselves)."""
    from shared import telemetry
    from shared.bootstrap import get_services
    from shared.contracts import PushRequest, PushSummary
    from shared.services.psa_reads import share_reads

    services = get_services()
    request = PushRequest.model_validate(payload)
    with telemetry.activity(request.run_id):
        config = services.run_config(request.run_id)
        clients = services.psa_clients(config)
        works = services.runs.iter_started_tenants(services.run_tenants(request.run_id))
        services.shared_reads.save(request.run_id, share_reads(config, works, clients))
    return PushSummary(psa_calls=clients.calls).to_json()
