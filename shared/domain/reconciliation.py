"""Reconciliation and margin: per tenant and licence, purchased vs assigned vs billed, with cost,
margin, money found and money leaking. Pure code.

``licence_facts`` takes what a run knows of one tenant (its snapshot with the partner facts, the
change plan and what the PSA billed before) and records, per licence:

- **purchased**: the seats the configured sources sold (``purchasedFrom`` names the source), or
  Microsoft's count (``prepaidUnits.enabled``) when no source sells to the tenant;
- **assigned**: Microsoft's ``consumedUnits``; **bought elsewhere**: seats no source sold;
- the mappings that bill it: the quantity before the run, the target, the unit price and the
  length of the agreement's billing period;
- the partner's subscriptions: term, renewal and cost; the cost a month; what can still be
  reduced (seats and last day) and what is locked until the renewal.

``reconcile`` then adds what the run did to the PSA (a change applied, or planned on a dry run,
bills its target; one held, deferred, rejected or failed leaves the quantity before):

- **billed**, **revenue** a month (billed x unit price / months in the agreement's period), **cost**
  a month (the sources' cost of the purchased seats), **margin** and **margin %**;
- **money found**: seats used but not billed (beyond what the mappings include for free), at the
  line's price; **money leaking**: seats bought but not assigned, at cost, split into those that
  can still be reduced (with the deadline) and those locked until the renewal.

Amounts are exact ``Decimal`` a month, rounded to the cent only when shown. Costs and prices stay
in their own currencies: a licence whose cost and price differ in currency has no margin (it is
reported), and totals are kept per currency.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from shared.config.schema import Term
from shared.domain.decreases import Commitment, commitment, partner_commitment
from shared.domain.model import ChangeKind, ChangeStatus, PlannedChange, TenantSnapshot
from shared.domain.money import Money, Totals
from shared.domain.partner import PartnerSubscription
from shared.domain.provenance import provenance
from shared.domain.sku_names import sku_display_name

MICROSOFT = "Microsoft 365"
WRITTEN = frozenset({ChangeStatus.APPLIED, ChangeStatus.DRY_RUN, ChangeStatus.PLANNED})


@dataclass(frozen=True)
class BilledMapping:
    """One mapping that bills the licence: its line before the run, the run's target, the unit
    price per agreement period and the period's length in months (None: not a monthly multiple),
    and the partner subscriptions it bills (their ids at the source)."""

    mapping_key: str
    agreement_id: str
    line_id: str | None
    billed_before: int | None
    target: int
    unit_price: Decimal | None
    period_months: int | None
    included: int = 0
    psa: str = ""
    subscriptions: tuple[str, ...] = ()


@dataclass(frozen=True)
class SubscriptionFact:
    """A subscription of the licence as the report shows it (from a source, or from the tenant)."""

    source: str
    subscription_id: str
    quantity: int
    active: bool
    term: str | None = None
    billing: str | None = None
    renewal: date | None = None
    auto_renew: bool | None = None
    monthly_cost: Decimal | None = None
    currency: str | None = None


@dataclass(frozen=True)
class LicenceFacts:
    """What a run knew of one licence of one tenant (see the module doc)."""

    tenant_id: str
    tenant_name: str
    sku_id: str
    label: str
    purchased: int
    purchased_from: str
    assigned: int
    elsewhere: int
    mappings: tuple[BilledMapping, ...]
    subscriptions: tuple[SubscriptionFact, ...]
    monthly_cost: Decimal | None
    cost_currency: str | None
    reducible: tuple[tuple[int, date], ...]
    renewal: date | None
    term_basis: str


@dataclass(frozen=True)
class LicenceLine:
    """A licence reconciled: the facts and what the run left the PSA billing."""

    facts: LicenceFacts
    billed: int
    revenue: Money | None
    cost: Money | None
    margin: Money | None
    margin_percent: Decimal | None
    found_seats: int
    found: Money | None
    unused: int
    reducible: tuple[tuple[int, date], ...]
    locked: int
    locked_until: date | None
    leaking: Money | None
    problem: str | None = None
    billed_by_mapping: tuple[int, ...] = ()
    """What each of ``facts.mappings`` bills once the run is over, in their order."""

    @property
    def reducible_seats(self) -> int:
        return sum(seats for seats, _ in self.reducible)


@dataclass(frozen=True)
class Renewal:
    """A subscription renewing soon while its licence has unused seats."""

    tenant_id: str
    tenant_name: str
    sku_id: str
    label: str
    subscription: SubscriptionFact
    unused: int
    days_left: int


# --------------------------------------------------------------------------- facts


def _subscription_fact(sub: PartnerSubscription) -> SubscriptionFact:
    return SubscriptionFact(sub.label, sub.subscription_id, sub.quantity, sub.active, sub.term, sub.billing,
                            sub.renewal, sub.auto_renew, sub.monthly_cost(), sub.currency)


def _reducible(terms: Commitment | None, unused: int) -> tuple[tuple[int, date], ...]:
    if terms is None or not terms.in_cancellation_window or unused <= 0 or terms.deadline is None:
        return ()
    seats = unused if terms.refundable is None else min(unused, terms.refundable)
    return ((seats, terms.deadline),) if seats > 0 else ()


def licence_facts(tenant_id: str, tenant_name: str, snapshot: TenantSnapshot, sku_ids: Iterable[str],
                  mappings: Mapping[str, list[BilledMapping]], declared_terms: Mapping[str, str],
                  today: date) -> list[LicenceFacts]:
    """The facts of the given licences of one tenant. ``mappings`` and ``declared_terms`` (the
    mapping's ``subscriptionTerm``) are by SKU id."""
    origins = provenance(snapshot)
    out: list[LicenceFacts] = []
    for sku_id in dict.fromkeys(s.lower() for s in sku_ids):
        sku = snapshot.sku(sku_id)
        purchased_graph = sku.purchased if sku else 0
        assigned = sku.consumed if sku else 0
        origin = origins.licence(sku_id)
        ours = list(origin.ours) if origin is not None else []
        active = [s for s in ours if s.active]
        if origin is not None:
            purchased = origin.ours_quantity
            source = ", ".join(dict.fromkeys(f"{s.label} ({s.source})" for s in active)) or "no source sells it"
            elsewhere = origin.elsewhere
            subscriptions = tuple(_subscription_fact(s) for s in ours)
            terms = partner_commitment(ours, today)
        else:
            purchased, source, elsewhere = purchased_graph, MICROSOFT, 0
            graph_subs = [g for g in snapshot.subscriptions if g.sku_id.lower() == sku_id]
            subscriptions = tuple(SubscriptionFact(MICROSOFT, g.id, g.total_licenses,
                                                   g.status.casefold() in ("enabled", "warning"),
                                                   renewal=g.next_lifecycle.date() if g.next_lifecycle else None)
                                  for g in graph_subs)
            term: Term = "monthly" if declared_terms.get(sku_id) == "monthly" else "annual"
            terms = commitment(graph_subs, term, today) if graph_subs else None
        costs = [(s.monthly_cost(), s.currency, s.quantity) for s in active]
        monthly_cost: Decimal | None = None
        cost_currency: str | None = None
        currencies = {c for _, c, _ in costs}
        if active and all(c is not None for c, _, _ in costs) and len(currencies) == 1:
            monthly_cost = sum((c * q for c, _, q in costs if c is not None), Decimal(0))
            cost_currency = next(iter(currencies))
        used = max(assigned - elsewhere, 0)
        unused = max(purchased - used, 0)
        out.append(LicenceFacts(
            tenant_id=tenant_id, tenant_name=tenant_name, sku_id=sku_id,
            label=sku_display_name(sku_id, sku.sku_part_number if sku else None), purchased=purchased,
            purchased_from=source, assigned=assigned, elsewhere=elsewhere,
            mappings=tuple(mappings.get(sku_id, ())), subscriptions=subscriptions, monthly_cost=monthly_cost,
            cost_currency=cost_currency, reducible=_reducible(terms, unused),
            renewal=terms.renewal if terms else None,
            term_basis=terms.basis if terms else "no subscription dates known",
        ))
    return out


# --------------------------------------------------------------------------- reconcile


@dataclass(frozen=True, slots=True)
class LineChange:
    """What the reconciliation reads of a change the run planned: which mapping, what kind, how
    it ended and the unit price it set. A run of thousands of tenants plans tens of thousands of
    changes; this is a tenth of a ``PlannedChange``."""

    mapping_key: str
    kind: ChangeKind
    status: ChangeStatus
    unit_price: Decimal | None = None

    @classmethod
    def of(cls, change: PlannedChange) -> LineChange:
        return cls(change.mapping_key, change.kind, change.status, change.unit_price)


BILLING_KINDS = frozenset({ChangeKind.SET_QUANTITY, ChangeKind.CREATE_LINE, ChangeKind.SET_DETAILS})
"""The kinds of change the reconciliation reads (quantities, new lines, prices)."""


def billed_after(mapping: BilledMapping, changes: Iterable[PlannedChange | LineChange]) -> int:
    """What the PSA bills for the mapping once the run is over: the target when its quantity
    change (or new line) was written, or planned on a dry run; otherwise what it billed before."""
    quantity_changes = [c for c in changes if c.mapping_key == mapping.mapping_key
                        and c.kind in (ChangeKind.SET_QUANTITY, ChangeKind.CREATE_LINE)]
    if not quantity_changes:
        return mapping.billed_before if mapping.billed_before is not None else 0
    if all(c.status in WRITTEN for c in quantity_changes):
        return mapping.target
    return mapping.billed_before if mapping.billed_before is not None else 0


def _percent(part: Decimal, whole: Decimal) -> Decimal:
    return (part * 100 / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def reconcile(facts: LicenceFacts, changes: Iterable[PlannedChange | LineChange], currency: str) -> LicenceLine:
    """The licence after the run, in the PSA's ``currency`` (see the module doc)."""
    changes = list(changes)
    billed = 0
    revenue: Money | None = Money.zero(currency)
    unit_price: Decimal | None = None
    by_mapping: list[int] = []
    for mapping in facts.mappings:
        quantity = billed_after(mapping, changes)
        by_mapping.append(quantity)
        billed += quantity
        if mapping.unit_price is not None and mapping.period_months:
            monthly = mapping.unit_price / mapping.period_months
            unit_price = unit_price if unit_price is not None else monthly
            if revenue is not None:
                revenue = revenue + Money(monthly * quantity, currency)
        elif quantity:
            revenue = None
    if not facts.mappings:
        revenue = None
    cost = None
    if facts.monthly_cost is not None and facts.cost_currency:
        cost = Money(facts.monthly_cost, facts.cost_currency)
    margin: Money | None = None
    percent: Decimal | None = None
    problem = None
    if revenue is not None and cost is not None:
        if cost.currency != revenue.currency:
            problem = (f"the cost is in {cost.currency} and the price in {revenue.currency}: no margin is computed "
                       "(SeatSync never converts currencies)")
        else:
            margin = revenue - cost
            percent = _percent(margin.amount, revenue.amount) if revenue.amount else None
    used = max(facts.assigned - facts.elsewhere, 0)
    included = sum(m.included for m in facts.mappings)
    found_seats = max(used - billed - included, 0)
    found = Money(unit_price * found_seats, currency) if unit_price is not None else None
    unused = max(facts.purchased - used, 0)
    reducible = tuple((min(seats, unused), day) for seats, day in facts.reducible if min(seats, unused) > 0)
    locked = unused - sum(seats for seats, _ in reducible)
    seat_cost = (facts.monthly_cost / facts.purchased) if facts.monthly_cost is not None and facts.purchased else None
    leaking = (Money(seat_cost * unused, facts.cost_currency)
               if seat_cost is not None and facts.cost_currency else None)
    return LicenceLine(facts, billed, revenue, cost, margin, percent, found_seats, found, unused, reducible, locked,
                       facts.renewal if locked else None, leaking, problem, tuple(by_mapping))


@dataclass(frozen=True)
class ReconciliationTotals:
    """Totals of reconciled licences, one sum per currency."""

    revenue: Totals
    cost: Totals
    margin: Totals
    found: Totals
    leaking: Totals
    reducible: Totals
    found_seats: int
    unused_seats: int
    reducible_seats: int
    found_unpriced_seats: int = 0
    """Of ``found_seats``, those of licences no line prices: counted, never valued at zero."""
    unused_uncosted_seats: int = 0
    """Of ``unused_seats``, those of licences whose cost is not known: not in ``leaking``."""
    unmargined: int = 0
    """Licences with a revenue or a cost but no margin (the other is unknown, or in another
    currency): in the revenue or cost totals, not in the margin's."""


def totals(lines: Iterable[LicenceLine]) -> ReconciliationTotals:
    revenue, cost, margin, found, leaking, reducible = Totals(), Totals(), Totals(), Totals(), Totals(), Totals()
    found_seats = unused = reducible_seats = found_unpriced = unused_uncosted = unmargined = 0
    for line in lines:
        for bucket, amount in ((revenue, line.revenue), (cost, line.cost), (margin, line.margin),
                               (found, line.found), (leaking, line.leaking)):
            if amount is not None:
                bucket.add(amount)
        if line.leaking is not None and line.unused and line.reducible_seats:
            reducible.add(line.leaking.times(Decimal(line.reducible_seats) / line.unused))
        found_seats += line.found_seats
        unused += line.unused
        reducible_seats += line.reducible_seats
        found_unpriced += line.found_seats if line.found is None else 0
        unused_uncosted += line.unused if line.leaking is None else 0
        unmargined += 1 if line.margin is None and (line.revenue is not None or line.cost is not None) else 0
    return ReconciliationTotals(revenue, cost, margin, found, leaking, reducible, found_seats, unused,
                                reducible_seats, found_unpriced, unused_uncosted, unmargined)


def renewals(lines: Iterable[LicenceLine], today: date, within_days: int) -> list[Renewal]:
    """Subscriptions renewing within ``within_days`` of ``today`` while their licence has unused
    seats: the last moment to reduce them for the next term."""
    horizon = today + timedelta(days=within_days)
    found: list[Renewal] = []
    for line in lines:
        if line.unused <= 0:
            continue
        for sub in line.facts.subscriptions:
            if sub.active and sub.renewal is not None and today <= sub.renewal <= horizon:
                found.append(Renewal(line.facts.tenant_id, line.facts.tenant_name, line.facts.sku_id,
                                     line.facts.label, sub, min(line.unused, sub.quantity),
                                     (sub.renewal - today).days))
    return sorted(found, key=renewal_order)


def renewal_order(renewal: Renewal) -> tuple[date, str, str]:
    """The order renewals are shown in: soonest first, then by tenant and licence."""
    return renewal.subscription.renewal or date.min, renewal.tenant_name.casefold(), renewal.label
