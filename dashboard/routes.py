"""The dashboard's routes, registered without importing what they run: each imports its page
from ``dashboard.pages`` (templates, services, models) when a request arrives, so that a cold start
of the Function App pays only for registering them. A page added to ``dashboard.pages`` is served
once it has its route here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from dashboard.blueprint import bp

if TYPE_CHECKING:
    import azure.durable_functions as df

ANONYMOUS = func.AuthLevel.ANONYMOUS


@bp.function_name("dashboard_overview")
@bp.route(route="dashboard", methods=["GET"], auth_level=ANONYMOUS)
def overview_page(req: func.HttpRequest) -> func.HttpResponse:
    from dashboard import pages

    return pages.overview_page(req)


@bp.function_name("dashboard_tenants")
@bp.route(route="dashboard/tenants", methods=["GET"], auth_level=ANONYMOUS)
def tenants_page(req: func.HttpRequest) -> func.HttpResponse:
    from dashboard import pages

    return pages.tenants_page(req)


@bp.function_name("dashboard_tenant")
@bp.route(route="dashboard/tenants/{tenantId}", methods=["GET"], auth_level=ANONYMOUS)
def tenant_page(req: func.HttpRequest) -> func.HttpResponse:
    from dashboard import pages

    return pages.tenant_page(req)


@bp.function_name("dashboard_tenant_lines")
@bp.route(route="dashboard/tenants/{tenantId}/lines", methods=["GET"], auth_level=ANONYMOUS)
def tenant_lines(req: func.HttpRequest) -> func.HttpResponse:
    from dashboard import pages

    return pages.tenant_lines(req)


@bp.function_name("dashboard_mapping")
@bp.route(route="dashboard/mapping", methods=["GET"], auth_level=ANONYMOUS)
def mapping_page(req: func.HttpRequest) -> func.HttpResponse:
    from dashboard import pages

    return pages.mapping_page(req)


@bp.function_name("dashboard_mapping_agreements")
@bp.route(route="dashboard/mapping/agreements", methods=["GET"], auth_level=ANONYMOUS)
def mapping_agreements(req: func.HttpRequest) -> func.HttpResponse:
    from dashboard import pages

    return pages.mapping_agreements(req)


@bp.function_name("dashboard_mapping_lines")
@bp.route(route="dashboard/mapping/lines", methods=["GET"], auth_level=ANONYMOUS)
def mapping_lines(req: func.HttpRequest) -> func.HttpResponse:
    from dashboard import pages

    return pages.mapping_lines(req)


@bp.function_name("dashboard_mapping_link")
@bp.route(route="dashboard/mapping/link", methods=["POST"], auth_level=ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def mapping_link(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    from dashboard import pages

    return await pages.mapping_link(req, client)


@bp.function_name("dashboard_approvals")
@bp.route(route="dashboard/approvals", methods=["GET"], auth_level=ANONYMOUS)
def approvals_page(req: func.HttpRequest) -> func.HttpResponse:
    from dashboard import pages

    return pages.approvals_page(req)


@bp.function_name("dashboard_approvals_decide")
@bp.route(route="dashboard/approvals/decide", methods=["POST"], auth_level=ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def approvals_decide(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    from dashboard import pages

    return await pages.approvals_decide(req, client)


@bp.function_name("dashboard_runs")
@bp.route(route="dashboard/runs", methods=["GET", "POST"], auth_level=ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def runs_page(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    from dashboard import pages

    return await pages.runs_page(req, client)


@bp.function_name("dashboard_run")
@bp.route(route="dashboard/runs/{runId}", methods=["GET"], auth_level=ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def run_report_page(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    from dashboard import pages

    return await pages.run_report_page(req, client)


@bp.function_name("dashboard_audit")
@bp.route(route="dashboard/audit", methods=["GET"], auth_level=ANONYMOUS)
def audit_page(req: func.HttpRequest) -> func.HttpResponse:
    from dashboard import pages

    return pages.audit_page(req)


@bp.function_name("dashboard_audit_csv")
@bp.route(route="dashboard/audit.csv", methods=["GET"], auth_level=ANONYMOUS)
def audit_download(req: func.HttpRequest) -> func.HttpResponse:
    from dashboard import pages

    return pages.audit_download(req)


@bp.function_name("dashboard_onboarding")
@bp.route(route="dashboard/onboarding", methods=["GET", "POST"], auth_level=ANONYMOUS)
def onboarding_page(req: func.HttpRequest) -> func.HttpResponse:
    from dashboard import pages

    return pages.onboarding_page(req)


@bp.function_name("dashboard_notifications")
@bp.route(route="dashboard/notifications", methods=["GET", "POST"], auth_level=ANONYMOUS)
def notifications_page(req: func.HttpRequest) -> func.HttpResponse:
    from dashboard import pages

    return pages.notifications_page(req)


@bp.function_name("dashboard_configuration")
@bp.route(route="dashboard/configuration", methods=["GET", "POST"], auth_level=ANONYMOUS)
def configuration_page(req: func.HttpRequest) -> func.HttpResponse:
    from dashboard import pages

    return pages.configuration_page(req)


@bp.function_name("dashboard_configuration_yaml")
@bp.route(route="dashboard/configuration.yaml", methods=["GET"], auth_level=ANONYMOUS)
def configuration_download(req: func.HttpRequest) -> func.HttpResponse:
    from dashboard import pages

    return pages.configuration_download(req)


@bp.function_name("dashboard_static")
@bp.route(route="dashboard/static/{name}", methods=["GET"], auth_level=ANONYMOUS)
def dashboard_static(req: func.HttpRequest) -> func.HttpResponse:
    from dashboard import pages

    return pages.dashboard_static(req)
