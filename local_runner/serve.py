"""``seatsync serve``: the Function App's HTTP functions and the dashboard on a loopback port.

Uses the local host (local_runner.host) with the services the settings point at, exactly as
the Functions host would in Azure; App Service Authentication is played by the development
identity given with ``--user``/``--role`` (every page says so).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from werkzeug.serving import BaseWSGIServer, make_server

from admin_api.auth import DEVELOPMENT_SETTING, PLATFORM_AUTH_SETTING
from local_runner.host import DASHBOARD_PATH, DevIdentity, LocalDurableClient, LocalHost, http_functions
from local_runner.local_sync import app_functions, function_table
from local_runner.wiring import port_number
from shared.bootstrap import Services, set_services
from shared.errors import RequestValidationError, SeatSyncError


class PortUnavailableError(SeatSyncError):
    """The loopback port cannot be listened on (another program has it): one line, exit 2."""


@dataclass
class RunningHost:
    server: BaseWSGIServer
    thread: threading.Thread
    durable: LocalDurableClient

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    @property
    def dashboard_url(self) -> str:
        return f"{self.url}{DASHBOARD_PATH}/"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)
        self.durable.wait(60)
        self.server.server_close()


def add_identity_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", default="dev@localhost",
                        help="the development identity signed in on every request (default dev@localhost; "
                             "'' for nobody)")
    parser.add_argument("--role", action="append", choices=["Viewer", "Approver", "Admin"],
                        help="its app role (repeatable; default Admin)")
    parser.add_argument("--port", type=port_number, default=7071, help="loopback port (default 7071; 0 for a free one)")


def check_loopback(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise RequestValidationError("--host", f"{host!r} is not a loopback address: the local host only listens on "
                                           "this machine (127.0.0.1)")


def identity_of(user: str | None, roles: list[str] | None) -> DevIdentity | None:
    if not user:
        return None
    from admin_api.auth import Role

    chosen = []
    for role in roles or ["Admin"]:
        parsed = Role.parse(role)
        if parsed is None:
            raise RequestValidationError("--role", f"{role!r} is not a role (Viewer, Approver or Admin)")
        chosen.append(parsed.label)
    return DevIdentity(user, tuple(chosen))


def listen(address: str, port: int) -> socket.socket:
    """A socket listening on ``address:port``, or one line saying why not. Bound here rather than
    by werkzeug, which prints its own lines and exits with status 1 when the port is taken; bound
    before anything else is started, so a port it cannot have costs nothing."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((address, port))
        listening.listen(128)
    except OSError as exc:
        listening.close()
        raise PortUnavailableError(f"cannot listen on {address} port {port} ({exc.strerror or exc}): another "
                                   "program may be using it; stop it or give another --port (0 for a free "
                                   "one)") from exc
    return listening


def start_host(services: Services, identity: DevIdentity | None, host: str = "127.0.0.1", port: int = 0,
               max_workers: int = 8, listening: socket.socket | None = None) -> RunningHost:
    """Serve in a background thread (``port`` 0: a free one), on ``listening`` when the caller
    has already bound the port (``listen``). The process plays the platform: authentication on,
    the development identity trusted."""
    address = check_loopback(host)
    if listening is None:
        listening = listen(address, port)  # first: a port it cannot have changes nothing
    address, port = listening.getsockname()[:2]
    os.environ[PLATFORM_AUTH_SETTING] = "True"
    os.environ[DEVELOPMENT_SETTING] = "true"
    set_services(services)
    durable = LocalDurableClient(function_table, clock=services.clock, max_workers=max_workers)
    app = LocalHost(http_functions(app_functions()), durable, identity)
    try:
        server = make_server(address, port, app, threaded=True, fd=listening.fileno())
    finally:
        listening.close()  # the server listens on its own duplicate of the socket
    thread = threading.Thread(target=server.serve_forever, name="seatsync-serve", daemon=True)
    thread.start()
    return RunningHost(server, thread, durable)


@contextlib.contextmanager
def serving(services: Services, identity: DevIdentity | None, host: str = "127.0.0.1", port: int = 0,
            listening: socket.socket | None = None) -> Iterator[RunningHost]:
    running = start_host(services, identity, host, port, listening=listening)
    try:
        yield running
    finally:
        running.stop()
        set_services(None)


def announce(running: RunningHost, identity: DevIdentity | None, out: TextIO) -> None:
    print(f"\nSeatSync dashboard: {running.dashboard_url}", file=out)
    print(f"  API:      {running.url}/api/  (OpenAPI: {running.url}/api/openapi.json)", file=out)
    if identity is not None:
        print(f"  Signed in as the development identity {identity.name} ({', '.join(identity.roles)}); "
              f"switch at {running.url}/.auth/login/dev", file=out)
    else:
        print(f"  Nobody is signed in: sign in at {running.url}/.auth/login/dev", file=out)
    print("  Ctrl-C stops.", file=out, flush=True)


def serve_forever(services: Services, identity: DevIdentity | None, host: str, port: int,
                  out: Any = sys.stdout) -> int:
    with serving(services, identity, host, port) as running:
        announce(running, identity, out)
        with contextlib.suppress(KeyboardInterrupt):
            running.thread.join()
    return 0
