"""Starting a sync (daily timer or manual HTTP request), the orchestrator, run bookkeeping, the
runs list, each run's report and live progress, and the run lease over HTTP.

One run at a time: the orchestration has a fixed instance id, and every run (the command line's
too) holds the run lease (``shared.services.lease``). A manual sync is refused with 409 naming
the running run while the orchestration runs or a live run holds the lease, and when the Durable
runtime refuses a second instance; the timer skips and logs. A lease held by a Function App run
whose orchestration no longer runs is stale: it is cleared (the run recorded as died) and the
new run starts. host.json lets a finished instance be replaced."""

from __future__ import annotations

import json
import logging
from collections.abc import Generator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import azure.functions as func

from admin_api.http import Blueprint, actor, error_answer, json_body
from durable_blueprint import is_active
from shared.errors import ConfigError, ConflictError, RequestValidationError, SeatSyncError
from shared.functions import FINISH_RUN, LOAD_CHUNK, SYNC_CHUNK, SYNC_INSTANCE_ID, SYNC_ORCHESTRATOR

# What the triggers run is imported when they run, not when the app registers them: a cold start
# only pays for the functions it serves.
if TYPE_CHECKING:
    import azure.durable_functions as df

    from shared.contracts import SyncRequest, Trigger

bp = Blueprint()
log = logging.getLogger(__name__)

RUN_EVENTS_SHOWN = 20


def _json(status: int, body: Any) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


async def _is_running(client: df.DurableOrchestrationClient) -> bool:
    return await _running_status(client) is not None


async def _running_status(client: df.DurableOrchestrationClient) -> df.DurableOrchestrationStatus | None:
    status = await client.get_status(SYNC_INSTANCE_ID, show_input=True)  # its input names the run
    return status if is_active(status) else None


def _started_with(status: df.DurableOrchestrationStatus | None) -> SyncRequest | None:
    """The request a running orchestration was started with: it names the run before the run has
    taken the lease or recorded itself."""
    from shared.contracts import SyncRequest

    return SyncRequest.started_with(getattr(status, "input_", None)) if status is not None else None


def _busy(run_id: str | None, why: str) -> func.HttpResponse:
    return _json(409, {"error": f"a sync is already running ({why}); try again when it has finished",
                       "runId": run_id, "instanceId": SYNC_INSTANCE_ID})


def _request(trigger: Trigger, requested_by: str, tenants: list[str] | None, dry_run: bool) -> SyncRequest:
    from shared.contracts import SyncRequest, new_run_id

    now = datetime.now(UTC)
    return SyncRequest(run_id=new_run_id(now), trigger=trigger, requested_by=requested_by,
                       requested_at=now, dry_run=dry_run, tenants=tenants)


