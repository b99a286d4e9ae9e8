"""seatsync: the command line of SeatSync.

Runs a sync in-process (the Function App's own orchestrator and activities), manages the
configuration, and prints run reports and history. Settings come from the environment, overlaid
on a ``local.settings.json`` in the current directory when there is one (the Functions host's
local format), exactly as the deployed app reads its app settings.

Exit status: 0 success, 1 a run finished partially (some tenants or changes failed) or with
billing problems that need a person (status ``attention``), 2 a run failed (nothing could be
collected or pushed) or a service (the table store, Graph, a PSA) could not be reached, 3 bad
input or configuration (unknown options or verbs, invalid numbers, unknown run or approval ids).
``-v`` logs SeatSync's own progress; ``--debug`` also the SDKs' HTTP traffic and the traceback
of an error. SIGTERM stops the command and everything it started, as Ctrl-C does.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from local_runner import billing_cli, config_cli, notify_cli, reconcile_cli, serve_cli, sync_cli
from local_runner.failures import explain
from local_runner.wiring import EXIT_FAILED, EXIT_USAGE
from shared.errors import ConfigError, ConflictError, RequestValidationError, SeatSyncError

__all__ = ["main", "parser"]

USAGE_PARSER = "_verb_parser"
"""The namespace attribute naming the innermost verb's parser, for its usage on bad input."""
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
OWN_LOGGERS = ("seatsync", "shared", "local_runner", "sync_orchestrator", "tenant_activity", "psa_push", "notify",
               "admin_api", "function_app")
SDK_LOGGERS = ("azure", "azure.core", "azure.identity", "azure.data.tables", "urllib3", "msal", "requests",
               "emulators", "seatsync.telemetry")
"""Kept at warnings unless --debug: the SDKs' HTTP logging, the emulators' request log, and the
per-tenant telemetry events meant for Application Insights (-v shows the run's progress instead)."""


class Parser(argparse.ArgumentParser):
    """argparse, with bad usage answered by exit status 3 (bad input) as the README promises,
    instead of argparse's own 2, which SeatSync reserves for failed runs."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        """An unknown option is reported by the verb it was given to, with that verb's usage
        (argparse would report it from the top level, with the top level's usage)."""
        words = list(sys.argv[1:] if args is None else args)
        parsed, extras = self.parse_known_args(words, namespace)
        if extras:
            verb: argparse.ArgumentParser = getattr(parsed, USAGE_PARSER, self)
            command = getattr(parsed, "command", None)
            if command in words and extras[0] in words and words.index(extras[0]) < words.index(command):
                verb = self  # given before the verb: the top level's option
            verb.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


class Terminated(BaseException):
    """SIGTERM: unwinds like Ctrl-C, so every ``finally`` stops what the command started."""


def _add_common(parser: argparse.ArgumentParser, default: Any) -> None:
    """Options every verb takes, before or after the verb (``default`` SUPPRESS on the verbs, so
    a value given before the verb is not reset by the verb's parser)."""
    def value(normal: Any) -> Any:
        return normal if default is None else default

    parser.add_argument("--settings", type=Path, default=value(None), metavar="FILE",
                        help="a local.settings.json to read settings from (default: ./local.settings.json "
                             "when present)")
    parser.add_argument("-v", "--verbose", action="store_true", default=value(False),
                        help="log SeatSync's progress to stderr (the SDKs' HTTP logging stays at warnings)")
    parser.add_argument("--debug", action="store_true", default=value(False),
                        help="log everything, the SDKs' HTTP traffic included, and show the traceback of an error")
    parser.add_argument("-q", "--quiet", action="store_true", default=value(False),
                        help="no progress display (it is also off when stderr is not a terminal)")


def _verbs(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found.append(child)
                found.extend(_verbs(child))
    return found


def parser() -> argparse.ArgumentParser:
    root = Parser(prog="seatsync", description=(__doc__ or "").split("\n\n")[0])
    _add_common(root, None)
    commands = root.add_subparsers(dest="command", required=True, metavar="VERB")
    sync_cli.add_commands(commands)
    config_cli.add_commands(commands)
    billing_cli.add_commands(commands)
    notify_cli.add_commands(commands)
    reconcile_cli.add_commands(commands)
    serve_cli.add_commands(commands)
    for verb in _verbs(root):
        _add_common(verb, argparse.SUPPRESS)
        verb.set_defaults(**{USAGE_PARSER: verb})
    return root


def configure_logging(verbose: bool, debug: bool) -> None:
    """SeatSync's own loggers at INFO with ``-v``; the SDKs' (azure.core's HTTP policy, urllib3,
    msal, azure.identity) stay at WARNING unless ``--debug``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.ERROR)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.ERROR)
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING if verbose else logging.ERROR)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or bad usage (3)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    configure_logging(args.verbose, args.debug)
    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
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
    except ConflictError as exc:
        print(f"seatsync: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("seatsync: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("seatsync: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except Exception as exc:
        line = explain(exc) or (str(exc) if isinstance(exc, SeatSyncError) else None)
        if line is None:
            raise  # a defect: its traceback is what a bug report needs
        if args.debug:
            traceback.print_exc(file=sys.stderr)
        print(f"seatsync: {line}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
