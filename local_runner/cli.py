"""seatsync: the command line of SeatSync.

Runs a sync in-process (the Function App's own orchestrator and activities), manages the
configuration, and prints run reports. Settings come from the environment, overlaid on a
``local.settings.json`` in the current directory when there is one (the Functions host's local
format), exactly as the deployed app reads its app settings.

Exit status: 0 success, 1 a run finished partially (some tenants or changes failed), 2 a run
failed, 3 bad input or configuration.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from local_runner import billing_cli, config_cli, notify_cli, sync_cli
from local_runner.wiring import EXIT_FAILED, EXIT_USAGE
from shared.errors import ConfigError, RequestValidationError, SeatSyncError

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="seatsync", description=__doc__.split("\n\n")[0])
    root.add_argument("--settings", type=Path, help="a local.settings.json to read settings from "
                      "(default: ./local.settings.json when present)")
    root.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = root.add_subparsers(dest="command", required=True)
    sync_cli.add_commands(commands)
    config_cli.add_commands(commands)
    billing_cli.add_commands(commands)
    notify_cli.add_commands(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"seatsync: {exc.source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_USAGE
    except RequestValidationError as exc:
        print(f"seatsync: {exc.field}: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except SeatSyncError as exc:
        print(f"seatsync: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
