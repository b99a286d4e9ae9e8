"""A run's digest: what the dashboard's overview, tenants grid and approvals show of a run (each
tenant's status, problems and unlinked licences, why a tenant needs attention, the run's money
and its lines' unit prices), computed once when the run ends and stored as one document.

A page then reads one small partition instead of every tenant's outcome, every change and every
tenant's reconciliation document (thousands of rows for a run of 500 tenants). A finished run's
digest never changes; a run without one (still running, or finished before digests existed, or
whose digest could not be written) is digested when first shown, and stored once it has finished.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from azure.core.exceptions import AzureError

from shared.adapters.run_store import ReconciliationRow, RunRepository
from shared.adapters.tables import JsonText, canonical_json
from shared.config.schema import SeatSyncConfig
from shared.contracts import StartedRun
from shared.domain.model import ChangeKind, ChangeStatus, PlannedChange
from shared.errors import SeatSyncError
from shared.services.report import tenant_entries, tenant_names

log = logging.getLogger(__name__)

_COUNTED = (ChangeStatus.APPLIED, ChangeStatus.DRY_RUN)
LineKey = tuple[str, str, str]
"""A PSA line: (psa, agreement id, line id or "")."""


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
    unused_unpriced: int = field(default=0)  # unused seats whose unit price is unknown: not in unused_licences

    def to_json(self) -> dict[str, Any]:
        return {"recurringChange": str(self.recurring_change), "prorated": str(self.prorated),
                "heldDecreases": str(self.held_decreases), "unusedLicences": str(self.unused_licences),
                "unpriced": self.unpriced, "unusedUnpriced": self.unused_unpriced}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Money:
        return cls(Decimal(data["recurringChange"]), Decimal(data["prorated"]), Decimal(data["heldDecreases"]),
                   Decimal(data["unusedLicences"]), int(data["unpriced"]),
                   int(data.get("unusedUnpriced", 0)))  # digests stored before it was counted have none


def prices_of(rows: list[ReconciliationRow]) -> dict[LineKey, Decimal]:
    """Unit price of each PSA line of a run's reconciliation."""
    return {(r.psa, r.agreement_id, r.line_id or ""): r.unit_price for r in rows if r.unit_price is not None}


def change_value(change: PlannedChange, prices: dict[LineKey, Decimal]) -> Decimal | None:
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


def money_of(changes: Iterable[PlannedChange], rows: Iterable[ReconciliationRow],
             prices: dict[LineKey, Decimal] | None = None) -> Money:
    """The money of a run's changes (applied or dry-run) and of its unused licences; ``prices``:
    ``prices_of(rows)`` when the caller has it already."""
    money = Money()
    rows = list(rows)
    for row in rows:
        if row.purchased is not None and row.purchased > row.counted:
            if row.unit_price is None:
                money.unused_unpriced += row.purchased - row.counted
            else:
                money.unused_licences += (row.purchased - row.counted) * row.unit_price
    prices = prices if prices is not None else prices_of(rows)
    for change in changes:
        if change.status not in _COUNTED:
            continue
        value = change_value(change, prices)
        if value is None:
            money.unpriced += 1
        elif change.kind in (ChangeKind.PRORATE, ChangeKind.CREDIT):
            money.prorated += value
        else:
            money.recurring_change += value
    return money


@dataclass(frozen=True, slots=True)
class TenantDigest:
    """One tenant in a run: its status, how many problems (the error counts as one), licences
    read, licences no mapping bills, and why it needs attention (empty: it does not)."""

    tenant_id: str
    name: str
    status: str
    problems: int
    licences: int | None
    unlinked: int
    reasons: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"tenantId": self.tenant_id, "name": self.name, "status": self.status, "problems": self.problems,
                "licences": self.licences, "unlinked": self.unlinked, "reasons": list(self.reasons)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TenantDigest:
        return cls(str(data["tenantId"]), str(data["name"]), str(data["status"]), int(data["problems"]),
                   None if data["licences"] is None else int(data["licences"]), int(data["unlinked"]),
                   tuple(str(r) for r in data["reasons"]))


