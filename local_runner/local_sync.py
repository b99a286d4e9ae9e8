"""A sync run in-process: the Function App's own orchestrator and activities, driven by the
local runner against whatever the settings point at (real services or the emulators)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from local_runner.runner import FunctionTable, discover, run_orchestration
from local_runner.wiring import current_user
from shared.bootstrap import Services, set_services
from shared.contracts import SYNC_INSTANCE_ID, SyncRequest, new_run_id
from shared.functions import SYNC_ORCHESTRATOR
from shared.services.report import build_report
from shared.services.sync_requests import validate_tenants


@cache
def app_functions() -> tuple[Any, ...]:
    """The Function App's registered functions, indexed once: the app refuses a second indexing."""
    import function_app  # registers the blueprints; imported late so settings are in place

    return tuple(function_app.app.get_functions())


@cache
def function_table() -> FunctionTable:
    """The Function App's orchestrators and activities."""
    return discover(app_functions())


def run_local_sync(services: Services, tenants: list[str] | None = None, dry_run: bool = False,
                   requested_by: str | None = None, max_workers: int = 8,
                   retry_delay_scale: float = 1.0) -> dict[str, Any]:
    """Run one sync and return its report (see shared.services.report)."""
    config = services.config()
    selected = validate_tenants(tenants, config, field="--tenant") if tenants else None
    now = datetime.now(UTC)
    request = SyncRequest(run_id=new_run_id(now), trigger="local",
                          requested_by=requested_by or current_user(), requested_at=now,
                          dry_run=dry_run, tenants=selected)
    set_services(services)
    try:
        run_orchestration(function_table(), SYNC_ORCHESTRATOR, request.to_json(),
                          SYNC_INSTANCE_ID, max_workers=max_workers, clock=services.clock,
                          retry_delay_scale=retry_delay_scale)
    finally:
        set_services(None)
    return build_report(services.runs, request.run_id, services.config())
