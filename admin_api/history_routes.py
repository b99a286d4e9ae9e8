"""A tenant's licence history: ``GET /api/tenants/{tenantId}/history?licence=``."""

from __future__ import annotations

import azure.functions as func

from admin_api.blueprint import bp
from admin_api.http import answer, error_answer
from shared.errors import SeatSyncError


@bp.function_name("tenant_history")
@bp.route(route="tenants/{tenantId}/history", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def tenant_history_http(req: func.HttpRequest) -> func.HttpResponse:
    """The tenant's licences over time (``TenantHistory``): purchased and assigned from each
    snapshot, billed and to bill from each push; ``licence`` (SKU id, part number, product name or
    custom licence name) keeps one. Readable by tenant id after the tenant has left the
    configuration."""
    from shared.bootstrap import get_services  # imported when a request arrives, not at registration
    from shared.services.history import tenant_history

    services = get_services()
    try:
        history = tenant_history(services.config(), services.snapshots, services.runs,
                                 req.route_params.get("tenantId", ""), req.params.get("licence") or None)
    except SeatSyncError as exc:
        return error_answer(exc)
    return answer(200, history.to_json())
