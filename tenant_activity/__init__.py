"""Activities that talk to Microsoft Graph: starting a run (which tenants, GDAP comparison)
and collecting one tenant. Thin: each validates its input and calls the service layer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from durable_blueprint import Blueprint
from shared.functions import COLLECT_TENANT, START_RUN

# What the activities run is imported when they run, not when the app registers them.
if TYPE_CHECKING:
    from shared.bootstrap import Services
    from shared.config.schema import SeatSyncConfig
    from shared.domain.model import Subscription
    from shared.domain.partner import PartnerFacts
    from shared.services.runs import GraphFor

bp = Blueprint()


def partner_graphs(services: Services, config: SeatSyncConfig) -> GraphFor:
    """Graph clients by partner account name (``default``: the app settings' account)."""
    return lambda name: services.partner_graph(config, name)


@bp.function_name(START_RUN)
@bp.activity_trigger(input_name="payload")
def start_run(payload: dict[str, Any]) -> dict[str, Any]:
    from shared import telemetry
    from shared.bootstrap import get_services
    from shared.contracts import StartRun, SyncRequest
    from shared.services.runs import fanned_out
    from shared.services.runs import start_run as start_run_service
    from shared.services.sources import prepare_sources

    services = get_services()
    # version 3 of the orchestration sends a StartRun, earlier versions the SyncRequest alone
    start = StartRun.model_validate(payload) if "request" in payload else None
    request = start.request if start is not None else SyncRequest.model_validate(payload)
    with telemetry.activity(request.run_id):
        config = services.run_config(request.run_id)  # a new run: the current version
        fan_out = start is not None and start.fan_out
        started = start_run_service(config, partner_graphs(services, config), services.runs, services.decisions,
                                    request, services.clock(), services.run_lease, services.lease_process,
                                    listed=services.fan_out.chunk_size if fan_out else None)
        if started.refused is None and config.subscription_sources:
            prepare_sources(config, services.source_clients(config), services.sources, request.run_id)
        telemetry.run_started(request.run_id, request.trigger, request.dry_run, started.total)
    if fan_out:
        started = fanned_out(started, services.fan_out)
    return started.to_json()


@bp.function_name(COLLECT_TENANT)
@bp.activity_trigger(input_name="payload")
def collect_tenant(payload: dict[str, Any]) -> dict[str, Any]:
    from shared import telemetry
    from shared.bootstrap import get_services
    from shared.config.partners import DEFAULT_PARTNER
    from shared.contracts import CollectRequest
    from shared.services.collect import collect_tenant as collect_tenant_service
    from shared.services.sources import partner_facts

    services = get_services()
    request = CollectRequest.model_validate(payload)
    config = services.run_config(request.run_id)

    def lookup(tenant_id: str, subscriptions: tuple[Subscription, ...]) -> PartnerFacts | None:
        return partner_facts(config, services.sources, request.run_id, tenant_id, subscriptions)

    with telemetry.activity(request.run_id, request.tenant_id) as tally, services.heartbeat(request.run_id):
        outcome = collect_tenant_service(partner_graphs(services, config)(request.partner or DEFAULT_PARTNER),
                                         services.snapshots, services.runs, request, services.clock(),
                                         lookup if config.subscription_sources else None)
        telemetry.tenant_collected(request.run_id, request.tenant_id, outcome.status, outcome.graph_calls, tally)
    return outcome.to_json()
