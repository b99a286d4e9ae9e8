"""The Function App's HTTP routes as the Functions host calls them, for tests that cover every
route: discovered from the registered functions (a new route is covered without listing it),
called through the same wrapper and middleware the host calls, with a Durable client whose
host is a small local stand-in (``DurableHost``: no instance is running; a start is accepted)."""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import azure.functions as func
from azure.functions.decorators.http import HttpTrigger

from local_runner.local_sync import app_functions

BASE = "https://seatsync.example.net/api/"
_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


@dataclass(frozen=True)
class Route:
    """One HTTP function: its name, route template, methods and the function the host calls."""

    name: str
    template: str
    methods: tuple[str, ...]
    handler: Any
    request_argument: str
    client_argument: str | None  # the Durable client's parameter, when the route takes one

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(_PARAM.findall(self.template))

    def path(self, route_params: dict[str, str]) -> str:
        return _PARAM.sub(lambda m: route_params.get(m.group(1), "x"), self.template)

    @property
    def query_names(self) -> tuple[str, ...]:
        """The query parameters the route's module reads (``req.params.get("limit")``), found in
        its source so that a new parameter is covered without listing it."""
        module = inspect.getmodule(getattr(self.handler, "__wrapped__", self.handler))
        source = inspect.getsource(module) if module is not None else ""
        names = set()
        for node in ast.walk(ast.parse(source)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                    and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "params"
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                names.add(node.args[0].value)
        return tuple(sorted(names))


def http_routes() -> list[Route]:
    """Every HTTP-triggered function of the Function App."""
    found = []
    for function in app_functions():
        trigger = function.get_trigger()
        if not isinstance(trigger, HttpTrigger):
            continue
        client = next((b.name for b in function.get_bindings() if b.type == "durableClient"), None)
        methods = tuple(str(getattr(m, "value", m)) for m in (trigger.methods or ("GET", "POST")))
        found.append(Route(function.get_function_name(), str(trigger.route), methods,
                           function.get_user_function(), str(trigger.name), client))
    return sorted(found, key=lambda r: r.name)


class _HostHandler(BaseHTTPRequestHandler):
    """The Durable extension's HTTP API as the client uses it: no instance exists; starting
    one is accepted."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class names it)
        return

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(404, {"message": "no such instance"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        instance = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        self.server.started.append(instance)  # type: ignore[attr-defined]
        self._answer(202, {"id": instance})


class DurableHost:
    """A local stand-in for the Durable extension's HTTP API, and the client binding naming it."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _HostHandler)
        self.server.started = []  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.loop = asyncio.new_event_loop()  # the client's HTTP session is bound to one loop

    @property
    def started(self) -> list[str]:
        return self.server.started  # type: ignore[attr-defined, no-any-return]

    @property
    def binding(self) -> str:
        port = self.server.server_address[1]
        base = f"http://127.0.0.1:{port}/runtime/webhooks/durabletask"
        urls = {name: f"{base}/{name}" for name in (
            "createNewInstancePostUri", "createAndWaitOnNewInstancePostUri", "id", "statusQueryGetUri",
            "sendEventPostUri", "terminatePostUri", "rewindPostUri", "purgeHistoryDeleteUri",
            "restartPostUri", "suspendPostUri", "resumePostUri")}
        return json.dumps({"taskHubName": "SeatSyncHub", "creationUrls": urls, "managementUrls": urls,
                           "baseUrl": base, "requiredQueryStringParameters": "code=test",
                           "rpcBaseUrl": f"{base}/"})

    def close(self) -> None:
        from azure.durable_functions.models.utils import http_utils

        self.loop.run_until_complete(http_utils._handle_request_error())  # closes the client's session
        self.loop.close()
        self.server.shutdown()
        self.server.server_close()


def call(route: Route, method: str, *, route_params: dict[str, str] | None = None,
         params: dict[str, str] | None = None, headers: dict[str, str] | None = None, body: bytes = b"",
         host: DurableHost | None = None) -> func.HttpResponse:
    """Call ``route`` as the Functions host does: keyword arguments by binding name."""
    route_params = route_params or {}
    query = f"?{urlencode(params)}" if params else ""
    request = func.HttpRequest(method, BASE + route.path(route_params) + query, body=body,
                               headers=headers or {}, params=params or {}, route_params=route_params)
    kwargs: dict[str, Any] = {route.request_argument: request}
    if route.client_argument is not None:
        if host is None:
            raise ValueError(f"route {route.name} takes a Durable client: give a DurableHost")
        kwargs[route.client_argument] = host.binding
    result = route.handler(**kwargs)
    if inspect.isawaitable(result):
        assert host is not None
        result = host.loop.run_until_complete(result)
    assert isinstance(result, func.HttpResponse), f"{route.name} answered {result!r}"
    return result


def durable_host() -> Iterator[DurableHost]:
    host = DurableHost()
    try:
        yield host
    finally:
        host.close()
