"""The OpenAPI 3.1 document of every HTTP endpoint of the Function App (``GET /api/openapi.json``).

Request and response bodies are described by the pydantic models below (their JSON Schema
goes into ``components.schemas``); the operations table names each route, its parameters and
answers. tests/integration/test_openapi.py checks that the table and the registered functions
name the same routes and methods, and fuzzes every operation from the document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from shared.services.history import RunPage, TenantHistory
from shared.services.reconcile import ReconciliationOut

VERSION = "1"


class Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------ common answers


class Error(Model):
    """An error: ``field`` names what was wrong in the request, when one thing was."""

    error: str
    field: str | None = None
    problems: list[str] | None = None


class Problem(Model):
    """An RFC 9457 problem (``application/problem+json``): 503 when Table Storage cannot be
    reached; ``error`` repeats ``detail``, as every other error of the API names it."""

    type: str
    title: str
    status: int
    detail: str
    error: str


# ------------------------------------------------------------------------ sync and runs


class SyncBody(Closed):
    """``POST /api/sync``: both optional; an empty body syncs every enabled tenant."""

    tenants: list[str] | None = Field(default=None, min_length=1, description="configured, enabled tenant ids")
    dryRun: bool = Field(default=False, description="plan only: write nothing to the PSA")


class UnlockBody(Closed):
    """``POST /api/runs/lease/unlock``: clear a stale run lease (a live one only with ``force``)."""

    force: bool = False
    comment: str | None = Field(default=None, max_length=500)


class LeaseAnswer(Model):
    lease: dict[str, Any] | None
    events: list[dict[str, Any]] = Field(default_factory=list, description="the last run events: runs found dead, "
                                                                            "leases cleared, by whom")


class UnlockAnswer(Model):
    cleared: dict[str, Any] | None


class SyncStarted(Model):
    id: str
    statusQueryGetUri: str
    runId: str
    dryRun: bool


class RunReport(Model):
    """The run report (docs/architecture.md): tenants, changes, unlinked licences, reconciliation;
    while the run runs, ``progress`` (the orchestrator's custom status)."""

    runId: str
    status: str
    dryRun: bool
    tenants: list[dict[str, Any]]
    changes: list[dict[str, Any]]
    progress: dict[str, Any] | None = None


# ------------------------------------------------------------------------ approvals, audit, unlinked


class Approval(Model):
    id: str
    status: Literal["pending", "approved", "rejected", "superseded", "applied"]
    tenantId: str
    tenantName: str | None
    licence: str
    to: int
    reason: str


class ApprovalList(Model):
    approvals: list[Approval]


class DecisionBody(Closed):
    comment: str | None = None
    applyNow: bool = False


class DecisionResult(Model):
    approval: Approval
    sync: str | None = None
    runId: str | None = None


class AuditTrail(Model):
    tenantId: str
    tenantName: str
    entries: list[dict[str, Any]]


class UnlinkedList(Model):
    unlinked: list[dict[str, Any]]


# ------------------------------------------------------------------------ configuration and onboarding


class ConfigVersion(Model):
    versionId: str
    number: int
    savedAt: str
    savedBy: str
    comment: str


class ConfigDocument(Model):
    version: ConfigVersion | None
    config: dict[str, Any]


class ConfigChange(Model):
    changed: bool
    version: str | None
    number: int | None


class ConfigHistory(Model):
    versions: list[ConfigVersion]


class ConfigEntries(Model):
    version: str | None


class AnyDocument(Model):
    """A configuration document or entry (docs/configuration.md)."""


class OnboardingSuggestions(Model):
    summary: dict[str, int]
    problems: list[str]
    tenants: list[dict[str, Any]]


# ------------------------------------------------------------------------ PSA catalogue


class PsaAgreement(Model):
    agreementId: str
    name: str
    companyId: str
    type: str
    active: bool
    prorate: bool


class PsaLine(Model):
    lineId: str
    agreementId: str
    productId: str
    quantity: str
    unitPrice: str | None


class PsaProduct(Model):
    productId: str
    identifier: str
    description: str
    price: str | None


class AgreementList(Model):
    agreements: list[PsaAgreement]


class LineList(Model):
    lines: list[PsaLine]


class ProductList(Model):
    products: list[PsaProduct]


# ------------------------------------------------------------------------ dashboard forms


class LinkForm(Closed):
    csrf: str
    tenantId: str
    skuId: str
    company: str = Field(description="psa|companyId")
    profile: str
    agreement: str
    line: str = ""
    dryRun: str = ""


class DecideForm(Closed):
    csrf: str
    id: list[str]
    decision: Literal["approve", "reject", "apply"]
    comment: str = ""


class RunForm(Closed):
    csrf: str
    dryRun: str = ""
    tenants: str = ""


class SelectForm(Closed):
    csrf: str
    tenant: list[str] = []


class CsrfForm(Closed):
    csrf: str


class RollbackForm(Closed):
    csrf: str
    version: str
    current: str = ""


MODELS: tuple[type[BaseModel], ...] = (
    Error, Problem, SyncBody, UnlockBody, LeaseAnswer, UnlockAnswer, SyncStarted, RunPage, RunReport, TenantHistory,
    ApprovalList, DecisionBody, DecisionResult, AuditTrail, UnlinkedList, ReconciliationOut, ConfigDocument,
    ConfigChange,
    ConfigHistory, ConfigEntries, AnyDocument, OnboardingSuggestions, AgreementList, LineList, ProductList,
    LinkForm, DecideForm, RunForm, SelectForm, CsrfForm, RollbackForm)


# ------------------------------------------------------------------------ operations


@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["path", "query", "header"] = "query"
    required: bool = False
    description: str = ""
    enum: tuple[str, ...] = ()
    format: str | None = None


@dataclass(frozen=True)
class Operation:
    method: str
    route: str
    summary: str
    answers: dict[int, type[BaseModel] | str]
    params: tuple[Param, ...] = ()
    body: type[BaseModel] | None = None
    body_type: str = "application/json"
    dashboard: bool = False
    tags: tuple[str, ...] = field(default=())


TENANT = Param("tenantId", "path", True, "a tenant id (GUID)")
IF_MATCH = Param("If-Match", "header", description="the version edited (ETag)")
VERSION_Q = Param("version", description="the version edited (instead of If-Match)")
COMMENT = Param("comment", description="why (kept in the history)")
HTML = "text/html"
PROBLEM = "application/problem+json"
CHANGE_ERRORS: dict[int, type[BaseModel] | str] = {400: Error, 404: Error, 409: Error}


def _entry_ops(route: str, key: str, label: str) -> list[Operation]:
    path = Param(key, "path", True)
    return [
        Operation("GET", route, f"One {label}", {200: AnyDocument, 400: Error, 404: Error}, (path,)),
        Operation("PUT", route, f"Create or replace a {label}", {200: ConfigChange, 201: ConfigChange, **CHANGE_ERRORS},
                  (path, IF_MATCH, VERSION_Q, COMMENT), AnyDocument),
        Operation("DELETE", route, f"Delete a {label}", {200: ConfigChange, **CHANGE_ERRORS},
                  (path, IF_MATCH, VERSION_Q, COMMENT)),
    ]


OPERATIONS: tuple[Operation, ...] = (
    Operation("POST", "sync", "Start a sync (or a dry run)", {202: SyncStarted, 400: Error, 409: Error, 500: Error},
              body=SyncBody, tags=("runs",)),
    Operation("GET", "runs", "Runs, newest first, a page at a time", {200: RunPage, 400: Error},
              (Param("limit", description="1 to 200, default 20"),
               Param("before", description="the nextBefore of the previous page")), tags=("runs",)),
    Operation("GET", "runs/lease", "The run lease: which run holds it, and whether it is stale",
              {200: LeaseAnswer}, tags=("runs",)),
    Operation("POST", "runs/lease/unlock", "Clear a stale run lease (a live one only with force)",
              {200: UnlockAnswer, 400: Error, 409: Error}, body=UnlockBody, tags=("runs",)),
    Operation("GET", "runs/{runId}", "A run's report ('latest' for the last run)", {200: RunReport, 404: Error},
              (Param("runId", "path", True),), tags=("runs",)),
    Operation("GET", "tenants/{tenantId}/history", "A tenant's licence counts over time, and what was billed",
              {200: TenantHistory, 400: Error, 404: Error},
              (TENANT, Param("licence", description="SKU id, part number, product name or custom licence")),
              tags=("runs",)),
    Operation("GET", "approvals", "Held changes", {200: ApprovalList, 400: Error},
              (Param("status", enum=("pending", "approved", "rejected", "superseded", "applied", "all")),),
              tags=("approvals",)),
    Operation("POST", "approvals/{id}/{decision}", "Approve or reject a held change",
              {200: DecisionResult, 400: Error, 404: Error, 409: Error},
              (Param("id", "path", True), Param("decision", "path", True, enum=("approve", "reject"))), DecisionBody,
              tags=("approvals",)),
    Operation("GET", "audit", "A customer's audit trail (JSON or CSV)", {200: AuditTrail, 400: Error},
              (Param("customer", required=True), Param("from", format="date"), Param("to", format="date"),
               Param("format", enum=("json", "csv"))), tags=("approvals",)),
    Operation("GET", "unlinked", "Licences no mapping bills", {200: UnlinkedList}, tags=("approvals",)),
    Operation("GET", "reconciliation", "Purchased vs assigned vs billed, with cost, margin and renewals (JSON or CSV)",
              {200: ReconciliationOut, 400: Error, 404: Error},
              (Param("month", description="YYYY-MM"), Param("run", description="a run id instead of a month"),
               Param("renewalDays"), Param("format", enum=("json", "csv"))), tags=("runs",)),
    Operation("GET", "config", "The configuration document", {200: ConfigDocument}, tags=("configuration",)),
    Operation("PUT", "config", "Replace the configuration document", {200: ConfigChange, **CHANGE_ERRORS},
              (IF_MATCH, VERSION_Q, COMMENT), AnyDocument, tags=("configuration",)),
    Operation("GET", "config.yaml", "The configuration as YAML", {200: "application/yaml"}, tags=("configuration",)),
    Operation("GET", "config/history", "Every saved version", {200: ConfigHistory, 400: Error}, (Param("limit"),),
              tags=("configuration",)),
    Operation("GET", "config/history/{versionId}", "An earlier version", {200: AnyDocument, 404: Error},
              (Param("versionId", "path", True),), tags=("configuration",)),
    Operation("GET", "config/billing-profiles", "Billing profiles", {200: ConfigEntries}, tags=("configuration",)),
    *_entry_ops("config/billing-profiles/{name}", "name", "billing profile"),
    Operation("GET", "config/tenants", "Tenants", {200: ConfigEntries}, tags=("configuration",)),
    *_entry_ops("config/tenants/{tenantId}", "tenantId", "tenant"),
    Operation("GET", "config/custom-licences", "Custom licences", {200: ConfigEntries}, tags=("configuration",)),
    *_entry_ops("config/custom-licences/{name}", "name", "custom licence"),
    Operation("GET", "config/excluded-licences", "Licences excluded everywhere", {200: ConfigEntries},
              tags=("configuration",)),
    Operation("PUT", "config/excluded-licences", "Replace the excluded licences", {200: ConfigChange, **CHANGE_ERRORS},
              (IF_MATCH, VERSION_Q, COMMENT), AnyDocument, tags=("configuration",)),
    Operation("GET", "onboarding", "Onboarding suggestions", {200: OnboardingSuggestions, 400: Error, 502: Error},
              (Param("configured", enum=("true", "false")), Param("format", enum=("json", "yaml"))),
              tags=("onboarding",)),
    Operation("POST", "onboarding", "Apply reviewed onboarding rows", {200: AnyDocument, 400: Error, 409: Error,
                                                                       502: Error},
              (COMMENT,), AnyDocument, tags=("onboarding",)),
    Operation("GET", "psa/{connection}/companies/{companyId}/agreements", "A PSA company's agreements",
              {200: AgreementList, 400: Error, 404: Error, 502: Error},
              (Param("connection", "path", True), Param("companyId", "path", True)), tags=("psa",)),
    Operation("GET", "psa/{connection}/agreements/{agreementId}/lines", "An agreement's lines",
              {200: LineList, 400: Error, 404: Error, 502: Error},
              (Param("connection", "path", True), Param("agreementId", "path", True)), tags=("psa",)),
    Operation("GET", "psa/{connection}/products", "The PSA's product catalogue",
              {200: ProductList, 404: Error, 502: Error}, (Param("connection", "path", True),), tags=("psa",)),
    Operation("GET", "openapi.json", "This document", {200: "application/json"}, tags=("meta",)),
    # the dashboard (signed-in users; HTML)
    Operation("GET", "dashboard", "Overview", {200: HTML, 401: HTML, 403: HTML}, dashboard=True),
    Operation("GET", "dashboard/tenants", "Tenants", {200: HTML, 401: HTML}, (Param("q"),), dashboard=True),
    Operation("GET", "dashboard/tenants/{tenantId}", "A tenant: licence history and PSA lines",
              {200: HTML, 401: HTML, 404: HTML}, (Param("tenantId", "path", True),), dashboard=True),
    Operation("GET", "dashboard/tenants/{tenantId}/lines", "A tenant's PSA lines (fragment)", {200: HTML, 401: HTML},
              (Param("tenantId", "path", True),), dashboard=True),
    Operation("GET", "dashboard/mapping", "Unlinked licences by product name", {200: HTML, 401: HTML},
              (Param("message"),), dashboard=True),
    Operation("GET", "dashboard/mapping/agreements", "Agreement options (fragment)", {200: HTML, 401: HTML},
              (Param("company"),), dashboard=True),
    Operation("GET", "dashboard/mapping/lines", "Line options (fragment)", {200: HTML, 401: HTML},
              (Param("company"), Param("agreement")), dashboard=True),
    Operation("POST", "dashboard/mapping/link", "Link an unlinked licence", {303: HTML, 400: HTML, 401: HTML,
                                                                              403: HTML},
              body=LinkForm, body_type="application/x-www-form-urlencoded", dashboard=True),
    Operation("GET", "dashboard/approvals", "Held changes", {200: HTML, 400: HTML, 401: HTML},
              (Param("status"), Param("message")), dashboard=True),
    Operation("POST", "dashboard/approvals/decide", "Decide held changes in bulk",
              {303: HTML, 400: HTML, 401: HTML, 403: HTML}, body=DecideForm,
              body_type="application/x-www-form-urlencoded", dashboard=True),
    Operation("GET", "dashboard/runs", "Runs", {200: HTML, 401: HTML}, (Param("message"),), dashboard=True),
    Operation("POST", "dashboard/runs", "Start a sync", {303: HTML, 401: HTML, 403: HTML}, body=RunForm,
              body_type="application/x-www-form-urlencoded", dashboard=True),
    Operation("GET", "dashboard/runs/{runId}", "A run's report and live progress", {200: HTML, 401: HTML, 404: HTML},
              (Param("runId", "path", True),), dashboard=True),
    Operation("GET", "dashboard/audit", "Audit trail", {200: HTML, 401: HTML},
              (Param("customer"), Param("from"), Param("to"), Param("event")), dashboard=True),
    Operation("GET", "dashboard/audit.csv", "Audit trail as CSV", {200: "text/csv", 400: HTML, 401: HTML},
              (Param("customer"), Param("from"), Param("to"), Param("event")), dashboard=True),
    Operation("GET", "dashboard/onboarding", "Onboarding suggestions", {200: HTML, 401: HTML, 502: HTML},
              (Param("message"),), dashboard=True),
    Operation("POST", "dashboard/onboarding", "Accept suggestions in bulk", {303: HTML, 400: HTML, 401: HTML,
                                                                             403: HTML},
              body=SelectForm, body_type="application/x-www-form-urlencoded", dashboard=True),
    Operation("GET", "dashboard/notifications", "Channels and a preview", {200: HTML, 401: HTML}, dashboard=True),
    Operation("POST", "dashboard/notifications", "Send a test message", {200: HTML, 400: HTML, 401: HTML, 403: HTML},
              body=CsrfForm, body_type="application/x-www-form-urlencoded", dashboard=True),
    Operation("GET", "dashboard/configuration", "Configuration history and diff", {200: HTML, 401: HTML},
              (Param("from"), Param("to"), Param("message")), dashboard=True),
    Operation("POST", "dashboard/configuration", "Roll back to a version", {303: HTML, 400: HTML, 401: HTML,
                                                                            403: HTML, 409: HTML},
              body=RollbackForm, body_type="application/x-www-form-urlencoded", dashboard=True),
    Operation("GET", "dashboard/configuration.yaml", "The current configuration as a YAML download",
              {200: "application/yaml", 401: HTML}, dashboard=True),
    Operation("GET", "dashboard/static/{name}", "The dashboard's static files", {200: "application/octet-stream",
                                                                                400: "application/json",
                                                                                404: "text/plain"},
              (Param("name", "path", True),), dashboard=True),
)


def openapi_path(route: str) -> str:
    return "/api/" + route.replace("{*", "{")


def _parameter(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if param.enum:
        schema["enum"] = list(param.enum)
    if param.format:
        schema["format"] = param.format
    if param.where == "path":
        schema["minLength"] = 1
    out: dict[str, Any] = {"name": param.name, "in": param.where, "required": param.required or param.where == "path",
                           "schema": schema}
    if param.description:
        out["description"] = param.description
    return out


def _plain_content(model: type[BaseModel] | str) -> dict[str, Any]:
    if isinstance(model, str):
        return {model: {"schema": {"type": "string"}}}
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}


@cache
def openapi_document() -> dict[str, Any]:
    _, definitions = models_json_schema([(m, "validation") for m in MODELS],
                                        ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        operation: dict[str, Any] = {
            "operationId": f"{op.method.lower()}_{op.route.replace('/', '_').replace('{', '').replace('}', '')}"
                           .replace("*", "").replace(".", "_"),
            "summary": op.summary,
            "tags": list(op.tags or (("dashboard",) if op.dashboard else ())),
            "parameters": [_parameter(p) for p in op.params],
            "responses": {str(code): {"description": _describe(code), "content": _content(model)}
                          for code, model in {**op.answers, **_unavailable(op)}.items()},
            "security": [{"appServiceAuthentication": []}] if op.dashboard else
            ([] if op.route == "openapi.json" else [{"functionKey": []}, {"functionKeyQuery": []}]),
        }
        if op.body is not None:
            operation["requestBody"] = {"required": op.method == "PUT" or op.dashboard, "content": {
                op.body_type: {"schema": {"$ref": f"#/components/schemas/{op.body.__name__}"}}}}
        paths.setdefault(openapi_path(op.route), {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "SeatSync", "version": VERSION,
                 "description": "The Function App's HTTP API (function key) and the dashboard (App Service "
                                "Authentication, Entra ID). See docs/config-api.md and docs/deploy.md."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
                "appServiceAuthentication": {"type": "apiKey", "in": "cookie", "name": "AppServiceAuthSession",
                                             "description": "Entra ID sign-in through App Service Authentication"},
            },
        },
    }


def _unavailable(op: Operation) -> dict[int, type[BaseModel] | str]:
    """503 on every operation that reads or writes Table Storage (all but this document and the
    static files): a page for the dashboard's pages, a problem for the API."""
    if op.route == "openapi.json" or op.route.startswith("dashboard/static/"):
        return {}
    return {503: HTML if op.dashboard else PROBLEM}


def _content(model: type[BaseModel] | str) -> dict[str, Any]:
    if model is PROBLEM:
        return {"application/problem+json": {"schema": {"$ref": f"#/components/schemas/{Problem.__name__}"}}}
    return _plain_content(model)


def _describe(code: int) -> str:
    return {200: "OK", 201: "Created", 202: "Accepted", 303: "See other (after a form)", 400: "Bad request",
            401: "Not signed in", 403: "Not allowed", 404: "Not found", 409: "Conflict", 500: "Server error",
            502: "A PSA or Graph could not be read",
            503: "Table Storage cannot be reached (one line saying so)"}.get(code, "Answer")
