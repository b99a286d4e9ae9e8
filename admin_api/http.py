"""Small helpers shared by the administration endpoints: JSON answers, errors naming the field,
and who made a change."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func

from shared.errors import ConfigError, ConflictError, RequestValidationError, SeatSyncError


def answer(status: int, body: Any) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json")


def error_answer(exc: Exception) -> func.HttpResponse:
    """The HTTP form of the product's errors: 400 naming the field, 409 on a conflict."""
    if isinstance(exc, RequestValidationError):
        return answer(400, {"error": exc.message, "field": exc.field})
    if isinstance(exc, ConfigError):
        return answer(400, {"error": str(exc), "problems": exc.problems})
    if isinstance(exc, ConflictError):
        return answer(409, {"error": str(exc)})
    if isinstance(exc, SeatSyncError):
        return answer(422, {"error": str(exc)})
    raise exc


def json_body(req: func.HttpRequest) -> Any:
    body = req.get_body()
    if not body or not body.strip():
        raise RequestValidationError("body", "a JSON body is required")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestValidationError("body", f"not valid JSON: {exc}") from None


def actor(req: func.HttpRequest) -> str:
    """Who is asking: the signed-in principal (App Service authentication) or the function key."""
    return req.headers.get("x-ms-client-principal-name") or "api (function key)"
