"""The billing admin's overview: the last run, the tenants that need attention and the money
involved, from what the runs stored (no Graph or PSA call)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.adapters.decision_store import DecisionRepository
from shared.adapters.run_store import RunRepository
from shared.config.schema import SeatSyncConfig
from shared.domain.model import ChangeKind, ChangeStatus, PlannedChange
from shared.services.report import build_report

_COUNTED = (ChangeStatus.APPLIED, ChangeStatus.DRY_RUN)


@dataclass
class Money:
    """Sums of one run (or of the month's runs): the recurring change of the quantities set,
    prorated charges and credits, held decreases and unused licences, each a month's worth
    at the billed unit price (Decimal, never float)."""

    recurring_change: Decimal = Decimal(0)
    prorated: Decimal = Decimal(0)
    held_decreases: Decimal = Decimal(0)
    unused_licences: Decimal = Decimal(0)
    unpriced: int = field(default=0)  # changes whose unit price is unknown: not in the sums

    def to_json(self) -> dict[str, Any]:
        return {"recurringChange": str(self.recurring_change), "prorated": str(self.prorated),
                "heldDecreases": str(self.held_decreases), "unusedLicences": str(self.unused_licences),
                "unpriced": self.unpriced}


def line_prices(runs: RunRepository, run_id: str) -> dict[tuple[str, str, str], Decimal]:
    """Unit price of each PSA line in a run's reconciliation, by (psa, agreement, line)."""
    rows, _ = runs.reconciliation(run_id)
    return {(r.psa, r.agreement_id, r.line_id or ""): r.unit_price for r in rows if r.unit_price is not None}


def change_value(change: PlannedChange, prices: dict[tuple[str, str, str], Decimal]) -> Decimal | None:
    """A month's recurring value of a quantity change (signed), or the amount of a prorate."""
    if change.kind in (ChangeKind.PRORATE, ChangeKind.CREDIT):
        return change.amount
    if change.kind not in (ChangeKind.SET_QUANTITY, ChangeKind.CREATE_LINE):
        return Decimal(0)
    price = change.unit_price if change.unit_price is not None else \
        prices.get((change.psa, change.agreement_id, change.line_id or ""))
    if price is None:
        return None
    return (change.new_quantity - (change.old_quantity or 0)) * price


def run_money(runs: RunRepository, run_id: str) -> Money:
    money = Money()
    prices = line_prices(runs, run_id)
    for change, _error in runs.changes(run_id):
        if change.status not in _COUNTED:
            continue
        value = change_value(change, prices)
        if value is None:
            money.unpriced += 1
        elif change.kind in (ChangeKind.PRORATE, ChangeKind.CREDIT):
            money.prorated += value
        else:
            money.recurring_change += value
    rows, _ = runs.reconciliation(run_id)
    for row in rows:
        if row.purchased is not None and row.unit_price is not None and row.purchased > row.counted:
            money.unused_licences += (row.purchased - row.counted) * row.unit_price
    return money


def held_value(decisions: DecisionRepository, prices: dict[tuple[str, str, str], Decimal] | None = None
               ) -> tuple[Decimal, int]:
    """What the pending held decreases would take off the monthly bill (at the change's unit
    price, else the line's price in the latest run), and how many there are."""
    total = Decimal(0)
    pending = decisions.approvals("pending")
    for record in pending:
        change = record.change
        price = change.unit_price if change.unit_price is not None else \
            (prices or {}).get((change.psa, change.agreement_id, change.line_id or ""))
        if price is not None and change.old_quantity is not None:
            total += (change.old_quantity - change.new_quantity) * price
    return total, len(pending)


def month_money(runs: RunRepository, now: datetime) -> Money:
    """Money written by this month's (not dry) runs."""
    money = Money()
    month = now.strftime("%Y%m")
    for run_id in runs.run_ids():
        if not run_id.startswith(month):
            continue
        request = runs.request(run_id)
        if request is None or request.dry_run:
            continue
        one = run_money(runs, run_id)
        money.recurring_change += one.recurring_change
        money.prorated += one.prorated
        money.unpriced += one.unpriced
    return money


def overview(runs: RunRepository, decisions: DecisionRepository, config: SeatSyncConfig, now: datetime
             ) -> dict[str, Any]:
    """Everything the overview page shows."""
    latest = runs.latest_run_id()
    report = build_report(runs, latest, config) if latest else None
    attention: list[dict[str, Any]] = []
    if report is not None:
        for tenant in report["tenants"]:
            reasons = ([tenant["error"]] if tenant["error"] else []) + [p["message"] for p in tenant["problems"]]
            if tenant["status"] not in ("ok",) and not reasons:
                reasons = [tenant["status"]]
            if reasons:
                attention.append({"tenantId": tenant["tenantId"], "name": tenant["name"], "status": tenant["status"],
                                  "reasons": reasons})
    held, pending = held_value(decisions, line_prices(runs, latest) if latest else None)
    this_run = run_money(runs, latest) if latest else Money()
    this_run.held_decreases = held
    month = month_money(runs, now)
    month.held_decreases = held
    month.unused_licences = this_run.unused_licences
    return {"report": report, "attention": attention, "pendingApprovals": pending,
            "unlinked": len(report["unlinked"]) if report else 0,
            "money": {"run": this_run.to_json(), "month": month.to_json()},
            "currency": config.notifications.currency}