@bp.function_name("sync_timer")
@bp.timer_trigger(arg_name="timer", schedule="%SYNC_SCHEDULE%", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def sync_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    from shared.bootstrap import get_services
    from shared.services.lease import duplicate_instance, live_lease

    running = await _is_running(client)
    if running:
        log.warning("scheduled sync skipped: the previous run (%s) is still running", SYNC_INSTANCE_ID)
        return
    services = get_services()
    lease = live_lease(services.runs, services.decisions, running, "the sync schedule")
    if lease is not None:
        log.warning("scheduled sync skipped: run %s holds the run lease and is alive", lease.run_id)
        return
    request = _request("timer", "schedule", None, False)
    try:
        await client.start_new(SYNC_ORCHESTRATOR, SYNC_INSTANCE_ID, request.to_json())
    except Exception as exc:
        if not duplicate_instance(exc):
            raise
        log.warning("scheduled sync skipped: a manual sync started at the same moment (%s)", exc)
        return
    log.info("scheduled sync started: run %s", request.run_id)


@bp.function_name("sync_http")
@bp.route(route="sync", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def sync_http(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    from shared.bootstrap import get_services
    from shared.services.lease import duplicate_instance, live_lease
    from shared.services.sync_requests import parse_sync_body

    try:
        manual = parse_sync_body(req.get_body(), get_services().config())
    except RequestValidationError as exc:
        return _json(400, {"error": exc.message, "field": exc.field})
    except ConfigError as exc:
        return _json(500, {"error": str(exc)})
    services = get_services()
    orchestration = await _running_status(client)
    lease = live_lease(services.runs, services.decisions, orchestration is not None, "the sync endpoint")
    if lease is not None:
        return _busy(lease.run_id, f"run {lease.run_id} holds the run lease")
    if orchestration is not None:
        started = _started_with(orchestration)
        starting = started.run_id if started else None
        return _busy(starting, f"run {starting} is starting" if starting else "the sync orchestration is running")
    requested_by = actor(req)
    request = _request("manual", requested_by, manual.tenants, manual.dry_run)
    try:
        await client.start_new(SYNC_ORCHESTRATOR, SYNC_INSTANCE_ID, request.to_json())
    except Exception as exc:
        if not duplicate_instance(exc):
            raise
        holder = services.runs.lease()
        return _busy(holder.run_id if holder else None, "the Durable runtime refused a second instance")
    response = client.create_check_status_response(req, SYNC_INSTANCE_ID)
    body = {**json.loads(response.get_body()), "runId": request.run_id, "dryRun": request.dry_run}
    return func.HttpResponse(json.dumps(body), status_code=202, mimetype="application/json",
                             headers={"Location": response.headers.get("Location", "")})


async def _custom_status(client: df.DurableOrchestrationClient) -> Any:
    """The running orchestration's custom status (its ``RunProgress``), if any."""
    status = await client.get_status(SYNC_INSTANCE_ID)
    if not is_active(status):
        return None
    return getattr(status, "custom_status", None)


@bp.function_name("runs_list_http")
@bp.route(route="runs", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def runs_list_http(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """``GET /api/runs?limit=20&before=<runId>``: runs, newest first (``RunPage``); a running one
    carries its progress."""
    from shared.bootstrap import get_services
    from shared.contracts import RunProgress
    from shared.services.history import parse_limit, run_page

    services = get_services()
    try:
        limit = parse_limit(req.params.get("limit"))
    except RequestValidationError as exc:
        return _json(400, {"error": exc.message, "field": exc.field})
    custom = await _custom_status(client)
    live = RunProgress.model_validate(custom) if isinstance(custom, dict) and custom.get("runId") else None
    try:
        page = run_page(services.runs, limit, req.params.get("before") or None, live)
    except RequestValidationError as exc:  # an unknown or unusable ``before``: 404 or 400
        return error_answer(exc)
    return _json(200, page.to_json())


@bp.function_name("run_report_http")
@bp.route(route="runs/{runId}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def run_report_http(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """``GET /api/runs/{runId|latest}``: the run's report; while it runs, ``progress`` is the
    orchestrator's custom status (``RunProgress``: phase, tenants collected and pushed out of N,
    failures so far)."""
    from shared.bootstrap import get_services
    from shared.services.history import live_progress
    from shared.services.report import ReportError, build_report, starting_report

    services = get_services()
    run_id = req.route_params.get("runId", "")
    if run_id == "latest":
        run_id = services.runs.latest_run_id() or ""
    try:
        report = build_report(services.runs, run_id, services.config(), services.margins, services.sources)
    except ReportError as exc:
        # the run id a 202 just gave, asked for before the run's first activity recorded it
        starting = starting_report(_started_with(await _running_status(client)), run_id)
        if starting is None:
            return error_answer(exc)
        report = starting
    progress = live_progress(services.runs, run_id, await _custom_status(client))
    return _json(200, {**report, "progress": progress.to_json() if progress else None})


@bp.function_name("run_lease_http")
@bp.route(route="runs/lease", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def run_lease_http(req: func.HttpRequest) -> func.HttpResponse:
    """``GET /api/runs/lease``: which run holds the run lease, until when, and whether it is stale;
    and the last run events of the audit trail (runs found dead, leases cleared, by whom)."""
    from shared.bootstrap import get_services
    from shared.services.lease import lease_json

    services = get_services()
    lease = services.runs.lease()
    events = [{"at": e.at.isoformat(), "event": e.event, "runId": e.run_id, "actor": e.actor, "reason": e.reason}
              for e in services.decisions.run_events()[-RUN_EVENTS_SHOWN:]]
    return _json(200, {"lease": lease_json(lease) if lease else None, "events": events})


@bp.function_name("run_lease_unlock_http")
@bp.route(route="runs/lease/unlock", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def run_lease_unlock_http(req: func.HttpRequest) -> func.HttpResponse:
    """``POST /api/runs/lease/unlock`` with ``{"force": false, "comment": "..."}``: clear a stale run
    lease (a live one only with ``force``); the audit records who (the signed-in principal or the
    function key) and the run is recorded as died."""
    from shared.bootstrap import get_services
    from shared.services.lease import LeaseHeldError, lease_json, unlock

    try:
        body = json_body(req) if req.get_body().strip() else {}
        if not isinstance(body, dict) or set(body) - {"force", "comment"}:
            raise RequestValidationError("body", "expected {\"force\": true|false, \"comment\": \"...\"}")
        force, comment = body.get("force", False), body.get("comment")
        if not isinstance(force, bool):
            raise RequestValidationError("force", "must be true or false")
        if comment is not None and (not isinstance(comment, str) or len(comment) > 500):
            raise RequestValidationError("comment", "must be text of at most 500 characters")
    except SeatSyncError as exc:
        return error_answer(exc)
    services = get_services()
    who = actor(req)
    try:
        cleared = unlock(services.runs, services.decisions, who, force=force, comment=comment)
    except LeaseHeldError as exc:
        return _json(409, {"error": str(exc), "runId": exc.lease.run_id, "lease": lease_json(exc.lease)})
    except ConflictError as exc:
        return _json(409, {"error": str(exc)})
    if cleared is None:
        return _json(200, {"cleared": None, "message": "no run holds the lease"})
    return _json(200, {"cleared": lease_json(cleared), "by": who,
                       "message": f"the lease of run {cleared.run_id} was cleared; the run is recorded as died"})


@bp.function_name(SYNC_ORCHESTRATOR)
@bp.orchestration_trigger(context_name="context")
def sync_orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    from sync_orchestrator.orchestration import sync

    result = yield from sync(context)
    return result


@bp.function_name(SYNC_CHUNK)
@bp.orchestration_trigger(context_name="context")
def sync_chunk(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """One chunk of a large run's tenants, collected or pushed (``orchestration.chunk``)."""
    from sync_orchestrator.orchestration import chunk

    result = yield from chunk(context)
    return result


@bp.function_name(LOAD_CHUNK)
@bp.activity_trigger(input_name="payload")
def load_chunk(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The tenants of one chunk of a large run, from the run's rows."""
    from shared.bootstrap import get_services
    from shared.contracts import ChunkRequest
    from shared.services.runs import chunk_of

    services = get_services()
    request = ChunkRequest.model_validate(payload)
    tenants = chunk_of(services.runs, services.run_tenants(request.run_id), request)
    return [t.to_json() for t in tenants]


@bp.function_name(FINISH_RUN)
@bp.activity_trigger(input_name="payload")
def finish_run(payload: dict[str, Any]) -> dict[str, Any]:
    from shared import telemetry
    from shared.bootstrap import get_services
    from shared.contracts import RunSummary
    from shared.services.run_digest import record_digest
    from shared.services.runs import finish_run as finish_run_service

    summary = RunSummary.model_validate(payload)
    with telemetry.activity(summary.run_id):
        services = get_services()
        services.forget_shared_reads(summary.run_id)  # the run's pushes are done
        finish_run_service(services.runs, summary, services.retry_sleep)
        record_digest(services.runs, summary.run_id, services.config(), services.started(summary.run_id))
        telemetry.run_finished(summary)
    return {"runId": summary.run_id, "status": summary.status}
