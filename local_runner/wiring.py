"""What every ``seatsync`` command shares: exit codes, the settings and services it runs on,
who is running it, and where its output goes.

The command modules (``sync_cli``, ``config_cli``, ``billing_cli``, ``notify_cli``) import this
module and nothing of each other; ``cli`` assembles them into one parser. So a command module
never imports its caller.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from shared.errors import ConfigError
from shared.settings import Settings, load_local_settings

if TYPE_CHECKING:
    from shared.bootstrap import Services

EXIT_OK, EXIT_PARTIAL, EXIT_FAILED, EXIT_USAGE = 0, 1, 2, 3
"""0 success, 1 a run finished partially or needs attention (billing problems), 2 a run failed or
a service could not be reached, 3 bad input or configuration (the README's promise)."""

DEMO_MAX_TENANTS = 1000
"""The largest MSP ``seatsync demo --tenants`` generates. The generated tenants, their users and
their PSA live in the emulators' memory, in the demo's own process, beside a local run: 500
tenants is what the benchmarks measure; beyond twice that the demo is no longer one."""


def _whole(value: str, low: int, high: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < low:
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {number}")
    if high is not None and number > high:
        raise argparse.ArgumentTypeError(f"must be at most {high}, got {number}")
    return number


def positive(value: str) -> int:
    """A whole number of at least 1 (argparse reports anything else as bad input)."""
    return _whole(value, 1)


def non_negative(value: str) -> int:
    """A whole number of at least 0."""
    return _whole(value, 0)


def port_number(value: str) -> int:
    """``--port``: a TCP port, 0 (a free one) to 65535; the socket layer would wrap a larger one
    round to another port, or crash on a negative one."""
    return _whole(value, 0, 65535)


def environment(settings_file: Path | None) -> dict[str, str]:
    """The app settings: a ``local.settings.json`` (the given one, or ./local.settings.json when
    present), overlaid by the environment, as the deployed app reads its app settings."""
    env: dict[str, str] = {}
    path = settings_file or Path("local.settings.json")
    if settings_file is not None or path.is_file():
        env.update(load_local_settings(path))
    env.update(os.environ)
    return env


def build_services(args: argparse.Namespace) -> Services:
    """The adapters the command works with, from the settings named by ``--settings``.
    ``SEATSYNC_CLOCK`` (an ISO instant with its offset) fixes the instant the command believes it
    is: to rehearse a run on another day against the emulators, and for tests; never in Azure."""
    from shared.bootstrap import Services

    env = environment(getattr(args, "settings", None))
    settings = Settings.from_environment(env)
    fixed = env.get("SEATSYNC_CLOCK", "").strip()
    if not fixed:
        return Services(settings)
    try:
        instant = datetime.fromisoformat(fixed)
    except ValueError:
        raise ConfigError(f"SEATSYNC_CLOCK must be an ISO instant with its offset, got {fixed!r}",
                          source="app settings") from None
    if instant.tzinfo is None:
        raise ConfigError(f"SEATSYNC_CLOCK must say its offset (e.g. 2026-11-25T02:00:00+00:00), got {fixed!r}",
                          source="app settings")
    return Services(settings, clock=lambda: instant.astimezone(UTC))


def current_user() -> str:
    """Who runs the command, for the audit trail and the configuration history."""
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "local"


def write_output(path: str | None, text: str) -> None:
    """``text`` to standard output (no path, or ``-``) or to the file ``path``."""
    if path in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(path).write_text(text, encoding="utf-8")
