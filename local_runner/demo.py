"""``make run``: a full sync of a sample MSP on real local parts.

Starts Azurite (Table Storage) and the emulators of Microsoft Graph and the PSA on loopback,
imports the sample MSP's configuration, runs the Function App's orchestrator and activities
in-process, and prints the run report and what the PSA bills afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from emulators.base import load_scenario_file
from emulators.launcher import RunningEmulators, start_emulators
from local_runner.azurite import PROJECT_ROOT, start_azurite
from local_runner.local_sync import run_local_sync
from local_runner.wiring import DEMO_MAX_TENANTS, EXIT_USAGE
from shared.bootstrap import Services
from shared.config.yaml_io import parse_yaml
from shared.services.report import render_text
from shared.settings import Settings

SCENARIOS = PROJECT_ROOT / "emulators" / "scenarios"
WORK_DIR = PROJECT_ROOT / ".seatsync"


def work_dir() -> Path:
    """Where the demo keeps Azurite's log and the emulators' certificates: ``SEATSYNC_WORK_DIR``,
    else ``.seatsync`` in the project (tests give each run its own)."""
    return Path(os.environ.get("SEATSYNC_WORK_DIR") or WORK_DIR)


def sample_files(psa: str) -> tuple[Path, Path]:
    suffix = "" if psa == "connectwise" else f"-{psa}"
    return SCENARIOS / f"sample-msp{suffix}.yaml", SCENARIOS / f"sample-msp{suffix}.config.yaml"


def psa_state_lines(emulators: RunningEmulators) -> list[str]:
    """What the PSA emulator bills now, one line per billed line."""
    lines: list[str] = []
    if "connectwise" in emulators.running:
        state = emulators.emulator("connectwise").state()
        for agreement in state["agreements"]:
            for addition in agreement.get("additions", []):
                quantity = addition["quantity"]
                shown = int(quantity) if float(quantity).is_integer() else quantity
                until = f"  until {addition['cancelledDate'][:10]}" if addition.get("cancelledDate") else ""
                tag = "  (SeatSync)" if str(addition.get("serialNumber") or "").startswith("seatsync:") else ""
                lines.append(f"  {agreement['name'][:34]:34s}  {addition['product']['identifier']:16s} "
                             f"{shown:>6}  {addition.get('unitPrice', 0):>8.2f}{until}{tag}")
    if "autotask" in emulators.running:
        lines += autotask_state_lines(emulators.emulator("autotask").state())
    if "halopsa" in emulators.running:
        lines += halo_state_lines(emulators.emulator("halopsa").state())
    return lines


def _quantity(value: Any) -> int | float:
    number = float(value)
    return int(number) if number.is_integer() else number


def _is_tag(value: Any) -> bool:
    return str(value or "").strip().lower().startswith("seatsync")


def autotask_state_lines(state: dict[str, Any]) -> list[str]:
    """Autotask's contract services: contract, service, units as of the emulator's today, unit
    price, unit changes effective from today on (Autotask prorates a change from its effective
    date; one dated later bills from then) and SeatSync's tag (the internal description)."""
    today = date.fromisoformat(state["today"])
    names = {service["id"]: service["name"] for service in state["services"]}
    lines = [f"  (units on {today}; Autotask prorates a unit change from its effective date)"]
    for contract in state["contracts"]:
        for service in contract.get("services", []):
            units = int(service["units"])
            notes = []
            for adjustment in sorted(service.get("adjustments", []), key=lambda a: (a["effectiveDate"], a["id"])):
                effective = date.fromisoformat(adjustment["effectiveDate"][:10])
                if effective == today:
                    change = int(adjustment["unitChange"])
                    notes.append(f"{change:+d} unit{'s' if abs(change) != 1 else ''} from {effective}")
                elif effective > today:
                    units_then = units + sum(int(a["unitChange"]) for a in service.get("adjustments", [])
                                             if today < date.fromisoformat(a["effectiveDate"][:10]) <= effective)
                    notes.append(f"{units_then} unit{'s' if units_then != 1 else ''} from {effective}")
            note = f"  ({', '.join(dict.fromkeys(notes))})" if notes else ""
            tag = "  (SeatSync)" if _is_tag(service.get("internalDescription")) else ""
            name = names.get(service["serviceID"], f"service {service['serviceID']}")
            lines.append(f"  {contract['contractName'][:34]:34s}  {name[:40]:40s} {units:>6}  "
                         f"{float(service.get('unitPrice') or 0):>8.2f}{note}{tag}")
    return lines