@dataclass(frozen=True)
class RunDigest:
    run_id: str
    tenants: tuple[TenantDigest, ...]
    money: Money
    prices: dict[LineKey, Decimal]
    unlinked: int

    @property
    def attention(self) -> list[TenantDigest]:
        """The tenants that need attention, in the report's order."""
        return [t for t in self.tenants if t.reasons]

    def tenant(self, tenant_id: str) -> TenantDigest | None:
        return next((t for t in self.tenants if t.tenant_id == tenant_id), None)

    def to_json(self) -> dict[str, Any]:
        return {"runId": self.run_id, "tenants": [t.to_json() for t in self.tenants], "money": self.money.to_json(),
                "prices": [[*key, str(price)] for key, price in sorted(self.prices.items())],
                "unlinked": self.unlinked}

    def json_text(self) -> JsonText:
        """``to_json`` as the store writes it, made a tenant and a price at a time: a digest of
        thousands of tenants is stored without a dict of each beside it."""

        def items(values: Iterable[Any]) -> Iterator[bytes]:
            yield b"["
            for index, value in enumerate(values):
                yield (b"," if index else b"") + canonical_json(value)
            yield b"]"

        def pieces() -> Iterator[bytes]:  # the keys in sorted order, as canonical_json has them
            yield b'{"money":' + canonical_json(self.money.to_json())
            yield b',"prices":'
            yield from items([*key, str(price)] for key, price in sorted(self.prices.items()))
            yield b',"runId":' + canonical_json(self.run_id) + b',"tenants":'
            yield from items(t.to_json() for t in self.tenants)
            yield b',"unlinked":' + canonical_json(self.unlinked) + b"}"

        return JsonText(pieces())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunDigest:
        return cls(str(data["runId"]), tuple(TenantDigest.from_json(t) for t in data["tenants"]),
                   Money.from_json(data["money"]),
                   {(str(psa), str(agreement), str(line)): Decimal(price)
                    for psa, agreement, line, price in data["prices"]}, int(data["unlinked"]))


def _reasons(tenant: dict[str, Any]) -> tuple[str, ...]:
    reasons = ([tenant["error"]] if tenant["error"] else []) + [p["message"] for p in tenant["problems"]]
    if tenant["status"] != "ok" and not reasons:
        reasons = [tenant["status"]]
    return tuple(reasons)


def compute_digest(runs: RunRepository, run_id: str, config: SeatSyncConfig | None,
                   started: StartedRun | None = None) -> RunDigest:
    """The digest of a run, from everything it stored (its tenants, changes and reconciliation),
    each read a page at a time: what it holds is the digest itself (a few small fields a tenant)
    and the unit price of each billed line, never the run's whole report. ``started``: what the
    run set out to do, when the caller holds it already (read from the run otherwise)."""
    names = tenant_names(config)
    unlinked: dict[str, int] = {}
    prices: dict[LineKey, Decimal] = {}
    unused = Money()
    for _tenant, rows, licences in runs.iter_reconciliation(run_id):
        for licence in licences:
            unlinked[licence.tenant_id] = unlinked.get(licence.tenant_id, 0) + 1
        prices.update(prices_of(rows))
        tenant_unused = money_of((), rows, prices)
        unused.unused_licences += tenant_unused.unused_licences
        unused.unused_unpriced += tenant_unused.unused_unpriced
    entries = tenant_entries(runs, run_id, names, started or runs.started(run_id))
    tenants = tuple(sorted((TenantDigest(
        tenant_id=t["tenantId"], name=t["name"], status=t["status"],
        problems=len(t["problems"]) + (1 if t["error"] else 0), licences=t["licences"],
        unlinked=unlinked.get(t["tenantId"], 0), reasons=_reasons(t)) for t in entries),
        key=lambda t: names.get(t.tenant_id, t.tenant_id)))
    money = money_of((change for change, _error in runs.iter_changes(run_id)), (), prices)
    money.unused_licences, money.unused_unpriced = unused.unused_licences, unused.unused_unpriced
    return RunDigest(run_id, tenants, money, prices, sum(unlinked.values()))


def run_digest(runs: RunRepository, run_id: str, config: SeatSyncConfig | None,
               started: StartedRun | None = None) -> RunDigest:
    """The run's stored digest; else computed, and stored when the run has finished."""
    stored = runs.digest(run_id)
    if stored is not None:
        return RunDigest.from_json(stored)
    digest = compute_digest(runs, run_id, config, started)
    if runs.summary(run_id) is not None:
        runs.record_digest(run_id, digest.json_text(), digest.money.to_json())
    return digest


def record_digest(runs: RunRepository, run_id: str, config: SeatSyncConfig | None,
                  started: StartedRun | None = None) -> None:
    """Digest a run that has just finished, so that the dashboard's first look at it is fast.
    It changes nothing of the run or its billing: when it cannot be written (storage down, say)
    the warning is logged and the dashboard digests the run when it first shows it."""
    try:
        run_digest(runs, run_id, config, started)
    except (AzureError, SeatSyncError) as exc:
        log.warning("run %s: its digest for the dashboard was not stored (%s); the dashboard makes it when "
                    "it first shows the run", run_id, exc)
