"""The PSA push activity: plans a batch of collected tenants against what their PSAs bill now
and writes the changes (or records them only, on a dry run)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from shared import telemetry
from shared.bootstrap import get_services
from shared.contracts import PushRequest
from shared.functions import PUSH_CHANGES
from shared.services.push import push_changes as push_changes_service

bp = df.Blueprint()


@bp.function_name(PUSH_CHANGES)
@bp.activity_trigger(input_name="payload")
def push_changes(payload: dict[str, Any]) -> dict[str, Any]:
    services = get_services()
    request = PushRequest.model_validate(payload)
    with telemetry.activity(request.run_id) as tally:
        config = services.config()
        clients = services.psa_clients(config)
        now = services.clock()
        summary = push_changes_service(config, services.snapshots, services.runs, services.decisions, clients,
                                       request, now.date(), now, margins=services.margins)
        summary.psa_calls = clients.calls
        telemetry.tenants_pushed(request.run_id, request.tenant_ids, summary.applied, summary.held, summary.deferred,
                                 summary.failed, summary.prorated_amount, summary.recurring_change, summary.psa_calls,
                                 request.dry_run, tally)
    return summary.to_json()
