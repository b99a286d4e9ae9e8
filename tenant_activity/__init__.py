"""Activities that talk to Microsoft Graph: starting a run (which tenants, GDAP comparison)
and collecting one tenant. Thin: each validates its input and calls the service layer."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from shared.bootstrap import get_services
from shared.contracts import CollectRequest, SyncRequest
from shared.functions import COLLECT_TENANT, START_RUN
from shared.services.collect import collect_tenant as collect_tenant_service
from shared.services.runs import start_run as start_run_service

bp = df.Blueprint()


@bp.function_name(START_RUN)
@bp.activity_trigger(input_name="payload")
def start_run(payload: dict[str, Any]) -> dict[str, Any]:
    services = get_services()
    request = SyncRequest.model_validate(payload)
    return start_run_service(services.config(), services.graph(), services.runs, request,
                             services.clock()).to_json()


@bp.function_name(COLLECT_TENANT)
@bp.activity_trigger(input_name="payload")
def collect_tenant(payload: dict[str, Any]) -> dict[str, Any]:
    services = get_services()
    request = CollectRequest.model_validate(payload)
    outcome = collect_tenant_service(services.graph(), services.snapshots, services.runs, request,
                                     services.clock())
    return outcome.to_json()
