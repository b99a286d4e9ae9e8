"""What every emulator shares: an HTTPS server on loopback, routing, fault injection, a request
log and the admin API that tests and the demo use to switch faults and read state back.

An emulator subclasses ``Emulator``, declares its routes with ``route`` and keeps its state in
plain Python objects guarded by ``self.lock``. The admin API lives under ``/_admin``:

- ``GET  /_admin/state``     the emulator's state as JSON (what a PSA now bills, etc.)
- ``GET  /_admin/requests``  the request log (method, path, status, fault applied)
- ``POST /_admin/faults``    add fault rules (a rule object or a list of them)
- ``DELETE /_admin/faults``  clear every fault rule
- ``POST /_admin/reset``     reload the scenario section the emulator started with

Fault rules (also accepted in scenario files, see docs/emulators.md)::

    {"kind": "throttle", "path": "/v1.0/users", "method": "GET", "tenant": "<guid>",
     "times": 2, "after": 0, "retryAfter": 1}

``kind`` is one of ``throttle`` (429 + Retry-After), ``error`` (``status``, default 503),
``timeout`` (the answer is held back ``delay`` seconds), ``broken-paging`` (the emulator's pager
breaks its next link), ``auth`` (the emulator's own authentication failure). ``path`` is a
regular expression searched in the request path; ``tenant`` restricts a rule to requests made
for one tenant (emulators that know tenants say which tenant a request is for); ``times`` is
how many matching requests get the fault (absent: all of them); ``after`` lets that many
matching requests through first.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import ssl
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from emulators.tls import TlsFiles

log = logging.getLogger(__name__)

FAULT_KINDS = frozenset({"throttle", "error", "timeout", "broken-paging", "auth", "corrupt"})


class EmulatorError(Exception):
    """A scenario or admin request the emulator cannot accept."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    tenant: str | None = None

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter; names compare case-insensitively, like Graph."""
        for key, values in self.query.items():
            if key.lower() == name.lower() and values:
                return values[0]
        return default

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"request body is not JSON: {exc}") from exc


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, default=str).encode("utf-8")


class BadRequest(Exception):
    """Raised by a handler to answer 400 with the emulator's error shape."""

    def __init__(self, message: str, status: int = 400, code: str = "BadRequest") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass
class FaultRule:
    kind: str
    path: str = ""
    method: str | None = None
    tenant: str | None = None
    times: int | None = None
    after: int = 0
    retry_after: float = 1.0
    status: int = 503
    delay: float = 5.0
    set: dict[str, Any] = field(default_factory=dict)
    where: dict[str, Any] = field(default_factory=dict)
    seen: int = 0
    fired: int = 0

    @classmethod
    def from_dict(cls, raw: Any) -> FaultRule:
        if not isinstance(raw, dict):
            raise EmulatorError(f"a fault rule must be an object, got {raw!r}")
        kind = raw.get("kind")
        if kind not in FAULT_KINDS:
            raise EmulatorError(f"fault kind must be one of {sorted(FAULT_KINDS)}, got {kind!r}")
        unknown = set(raw) - {"kind", "path", "method", "tenant", "times", "after", "retryAfter",
                              "status", "delay", "set", "where"}
        if unknown:
            raise EmulatorError(f"unknown fault rule fields: {sorted(unknown)}")
        changes, where = raw.get("set", {}), raw.get("where", {})
        if not isinstance(changes, dict) or not isinstance(where, dict) or (kind == "corrupt") != bool(changes):
            raise EmulatorError("a corrupt fault needs 'set' (field path -> value) and may have 'where' (field -> "
                                "value); other kinds take neither")
        try:
            re.compile(raw.get("path", ""))
        except re.error as exc:
            raise EmulatorError(f"fault path is not a regular expression: {exc}") from exc
        return cls(
            kind=kind,
            path=str(raw.get("path", "")),
            method=(str(raw["method"]).upper() if raw.get("method") else None),
            tenant=(str(raw["tenant"]).lower() if raw.get("tenant") else None),
            times=(int(raw["times"]) if raw.get("times") is not None else None),
            after=int(raw.get("after", 0)),
            retry_after=float(raw.get("retryAfter", 1.0)),
            status=int(raw.get("status", 503)),
            delay=float(raw.get("delay", 5.0)),
            set=dict(changes),
            where=dict(where),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "path": self.path, "method": self.method, "tenant": self.tenant,
            "times": self.times, "after": self.after, "retryAfter": self.retry_after,
            "status": self.status, "delay": self.delay, "set": self.set, "where": self.where,
            "seen": self.seen, "fired": self.fired,
        }

    def corrupted(self, body: Any) -> Any:
        """A copy of the JSON ``body`` in which every object matching ``where`` has the fields of
        ``set`` (dotted paths, ``prepaidUnits.enabled``) replaced, where it has them: impossible
        values (2**31 seats, NaN, a quantity of 1e300, text for a number) for tests of a client."""
        copied = copy.deepcopy(body)
        stack = [copied]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if all(node.get(key) == value for key, value in self.where.items()):
                    for path, value in self.set.items():
                        *parents, name = path.split(".")
                        target: Any = node
                        for parent in parents:
                            target = target.get(parent) if isinstance(target, dict) else None
                        if isinstance(target, dict) and name in target:
                            target[name] = value
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        return copied

    def matches(self, request: Request) -> bool:
        if self.method and self.method != request.method:
            return False
        if self.tenant and (request.tenant or "").lower() != self.tenant:
            return False
        return re.search(self.path, request.path) is not None


