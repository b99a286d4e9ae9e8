"""``seatsync sync``, ``seatsync report``, ``seatsync runs list`` (``runs lease`` and ``runs unlock``
live in ``runs_cli``), ``seatsync history`` and ``seatsync demo``: running a sync and reading
what it and the runs before it did."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from local_runner import runs_cli
from local_runner.serve import add_identity_options
from local_runner.wiring import (
    DEMO_MAX_TENANTS,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    build_services,
    non_negative,
    positive,
    write_output,
)
from shared.errors import ConfigError
from shared.text import short, table


def page_size(value: str) -> int:
    """``--limit``: a whole number of runs from 1 to 200 (argparse reports anything else)."""
    from shared.errors import RequestValidationError
    from shared.services.history import parse_limit

    try:
        return parse_limit(value)
    except RequestValidationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def exit_for(report: dict[str, Any]) -> int:
    """A run's exit status: 0 succeeded; 1 needs attention (billing problems) or partial; 2 failed."""
    return {"succeeded": EXIT_OK, "attention": EXIT_PARTIAL, "partial": EXIT_PARTIAL}.get(report["status"],
                                                                                        EXIT_FAILED)


def cmd_sync(args: argparse.Namespace) -> int:
    """Run a sync and print its report. The text is made from the run's tenants and changes read
    back a page at a time (``report_text``), so a run of thousands of tenants is not held whole;
    ``--json`` and ``--report`` ask for the whole document."""
    from local_runner.local_sync import sync_locally
    from local_runner.progress import ProgressDisplay, wanted
    from shared.services.report import build_report, report_text

    services = build_services(args)
    with ProgressDisplay(wanted(args.quiet)) as display:
        run_id = sync_locally(services, tenants=args.tenant or None, dry_run=args.dry_run,
                              requested_by=args.by, max_workers=args.workers, on_progress=display.update)
    config = services.config()
    head: dict[str, Any]
    if args.report or args.json:
        head = build_report(services.runs, run_id, config, services.margins, services.sources)
        if args.report:
            Path(args.report).write_text(json.dumps(head, indent=2) + "\n", encoding="utf-8")
    if args.json:
        sys.stdout.write(json.dumps(head, indent=2) + "\n")
    else:
        head, text = report_text(services.runs, run_id, config, services.margins, services.sources, args.all or None,
                                 started=services.started(run_id))
        sys.stdout.write(text)
    if head["status"] == "failed":
        print(f"seatsync: run {head['runId']} failed: {failure_of(head)}", file=sys.stderr)
    return exit_for(head)


def failure_of(report: dict[str, Any]) -> str:
    """Why a run failed, in one line: its own error, else what stopped its tenants (the first
    tenant's error: ``firstError`` of ``report_text``'s heading, or the whole report's tenants)."""
    reasons = [report.get("error"), report.get("firstError")] + [t.get("error") for t in report.get("tenants", [])]
    reason = next((r for r in reasons if r), "no tenant could be synced")
    return short(reason, 200) + " (the report above says what happened to each tenant)"


def cmd_report(args: argparse.Namespace) -> int:
    from shared.services.report import build_report, render_text

    services = build_services(args)
    run_id = args.run_id
    if run_id == "latest":
        run_id = services.runs.latest_run_id()
        if run_id is None:
            raise ConfigError("no run has been recorded yet", source="report")
    report = build_report(services.runs, run_id, services.config(), services.margins, services.sources)
    write_output(args.output, json.dumps(report, indent=2) + "\n" if args.json
                 else render_text(report, args.all or None))
    return EXIT_OK


def cmd_runs_list(args: argparse.Namespace) -> int:
    from shared.services.history import run_page

    page = run_page(build_services(args).runs, args.limit, args.before)
    if args.json:
        sys.stdout.write(json.dumps(page.to_json(), indent=2) + "\n")
        return EXIT_OK
    if not page.runs:
        print("No run is recorded" + (f" before {args.before}." if args.before else " yet."))
        return EXIT_OK
    rows = []
    for run in page.runs:
        if run.totals is not None:
            totals = run.totals
            what = (f"{totals.tenants_ok}/{totals.tenants_total} tenants, "
                    f"{totals.changes_dry_run if run.dry_run else totals.changes_applied} "
                    f"{'planned' if run.dry_run else 'applied'}, {totals.changes_held} held, "
                    f"{totals.changes_failed} failed")
        elif run.progress is not None:
            progress = run.progress
            what = (f"{progress.phase}: {progress.tenants_collected}/{progress.tenants_total} collected, "
                    f"{progress.tenants_pushed}/{progress.tenants_to_push} pushed, {progress.tenants_failed} failed")
        else:
            what = ""
        rows.append([run.run_id, run.status + (" (dry run)" if run.dry_run else ""), run.trigger,
                     short(run.requested_by, 24), f"{run.started_at:%Y-%m-%d %H:%M}", what])
    print("\n".join(table(["RUN", "STATUS", "TRIGGER", "BY", "STARTED (UTC)", "WHAT"], rows)))
    if page.next_before:
        print(f"\nOlder runs: seatsync runs list --before {page.next_before}")
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    from shared.config.schema import is_guid
    from shared.services.decisions import resolve_customer
    from shared.services.history import tenant_history

    services = build_services(args)
    config = services.config()
    tenant_id = args.tenant if is_guid(args.tenant) else resolve_customer(config, args.tenant).tenant_id
    history = tenant_history(config, services.snapshots, services.runs, tenant_id, args.licence)
    if args.json:
        sys.stdout.write(json.dumps(history.to_json(), indent=2) + "\n")
        return EXIT_OK
    note = "" if history.configured else " (no longer configured)"
    print(f"Licence history of {history.tenant_name or history.tenant_id} ({history.tenant_id}){note}")
    if not history.licences:
        print("  no run has recorded this tenant's licences yet")
    for licence in history.licences:
        print(f"\n{licence.licence}" + (f"  ({licence.sku_part_number})" if licence.sku_part_number else ""))
        rows = [[point.run_id, f"{point.collected_at:%Y-%m-%d %H:%M}" if point.collected_at else "",
                 _number(point.purchased), _number(point.assigned), _number(point.billed), _number(point.to_bill)]
                for point in licence.points]
        print("\n".join(table(["RUN", "COLLECTED (UTC)", "PURCHASED", "ASSIGNED", "BILLED", "TO BILL"], rows,
                              indent="  ")))
    return EXIT_OK


