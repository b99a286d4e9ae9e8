"""A local HTTP host for the Function App's own HTTP functions (``seatsync serve``).

The Functions host cannot be installed everywhere SeatSync is developed or evaluated, so this
WSGI application plays its part on a loopback port: it finds the HTTP functions registered on
``function_app.app`` by their trigger bindings (route template, methods, authorisation level,
durable client binding), turns each request into an ``azure.functions.HttpRequest``, calls the
same handler the Functions host calls and sends back its ``HttpResponse``. Routes carry the
host's ``api/`` prefix.

It also plays the two platform parts the code relies on:
- **App Service Authentication**: it removes any ``x-ms-client-principal*`` header a client sent
  and adds the development identity's principal (``auth_typ`` ``development``), as the platform
  does for a signed-in user. The identity comes from ``seatsync serve --user/--role``; the
  local-only pages ``/.auth/login/dev`` and ``/.auth/logout`` switch it per browser (a cookie),
  like the platform's ``/.auth/login/aad`` and ``/.auth/logout``.
- **Durable Functions**: a client that runs an orchestration in a background thread with the
  local runner and answers its status (runtime status, custom status, output), also at the
  Durable status URL ``/runtime/webhooks/durabletask/instances/{id}``.

Function keys are not checked, as the Functions Core Tools do not check them locally.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import html
import inspect
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import azure.durable_functions as df
import azure.functions as func
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from admin_api.auth import DEVELOPMENT_AUTH_TYPE, PRINCIPAL_HEADER, Role, encode_principal
from admin_api.http import bounded
from local_runner.runner import FunctionTable, run_orchestration

log = logging.getLogger(__name__)

ROUTE_PREFIX = "api"
DASHBOARD_PATH = f"/{ROUTE_PREFIX}/dashboard"
IDENTITY_COOKIE = "seatsync-dev-identity"
SIGNED_OUT = "signed-out"
_PARAMETER = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?(\?)?\}")


# ------------------------------------------------------------------------ discovery


@dataclass(frozen=True)
class HttpFunction:
    """One registered HTTP function and how to reach it."""

    name: str
    route: str
    methods: frozenset[str]
    auth_level: str
    durable_client: bool
    handler: Callable[..., Any]
    pattern: re.Pattern[str]

    @property
    def specificity(self) -> tuple[int, int]:
        """Literal segments win over parameters, as in the host's routing; catch-alls come last."""
        segments = self.route.split("/")
        literal = sum(1 for s in segments if "{" not in s)
        return (0 if "{*" in self.route else 1, literal * 100 + len(segments))


def route_pattern(template: str) -> re.Pattern[str]:
    """A regular expression of a Functions route template: ``{name}`` one segment, ``{*rest}``
    the rest of the path, ``{name?}`` optional, constraints (``{id:int}``) accepted."""
    out, position = "", 0
    for match in _PARAMETER.finditer(template):
        out += re.escape(template[position:match.start()])
        catch_all, name, optional = match.groups()
        body = ".*" if catch_all else "[^/]+"
        out += f"(?P<{name}>{body})" + ("?" if optional else "")
        position = match.end()
    out += re.escape(template[position:])
    return re.compile(f"^{out}$")


def http_functions(functions: Iterable[Any]) -> list[HttpFunction]:
    """The HTTP functions among a ``DFApp``'s registered functions, most specific route first."""
    found = []
    for function in functions:
        bindings = [json.loads(b) for b in function.get_raw_bindings()]
        trigger = next((b for b in bindings if b["type"] == "httpTrigger"), None)
        if trigger is None:
            continue
        durable = any(b["type"] == "durableClient" for b in bindings)
        user = function.get_user_function()
        # a durable route: its own code (under the SDK's client middleware, which expects the
        # host's client JSON) called with the local client, behind the same bounds as every route
        handler = bounded(user.__wrapped__) if durable else user
        route = trigger.get("route") or function.get_function_name()
        found.append(HttpFunction(
            name=function.get_function_name(), route=route,
            methods=frozenset(m.upper() for m in trigger.get("methods") or ("GET", "POST")),
            auth_level=str(trigger.get("authLevel", "FUNCTION")).upper(), durable_client=durable,
            handler=handler, pattern=route_pattern(route)))
    return sorted(found, key=lambda f: f.specificity, reverse=True)