class FaultBook:
    """The fault rules of one emulator; thread-safe."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, raw: Any) -> list[FaultRule]:
        items = raw if isinstance(raw, list) else [raw]
        rules = [FaultRule.from_dict(item) for item in items]
        with self._lock:
            self._rules.extend(rules)
        return rules

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_dict() for rule in self._rules]

    def take(self, request: Request, kinds: Iterable[str]) -> FaultRule | None:
        """The first rule of one of ``kinds`` that fires for this request (and count it)."""
        wanted = set(kinds)
        with self._lock:
            for rule in self._rules:
                if rule.kind not in wanted or not rule.matches(request):
                    continue
                rule.seen += 1
                if rule.seen <= rule.after:
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                rule.fired += 1
                return rule
        return None


Handler = Callable[[Request, "re.Match[str]"], Response]


class Emulator(ABC):
    """Base class of the emulators. Subclasses implement ``load``, ``state`` and their routes,
    and may override ``tenant_of``, ``error_response`` and ``auth_failure``."""

    service = "emulator"

    def __init__(self, scenario_section: Any) -> None:
        self.lock = threading.RLock()
        self.faults = FaultBook()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._scenario = copy.deepcopy(scenario_section)
        self.base_url = ""
        self.register_routes()
        self.reset()

    # -- to implement -------------------------------------------------------------------
    @abstractmethod
    def register_routes(self) -> None:
        """Declare the emulator's routes with ``route``."""

    @abstractmethod
    def load(self, section: Any) -> None:
        """Replace the state with the scenario section (validated; raise EmulatorError)."""

    @abstractmethod
    def state(self) -> Any:
        """The emulator's state as JSON (what ``GET /_admin/state`` answers)."""

    def tenant_of(self, request: Request) -> str | None:
        """Which tenant a request is for, so that fault rules can target one tenant."""
        return None

    def error_response(self, status: int, message: str, code: str = "Error") -> Response:
        """An error in the service's own shape."""
        return Response(status, {"error": {"code": code, "message": message}})

    def auth_failure(self, request: Request) -> Response:
        return self.error_response(401, "Authentication failed", "Unauthorized")

    def broken_page(self, request: Request) -> bool:
        """For pagers: should this page's next link be broken?"""
        return self.faults.take(request, ["broken-paging"]) is not None

    # -- helpers for subclasses ---------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile(f"^{pattern}$", re.IGNORECASE), handler))

    def reset(self) -> None:
        with self.lock:
            self.load(copy.deepcopy(self._scenario))
            self.faults.clear()
            section_faults = (self._scenario or {}).get("faults") if isinstance(self._scenario, dict) else None
            if section_faults:
                self.faults.add(section_faults)
        with self._log_lock:
            self._log.clear()

    def requests_log(self) -> list[dict[str, Any]]:
        with self._log_lock:
            return list(self._log)

    def count_requests(self, path_pattern: str = "", method: str | None = None) -> int:
        pattern = re.compile(path_pattern)
        return sum(
            1 for entry in self.requests_log()
            if pattern.search(entry["path"]) and (method is None or entry["method"] == method)
        )

    # -- dispatch -------------------------------------------------------------------------
    def dispatch(self, request: Request) -> tuple[Response, float]:
        """Answer a request; returns the response and a delay to hold it back (timeouts)."""
        if request.path.startswith("/_admin"):
            return self._admin(request), 0.0
        request.tenant = self.tenant_of(request)
        fault = self.faults.take(request, ["throttle", "error", "timeout", "auth"])
        delay = 0.0
        applied = None
        if fault is not None:
            applied = fault.kind
            if fault.kind == "throttle":
                response = self.error_response(429, "Too many requests", "TooManyRequests")
                response.headers["Retry-After"] = _seconds(fault.retry_after)
                self._record(request, response, applied)
                return response, 0.0
            if fault.kind == "error":
                response = self.error_response(fault.status, "Injected service error",
                                               HTTPStatus(fault.status).phrase.replace(" ", ""))
                self._record(request, response, applied)
                return response, 0.0
            if fault.kind == "auth":
                response = self.auth_failure(request)
                self._record(request, response, applied)
                return response, 0.0
            delay = fault.delay
        response = self._route(request)
        response = self.corrupt(request, response)
        self._record(request, response, applied)
        return response, delay

    def corrupt(self, request: Request, response: Response) -> Response:
        """``response`` with the values of a matching ``corrupt`` fault, if one fires."""
        if response.status >= 300 or not isinstance(response.body, dict | list):
            return response
        rule = self.faults.take(request, ["corrupt"])
        if rule is None:
            return response
        return Response(response.status, rule.corrupted(response.body), response.headers, response.content_type)

    def _route(self, request: Request) -> Response:
        allowed = False
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if not match:
                continue
            if method != request.method:
                allowed = True
                continue
            try:
                return handler(request, match)
            except BadRequest as exc:
                return self.error_response(exc.status, str(exc), exc.code)
            except Exception as exc:  # an emulator bug must show, not hang the client
                log.exception("%s: handler failed for %s %s", self.service, request.method, request.path)
                return self.error_response(500, f"emulator error: {exc}", "InternalError")
        if allowed:
            return self.error_response(405, f"{request.method} not allowed on {request.path}",
                                       "MethodNotAllowed")
        return self.error_response(404, f"no resource at {request.path}", "NotFound")

    def _record(self, request: Request, response: Response, fault: str | None) -> None:
        with self._log_lock:
            self._log.append({
                "method": request.method, "path": request.path,
                "query": {k: v[0] if len(v) == 1 else v for k, v in request.query.items()},
                "tenant": request.tenant, "status": response.status, "fault": fault,
                "at": time.time(),
            })

    def _admin(self, request: Request) -> Response:
        try:
            if request.path == "/_admin/state" and request.method == "GET":
                with self.lock:
                    return Response(200, self.state())
            if request.path == "/_admin/requests" and request.method == "GET":
                return Response(200, {"requests": self.requests_log()})
            if request.path == "/_admin/faults" and request.method == "GET":
                return Response(200, {"faults": self.faults.rules()})
            if request.path == "/_admin/faults" and request.method == "POST":
                added = self.faults.add(request.json())
                return Response(201, {"added": [rule.to_dict() for rule in added]})
            if request.path == "/_admin/faults" and request.method == "DELETE":
                self.faults.clear()
                return Response(204)
            if request.path == "/_admin/reset" and request.method == "POST":
                self.reset()
                return Response(204)
        except (EmulatorError, BadRequest) as exc:
            return Response(400, {"error": str(exc)})
        return Response(404, {"error": f"no admin resource {request.method} {request.path}"})


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # one small answer must not wait for a delayed ACK
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s: " + format, self.server.emulator.service, *args)

    def _handle(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command.upper(),
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        response, delay = self.server.emulator.dispatch(request)
        if delay:
            time.sleep(delay)
        payload = response.encode()
        try:
            self.send_response(response.status)
            if payload:
                self.send_header("Content-Type", response.content_type)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, emulator: Emulator, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.emulator = emulator


class RunningEmulator:
    """An emulator served on a loopback port in a background thread."""

    def __init__(self, emulator: Emulator, tls: TlsFiles, port: int = 0) -> None:
        self.emulator = emulator
        self._server = _Server(emulator, port)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(tls.server_certificate), str(tls.server_key))
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True,
                                                   do_handshake_on_connect=False)
        self.port = self._server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        emulator.base_url = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{emulator.service}-emulator", daemon=True)

    def start(self) -> RunningEmulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def load_scenario_file(path: Path) -> dict[str, Any]:
    """Read a scenario YAML/JSON file (see docs/emulators.md)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EmulatorError(f"cannot read scenario {path}: {exc}") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise EmulatorError(f"scenario {path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise EmulatorError(f"scenario {path} must be a mapping at the top level")
    return document