def _number(value: int | None) -> str:
    return "-" if value is None else str(value)


def cmd_demo(args: argparse.Namespace) -> int:
    from local_runner.demo import run_demo
    from local_runner.progress import wanted
    from local_runner.serve import identity_of

    identity = identity_of(args.user, args.role) if args.serve else None
    return run_demo(tenants=args.tenants, report_path=args.report, psa=args.psa, keep=args.keep,
                    progress=wanted(args.quiet), full=args.all or None, serve=args.serve, identity=identity,
                    port=args.port)


def add_commands(commands: Any) -> None:
    """Add ``sync``, ``report`` and ``demo`` to the ``seatsync`` subcommands."""
    sync = commands.add_parser("sync", help="run a sync now, in this process")
    sync.add_argument("--dry-run", action="store_true", help="plan only: write nothing to the PSA")
    sync.add_argument("--tenant", action="append", metavar="TENANT_ID", help="only this tenant (repeatable)")
    sync.add_argument("--report", metavar="FILE", help="also write the run report as JSON to FILE")
    sync.add_argument("--json", action="store_true", help="print the report as JSON")
    sync.add_argument("--workers", type=positive, default=8, metavar="N",
                      help="tenants collected in parallel (default 8)")
    sync.add_argument("--all", action="store_true", help="list every tenant and change, even in a large run")
    sync.add_argument("--by", help="who asked for the run (default: the login name)")
    sync.set_defaults(handler=cmd_sync)

    report = commands.add_parser("report", help="print the report of a run")
    report.add_argument("run_id", nargs="?", default="latest", help="a run id, or 'latest'")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead")
    report.add_argument("--all", action="store_true", help="list every tenant and change, even in a large run")
    report.set_defaults(handler=cmd_report)

    runs = commands.add_parser("runs", help="the runs, newest first")
    runs_commands = runs.add_subparsers(dest="runs_command", required=True)
    listing = runs_commands.add_parser("list", help="list the runs, newest first, a page at a time")
    listing.add_argument("--limit", type=page_size, default=20, metavar="N",
                         help="runs on the page (1 to 200, default 20)")
    listing.add_argument("--before", metavar="RUN_ID", help="only runs older than this one (the next page)")
    listing.add_argument("--json", action="store_true", help="print the page as JSON")
    listing.set_defaults(handler=cmd_runs_list)
    runs_cli.add_lease_commands(runs_commands)

    history = commands.add_parser("history", help="a tenant's licence counts over time")
    history.add_argument("tenant", metavar="TENANT",
                         help="tenant id (also of a tenant no longer configured) or configured name")
    history.add_argument("--licence", metavar="NAME",
                         help="only this licence: SKU id, part number (SPB), product name or custom licence name")
    history.add_argument("--json", action="store_true", help="print the history as JSON")
    history.set_defaults(handler=cmd_history)

    demo = commands.add_parser("demo", help="start Azurite and the emulators with a sample MSP and sync it")
    demo.add_argument("--all", action="store_true", help="list every tenant, change and billed line")
    demo.add_argument("--tenants", type=non_negative, default=0, metavar="N",
                      help=f"generate an MSP of N tenants (at most {DEMO_MAX_TENANTS}) instead of the sample MSP")
    demo.add_argument("--psa", default="connectwise", choices=["connectwise", "autotask", "halopsa"],
                      help="the PSA to bill through")
    demo.add_argument("--report", metavar="FILE", help="also write the run report as JSON to FILE")
    demo.add_argument("--keep", action="store_true",
                      help="keep Azurite and the emulators running after the sync (Ctrl-C stops)")
    demo.add_argument("--serve", action="store_true",
                      help="after the sync keep everything running and serve the dashboard (Ctrl-C stops)")
    add_identity_options(demo)
    demo.set_defaults(handler=cmd_demo)