# ------------------------------------------------------------------------ durable client


@dataclass
class LocalInstance:
    instance_id: str
    name: str
    runtime_status: df.OrchestrationRuntimeStatus
    created_time: datetime
    last_updated_time: datetime
    custom_status: Any = None
    output: Any = None
    thread: threading.Thread | None = None
    input_: Any = None  # what it was started with (``DurableOrchestrationStatus.input_``)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "instanceId": self.instance_id, "runtimeStatus": self.runtime_status.value,
                "customStatus": self.custom_status, "output": self.output,
                "createdTime": self.created_time.isoformat(), "lastUpdatedTime": self.last_updated_time.isoformat()}


_ACTIVE = {df.OrchestrationRuntimeStatus.Running, df.OrchestrationRuntimeStatus.Pending}


class LocalDurableClient:
    """The parts of ``DurableOrchestrationClient`` SeatSync's HTTP functions use, running each
    orchestration in a background thread with the local runner."""

    def __init__(self, table: Callable[[], FunctionTable], clock: Callable[[], datetime] | None = None,
                 max_workers: int = 8) -> None:
        self._table = table
        self._clock = clock or (lambda: datetime.now(UTC))
        self._max_workers = max_workers
        self._instances: dict[str, LocalInstance] = {}
        self._lock = threading.Lock()
        self.base_url = "http://127.0.0.1"

    async def get_status(self, instance_id: str, show_history: bool = False, show_history_output: bool = False,
                         show_input: bool = False) -> LocalInstance | None:
        """As the Durable client's: the instance's input only with ``show_input`` (the host
        leaves it out otherwise), so that code reading it asks for it as it must in Azure."""
        with self._lock:
            instance = self._instances.get(instance_id)
        if instance is None or show_input:
            return instance
        return replace(instance, input_=None)

    def status(self, instance_id: str) -> LocalInstance | None:
        with self._lock:
            return self._instances.get(instance_id)

    async def start_new(self, orchestration_function_name: str, instance_id: str | None = None,
                        client_input: Any = None) -> str:
        if instance_id is None:
            raise ValueError("SeatSync starts its orchestrations with a fixed instance id")
        now = self._clock()
        with self._lock:
            current = self._instances.get(instance_id)
            if current is not None and current.runtime_status in _ACTIVE:
                # the words the Durable runtime refuses a running instance id with
                raise RuntimeError(f"An Orchestration instance with the ID '{instance_id}' already exists.")
            instance = LocalInstance(instance_id, orchestration_function_name,
                                     df.OrchestrationRuntimeStatus.Pending, now, now, input_=client_input)
            self._instances[instance_id] = instance
        instance.thread = threading.Thread(target=self._run, args=(instance, client_input),
                                           name=f"orchestration-{instance_id}", daemon=True)
        instance.thread.start()
        return instance_id

    def _run(self, instance: LocalInstance, client_input: Any) -> None:
        def follow(status: Any) -> None:
            instance.custom_status = status
            instance.last_updated_time = self._clock()

        instance.runtime_status = df.OrchestrationRuntimeStatus.Running
        try:
            instance.output = run_orchestration(self._table(), instance.name, client_input, instance.instance_id,
                                                max_workers=self._max_workers, clock=self._clock,
                                                on_status=follow)
            instance.runtime_status = df.OrchestrationRuntimeStatus.Completed
        except Exception as exc:
            log.exception("orchestration %s failed", instance.instance_id)
            instance.output = f"{type(exc).__name__}: {exc}"
            instance.runtime_status = df.OrchestrationRuntimeStatus.Failed
        instance.last_updated_time = self._clock()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every orchestration started so far (tests and shutdown)."""
        with self._lock:
            threads = [i.thread for i in self._instances.values() if i.thread is not None]
        for thread in threads:
            thread.join(timeout)

    def create_check_status_response(self, request: func.HttpRequest, instance_id: str) -> func.HttpResponse:
        base = f"{self.base_url}/runtime/webhooks/durabletask/instances/{quote(instance_id)}"
        body = {"id": instance_id, "statusQueryGetUri": base, "sendEventPostUri": f"{base}/raiseEvent/{{eventName}}",
                "terminatePostUri": f"{base}/terminate?reason={{text}}", "purgeHistoryDeleteUri": base}
        return func.HttpResponse(json.dumps(body), status_code=202, mimetype="application/json",
                                 headers={"Location": base})


# ------------------------------------------------------------------------ identity


@dataclass(frozen=True)
class DevIdentity:
    """The development identity the host signs requests in as."""

    name: str
    roles: tuple[str, ...] = field(default=("Admin",))

    def principal(self) -> str:
        return encode_principal(self.name, list(self.roles), DEVELOPMENT_AUTH_TYPE, user_id=f"dev:{self.name}")

    def cookie(self) -> str:
        return base64.urlsafe_b64encode(json.dumps({"name": self.name, "roles": list(self.roles)}).encode()).decode()

    @classmethod
    def from_cookie(cls, value: str) -> DevIdentity | None:
        try:
            document = json.loads(base64.urlsafe_b64decode(value.encode()))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        if not isinstance(document, dict) or not isinstance(document.get("name"), str) or not document["name"]:
            return None
        roles = tuple(r for r in document.get("roles", []) if isinstance(r, str) and Role.parse(r))
        return cls(document["name"][:200], roles)


# ------------------------------------------------------------------------ the host


class LocalHost:
    """The WSGI application: the Function App's HTTP functions, the development sign-in and the
    Durable status endpoint."""

    def __init__(self, functions: list[HttpFunction], durable: LocalDurableClient,
                 identity: DevIdentity | None) -> None:
        self.functions = functions
        self.durable = durable
        self.identity = identity

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            response = Response("internal server error", status=500, mimetype="text/plain")
        return response(environ, start_response)

    # -- routing ---------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        path = request.path
        if path in ("/", ""):
            return redirect(f"{DASHBOARD_PATH}/")
        if path.startswith("/.auth/"):
            return self.auth_endpoint(request)
        if path.startswith("/runtime/webhooks/durabletask/instances/"):
            instance = self.durable.status(path.rsplit("/", 1)[-1])
            if instance is None:
                return Response(json.dumps({"error": "no such instance"}), status=404, mimetype="application/json")
            return Response(json.dumps(instance.to_json(), default=str), status=200, mimetype="application/json")
        prefix = f"/{ROUTE_PREFIX}/"
        if not path.startswith(prefix):
            return Response("not found", status=404, mimetype="text/plain")
        # the Functions host's routing takes a trailing slash as the same route (/api/dashboard/)
        route = path[len(prefix):].removesuffix("/")
        allowed: set[str] = set()
        for function in self.functions:
            match = function.pattern.match(route)
            if match is None:
                continue
            if request.method not in function.methods:
                allowed |= function.methods
                continue
            params = {k: v for k, v in match.groupdict().items() if v is not None}
            return self.invoke(function, request, params)
        if allowed:
            return Response("method not allowed", status=405, mimetype="text/plain",
                            headers={"Allow": ", ".join(sorted(allowed))})
        return Response("not found", status=404, mimetype="text/plain")

    def caller_identity(self, request: Request) -> DevIdentity | None:
        cookie = request.cookies.get(IDENTITY_COOKIE)
        if cookie == SIGNED_OUT:
            return None
        if cookie:
            return DevIdentity.from_cookie(cookie) or self.identity
        return self.identity

    def invoke(self, function: HttpFunction, request: Request, route_params: dict[str, str]) -> Response:
        headers = {k: v for k, v in request.headers.items() if not k.lower().startswith(PRINCIPAL_HEADER)}
        identity = self.caller_identity(request)
        if identity is not None:
            headers[PRINCIPAL_HEADER] = identity.principal()
            headers[f"{PRINCIPAL_HEADER}-name"] = identity.name
        self.durable.base_url = request.host_url.rstrip("/")
        http_request = func.HttpRequest(
            method=request.method, url=request.url, headers=headers,
            params=dict(request.args.items()), route_params=route_params,
            body=request.get_data(cache=False))
        result = function.handler(http_request, self.durable) if function.durable_client else \
            function.handler(http_request)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        if not isinstance(result, func.HttpResponse):
            raise TypeError(f"{function.name} returned {type(result).__name__}, not an HttpResponse")
        return to_response(result)

    # -- development sign-in ----------------------------------------------------------------
    def auth_endpoint(self, request: Request) -> Response:
        target = safe_redirect(request.values.get("post_login_redirect_uri")
                               or request.values.get("post_logout_redirect_uri"))
        if request.path == "/.auth/logout":
            response = redirect(target or "/.auth/login/dev")
            response.set_cookie(IDENTITY_COOKIE, SIGNED_OUT, httponly=True, samesite="Lax", path="/")
            return response
        if request.path == "/.auth/me":
            identity = self.caller_identity(request)
            body = [] if identity is None else [{"provider_name": DEVELOPMENT_AUTH_TYPE, "user_id": identity.name,
                                                 "user_roles": list(identity.roles)}]
            return Response(json.dumps(body), mimetype="application/json")
        if request.path in ("/.auth/login/dev", "/.auth/login/aad"):
            name = (request.values.get("user") or "").strip()
            if name:
                roles = tuple(r for r in request.values.getlist("role") if Role.parse(r)) or ("Viewer",)
                response = redirect(target or f"{DASHBOARD_PATH}/")
                response.set_cookie(IDENTITY_COOKIE, DevIdentity(name[:200], roles).cookie(), httponly=True,
                                    samesite="Lax", path="/")
                return response
            return Response(sign_in_page(target), mimetype="text/html")
        return Response("not found", status=404, mimetype="text/plain")


async def _await(result: Any) -> Any:
    return await result


def safe_redirect(value: str | None) -> str | None:
    """Only a path on this host: never an open redirect."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