def halo_state_lines(state: dict[str, Any]) -> list[str]:
    """Halo's recurring invoice lines: invoice, item, quantity (from the next invoice on: the
    line's quantity plus its pending pro-rata entries), unit price, the pending pro-rata entries
    (Halo's price a seat for the rest of the period, charged on the next invoice) and SeatSync's
    tag (the internal reference)."""
    names = {item["id"]: item["name"] for item in state["items"]}
    lines = ["  (quantities from the next invoice on; Halo charges pending pro-rata entries on that invoice, "
             "then adds them to the line)"]
    for invoice in state["recurringInvoices"]:
        next_invoice = invoice.get("nextcreationdate")
        until = f"..{date.fromisoformat(next_invoice[:10]) - timedelta(days=1)}" if next_invoice else ""
        for line in invoice.get("lines", []):
            notes = [f"{_quantity(p['quantity']):+} pro-rata {p['date'][:10]}{until} at {float(p['unitprice']):.2f} "
                     "a seat" for p in line.get("prorata_data", []) if not p.get("isinvoiced")]
            if line.get("isinactive"):
                notes.append("inactive")
            note = f"  ({', '.join(notes)})" if notes else ""
            tag = "  (SeatSync)" if _is_tag(line.get("item_internal_reference")) else ""
            name = names.get(line["_itemid"]) or line.get("item_shortdescription") or f"item {line['_itemid']}"
            lines.append(f"  {invoice['reference'][:34]:34s}  {name[:40]:40s} "
                         f"{_quantity(line['billed_quantity']):>6}  {float(line.get('unit_price') or 0):>8.2f}"
                         f"{note}{tag}")
    return lines


PSA_TICKETS = ("connectwise", "autotask", "halopsa")


def notification_lines(emulators: RunningEmulators) -> list[str]:
    """What the Teams channel and the mailboxes received, and the tickets kept in the PSA."""
    lines: list[str] = []
    if "teams" in emulators.running:
        for post in emulators.emulator("teams").state()["posts"]:
            title = next((b.get("text") for card in post["cards"] for b in card.get("body", [])
                          if b.get("type") == "TextBlock"), "")
            lines.append(f"  Teams card posted to workflow '{post['workflowId']}': {title}")
    if "graph" in emulators.running:
        for mail in emulators.emulator("graph").state().get("sentMail", []):
            lines.append(f"  email from {mail['sender']} to {', '.join(mail['to'])}: {mail['subject']}")
    for psa in PSA_TICKETS:
        if psa in emulators.running:
            for ticket in emulators.emulator(psa).state().get("tickets", []):
                number = ticket.get("ticketNumber") or ticket["id"]
                lines.append(f"  {psa} ticket {number}: {ticket.get('summary') or ticket.get('title')}")
    return lines


BILLED_LINES_SHOWN = 40


def billed_summary(lines: list[str]) -> list[str]:
    """What the PSA bills, counted instead of listed when it is long."""
    billed = [line for line in lines if not line.lstrip().startswith("(")]
    ours = sum(1 for line in billed if line.rstrip().endswith("(SeatSync)"))
    return [f"  {len(billed)} lines billed, {ours} of them written by SeatSync (--all lists them)"]


