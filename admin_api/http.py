"""What every HTTP endpoint shares: the bounds on what a request may carry, JSON answers, errors
naming the field, and who made a change.

``Blueprint`` is the blueprint every HTTP-serving package registers its routes on. Each route
it registers is wrapped by ``bounded``, so the same limits hold on every route, present and
future, before the route's own code runs:

- a body larger than ``MAX_BODY_BYTES`` is answered 413;
- a body nested deeper than ``MAX_DEPTH`` levels (as JSON, or as YAML when the request says
  ``Content-Type: application/yaml``) is answered 400, before anything parses it;
- a route parameter that cannot be an id (``/ \\ # ?``, control characters, too long) is
  answered 400 naming the parameter: ids become Table Storage keys, which refuse those;
- Table Storage not answering is answered 503, an ``application/problem+json`` saying so in
  one line (dashboard pages answer an HTML page first: ``dashboard.web.guard``), and logged in
  one line.

Routes read bodies with ``json_body`` or ``document_body`` (``shared.config.input_limits``: UTF-8,
duplicate keys refused); an ``InputRefused`` they let through is answered 400 (413 when too
large) by the same wrapper. The limits are documented in docs/config-api.md.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

import durable_blueprint
from admin_api.auth import API_KEY_ACTOR, Caller, identify
from shared.errors import (
    ConfigError,
    ConflictError,
    InputRefused,
    NotFoundError,
    RequestValidationError,
    SeatSyncError,
)
from shared.run_failures import STORE_UNREACHABLE, store_unreachable

MAX_BODY_BYTES = 8 * 1024 * 1024
"""The largest body a route accepts: ``shared.config.input_limits.MAX_DOCUMENT_BYTES`` (a test keeps them
equal; the reader is imported when a request arrives, not when the routes are registered)."""
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
BOUNDED = "__seatsync_bounded__"
PROBLEM_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 60
log = logging.getLogger(__name__)


def answer(status: int, body: Any) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json")


def refused_answer(exc: InputRefused) -> func.HttpResponse:
    """413 for a body too large, 400 for anything else refused before it was read."""
    return answer(413 if exc.too_large else 400, {"error": exc.message, "field": exc.field})


def error_answer(exc: Exception) -> func.HttpResponse:
    """The HTTP form of the product's errors: 404 for what does not exist, 400 naming the field
    (413 for a body too large), 409 on a conflict."""
    if isinstance(exc, InputRefused):
        return refused_answer(exc)
    if isinstance(exc, NotFoundError):
        return answer(404, {"error": exc.message, "field": exc.field})
    if isinstance(exc, RequestValidationError):
        return answer(400, {"error": exc.message, "field": exc.field})
    if isinstance(exc, ConfigError):
        return answer(400, {"error": str(exc), "problems": exc.problems})
    if isinstance(exc, ConflictError):
        return answer(409, {"error": str(exc)})
    if isinstance(exc, SeatSyncError):
        return answer(422, {"error": str(exc)})
    raise exc


def unavailable_answer(req: func.HttpRequest, exc: BaseException) -> func.HttpResponse:
    """503 when Table Storage does not answer: an RFC 9457 problem (with ``error``, as every
    other error of the API has) saying so in one line, and one log line, not a traceback."""
    log_unreachable(req, exc)
    body = {"type": "about:blank", "title": "Storage unavailable", "status": 503, "detail": STORE_UNREACHABLE,
            "error": STORE_UNREACHABLE}
    return func.HttpResponse(json.dumps(body), status_code=503, mimetype=PROBLEM_TYPE,
                             headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def log_unreachable(req: func.HttpRequest, exc: BaseException) -> None:
    """One line for the log: storage did not answer a request (the cause's first line, no stack)."""
    cause = (str(exc).strip().splitlines() or [""])[0][:200]
    path = urlsplit(req.url).path  # not the query: it may hold the function key
    log.error("%s %s: Table Storage cannot be reached (%s: %s)", req.method, path, type(exc).__name__, cause)


def is_yaml(req: func.HttpRequest) -> bool:
    content_type = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    return content_type in YAML_TYPES


def json_body(req: func.HttpRequest) -> Any:
    """The request's JSON body, read strictly; required."""
    body = req.get_body()
    if not body or not body.strip():
        raise RequestValidationError("body", "a JSON body is required")
    from shared.config.input_limits import read_document

    return read_document(body, "body", yaml_text=False)


def document_body(req: func.HttpRequest) -> Any:
    """The request's body as JSON, or YAML when ``Content-Type`` says so, read strictly."""
    from shared.config.input_limits import read_document

    return read_document(req.get_body(), "body", yaml_text=is_yaml(req))


def caller(req: func.HttpRequest) -> Caller:
    """Who calls a function-key route (admin_api.auth): the API key, or the principal the
    platform signed in."""
    return identify(req.headers, req.params, key_checked=True)


def actor(req: func.HttpRequest) -> str:
    """The name recorded for a change: the signed-in principal, or the API key; never a name
    the caller wrote into a header."""
    return caller(req).actor or API_KEY_ACTOR


# --------------------------------------------------------------------------- the bounds of every route


def refusal(req: func.HttpRequest) -> func.HttpResponse | None:
    """The answer refusing ``req`` before any route code runs, or None when it is within bounds."""
    from shared.config.input_limits import MAX_DEPTH, check_nesting, check_size, key_problem

    try:
        for name, value in sorted(req.route_params.items()):
            problem = key_problem(value)
            if problem is not None:
                raise InputRefused(name, f"{name} {problem}")
        body = req.get_body()
        check_size(body, "body", MAX_BODY_BYTES)
        if body.strip():
            check_nesting(body, "body", yaml_text=is_yaml(req), max_depth=MAX_DEPTH)
    except InputRefused as exc:
        return refused_answer(exc)
    return None


def _request_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> func.HttpRequest:
    for value in (*args, *kwargs.values()):
        if isinstance(value, func.HttpRequest):
            return value
    raise TypeError("an HTTP route was called without its HttpRequest")


def bounded(handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler`` (an HTTP route's function, async or not) behind the bounds above.

    The wrapper keeps the handler's signature and annotations (the Functions worker binds
    arguments by them); its ``__wrapped__`` is the route's own code, under any middleware."""
    if getattr(handler, BOUNDED, False):
        return handler
    if inspect.iscoroutinefunction(handler):
        @functools.wraps(handler)
        async def guarded_async(*args: Any, **kwargs: Any) -> Any:
            request = _request_of(args, kwargs)
            refused = refusal(request)
            if refused is not None:
                return refused
            try:
                return await handler(*args, **kwargs)
            except InputRefused as exc:
                return refused_answer(exc)
            except Exception as exc:
                if store_unreachable(exc):
                    return unavailable_answer(request, exc)
                raise

        guarded: Callable[..., Any] = guarded_async
    else:
        @functools.wraps(handler)
        def guarded_sync(*args: Any, **kwargs: Any) -> Any:
            request = _request_of(args, kwargs)
            refused = refusal(request)
            if refused is not None:
                return refused
            try:
                return handler(*args, **kwargs)
            except InputRefused as exc:
                return refused_answer(exc)
            except Exception as exc:
                if store_unreachable(exc):
                    return unavailable_answer(request, exc)
                raise

        guarded = guarded_sync
    guarded.__signature__ = inspect.signature(handler)  # type: ignore[attr-defined]
    guarded.__wrapped__ = getattr(handler, "__wrapped__", handler)  # type: ignore[attr-defined]
    setattr(guarded, BOUNDED, True)
    return guarded


class Blueprint(durable_blueprint.Blueprint):
    """A Durable Functions blueprint whose HTTP routes are all ``bounded``."""

    def route(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        register = super().route(*args, **kwargs)

        def decorator(target: Any) -> Any:
            builder = register(target)
            function = builder._function  # the SDK's own middleware replaces it the same way
            function._func = bounded(function._func)
            return builder

        return decorator
