"""Configuration and onboarding endpoints (docs/config-api.md, docs/onboarding.md).

Each route parses the request, calls the service (``shared.services.config_api`` or
``shared.services.onboarding``) and answers. Reads answer the configuration version in an ``ETag``
header; changes take the version the caller edited (``If-Match`` or ``?version=``) and answer the
new one. Errors: 400 naming the field, 404 for an unknown name, 409 for a stale version or an
entry still in use, 502 when Graph or a PSA cannot be read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import azure.functions as func

from admin_api.blueprint import bp
from admin_api.http import actor, error_answer, is_yaml
from shared.errors import ConfigError, HttpServiceError, RequestValidationError, SeatSyncError

# The services are imported when a request arrives, not when the app registers the routes: a cold
# start only pays for the routes it serves.
if TYPE_CHECKING:
    from shared.adapters.config_store import ConfigVersion
    from shared.services.config_api import Change, ConfigApi, Section

# ------------------------------------------------------------------------ helpers


def respond(status: int, body: Any, version: ConfigVersion | None = None) -> func.HttpResponse:
    headers = {"ETag": f'"{version.version_id}"'} if version is not None else None
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json",
                             headers=headers)


def failure(exc: Exception) -> func.HttpResponse:
    """The HTTP form of an error: 400 naming the field(s), 404, 409, 502."""
    from shared.services.config_api import InUseError, NotFoundError, locate

    if isinstance(exc, NotFoundError):
        return respond(404, {"error": str(exc)})
    if isinstance(exc, InUseError):
        return respond(409, {"error": str(exc), "usedBy": exc.used_by})
    if isinstance(exc, ConfigError):
        errors = []
        for problem in exc.problems:
            field, message = locate(problem)
            errors.append({"field": field or "body", "message": message})
        return respond(400, {"error": str(exc), "field": errors[0]["field"] if errors else "",
                             "problems": exc.problems, "errors": errors})
    if isinstance(exc, HttpServiceError):
        return respond(502, {"error": str(exc)})
    return error_answer(exc)


def guarded(work: Callable[[], func.HttpResponse]) -> func.HttpResponse:
    try:
        return work()
    except SeatSyncError as exc:
        return failure(exc)


def api() -> ConfigApi:
    from shared.bootstrap import get_services
    from shared.services.config_api import ConfigApi

    services = get_services()
    return ConfigApi(services.config_repository, services.snapshots)


def body_of(req: func.HttpRequest) -> Any:
    from shared.services.config_api import load_document

    return load_document(req.get_body(), yaml_text=is_yaml(req))


def expected_of(req: func.HttpRequest) -> str | None:
    from shared.services.config_api import expected_version

    return expected_version(req.headers.get("If-Match"), req.params.get("version"))


def comment_of(req: func.HttpRequest) -> str | None:
    comment = req.params.get("comment")
    return comment.strip()[:500] if comment and comment.strip() else None


def change_answer(change: Change, key: str | None = None) -> func.HttpResponse:
    body = change.to_json()
    if key is not None and change.entry is not None:
        body[key] = change.entry
    return respond(201 if change.created else 200, body, change.version)


# ------------------------------------------------------------------------ whole document


@bp.function_name("config_document")
@bp.route(route="config", methods=["GET", "PUT"], auth_level=func.AuthLevel.FUNCTION)
def config_document(req: func.HttpRequest) -> func.HttpResponse:
    from shared.services.config_api import version_json

    def work() -> func.HttpResponse:
        service = api()
        if req.method == "GET":
            document, version = service.document()
            return respond(200, {"version": version_json(version), "config": document}, version)
        change = service.put_document(body_of(req), expected_of(req), actor(req), comment_of(req))
        return change_answer(change)

    return guarded(work)


@bp.function_name("config_export_yaml")
@bp.route(route="config.yaml", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def config_export_yaml(req: func.HttpRequest) -> func.HttpResponse:
    def work() -> func.HttpResponse:
        text, version = api().export_yaml()
        headers = {"ETag": f'"{version.version_id}"'} if version else None
        return func.HttpResponse(text, status_code=200, mimetype="application/yaml", headers=headers)

    return guarded(work)


@bp.function_name("config_history")
@bp.route(route="config/history", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def config_history(req: func.HttpRequest) -> func.HttpResponse:
    from shared.services.config_api import version_json

    def work() -> func.HttpResponse:
        versions = api().history()
        limit = req.params.get("limit")
        if limit is not None:
            if not (limit.isascii() and limit.isdigit()) or int(limit) < 1:
                raise RequestValidationError("limit", f"must be a positive number, got {limit!r}")
            versions = versions[:int(limit)]
        return respond(200, {"versions": [version_json(v) for v in versions]})

    return guarded(work)


@bp.function_name("config_history_version")
@bp.route(route="config/history/{versionId}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def config_history_version(req: func.HttpRequest) -> func.HttpResponse:
    def work() -> func.HttpResponse:
        version_id = req.route_params.get("versionId", "")
        return respond(200, {"versionId": version_id, "config": api().old_version(version_id)})

    return guarded(work)


# ------------------------------------------------------------------------ entries


def entries(req: func.HttpRequest, section: Section) -> func.HttpResponse:
    from shared.services.config_api import TENANTS, tenant_summary

    def work() -> func.HttpResponse:
        service = api()
        if section is TENANTS:
            config, version = service.read()
            return respond(200, {"version": version.version_id if version else None,
                                 "tenants": [tenant_summary(t) for t in config.tenants]}, version)
        items, version = service.list_entries(section)
        return respond(200, {"version": version.version_id if version else None, section.key: items}, version)

    return guarded(work)


def entry(req: func.HttpRequest, section: Section, route_key: str) -> func.HttpResponse:
    def work() -> func.HttpResponse:
        service = api()
        key = req.route_params.get(route_key, "")
        if req.method == "GET":
            found, version = service.get_entry(section, key)
            return respond(200, found, version)
        if req.method == "DELETE":
            change = service.delete_entry(section, key, actor(req), expected=expected_of(req),
                                          comment=comment_of(req))
            return change_answer(change)
        body = body_of(req)
        change = service.put_entry(section, key, body, actor(req), expected=expected_of(req),
                                   comment=comment_of(req))
        return change_answer(change, section.item)

    return guarded(work)


@bp.function_name("config_billing_profiles")
@bp.route(route="config/billing-profiles", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def config_billing_profiles(req: func.HttpRequest) -> func.HttpResponse:
    from shared.services.config_api import PROFILES

    return entries(req, PROFILES)


@bp.function_name("config_billing_profile")
@bp.route(route="config/billing-profiles/{name}", methods=["GET", "PUT", "DELETE"],
          auth_level=func.AuthLevel.FUNCTION)
def config_billing_profile(req: func.HttpRequest) -> func.HttpResponse:
    from shared.services.config_api import PROFILES

    return entry(req, PROFILES, "name")


@bp.function_name("config_tenants")
@bp.route(route="config/tenants", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def config_tenants(req: func.HttpRequest) -> func.HttpResponse:
    from shared.services.config_api import TENANTS

    return entries(req, TENANTS)


@bp.function_name("config_tenant")
@bp.route(route="config/tenants/{tenantId}", methods=["GET", "PUT", "DELETE"], auth_level=func.AuthLevel.FUNCTION)
def config_tenant(req: func.HttpRequest) -> func.HttpResponse:
    from shared.services.config_api import TENANTS

    return entry(req, TENANTS, "tenantId")


@bp.function_name("config_custom_licences")
@bp.route(route="config/custom-licences", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def config_custom_licences(req: func.HttpRequest) -> func.HttpResponse:
    from shared.services.config_api import CUSTOM_LICENCES

    return entries(req, CUSTOM_LICENCES)


@bp.function_name("config_custom_licence")
@bp.route(route="config/custom-licences/{name}", methods=["GET", "PUT", "DELETE"],
          auth_level=func.AuthLevel.FUNCTION)
def config_custom_licence(req: func.HttpRequest) -> func.HttpResponse:
    from shared.services.config_api import CUSTOM_LICENCES

    return entry(req, CUSTOM_LICENCES, "name")


@bp.function_name("config_excluded_licences")
@bp.route(route="config/excluded-licences", methods=["GET", "PUT"], auth_level=func.AuthLevel.FUNCTION)
def config_excluded_licences(req: func.HttpRequest) -> func.HttpResponse:
    def work() -> func.HttpResponse:
        service = api()
        if req.method == "GET":
            values, version = service.excluded_licences()
            return respond(200, {"version": version.version_id if version else None,
                                 "excludedLicences": values}, version)
        change = service.put_excluded_licences(body_of(req), actor(req), expected=expected_of(req),
                                               comment=comment_of(req))
        return change_answer(change)

    return guarded(work)


# ------------------------------------------------------------------------ onboarding


@bp.function_name("onboarding")
@bp.route(route="onboarding", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
def onboarding(req: func.HttpRequest) -> func.HttpResponse:
    from shared.bootstrap import get_services
    from shared.services.onboarding import (
        REVIEW_HEADER,
        apply_rows,
        level_counts,
        onboarding_suggestions,
        parse_rows,
        review_document,
    )

    def work() -> func.HttpResponse:
        import yaml

        services = get_services()
        if req.method == "GET":
            configured = (req.params.get("configured") or "true").lower()
            if configured not in ("true", "false"):
                raise RequestValidationError("configured", "must be true or false")
            found, inputs = onboarding_suggestions(services, only_unconfigured=configured == "false")
            connections = [c.name for c in services.config().psa_connections]
            if (req.params.get("format") or "json").lower() == "yaml":
                text = REVIEW_HEADER + yaml.safe_dump(review_document(found, connections), sort_keys=False,
                                                      allow_unicode=True, width=120)
                return func.HttpResponse(text, status_code=200, mimetype="application/yaml")
            problems = [f"PSA connection '{name}' could not be read: {why}" for name, why in inputs.unreadable.items()]
            return respond(200, {"summary": level_counts(found), "problems": problems,
                                 "tenants": [s.to_json() for s in found]})
        document = body_of(req)
        connections = [c.name for c in services.config().psa_connections]
        rows = parse_rows(document, connections)
        comment = document.get("comment") if isinstance(document, dict) else None
        result = apply_rows(services, rows, actor(req), comment if isinstance(comment, str) else comment_of(req))
        return respond(200, result.to_json(), result.version if result.changed else None)

    return guarded(work)
