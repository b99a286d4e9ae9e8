"""Approvals of held decreases, the audit trail and unlinked licences."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import azure.functions as func

from admin_api.blueprint import bp
from admin_api.http import actor, answer, error_answer, json_body
from durable_blueprint import is_active
from shared.errors import RequestValidationError, SeatSyncError
from shared.functions import SYNC_INSTANCE_ID, SYNC_ORCHESTRATOR

if TYPE_CHECKING:
    import azure.durable_functions as df

# What the routes run is imported when a request arrives, not when the app registers them: a cold
# start only pays for the routes it serves.


@bp.function_name("approvals_list")
@bp.route(route="approvals", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def approvals_list(req: func.HttpRequest) -> func.HttpResponse:
    from shared.bootstrap import get_services
    from shared.services.decisions import approval_json, list_approvals

    services = get_services()
    status = req.params.get("status", "pending")
    try:
        records = list_approvals(services.decisions, None if status == "all" else status)
    except SeatSyncError as exc:
        return error_answer(exc)
    config = services.config()
    return answer(200, {"approvals": [approval_json(r, config) for r in records]})


@bp.function_name("approvals_decide")
@bp.route(route="approvals/{id}/{decision}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def approvals_decide(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """``POST /api/approvals/{id}/approve`` or ``/reject`` with ``{"comment": "...", "applyNow": true}``."""
    from shared.bootstrap import get_services
    from shared.contracts import SyncRequest, new_run_id
    from shared.services.decisions import approval_json, decide
    from shared.services.lease import duplicate_instance, live_lease

    services = get_services()
    decision = req.route_params.get("decision", "")
    try:
        if decision not in ("approve", "reject"):
            raise RequestValidationError("decision", f"use /approve or /reject, not /{decision}")
        body = json_body(req) if req.get_body().strip() else {}
        if not isinstance(body, dict) or set(body) - {"comment", "applyNow"}:
            raise RequestValidationError("body", "expected {\"comment\": \"...\", \"applyNow\": true}")
        comment, apply_now = body.get("comment"), body.get("applyNow", False)
        if comment is not None and not isinstance(comment, str):
            raise RequestValidationError("comment", "must be text")
        if not isinstance(apply_now, bool):
            raise RequestValidationError("applyNow", "must be true or false")
        config = services.config()
        record = decide(services.decisions, config, req.route_params.get("id", ""), decision == "approve",
                        actor(req), comment, services.clock())
    except SeatSyncError as exc:
        return error_answer(exc)
    result: dict[str, Any] = {"approval": approval_json(record, config)}
    if apply_now and decision == "approve":
        status = await client.get_status(SYNC_INSTANCE_ID)
        running = is_active(status)
        holder = live_lease(services.runs, services.decisions, running, "the approvals endpoint")
        busy = "a sync is running; the approved change is applied by the next one"
        if running or holder is not None:
            result["sync"] = busy
        else:
            now = services.clock()
            request = SyncRequest(run_id=new_run_id(now), trigger="manual", requested_by=actor(req),
                                  requested_at=now, tenants=[record.tenant_id])
            try:
                await client.start_new(SYNC_ORCHESTRATOR, SYNC_INSTANCE_ID, request.to_json())
            except Exception as exc:
                if not duplicate_instance(exc):
                    raise
                result["sync"] = busy
            else:
                result["sync"] = f"run {request.run_id} started for the tenant"
                result["runId"] = request.run_id
    return answer(200, result)


@bp.function_name("audit_trail")
@bp.route(route="audit", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def audit_trail_http(req: func.HttpRequest) -> func.HttpResponse:
    """``GET /api/audit?customer=<tenant id or name>&from=YYYY-MM-DD&to=YYYY-MM-DD[&format=csv]``."""
    from shared.bootstrap import get_services
    from shared.services.decisions import audit_csv, audit_json, audit_query, audit_trail

    services = get_services()
    try:
        query = audit_query(services.config(), req.params.get("customer"), req.params.get("from"),
                            req.params.get("to"))
        fmt = req.params.get("format", "json")
        if fmt not in ("json", "csv"):
            raise RequestValidationError("format", "must be json or csv")
    except SeatSyncError as exc:
        return error_answer(exc)
    entries = audit_trail(services.decisions, query)
    if fmt == "csv":
        return func.HttpResponse(audit_csv(entries), status_code=200, mimetype="text/csv")
    return answer(200, {"tenantId": query.tenant_id,
                        "tenantName": query.tenant_name or next((e.tenant_name for e in reversed(entries)), ""),
                        "entries": [audit_json(e) for e in entries]})


@bp.function_name("unlinked_licences")
@bp.route(route="unlinked", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def unlinked_http(req: func.HttpRequest) -> func.HttpResponse:
    from shared.bootstrap import get_services
    from shared.services.decisions import unlinked

    services = get_services()
    return answer(200, {"unlinked": unlinked(services.config(), services.snapshots)})
