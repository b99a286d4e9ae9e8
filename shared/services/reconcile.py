"""Reconciliation and margin: recorded for each tenant a run pushes, read back per run or per
month (``seatsync reconcile``, ``GET /api/reconciliation``, the run report's section) and the
material of the money alerts and the renewal calendar.

The pure rules are in ``shared.domain.reconciliation``; here they meet the stores: the facts are
recorded by the push (before anything is written), and joined with the run's changes when read,
so that "billed" is what the PSA holds once the run is over.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal, DecimalTuple
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.adapters.margin_store import MarginRepository
from shared.adapters.run_store import RunRepository
from shared.config.schema import SeatSyncConfig, TenantConfig
from shared.domain.billing import unlinked_licences
from shared.domain.model import ChangeKind, TenantSnapshot
from shared.domain.money import Money, Totals
from shared.domain.periods import MONTHS_PER_PERIOD
from shared.domain.planning import PsaView, TenantPlan
from shared.domain.provenance import provenance
from shared.domain.reconciliation import (
    BILLING_KINDS,
    WRITTEN,
    BilledMapping,
    LicenceFacts,
    LicenceLine,
    LineChange,
    Renewal,
    licence_facts,
    reconcile,
    renewals,
    totals,
)
from shared.errors import NotFoundError, RequestValidationError
from shared.services.decisions import spreadsheet_text
from shared.text import table

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
DEFAULT_RENEWAL_DAYS = 30


MAX_RENEWAL_DAYS = 365


def parse_renewal_days(text: str | None) -> int | None:
    """``renewalDays`` (``--renewal-days``): how far ahead the renewal calendar looks, 1 to 365
    days; None when not given (the renewal alert's ``daysBefore``)."""
    if text is None:
        return None
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_RENEWAL_DAYS:
        raise RequestValidationError("renewalDays", f"must be a whole number of days from 1 to {MAX_RENEWAL_DAYS}")
    return int(text)


class ReconcileError(NotFoundError):
    """No run to reconcile (none yet, or none in the month asked for): 404 over HTTP, bad input
    (exit 3) on the command line, like an unknown run id anywhere else."""


# --------------------------------------------------------------------------- recording


def tenant_facts(config: SeatSyncConfig, tenant: TenantConfig, snapshot: TenantSnapshot, plan: TenantPlan,
                 view: PsaView, today: date) -> list[LicenceFacts]:
    """The facts of every licence of the tenant worth reconciling: those a mapping bills, those a
    source sold, those with seats bought elsewhere, and unlinked ones."""
    origins = provenance(snapshot)
    mappings: dict[str, list[BilledMapping]] = {}
    declared: dict[str, str] = {}
    for outcome in plan.outcomes:
        licence = outcome.item.licence
        if licence.sku_id is None:
            continue  # custom licences have no Microsoft seats or cost
        agreement = view.agreements.get((outcome.item.company.psa, outcome.agreement_id))
        sold = origins.partner_subscriptions(licence.sku_id, licence.subscription_ids)
        mappings.setdefault(licence.sku_id, []).append(BilledMapping(
            outcome.item.mapping_key, outcome.agreement_id, outcome.line_id, outcome.billed_before,
            outcome.item.quantity, outcome.unit_price,
            MONTHS_PER_PERIOD.get(agreement.billing_cycle) if agreement else None, licence.included,
            psa=outcome.item.company.psa, subscriptions=tuple(s.subscription_id for s in sold)))
        declared.setdefault(licence.sku_id, licence.subscription_term)
    skus = list(mappings)
    skus += [sku for sku, origin in origins.licences.items() if origin.ours or origin.elsewhere]
    skus += [s.sku_id for s in unlinked_licences(config, tenant, snapshot)]
    skus = [s for s in dict.fromkeys(skus) if not config.excluded(tenant, s)]
    return licence_facts(tenant.tenant_id, tenant.name, snapshot, skus, mappings, declared, today)


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Reconciliation:
    run_id: str
    dry_run: bool
    day: date
    currency: str
    lines: tuple[LicenceLine, ...]
    renewals: tuple[Renewal, ...]


def _price_changes(line_facts: LicenceFacts, changes: list[LineChange]) -> list[LineChange]:
    keys = {m.mapping_key for m in line_facts.mappings}
    return [c for c in changes if c.mapping_key in keys]


def _with_new_prices(facts: LicenceFacts, changes: list[LineChange]) -> LicenceFacts:
    """The facts with the unit prices a written price change set (profiles priced from cost)."""
    mappings = []
    for mapping in facts.mappings:
        priced = [c for c in changes if c.mapping_key == mapping.mapping_key and c.kind == ChangeKind.SET_DETAILS
                  and c.unit_price is not None and c.status in WRITTEN]
        mappings.append(replace(mapping, unit_price=priced[-1].unit_price) if priced else mapping)
    return replace(facts, mappings=tuple(mappings))


def line_changes(runs: RunRepository, run_id: str) -> dict[str, list[LineChange]]:
    """Per tenant, what the reconciliation reads of the run's billing changes (``LineChange``);
    the changes are read a page at a time and only that much of each is kept."""
    by_tenant: dict[str, list[LineChange]] = {}
    # a run's thousands of changes set a few prices: one object each (by digits and exponent, so
    # that 12.5 and 12.50 stay as written)
    prices: dict[DecimalTuple, Decimal] = {}
    for change, _ in runs.iter_changes(run_id):
        if change.kind in BILLING_KINDS:
            price = change.unit_price
            by_tenant.setdefault(change.tenant_id, []).append(LineChange(
                change.mapping_key, change.kind, change.status,
                None if price is None else prices.setdefault(price.as_tuple(), price)))
    return by_tenant


def reconcile_tenant(facts: Iterable[LicenceFacts], changes: Mapping[str, list[LineChange]],
                     currency: str) -> list[LicenceLine]:
    """One tenant's licences reconciled with the run's changes to them (``line_changes``):
    billed is what the PSA holds once the run is over, at the prices a written price change set."""
    lines = []
    for line_facts in facts:
        tenant_changes = _price_changes(line_facts, changes.get(line_facts.tenant_id, []))
        lines.append(reconcile(_with_new_prices(line_facts, tenant_changes), tenant_changes, currency))
    return lines


def line_order(line: LicenceLine) -> tuple[str, str]:
    """The order licences are shown in: by tenant name, then licence."""
    return line.facts.tenant_name.casefold(), line.facts.label.casefold()


@dataclass(frozen=True)
class _RunLines:
    """A recorded run's licences, reconciled a tenant at a time as ``tenants`` is read."""

    run_id: str
    dry_run: bool
    day: date
    currency: str
    renewal_days: int
    tenants: Iterator[list[LicenceLine]]


def _run_lines(runs: RunRepository, margins: MarginRepository, run_id: str, config: SeatSyncConfig,
               renewal_days: int | None = None) -> _RunLines:
    request = runs.request(run_id)
    if request is None:
        raise ReconcileError("run", f"no run {run_id} is recorded")
    by_tenant = line_changes(runs, run_id)
    currency = config.notifications.currency.upper()
    days = renewal_days if renewal_days is not None else config.notifications.alerts.renewal_unused.days_before
    return _RunLines(run_id, request.dry_run, request.requested_at.date(), currency, days,
                     (reconcile_tenant(facts, by_tenant, currency) for _tenant, facts in margins.iter_facts(run_id)))


def run_reconciliation(runs: RunRepository, margins: MarginRepository, run_id: str, config: SeatSyncConfig,
                       renewal_days: int | None = None) -> Reconciliation:
    """The run's reconciliation, every licence of it, read a tenant at a time."""
    run = _run_lines(runs, margins, run_id, config, renewal_days)
    lines = sorted((line for tenant_lines in run.tenants for line in tenant_lines), key=line_order)
    return Reconciliation(run_id, run.dry_run, run.day, run.currency, tuple(lines),
                          tuple(renewals(lines, run.day, run.renewal_days)))


def run_reconciliation_summary(runs: RunRepository, margins: MarginRepository, run_id: str,
                               config: SeatSyncConfig) -> dict[str, Any]:
    """What a large run's text report shows of its reconciliation (``render_sections`` with
    ``summary``): the totals and how many licences and renewals, without the JSON of every
    licence. Made a tenant at a time, as each tenant's licences are reconciled: a run of thousands
    of tenants has thousands of licences, and none of them is held past its tenant."""
    run = _run_lines(runs, margins, run_id, config)
    counts = {"licences": 0, "renewals": 0}

    def lines() -> Iterator[LicenceLine]:
        for tenant_lines in run.tenants:
            counts["licences"] += len(tenant_lines)
            counts["renewals"] += len(renewals(tenant_lines, run.day, run.renewal_days))
            yield from tenant_lines

    sums = _totals_out(lines())  # exact sums: in whatever order the licences come
    return {"runId": run_id, "dryRun": run.dry_run, "day": run.day.isoformat(), "currency": run.currency,
            "licences": [], "licenceCount": counts["licences"], "renewals": [], "renewalCount": counts["renewals"],
            "totals": sums.model_dump(mode="json", by_alias=True)}


def month_run(runs: RunRepository, month: str | None) -> str:
    """The run a month's reconciliation is read from: the month's last finished run that wrote
    to the PSA (a dry run only when the month had no other); the latest run when no month."""
    if month is not None and not _MONTH.match(month):
        raise RequestValidationError("month", f"{month!r} is not a month like 2026-11")
    ids = runs.run_ids()
    if month is not None:
        prefix = month.replace("-", "")
        ids = [i for i in ids if i.startswith(prefix)]
    finished = [i for i in ids if runs.summary(i) is not None]
    live = [i for i in finished if (request := runs.request(i)) is not None and not request.dry_run]
    chosen = live or finished
    if not chosen:
        where = f"in {month}" if month else "yet"
        raise ReconcileError("month" if month else "run", f"no finished run {where} to reconcile")
    return chosen[-1]


# --------------------------------------------------------------------------- the API's shape


class _Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class MoneyOut(_Out):
    amount: str = Field(description="exact amount a month, rounded to the cent")
    currency: str


class ReducibleOut(_Out):
    seats: int
    until: date = Field(description="the last day the seats can be reduced with Microsoft's refund")


class SubscriptionOut(_Out):
    source: str
    subscription_id: str
    quantity: int
    active: bool
    term: str | None
    billing: str | None
    renewal: date | None
    auto_renew: bool | None
    monthly_cost: MoneyOut | None


class LineOut(_Out):
    """A PSA line that bills the licence, and the partner subscriptions it bills."""

    psa: str
    agreement_id: str
    line_id: str | None = Field(description="None: the run creates the line (or would, on a dry run)")
    billed_before: int | None
    billed: int = Field(description="what the line bills once the run is over")
    unit_price: str | None
    partner_subscriptions: list[str] = Field(description="the source's ids of the subscriptions it bills")


class LicenceOut(_Out):
    tenant_id: str
    tenant_name: str
    sku_id: str
    licence: str
    purchased: int
    purchased_from: str
    assigned: int
    bought_elsewhere: int
    billed: int
    revenue: MoneyOut | None = Field(description="billed seats at the PSA's prices, a month")
    cost: MoneyOut | None = Field(description="purchased seats at the partner's cost, a month")
    margin: MoneyOut | None
    margin_percent: str | None
    money_found_seats: int = Field(description="seats used but not billed")
    money_found: MoneyOut | None
    unused_seats: int
    reducible: list[ReducibleOut]
    locked_seats: int
    locked_until: date | None
    money_leaking: MoneyOut | None = Field(description="unused seats at cost, a month")
    term_basis: str = Field(description="where the term and dates come from: a subscription source or the "
                                        "declared term")
    problem: str | None
    lines: list[LineOut]
    subscriptions: list[SubscriptionOut]


class RenewalOut(_Out):
    tenant_id: str
    tenant_name: str
    sku_id: str
    licence: str
    subscription_id: str
    source: str
    renewal: date
    days_left: int
    unused_seats: int
    auto_renew: bool | None


class TotalsOut(_Out):
    revenue: list[MoneyOut]
    cost: list[MoneyOut]
    margin: list[MoneyOut]
    money_found: list[MoneyOut]
    money_leaking: list[MoneyOut]
    reducible: list[MoneyOut]
    money_found_seats: int
    unused_seats: int
    reducible_seats: int
    money_found_unpriced_seats: int = Field(
        default=0, description="of moneyFoundSeats, those of licences no line prices: counted, not in moneyFound")
    unused_uncosted_seats: int = Field(
        default=0, description="of unusedSeats, those of licences whose cost is not known: not in moneyLeaking")
    licences_without_margin: int = Field(
        default=0, description="licences with a revenue or a cost but no margin (the other unknown, or in another "
                               "currency): in revenue or cost, not in margin")


class ReconciliationOut(_Out):
    """The reconciliation of one run (``GET /api/reconciliation``)."""

    run_id: str
    dry_run: bool
    day: date
    currency: str = Field(description="the PSA's currency (notifications.currency)")
    licences: list[LicenceOut]
    totals: TotalsOut = Field(description="one sum per currency: amounts in different currencies are never added")
    renewals: list[RenewalOut]


def _money(amount: Money | None) -> MoneyOut | None:
    if amount is None:
        return None
    rounded = amount.rounded()
    return MoneyOut(amount=str(rounded.amount), currency=rounded.currency)


def _sums(sums: Totals) -> list[MoneyOut]:
    return [out for currency in sums if (out := _money(sums[currency])) is not None]


def _totals_out(lines: Iterable[LicenceLine]) -> TotalsOut:
    sums = totals(lines)
    return TotalsOut(revenue=_sums(sums.revenue), cost=_sums(sums.cost), margin=_sums(sums.margin),
                     money_found=_sums(sums.found), money_leaking=_sums(sums.leaking),
                     reducible=_sums(sums.reducible), money_found_seats=sums.found_seats,
                     unused_seats=sums.unused_seats, reducible_seats=sums.reducible_seats,
                     money_found_unpriced_seats=sums.found_unpriced_seats,
                     unused_uncosted_seats=sums.unused_uncosted_seats, licences_without_margin=sums.unmargined)


def to_output(view: Reconciliation) -> ReconciliationOut:
    return ReconciliationOut(
        run_id=view.run_id, dry_run=view.dry_run, day=view.day, currency=view.currency,
        licences=[LicenceOut(
            tenant_id=line.facts.tenant_id, tenant_name=line.facts.tenant_name, sku_id=line.facts.sku_id,
            licence=line.facts.label, purchased=line.facts.purchased, purchased_from=line.facts.purchased_from,
            assigned=line.facts.assigned, bought_elsewhere=line.facts.elsewhere, billed=line.billed,
            revenue=_money(line.revenue), cost=_money(line.cost), margin=_money(line.margin),
            margin_percent=None if line.margin_percent is None else str(line.margin_percent),
            money_found_seats=line.found_seats, money_found=_money(line.found), unused_seats=line.unused,
            reducible=[ReducibleOut(seats=seats, until=day) for seats, day in line.reducible],
            locked_seats=line.locked, locked_until=line.locked_until, money_leaking=_money(line.leaking),
            term_basis=line.facts.term_basis, problem=line.problem,
            lines=[LineOut(psa=m.psa, agreement_id=m.agreement_id, line_id=m.line_id, billed_before=m.billed_before,
                           billed=billed, unit_price=None if m.unit_price is None else str(m.unit_price),
                           partner_subscriptions=list(m.subscriptions))
                   for m, billed in zip(line.facts.mappings, line.billed_by_mapping, strict=True)],
            subscriptions=[SubscriptionOut(
                source=s.source, subscription_id=s.subscription_id, quantity=s.quantity, active=s.active,
                term=s.term, billing=s.billing, renewal=s.renewal, auto_renew=s.auto_renew,
                monthly_cost=_money(Money(s.monthly_cost, s.currency))
                if s.monthly_cost is not None and s.currency else None) for s in line.facts.subscriptions],
        ) for line in view.lines],
        totals=_totals_out(view.lines),
        renewals=[RenewalOut(tenant_id=r.tenant_id, tenant_name=r.tenant_name, sku_id=r.sku_id, licence=r.label,
                             subscription_id=r.subscription.subscription_id, source=r.subscription.source,
                             renewal=r.subscription.renewal or view.day, days_left=r.days_left,
                             unused_seats=r.unused, auto_renew=r.subscription.auto_renew) for r in view.renewals],
    )


def to_json(view: Reconciliation) -> dict[str, Any]:
    return to_output(view).model_dump(mode="json", by_alias=True)


# --------------------------------------------------------------------------- text and CSV


CSV_COLUMNS = ("tenant", "tenantId", "licence", "skuId", "purchased", "purchasedFrom", "assigned",
               "boughtElsewhere", "billed", "revenue", "cost", "margin", "marginPercent", "currency",
               "costCurrency", "moneyFoundSeats", "moneyFound", "unusedSeats", "reducibleSeats", "reducibleUntil",
               "lockedSeats", "lockedUntil", "moneyLeaking", "termBasis", "problem")


def _amount(value: Money | None) -> str:
    return "" if value is None else str(value.rounded().amount)


def to_csv(view: Reconciliation) -> str:
    """One row a licence; amounts a month, to the cent, without a currency sign (its own column)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in view.lines:
        facts = line.facts
        cell = spreadsheet_text
        writer.writerow([cell(facts.tenant_name), facts.tenant_id, cell(facts.label), facts.sku_id,
                         facts.purchased, cell(facts.purchased_from), facts.assigned, facts.elsewhere, line.billed,
                         _amount(line.revenue), _amount(line.cost), _amount(line.margin),
                         "" if line.margin_percent is None else str(line.margin_percent), view.currency,
                         facts.cost_currency or "", line.found_seats, _amount(line.found), line.unused,
                         line.reducible_seats, min((d for _, d in line.reducible), default="") or "",
                         line.locked, line.locked_until or "", _amount(line.leaking), cell(facts.term_basis),
                         cell(line.problem or "")])
    return out.getvalue()


def _show(value: dict[str, Any] | None) -> str:
    return "-" if not value else f"{Decimal(value['amount']):,} {value['currency']}"


def _sum(values: list[dict[str, Any]]) -> str:
    return ", ".join(_show(v) for v in values) or "-"


def _valued(seats: int, unvalued: int, amounts: list[dict[str, Any]], price: str) -> str:
    """Seats and what they are worth a month, saying how many have no known ``price``: those are
    counted but not in the amount, which would otherwise read as their value (0.00 for seats of
    a licence no line prices)."""
    if not unvalued:
        return f"{seats} seats, {_sum(amounts)} a month"
    if unvalued == seats:
        return f"{seats} seats, no {price} known for any of them"
    return f"{seats} seats, {_sum(amounts)} a month for {seats - unvalued} of them (no {price} known for {unvalued})"


def _margin(sums: dict[str, Any]) -> str:
    """The margin total, saying when some licences are in the revenue or the cost but not in it
    (so that it is not read as the one less the other)."""
    left_out = sums["licencesWithoutMargin"]
    if not left_out:
        return _sum(sums["margin"])
    if not sums["margin"]:
        return "- (no licence has both a revenue and a cost)"
    return f"{_sum(sums['margin'])} (without the {left_out} licence(s) that have a revenue or a cost but not both)"


def _found(sums: dict[str, Any]) -> str:
    return _valued(sums["moneyFoundSeats"], sums["moneyFoundUnpricedSeats"], sums["moneyFound"], "price")


def _leaking(sums: dict[str, Any]) -> str:
    return _valued(sums["unusedSeats"], sums["unusedUncostedSeats"], sums["moneyLeaking"], "cost")


def render_sections(money: dict[str, Any], summary: bool = False) -> list[str]:
    """The readable reconciliation from its JSON form (``to_json``): the table of licences, money
    found, money leaking, seats bought elsewhere and renewals. Shared by the run report and
    ``seatsync reconcile``. ``summary`` gives the totals only (a large run's report)."""
    licences = money["licences"]
    sums = money["totals"]
    if summary:
        count = money.get("licenceCount", len(licences))
        return [f"  {count} licences; a month: revenue {_sum(sums['revenue'])}; cost {_sum(sums['cost'])}; "
                f"margin {_margin(sums)}",
                f"  money found: {_found(sums)}; money leaking: {_leaking(sums)}, {sums['reducibleSeats']} still "
                f"reducible; {money.get('renewalCount', len(money['renewals']))} renewals with unused seats",
                "  seatsync reconcile lists every licence"]
    out = table(
        ["TENANT", "LICENCE", "FROM", "PURCH", "ASSIGN", "BILLED", "REVENUE", "COST", "MARGIN", "%"],
        [[x["tenantName"][:22], x["licence"][:30], x["purchasedFrom"].split(" (")[0][:16], str(x["purchased"]),
          str(x["assigned"]), str(x["billed"]), _show(x["revenue"]), _show(x["cost"]), _show(x["margin"]),
          x["marginPercent"] or "-"] for x in licences], indent="  ")
    out.append(f"  Totals a month: revenue {_sum(sums['revenue'])}; cost {_sum(sums['cost'])}; "
               f"margin {_margin(sums)}")
    found = [x for x in licences if x["moneyFoundSeats"]]
    if found:
        out += ["", f"Money found (seats used but not billed): {_found(sums)}"]
        out += [f"  - {x['tenantName']}: {x['licence']}: {x['moneyFoundSeats']} used, not billed"
                + (f" ({_show(x['moneyFound'])} a month)" if x["moneyFound"] else " (no price known)") for x in found]
    leaking = [x for x in licences if x["unusedSeats"]]
    if leaking:
        out += ["", f"Money leaking (seats bought, not assigned): {_leaking(sums)}; "
                    f"{sums['reducibleSeats']} can still be reduced"]
        for x in leaking:
            parts = [f"{r['seats']} reducible until {r['until']}" for r in x["reducible"]]
            if x["lockedSeats"]:
                parts.append(f"{x['lockedSeats']} locked" + (f" until {x['lockedUntil']}" if x["lockedUntil"] else ""))
            cost = f", {_show(x['moneyLeaking'])} a month" if x["moneyLeaking"] else ", no cost known"
            out.append(f"  - {x['tenantName']}: {x['licence']}: {x['unusedSeats']} unused{cost} ({'; '.join(parts)})")
    elsewhere = [x for x in licences if x["boughtElsewhere"]]
    if elsewhere:
        out += ["", "Bought elsewhere (no configured source sold them; never billed unless a mapping says so):"]
        out += [f"  - {x['tenantName']}: {x['licence']}: {x['boughtElsewhere']} of "
                f"{x['boughtElsewhere'] + x['purchased']} seats" for x in elsewhere]
    problems = [x for x in licences if x["problem"]]
    if problems:
        out += ["", "Not reconciled:"]
        out += [f"  - {x['tenantName']}: {x['licence']}: {x['problem']}" for x in problems]
    if money["renewals"]:
        out += ["", "Renewals with unused seats (reduce them before the renewal locks the next term):"]
        out += [f"  - {r['renewal']}  {r['tenantName']}: {r['licence']}: {r['unusedSeats']} unused "
                f"({r['source']} subscription {r['subscriptionId'][:8]}, in {r['daysLeft']} days)"
                for r in money["renewals"]]
    return out


def render_text(view: Reconciliation) -> str:
    mode = " (dry run: billed as planned)" if view.dry_run else ""
    head = [f"Reconciliation of run {view.run_id}{mode}, {view.day}; amounts a month, prices in {view.currency}"]
    if not view.lines:
        return "\n".join([*head, "  No licence was reconciled in this run."]) + "\n"
    return "\n".join(head + render_sections(to_json(view))) + "\n"