def run_demo(tenants: int = 0, report_path: str | None = None, psa: str = "connectwise",
             keep: bool = False, out: Any = sys.stdout, progress: bool = False, full: bool | None = None,
             serve: bool = False, identity: Any = None, port: int = 7071) -> int:
    """Run the demo; ``progress`` shows the progress display on stderr, ``full`` lists every
    tenant, change and billed line (by default a large MSP's report is summarised); ``serve``
    then keeps everything up and serves the dashboard as ``identity`` on ``port``, which it binds
    first: a port it cannot have, or too many tenants, are told before anything starts."""
    from local_runner.serve import listen

    started = time.monotonic()
    if tenants and psa != "connectwise":
        print(f"seatsync demo: --tenants generates MSPs billed through ConnectWise only; run the {psa} sample "
              "without --tenants", file=sys.stderr)
        return EXIT_USAGE
    if tenants > DEMO_MAX_TENANTS:
        print(f"seatsync demo: --tenants is at most {DEMO_MAX_TENANTS} (the generated MSP lives in this process's "
              f"memory), got {tenants}", file=sys.stderr)
        return EXIT_USAGE
    listening = listen("127.0.0.1", port) if serve else None  # a port it cannot have fails before the sync
    try:
        return _run_demo(tenants, report_path, psa, keep, out, progress, full, serve, identity, port, listening,
                         started)
    finally:
        if listening is not None:
            listening.close()


def _run_demo(tenants: int, report_path: str | None, psa: str, keep: bool, out: Any, progress: bool,
              full: bool | None, serve: bool, identity: Any, port: int, listening: socket.socket | None,
              started: float) -> int:
    from local_runner.progress import ProgressDisplay

    if tenants:
        from emulators.generator import generate_msp

        scenario, config_text = generate_msp(tenants, psa=psa)
        label = f"a generated MSP of {tenants} tenants"
    else:
        scenario_path, config_path = sample_files(psa)
        scenario = load_scenario_file(scenario_path)
        config_text = config_path.read_text(encoding="utf-8")
        label = f"the sample MSP ({scenario_path.relative_to(PROJECT_ROOT)})"
    work = work_dir()
    work.mkdir(parents=True, exist_ok=True)
    print(f"SeatSync demo: {label}, billed through {psa}", file=out)
    azurite = start_azurite(log_dir=work / "azurite")
    try:
        with start_emulators(scenario, work / "tls") as emulators:
            print(f"  Azurite Table Storage  http://127.0.0.1:{azurite.port}", file=out)
            for section, running in emulators.running.items():
                print(f"  {section:22s} {running.url}", file=out)
            env = {**emulators.environment(), "SEATSYNC_STORAGE_CONNECTION_STRING": azurite.connection_string,
                   "SEATSYNC_TABLE_PREFIX": "seatsync"}
            services = Services(Settings.from_environment(env))
            config = parse_yaml(emulators.render_config(config_text), source="sample configuration")
            services.config_repository.save(config, "make run", f"sample configuration: {label}")
            print(f"  configuration: {len(config.tenants)} tenants imported\n", file=out)

            with ProgressDisplay(progress) as display:
                report = run_local_sync(services, requested_by="make run", max_workers=8, on_progress=display.update)
            out.write(render_text(report, full))
            sent = notification_lines(emulators)
            if sent:
                print("\nNotifications:", file=out)
                print("\n".join(sent), file=out)
            state = psa_state_lines(emulators)
            if len(state) > BILLED_LINES_SHOWN and not full:
                state = billed_summary(state)
            if state:
                print(f"\nWhat {psa} bills now:", file=out)
                print("\n".join(state), file=out)
            if report_path:
                Path(report_path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
                print(f"\nRun report (JSON): {report_path}", file=out)
            print(f"\nDemo finished in {time.monotonic() - started:.1f}s.", file=out)
            if serve:
                from local_runner.serve import announce, serving

                with serving(services, identity, port=port, listening=listening) as host:
                    announce(host, identity, out)
                    with contextlib.suppress(KeyboardInterrupt):
                        host.thread.join()
                return 0 if report["status"] in ("succeeded", "attention", "partial") else 2
            if keep:
                print("\nStill running (Ctrl-C stops). Point the CLI at it with:", file=out)
                for name, value in sorted(env.items()):
                    print(f"  export {name}='{value}'", file=out)
                with contextlib.suppress(KeyboardInterrupt):
                    while True:
                        time.sleep(3600)
            return 0 if report["status"] in ("succeeded", "attention", "partial") else 2
    finally:
        azurite.stop()
