"""``seatsync approvals``, ``seatsync audit`` and ``seatsync unlinked``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from local_runner.wiring import build_services, current_user
from shared.services.decisions import (
    approval_json,
    audit_csv,
    audit_json,
    audit_query,
    audit_trail,
    decide,
    list_approvals,
    unlinked,
)
from shared.text import table


def _print_table(headers: list[str], rows: list[list[str]]) -> None:
    sys.stdout.write("\n".join(table(headers, rows)) + "\n")


def cmd_approvals_list(args: argparse.Namespace) -> int:
    services = build_services(args)
    config = services.config()
    records = [approval_json(r, config) for r in list_approvals(services.decisions, None if args.all else "pending")]
    if args.json:
        sys.stdout.write(json.dumps(records, indent=2) + "\n")
        return 0
    if not records:
        print("No changes are waiting for approval." if not args.all else "No held changes recorded.")
        return 0
    _print_table(
        ["ID", "STATUS", "TENANT", "LICENCE", "AGREEMENT", "LINE", "FROM", "TO", "HELD", "REASON"],
        [[r["id"], r["status"], (r["tenantName"] or r["tenantId"])[:28], str(r["licence"])[:34], r["agreementId"],
          r["lineId"] or "", "new line" if r["from"] is None else str(r["from"]), str(r["to"]), r["heldAt"][:10],
          r["reason"].split("; ")[-1][:70]]
         for r in records])
    return 0


def cmd_approvals_decide(args: argparse.Namespace) -> int:
    from local_runner.local_sync import run_local_sync
    from shared.services.report import render_text

    services = build_services(args)
    approve = args.decision == "approve"
    record = decide(services.decisions, services.config(), args.id, approve, args.by or current_user(),
                    args.comment, services.clock())
    verb = "approved" if approve else "rejected"
    print(f"{verb}: {record.change.label or record.change.sku_id} of tenant {record.tenant_id}, "
          f"{record.change.old_quantity} -> {record.change.new_quantity}")
    if approve and args.apply_now:
        report = run_local_sync(services, tenants=[record.tenant_id], requested_by=args.by or current_user())
        sys.stdout.write(render_text(report))
    elif approve:
        print("It is applied by the next sync (or now with --apply-now), re-planned first.")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    services = build_services(args)
    query = audit_query(services.config(), args.customer, args.start, args.end)
    entries = audit_trail(services.decisions, query)
    if args.csv:
        text = audit_csv(entries)
    elif args.json:
        text = json.dumps([audit_json(e) for e in entries], indent=2) + "\n"
    else:
        name = query.tenant_name or next((e.tenant_name for e in reversed(entries)), "") or "a former customer"
        note = "" if query.tenant_name else " (no longer configured)"
        text = f"Audit trail of {name} ({query.tenant_id}){note}: {len(entries)} entries\n"
        if entries:
            text += "\n".join(table(
                ["WHEN (UTC)", "EVENT", "LICENCE", "KIND", "BEFORE", "AFTER", "AMOUNT", "BY", "REASON"],
                [[e.at.strftime("%Y-%m-%d %H:%M"), e.event, e.licence[:32], e.kind,
                  "" if e.before is None else str(e.before), "" if e.after is None else str(e.after),
                  "" if e.amount is None else str(e.amount), (e.actor or e.requested_by or "")[:24],
                  (e.error or e.reason)[:70]] for e in entries])) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_unlinked(args: argparse.Namespace) -> int:
    services = build_services(args)
    rows = unlinked(services.config(), services.snapshots)
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    if not rows:
        print("Every licence of every configured tenant is billed or excluded.")
        return 0
    _print_table(
        ["TENANT", "LICENCE", "SKU", "PURCHASED", "ASSIGNED", "NOTE"],
        [[r["tenantName"][:30], str(r["licence"] or "")[:40], r.get("skuPartNumber") or "",
          "" if r["purchased"] is None else str(r["purchased"]), "" if r["assigned"] is None else str(r["assigned"]),
          r["note"] or ""] for r in rows])
    return 0


def add_commands(commands: Any) -> None:
    approvals = commands.add_parser("approvals", help="decreases (and removed lines' recreation) held for approval")
    sub = approvals.add_subparsers(dest="approvals_command", required=True)
    listing = sub.add_parser("list", help="held changes waiting for a decision")
    listing.add_argument("--all", action="store_true", help="every decision, not only the pending ones")
    listing.add_argument("--json", action="store_true", help="print the held changes as JSON")
    listing.set_defaults(handler=cmd_approvals_list)
    for decision in ("approve", "reject"):
        parser = sub.add_parser(decision, help=f"{decision} a held change")
        parser.add_argument("id", help="the id shown by 'approvals list'")
        parser.add_argument("--comment", help="why (kept in the audit trail)")
        parser.add_argument("--by", help="who decides (default: the login name)")
        if decision == "approve":
            parser.add_argument("--apply-now", action="store_true", help="sync the tenant now to apply it")
        parser.set_defaults(handler=cmd_approvals_decide, decision=decision, apply_now=False)

    audit = commands.add_parser("audit", help="the audit trail of a customer")
    audit.add_argument("--customer", required=True,
                       help="tenant id (also of a customer no longer configured) or configured name")
    audit.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="from this day on (UTC)")
    audit.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="up to and including this day (UTC)")
    audit.add_argument("--csv", action="store_true", help="CSV output")
    audit.add_argument("--json", action="store_true", help="JSON output")
    audit.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    audit.set_defaults(handler=cmd_audit)

    unlinked_parser = commands.add_parser("unlinked", help="licences no mapping bills (and not excluded)")
    unlinked_parser.add_argument("--json", action="store_true", help="print the licences as JSON")
    unlinked_parser.set_defaults(handler=cmd_unlinked)
