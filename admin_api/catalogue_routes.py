"""What a PSA offers for a mapping (a company's agreements, an agreement's lines, the product
catalogue), and the OpenAPI document of every endpoint."""

from __future__ import annotations

import json

import azure.functions as func

from admin_api.blueprint import bp
from admin_api.http import answer, error_answer
from shared.errors import SeatSyncError

# What the routes run is imported when a request arrives, not when the app registers them.


def failure(exc: SeatSyncError) -> func.HttpResponse:
    from shared.services.config_api import NotFoundError
    from shared.services.psa_catalogue import PsaUnavailableError

    if isinstance(exc, NotFoundError):
        return answer(404, {"error": str(exc)})
    if isinstance(exc, PsaUnavailableError):
        return answer(502, {"error": str(exc)})
    return error_answer(exc)


@bp.function_name("psa_company_agreements")
@bp.route(route="psa/{connection}/companies/{companyId}/agreements", methods=["GET"],
          auth_level=func.AuthLevel.FUNCTION)
def psa_company_agreements(req: func.HttpRequest) -> func.HttpResponse:
    from shared.bootstrap import get_services
    from shared.services.psa_catalogue import company_agreements

    services = get_services()
    try:
        found = company_agreements(services.config(), services.psa_clients, req.route_params.get("connection", ""),
                                   req.route_params.get("companyId", ""))
    except SeatSyncError as exc:
        return failure(exc)
    return answer(200, {"agreements": found})


@bp.function_name("psa_agreement_lines")
@bp.route(route="psa/{connection}/agreements/{agreementId}/lines", methods=["GET"],
          auth_level=func.AuthLevel.FUNCTION)
def psa_agreement_lines(req: func.HttpRequest) -> func.HttpResponse:
    from shared.bootstrap import get_services
    from shared.services.psa_catalogue import agreement_lines

    services = get_services()
    try:
        found = agreement_lines(services.config(), services.psa_clients, req.route_params.get("connection", ""),
                                req.route_params.get("agreementId", ""))
    except SeatSyncError as exc:
        return failure(exc)
    return answer(200, {"lines": found})


@bp.function_name("psa_products")
@bp.route(route="psa/{connection}/products", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def psa_products(req: func.HttpRequest) -> func.HttpResponse:
    from shared.bootstrap import get_services
    from shared.services.psa_catalogue import products

    services = get_services()
    try:
        found = products(services.config(), services.psa_clients, req.route_params.get("connection", ""))
    except SeatSyncError as exc:
        return failure(exc)
    return answer(200, {"products": found})


@bp.function_name("openapi_document")
@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi_json(req: func.HttpRequest) -> func.HttpResponse:
    """The OpenAPI 3.1 document of every endpoint (it holds no data, so no key is needed)."""
    from admin_api.openapi import openapi_document

    return func.HttpResponse(json.dumps(openapi_document()), status_code=200, mimetype="application/json")
