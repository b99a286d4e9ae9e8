"""Reconciliation and margin over HTTP: ``GET /api/reconciliation``."""

from __future__ import annotations

import azure.functions as func

from admin_api.blueprint import bp
from admin_api.http import answer, error_answer
from shared.errors import RequestValidationError, SeatSyncError


@bp.function_name("reconciliation")
@bp.route(route="reconciliation", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def reconciliation_http(req: func.HttpRequest) -> func.HttpResponse:
    """``GET /api/reconciliation?month=YYYY-MM|run=<run id>[&renewalDays=N][&format=csv]``: per tenant
    and licence, purchased vs assigned vs billed with cost, margin, money found and money leaking,
    and the renewals with unused seats (``ReconciliationOut``; CSV with ``format=csv``)."""
    from shared.bootstrap import get_services  # imported when a request arrives, not at registration
    from shared.services.reconcile import month_run, parse_renewal_days, run_reconciliation, to_csv, to_output

    services = get_services()
    try:
        fmt = req.params.get("format", "json")
        if fmt not in ("json", "csv"):
            raise RequestValidationError("format", "must be json or csv")
        if req.params.get("month") and req.params.get("run"):
            raise RequestValidationError("run", "give a month or a run, not both")
        days = parse_renewal_days(req.params.get("renewalDays"))
        run_id = req.params.get("run") or month_run(services.runs, req.params.get("month"))
        view = run_reconciliation(services.runs, services.margins, run_id, services.config(), renewal_days=days)
    except SeatSyncError as exc:
        return error_answer(exc)
    if fmt == "csv":
        return func.HttpResponse(to_csv(view), status_code=200, mimetype="text/csv")
    return answer(200, to_output(view).model_dump(mode="json", by_alias=True))
