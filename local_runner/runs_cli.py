"""``seatsync runs lease`` and ``seatsync runs unlock``: the run lease that keeps runs one at a time."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from local_runner.wiring import EXIT_FAILED, EXIT_OK, build_services, current_user, non_negative
from shared.adapters.run_store import Lease
from shared.services.lease import LeaseHeldError, lease_json, stale_reason, unlock, wall_clock


def _describe(lease: Lease) -> str:
    where = f" by process {lease.pid} on {lease.host}" if lease.pid else " by the Function App"
    state = stale_reason(lease, wall_clock())
    return (f"run {lease.run_id} holds the run lease{where}; renewed {lease.renewed:%Y-%m-%d %H:%M:%S} UTC, "
            f"until {lease.expires:%H:%M:%S} UTC; " + (f"stale: {state}" if state else "alive"))


def cmd_runs_lease(args: argparse.Namespace) -> int:
    services = build_services(args)
    lease = services.runs.lease()
    if args.json:
        sys.stdout.write(json.dumps({"lease": lease_json(lease) if lease else None}, indent=2) + "\n")
    else:
        print(_describe(lease) if lease else "No run holds the run lease.")
    events = services.decisions.run_events()[-args.events:] if args.events else []
    if events and not args.json:
        print("\nRecent run events:")
        for event in events:
            print(f"  {event.at:%Y-%m-%d %H:%M:%S}Z  {event.event:13s}  run {event.run_id}  by {event.actor}: "
                  f"{event.reason}")
    return EXIT_OK


def cmd_runs_unlock(args: argparse.Namespace) -> int:
    services = build_services(args)
    actor = args.by or current_user()
    try:
        cleared = unlock(services.runs, services.decisions, actor, force=args.force, comment=args.comment)
    except LeaseHeldError as exc:
        print(f"seatsync: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if cleared is None:
        print("No run holds the run lease: nothing to clear.")
    else:
        print(f"Cleared the run lease of run {cleared.run_id} (recorded in the audit as cleared by {actor}); "
              "the run is recorded as died. The next run settles any write it left unrecorded.")
    return EXIT_OK


def add_lease_commands(sub: Any) -> None:
    """``lease`` and ``unlock`` under ``seatsync runs``."""
    lease = sub.add_parser("lease", help="which run holds the run lease, and whether it is alive")
    lease.add_argument("--json", action="store_true", help="print the lease as JSON")
    lease.add_argument("--events", type=non_negative, default=10, metavar="N",
                       help="also list the last N run events (died, lease cleared); default 10")
    lease.set_defaults(handler=cmd_runs_lease)
    unlock_parser = sub.add_parser(
        "unlock", help="clear the lease of a dead run (one whose process is gone or whose lease lapsed)")
    unlock_parser.add_argument("--force", action="store_true",
                               help="clear it even though the run still renews it (only if you know it is hung)")
    unlock_parser.add_argument("--by", help="who clears it (default: the login name); recorded in the audit")
    unlock_parser.add_argument("--comment", help="why (recorded in the audit)")
    unlock_parser.set_defaults(handler=cmd_runs_unlock)
