"""The billing admin's overview: the last run, the tenants that need attention and the money
involved, from what the runs stored (no Graph or PSA call). It reads the last run's heading and
digest and the month's runs' money (``shared.services.run_digest``), not every tenant's rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.adapters.decision_store import DecisionRepository
from shared.adapters.run_store import RunRepository
from shared.config.schema import SeatSyncConfig
from shared.services.report import report_head
from shared.services.run_digest import LineKey, Money, run_digest


def held_value(decisions: DecisionRepository, prices: dict[LineKey, Decimal] | None = None
               ) -> tuple[Decimal, int, int]:
    """What the pending held decreases would take off the monthly bill (at the change's unit
    price, else the line's price in the latest run), how many there are, and how many of them
    have no known price (not in the value, and said so rather than valued at zero)."""
    total = Decimal(0)
    unpriced = 0
    pending = decisions.approvals("pending")
    for record in pending:
        change = record.change
        price = change.unit_price if change.unit_price is not None else \
            (prices or {}).get((change.psa, change.agreement_id, change.line_id or ""))
        if price is not None and change.old_quantity is not None:
            total += (change.old_quantity - change.new_quantity) * price
        else:
            unpriced += 1
    return total, len(pending), unpriced


def month_money(runs: RunRepository, config: SeatSyncConfig, now: datetime) -> Money:
    """Money written by this month's (not dry) runs: each run's money as its digest recorded it
    (one query for the month), digested now for a run that has no digest yet."""
    money = Money()
    for run_id, request, recorded in runs.month_runs(now.strftime("%Y%m")):
        if request.dry_run:
            continue
        one = Money.from_json(recorded) if recorded is not None else run_digest(runs, run_id, config).money
        money.recurring_change += one.recurring_change
        money.prorated += one.prorated
        money.unpriced += one.unpriced
    return money


def overview(runs: RunRepository, decisions: DecisionRepository, config: SeatSyncConfig, now: datetime
             ) -> dict[str, Any]:
    """Everything the overview page shows."""
    latest = runs.latest_run_id()
    head = report_head(runs, latest) if latest else None
    digest = run_digest(runs, latest, config) if latest else None
    attention = [{"tenantId": t.tenant_id, "name": t.name, "status": t.status, "reasons": list(t.reasons)}
                 for t in digest.attention] if digest else []
    held, pending, held_unpriced = held_value(decisions, digest.prices if digest else None)
    this_run = replace(digest.money, held_decreases=held) if digest else Money(held_decreases=held)
    month = month_money(runs, config, now)
    month.held_decreases = held
    month.unused_licences, month.unused_unpriced = this_run.unused_licences, this_run.unused_unpriced
    return {"report": head, "attention": attention, "pendingApprovals": pending,
            "unlinked": digest.unlinked if digest else 0,
            "money": {"run": this_run.to_json(), "month": month.to_json(), "heldUnpriced": held_unpriced},
            "currency": config.notifications.currency}
