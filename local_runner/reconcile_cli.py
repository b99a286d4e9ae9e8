"""``seatsync reconcile``: purchased vs assigned vs billed, with cost, margin, money found, money
leaking and the renewal calendar, for the latest run or a month's."""

from __future__ import annotations

import argparse
import json
from typing import Any

from local_runner.wiring import EXIT_OK, build_services, write_output


def renewal_days(value: str) -> int:
    """``--renewal-days``: 1 to 365 (argparse reports anything else as bad input, exit 3)."""
    from shared.errors import RequestValidationError
    from shared.services.reconcile import parse_renewal_days

    try:
        days = parse_renewal_days(value)
    except RequestValidationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    assert days is not None
    return days


def cmd_reconcile(args: argparse.Namespace) -> int:
    from shared.services.reconcile import month_run, render_text, run_reconciliation, to_csv, to_json

    services = build_services(args)
    config = services.config()
    run_id = args.run or month_run(services.runs, args.month)
    view = run_reconciliation(services.runs, services.margins, run_id, config, renewal_days=args.renewal_days)
    if args.csv:
        text = to_csv(view)
    elif args.json:
        text = json.dumps(to_json(view), indent=2) + "\n"
    else:
        text = render_text(view)
    write_output(args.output, text)
    return EXIT_OK


def add_commands(commands: Any) -> None:
    """Add ``reconcile`` to the ``seatsync`` subcommands."""
    reconcile = commands.add_parser(
        "reconcile", help="purchased vs assigned vs billed seats with cost and margin, money found and leaking, "
                          "renewals with unused seats")
    which = reconcile.add_mutually_exclusive_group()
    which.add_argument("--month", metavar="YYYY-MM", help="the month's last live run (default: the latest run)")
    which.add_argument("--run", metavar="RUN_ID", help="a given run")
    reconcile.add_argument("--renewal-days", type=renewal_days, metavar="DAYS",
                           help="renewals within this many days (default: the renewal alert's daysBefore, 30)")
    output = reconcile.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="one CSV row a licence")
    output.add_argument("--json", action="store_true", help="the reconciliation as JSON (the HTTP endpoint's shape)")
    reconcile.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    reconcile.set_defaults(handler=cmd_reconcile)
