"""``seatsync serve``: the Function App's HTTP API and the dashboard on a loopback port, and the
identity options ``demo --serve`` shares."""

from __future__ import annotations

import argparse
from typing import Any

from local_runner.serve import add_identity_options
from local_runner.wiring import build_services


def cmd_serve(args: argparse.Namespace) -> int:
    from local_runner.serve import identity_of, serve_forever

    return serve_forever(build_services(args), identity_of(args.user, args.role), args.host, args.port)


def add_commands(commands: Any) -> None:
    """Add ``serve`` to the ``seatsync`` subcommands."""
    serve = commands.add_parser("serve", help="serve the Function App's HTTP API and the dashboard locally")
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    add_identity_options(serve)
    serve.set_defaults(handler=cmd_serve)