def redirect(location: str) -> Response:
    return Response("", status=302, headers={"Location": location})


def to_response(result: func.HttpResponse) -> Response:
    headers = Headers()
    for key, value in result.headers.items():
        if key.lower() != "content-type":
            headers.add(key, value)
    content_type = result.headers.get("Content-Type") or result.mimetype or "text/plain"
    if "charset" not in content_type and content_type.startswith(("text/", "application/json", "application/yaml")):
        content_type += f"; charset={result.charset or 'utf-8'}"
    return Response(result.get_body(), status=result.status_code, headers=headers, content_type=content_type)


def sign_in_page(target: str | None) -> str:
    options = "".join(f'<option value="{r.label}">{r.label}</option>' for r in sorted(Role, reverse=True))
    hidden = f'<input type="hidden" name="post_login_redirect_uri" value="{html.escape(target)}">' if target else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>SeatSync: development sign-in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:sans-serif;max-width:30rem;margin:2rem auto">
<h1>Development sign-in</h1>
<p>This is the local host of <code>seatsync serve</code>. In Azure, Entra ID signs you in; here you choose
a development identity.</p>
<form method="post" action="/.auth/login/dev">{hidden}
<p><label for="user">Name</label><br><input id="user" name="user" required value="dev@localhost"></p>
<p><label for="role">Role</label><br><select id="role" name="role">{options}</select></p>
<p><button type="submit">Sign in</button></p></form></body></html>"""
