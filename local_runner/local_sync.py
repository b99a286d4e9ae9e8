"""A sync run in-process: the Function App's own orchestrator and activities, driven by the
local runner against whatever the settings point at (real services or the emulators)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from local_runner.runner import FunctionTable, discover, run_orchestration
from local_runner.wiring import current_user
from shared.adapters.tables import is_transient
from shared.bootstrap import Services, set_services
from shared.contracts import SYNC_INSTANCE_ID, RunProgress, SyncRequest, new_run_id
from shared.functions import SYNC_ORCHESTRATOR
from shared.services.lease import ProcessRef
from shared.services.report import build_report
from shared.services.sync_requests import validate_tenants

log = logging.getLogger("seatsync.run")


@cache
def app_functions() -> tuple[Any, ...]:
    """The Function App's registered functions, indexed once: the app refuses a second indexing."""
    import function_app  # registers the blueprints; imported late so settings are in place

    return tuple(function_app.app.get_functions())


@cache
def default_version() -> str | None:
    """host.json's ``extensions.durableTask.defaultVersion``: what the Functions host gives a new
    orchestration instance."""
    host = json.loads((Path(__file__).resolve().parent.parent / "host.json").read_text(encoding="utf-8"))
    value = host.get("extensions", {}).get("durableTask", {}).get("defaultVersion")
    return str(value) if value is not None else None


@cache
def function_table() -> FunctionTable:
    """The Function App's orchestrators and activities."""
    return discover(app_functions())


def run_local_sync(services: Services, tenants: list[str] | None = None, dry_run: bool = False,
                   requested_by: str | None = None, max_workers: int = 8,
                   retry_delay_scale: float = 1.0,
                   on_progress: Callable[[RunProgress], None] | None = None) -> dict[str, Any]:
    """Run one sync and return its whole report (see shared.services.report), every tenant and
    change in it: for callers that want the document. ``sync_locally`` runs it and answers the
    run id only, so that a large run's report is read from storage a page at a time."""
    run_id = sync_locally(services, tenants, dry_run, requested_by, max_workers, retry_delay_scale, on_progress)
    return build_report(services.runs, run_id, services.config(), services.margins, services.sources)


def sync_locally(services: Services, tenants: list[str] | None = None, dry_run: bool = False,
                 requested_by: str | None = None, max_workers: int = 8,
                 retry_delay_scale: float = 1.0,
                 on_progress: Callable[[RunProgress], None] | None = None) -> str:
    """Run one sync in this process and return its run id. What it did is in storage (the run,
    its tenants and changes), as a run of the Function App's leaves it.

    The orchestrator's progress (its custom status) is recorded with the run, as Durable
    Functions keeps it, so ``GET /api/runs/{runId}`` and ``seatsync runs list`` show it from
    elsewhere, and is handed to ``on_progress`` (the CLI's progress display)."""
    config = services.config()
    selected = validate_tenants(tenants, config, field="--tenant") if tenants else None
    # The run id sorts runs by when they really started; the run's own time is the business clock
    # (SEATSYNC_CLOCK rehearses another day), as the orchestrator's, so that what the report dates
    # (its start, the renewal calendar's "in N days") is the day the run planned for.
    request = SyncRequest(run_id=new_run_id(datetime.now(UTC)), trigger="local",
                          requested_by=requested_by or current_user(), requested_at=services.clock(),
                          dry_run=dry_run, tenants=selected)
    services.lease_process = ProcessRef.current()  # this process is the run: a later run sees when it is gone

    def status(value: Any) -> None:
        progress = RunProgress.model_validate(value)
        # before start_run the run is not recorded; "failed": it could not be recorded at all
        if progress.phase not in ("starting", "finished", "failed"):
            try:
                services.runs.record_progress(request.run_id, progress.to_json())
            except Exception as exc:
                if not is_transient(exc):
                    raise
                # progress is for watchers; the run's own records ride out the outage (StoreRetry)
                log.warning("run %s: progress not recorded, Table Storage is unavailable (%s)", request.run_id,
                            type(exc).__name__)
        log.info("run %s: %s, %d of %d tenants collected, %d of %d pushed, %d failed", request.run_id,
                 progress.phase, progress.tenants_collected, progress.tenants_total, progress.tenants_pushed,
                 progress.tenants_to_push, progress.tenants_failed)
        if on_progress is not None:
            on_progress(progress)

    set_services(services)
    try:
        run_orchestration(function_table(), SYNC_ORCHESTRATOR, request.to_json(),
                          SYNC_INSTANCE_ID, max_workers=max_workers, clock=services.clock,
                          retry_delay_scale=retry_delay_scale, on_status=status, version=default_version())
    finally:
        set_services(None)
    return request.run_id
