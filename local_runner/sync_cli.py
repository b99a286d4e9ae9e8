"""``seatsync sync``, ``seatsync report`` and ``seatsync demo``: running a sync and reading what
it did."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from local_runner.wiring import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, build_services, write_output
from shared.errors import ConfigError


def exit_for(report: dict[str, Any]) -> int:
    """A run's exit status: 0 succeeded, 1 partial, 2 failed."""
    return {"succeeded": EXIT_OK, "partial": EXIT_PARTIAL}.get(report["status"], EXIT_FAILED)


def cmd_sync(args: argparse.Namespace) -> int:
    from local_runner.local_sync import run_local_sync
    from shared.services.report import render_text

    report = run_local_sync(build_services(args), tenants=args.tenant or None, dry_run=args.dry_run,
                            requested_by=args.by, max_workers=args.workers)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(json.dumps(report, indent=2) + "\n" if args.json else render_text(report))
    return exit_for(report)


def cmd_report(args: argparse.Namespace) -> int:
    from shared.services.report import build_report, render_text

    services = build_services(args)
    run_id = args.run_id
    if run_id == "latest":
        run_id = services.runs.latest_run_id()
        if run_id is None:
            raise ConfigError("no run has been recorded yet", source="report")
    report = build_report(services.runs, run_id, services.config())
    write_output(args.output, json.dumps(report, indent=2) + "\n" if args.json else render_text(report))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from local_runner.demo import run_demo

    return run_demo(tenants=args.tenants, report_path=args.report, psa=args.psa, keep=args.keep)


def add_commands(commands: Any) -> None:
    """Add ``sync``, ``report`` and ``demo`` to the ``seatsync`` subcommands."""
    sync = commands.add_parser("sync", help="run a sync now, in this process")
    sync.add_argument("--dry-run", action="store_true", help="plan only: write nothing to the PSA")
    sync.add_argument("--tenant", action="append", metavar="TENANT_ID", help="only this tenant (repeatable)")
    sync.add_argument("--report", metavar="FILE", help="also write the run report as JSON to FILE")
    sync.add_argument("--json", action="store_true", help="print the report as JSON")
    sync.add_argument("--workers", type=int, default=8, help="tenants collected in parallel (default 8)")
    sync.add_argument("--by", help="who asked for the run (default: the login name)")
    sync.set_defaults(handler=cmd_sync)

    report = commands.add_parser("report", help="print the report of a run")
    report.add_argument("run_id", nargs="?", default="latest", help="a run id, or 'latest'")
    report.add_argument("--json", action="store_true")
    report.add_argument("--output", "-o", metavar="FILE")
    report.set_defaults(handler=cmd_report)

    demo = commands.add_parser("demo", help="start Azurite and the emulators with a sample MSP and sync it")
    demo.add_argument("--tenants", type=int, default=0,
                      help="generate an MSP of N tenants instead of the sample MSP")
    demo.add_argument("--psa", default="connectwise", choices=["connectwise", "autotask", "halopsa"],
                      help="the PSA to bill through")
    demo.add_argument("--report", metavar="FILE", help="also write the run report as JSON to FILE")
    demo.add_argument("--keep", action="store_true",
                      help="keep Azurite and the emulators running after the sync (Ctrl-C stops)")
    demo.set_defaults(handler=cmd_demo)
