"""The change plan: from a tenant's snapshot, its configuration, what the PSA bills now and the
decisions taken on earlier runs, the exact writes that bring the PSA in line. Pure code.

Rules (tests/unit/test_planning.py covers each):
- only what differs is written: an unchanged day plans nothing;
- a mapping's line is the configured ``lineId``, else the line SeatSync created (found by its
  tag), else the one active line of the profile's product on the agreement; when there is none,
  a line is created from the billing profile (never a line of zero seats);
- increases apply at once; where the agreement prorates and the PSA bills a mid-period change
  through a separate line (ConnectWise), a tagged prorate line for the added seats runs from the
  day detected to the end of the current billing period (the PSA prorates its charge, as it does
  for a new line that starts mid-period); where the PSA prorates quantity changes by itself
  (Autotask) the change carries the effective date (the next billing period's start when the
  company disables prorating);
- decreases follow shared.domain.decreases (approval, NCE window, deferral); a credit line is
  planned only where the mapping allows negative prorating;
- every change has a deterministic id and SeatSync's records a deterministic tag, so a
  retried or repeated run finds what it already wrote instead of writing it twice;
- anything the plan cannot decide (a missing agreement, a line on another agreement, a
  cancelled line, several candidate lines) is a problem: reported, never guessed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import cast

from shared.config.schema import BillingProfile, SeatSyncConfig, TenantConfig
from shared.domain.billing import BillableItem, billable_items, invoice_description, overlapping_users
from shared.domain.decreases import Approval, Commitment, Deferral, Verdict, commitment, decide, hold_key
from shared.domain.model import (
    Agreement,
    BilledLine,
    BillMode,
    ChangeKind,
    ChangeStatus,
    PlannedChange,
    Product,
    PsaCapabilities,
    TenantSnapshot,
)
from shared.domain.periods import (
    CENT,
    DAYS_PER_PERIOD,
    MONTHS_PER_PERIOD,
    BillingPeriod,
    Cycle,
    next_period,
    period_containing,
    prorate,
)

AgreementKey = tuple[str, str]  # (psa connection, agreement id)
LINE_TAG = "seatsync:l:"
CHANGE_TAG = "seatsync:c:"
BILL_MODES = {"billable": BillMode.BILLABLE, "do-not-bill": BillMode.DO_NOT_BILL, "no-charge": BillMode.NO_CHARGE}
# Order in which a tenant's writes are made: a prorate line before the base quantity it
# accompanies, so a crash between the two is repaired by the next attempt (the prorate line is
# found by its tag, the base quantity still differs).
WRITE_ORDER = {ChangeKind.PRORATE: 0, ChangeKind.CREDIT: 0, ChangeKind.CREATE_LINE: 1, ChangeKind.SET_QUANTITY: 2,
               ChangeKind.SET_DETAILS: 3}


@dataclass(frozen=True)
class Problem:
    """Something the plan cannot fix by itself: reported, never guessed at."""

    tenant_id: str
    message: str
    sku_id: str | None = None
    agreement_id: str | None = None
    line_id: str | None = None


@dataclass(frozen=True)
class PsaView:
    """What the PSAs bill now for one tenant, read just before planning."""

    agreements: Mapping[AgreementKey, Agreement]
    lines: Mapping[AgreementKey, tuple[BilledLine, ...]]
    products: Mapping[AgreementKey, Product]  # (psa, product id)
    capabilities: Mapping[str, PsaCapabilities]


@dataclass(frozen=True)
class Decisions:
    """Decisions recorded on earlier runs, by hold key."""

    approvals: Mapping[str, Approval] = field(default_factory=dict)
    deferrals: Mapping[str, Deferral] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemOutcome:
    """A mapped licence after planning: its billable state and the line's quantity before."""

    item: BillableItem
    agreement_id: str
    line_id: str | None
    billed_before: int | None
    unit_price: Decimal | None


@dataclass(frozen=True)
class TenantPlan:
    tenant_id: str
    changes: tuple[PlannedChange, ...]
    outcomes: tuple[ItemOutcome, ...]
    problems: tuple[Problem, ...]

    @property
    def unchanged(self) -> int:
        touched = {c.mapping_key for c in self.changes}
        return sum(1 for o in self.outcomes if o.item.mapping_key not in touched)


def change_id(tenant_id: str, source: str, agreement_id: str, line: str | None, kind: ChangeKind, quantity: int,
              effective: date) -> str:
    """A stable id for one intended write: tenant, licence, agreement, line, kind, target quantity and
    effective date. The same intent on the same day has the same id."""
    material = "|".join([tenant_id.lower(), source.lower(), agreement_id, line or "-", kind.value, str(quantity),
                         effective.isoformat()])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def line_tag(mapping_key: str) -> str:
    return f"{LINE_TAG}{mapping_key}"


def change_tag(identifier: str) -> str:
    return f"{CHANGE_TAG}{identifier}"


def required_reads(config: SeatSyncConfig, tenant: TenantConfig) -> tuple[set[AgreementKey], set[AgreementKey]]:
    """The agreements and products the planner needs for a tenant (what the push must read)."""
    agreements: set[AgreementKey] = set()
    products: set[AgreementKey] = set()
    for company in tenant.companies:
        for licence in company.licences:
            agreements.add((company.psa, licence.agreement_id))
            profile = config.profile(licence.profile) if licence.profile else None
            if profile is not None:
                products.add((profile.psa, profile.product_id))
    return agreements, products


def profile_price(profile: BillingProfile, product: Product | None) -> Decimal | None:
    """The unit price a profile bills at, or None when it depends on a price the PSA lacks."""
    if profile.price.mode == "custom":
        return profile.price.amount
    if product is None or product.price is None:
        return None
    if profile.price.mode == "markup":
        assert profile.price.percent is not None
        return (product.price * (100 + profile.price.percent) / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    return product.price


class _Planner:
    def __init__(self, config: SeatSyncConfig, tenant: TenantConfig, snapshot: TenantSnapshot, view: PsaView,
                 decisions: Decisions, today: date) -> None:
        self.config = config
        self.tenant = tenant
        self.snapshot = snapshot
        self.view = view
        self.decisions = decisions
        self.today = today
        self.changes: list[PlannedChange] = []
        self.outcomes: list[ItemOutcome] = []
        self.problems: list[Problem] = []

    # -- helpers ------------------------------------------------------------------------------
    def problem(self, item: BillableItem, message: str, line_id: str | None = None) -> None:
        self.problems.append(Problem(self.tenant.tenant_id, f"{item.label}: {message}", item.licence.source,
                                     item.licence.agreement_id, line_id or item.licence.line_id))

    def change(self, item: BillableItem, kind: ChangeKind, line: BilledLine | None, old: int | None, new: int,
               reason: str, effective: date, **extra: object) -> PlannedChange:
        line_ref = line.line_id if line else (extra.get("tag") if isinstance(extra.get("tag"), str) else None)
        identifier = change_id(self.tenant.tenant_id, item.licence.source, item.licence.agreement_id,
                               str(line_ref) if line_ref else None, kind, new, effective)
        return PlannedChange(
            change_id=identifier, kind=kind, tenant_id=self.tenant.tenant_id, company_id=item.company.company_id,
            psa=item.company.psa, agreement_id=item.licence.agreement_id, line_id=line.line_id if line else None,
            sku_id=item.licence.sku_id or item.licence.source, old_quantity=old, new_quantity=new, reason=reason,
            mapping_key=item.mapping_key, label=item.label, effective_date=effective, **extra,  # type: ignore[arg-type]
        )

    def find_line(self, item: BillableItem, profile: BillingProfile | None,
                  lines: tuple[BilledLine, ...]) -> tuple[BilledLine | None, str | None]:
        """(line, problem)."""
        licence = item.licence
        if licence.line_id is not None:
            for line in lines:
                if line.line_id == licence.line_id:
                    return line, None
            for other in self.view.lines.values():
                for line in other:
                    if line.line_id == licence.line_id and line.psa == item.company.psa:
                        return None, (f"line {licence.line_id} belongs to agreement {line.agreement_id}, "
                                      f"not {licence.agreement_id}; fix the mapping")
            return None, f"line {licence.line_id} was not found on agreement {licence.agreement_id}"
        tagged = [line for line in lines if line.tag == line_tag(item.mapping_key) and line.active]
        if tagged:
            return tagged[0], None
        if profile is None:
            return None, None
        candidates = [line for line in lines if line.active and line.product_id == profile.product_id
                      and not (line.tag or "").startswith(("seatsync:", "SeatSync:"))]
        if len(candidates) > 1:
            ids = ", ".join(line.line_id for line in candidates)
            return None, (f"agreement {licence.agreement_id} has several lines of product {profile.product_id} "
                          f"({ids}); set 'lineId' to say which one bills this licence")
        return (candidates[0], None) if candidates else (None, None)

    def terms(self, item: BillableItem) -> Commitment | None:
        licence = item.licence
        if licence.sku_id is None:
            return None
        wanted = set(licence.subscription_ids)
        subscriptions = [s for s in self.snapshot.subscriptions
                         if s.sku_id.lower() == licence.sku_id and (not wanted or s.id.lower() in wanted)]
        return commitment(subscriptions, licence.subscription_term, self.today) if subscriptions else None

    # -- planning -----------------------------------------------------------------------------
    def plan(self) -> TenantPlan:
        overlaps = overlapping_users(self.tenant, self.snapshot)
        blocked_companies: set[int] = set()
        if overlaps:
            names = ", ".join(u.user_principal_name for u, _ in overlaps[:10])
            more = f" and {len(overlaps) - 10} more" if len(overlaps) > 10 else ""
            for _, hits in overlaps:
                blocked_companies.update(hits)
            self.problems.append(Problem(
                self.tenant.tenant_id, f"users match the filters of several companies and would be billed twice: "
                                       f"{names}{more}; filtered licences of those companies are not synced"))
        items, item_problems = billable_items(self.config, self.tenant, self.snapshot)
        for item_problem in item_problems:
            self.problems.append(Problem(self.tenant.tenant_id, item_problem.message, item_problem.sku_id))
        for item in items:
            index = self.tenant.companies.index(item.company)
            filtered = item.company.user_filter is not None and not item.licence.ignore_filter
            if index in blocked_companies and filtered:
                continue
            self.plan_item(item)
        self.changes.sort(key=lambda c: (c.mapping_key, WRITE_ORDER[c.kind]))
        return TenantPlan(self.tenant.tenant_id, tuple(self.changes), tuple(self.outcomes), tuple(self.problems))

    def plan_item(self, item: BillableItem) -> None:
        licence, company = item.licence, item.company
        key = (company.psa, licence.agreement_id)
        agreement = self.view.agreements.get(key)
        if agreement is None:
            self.problem(item, f"agreement {licence.agreement_id} was not found in {company.psa}")
            return
        if not agreement.active:
            self.problem(item, f"agreement {licence.agreement_id} ({agreement.name}) is not active; nothing written")
            return
        if agreement.company_id != company.company_id:
            self.problem(item, f"agreement {licence.agreement_id} belongs to company {agreement.company_id}, "
                               f"not {company.company_id}; fix the mapping")
            return
        profile = self.config.profile(licence.profile) if licence.profile else None
        if profile is not None and profile.agreement_types and agreement.type_name not in profile.agreement_types:
            self.problem(item, f"profile '{profile.name}' may not be used on agreement type "
                               f"'{agreement.type_name}' (allowed: {', '.join(profile.agreement_types)})")
            return
        capabilities = self.view.capabilities.get(company.psa)
        if capabilities is None:
            self.problem(item, f"PSA connection '{company.psa}' was not read")
            return
        line, trouble = self.find_line(item, profile, self.view.lines.get(key, ()))
        if trouble is not None:
            self.problem(item, trouble)
            return
        product = self.view.products.get((profile.psa, profile.product_id)) if profile else None
        price = profile_price(profile, product) if profile else None
        description = None
        if licence.include_user_names or licence.show_unassigned or licence.description:
            base = licence.description or (profile.description if profile else None) or item.label
            description = invoice_description(item, base, capabilities.description_limit)
        if line is None:
            self.outcomes.append(ItemOutcome(item, licence.agreement_id, None, None, price))
            self.plan_new_line(item, agreement, profile, product, price, description, capabilities)
            return
        if not line.active:
            self.problem(item, f"line {line.line_id} was cancelled on {line.cancelled_date}; billing is not "
                               "restarted automatically", line.line_id)
            return
        current = line.quantity
        if current != current.to_integral_value():
            self.problem(item, f"line {line.line_id} bills a fractional quantity ({current}); set it to whole "
                               "seats first", line.line_id)
            return
        old = int(current)
        unit_price = line.unit_price if line.unit_price is not None else price
        self.outcomes.append(ItemOutcome(item, licence.agreement_id, line.line_id, old, unit_price))
        if (description is not None and description != line.invoice_description) or (
                price is not None and line.unit_price is not None and price != line.unit_price):
            new_description = description if description != line.invoice_description else None
            new_price = price if price is not None and price != line.unit_price else None
            what = " and ".join(w for w, v in (("description", new_description), ("unit price", new_price)) if v)
            self.changes.append(self.change(item, ChangeKind.SET_DETAILS, line, old, old, f"update the {what}",
                                            self.today, description=new_description, unit_price=new_price))
        if item.quantity == old:
            return
        if item.quantity > old:
            self.plan_increase(item, agreement, line, old, unit_price, capabilities)
        else:
            self.plan_decrease(item, agreement, line, old, unit_price, capabilities)

    def period(self, agreement: Agreement) -> BillingPeriod | None:
        """The agreement's billing period containing today, when it has one SeatSync can compute."""
        cycle = _cycle(agreement)
        if agreement.start_date is None or cycle is None:
            return None
        return period_containing(self.today, agreement.start_date, cycle)

    def prorates(self, item: BillableItem, agreement: Agreement) -> bool:
        return agreement.prorate and not item.company.disable_prorate and not (
            item.licence.start_date and item.licence.start_date > self.today)

    def prorate_line(self, item: BillableItem, agreement: Agreement, base: BilledLine | None, units: int,
                     unit_price: Decimal | None, kind: ChangeKind, lines: tuple[BilledLine, ...],
                     product_id: str | None) -> str | None:
        """Plan a separate prorate (or credit) line; returns a note when none can be planned."""
        period = self.period(agreement)
        if period is None:
            return f"agreement {agreement.agreement_id} has no billing period SeatSync can prorate over"
        if unit_price is None:
            return "no unit price is known to prorate"
        product = product_id or (base.product_id if base else None)
        if product is None:
            return "no product to prorate"
        charge = prorate(unit_price, units, self.today, period)
        identifier = change_id(self.tenant.tenant_id, item.licence.source, item.licence.agreement_id,
                               base.line_id if base else line_tag(item.mapping_key), kind, units, self.today)
        tag = change_tag(identifier)
        written = next((line for line in lines if line.tag == tag), None)
        verb = "added" if units > 0 else "removed"
        self.changes.append(PlannedChange(
            change_id=identifier, kind=kind, tenant_id=self.tenant.tenant_id, company_id=item.company.company_id,
            psa=item.company.psa, agreement_id=agreement.agreement_id, line_id=None,
            sku_id=item.licence.sku_id or item.licence.source, old_quantity=None, new_quantity=units,
            reason=(f"prorate {abs(units)} {verb} seats {self.today}..{period.end}: {charge.days}/{period.days} days "
                    f"x {unit_price} = {charge.prorated_unit_price} per seat"),
            # The line carries the full unit price: the PSA prorates a line that starts mid-period
            # itself; ``amount`` is the charge by SeatSync's convention, for the report and audit.
            mapping_key=item.mapping_key, label=item.label, product_id=product, unit_price=unit_price,
            bill_mode=base.bill_mode if base else BillMode.BILLABLE, effective_date=self.today, end_date=period.end,
            tag=tag, amount=charge.amount,
            description=(f"{item.label}: {abs(units)} seat(s) {verb} {self.today:%d %b %Y}, prorated to "
                         f"{period.end:%d %b %Y} ({charge.days}/{period.days} days)"),
        ))
        if written is not None:  # an earlier attempt wrote it: found by its tag, never written twice
            self.changes[-1] = replace(self.changes[-1], status=ChangeStatus.APPLIED, line_id=written.line_id,
                                       reason=self.changes[-1].reason + "; already written (found by its tag)")
        return None

    def plan_new_line(self, item: BillableItem, agreement: Agreement, profile: BillingProfile | None,
                      product: Product | None, price: Decimal | None, description: str | None,
                      capabilities: PsaCapabilities) -> None:
        if profile is None:
            self.problem(item, f"no line bills it on agreement {agreement.agreement_id} and no billing profile "
                               "says how to create one")
            return
        if item.quantity == 0:
            return
        if profile.price.mode != "custom" and price is None:
            self.problem(item, f"product {profile.product_id} has no price in {profile.psa}; the line was not "
                               "created")
            return
        start = item.licence.start_date
        effective = start if start is not None else self.today
        tag = line_tag(item.mapping_key) if capabilities.tag_limit >= len(line_tag(item.mapping_key)) else None
        self.changes.append(self.change(
            item, ChangeKind.CREATE_LINE, None, None, item.quantity, f"new line: {item.reason}",
            effective,
            product_id=profile.product_id, unit_price=price, bill_mode=BILL_MODES[profile.billing], tag=tag,
            description=description or (profile.description or item.label)))

    def plan_increase(self, item: BillableItem, agreement: Agreement, line: BilledLine, old: int,
                      unit_price: Decimal | None, capabilities: PsaCapabilities) -> None:
        prorated = self.prorates(item, agreement)
        effective = self.today
        note = ""
        amount = None
        if capabilities.prorate == "separate-line" and prorated:
            lines = self.view.lines.get((item.company.psa, agreement.agreement_id), ())
            missing = self.prorate_line(item, agreement, line, item.quantity - old, unit_price, ChangeKind.PRORATE,
                                        lines, None)
            if missing:
                note = f"; not prorated: {missing}"
        elif capabilities.prorate == "native":
            effective = self.native_effective(item, agreement)
            period = self.period(agreement)
            if effective == self.today and period is not None and unit_price is not None:
                # the PSA prorates the change itself; this is the charge by SeatSync's convention
                amount = prorate(unit_price, item.quantity - old, self.today, period).amount
        self.changes.append(self.change(item, ChangeKind.SET_QUANTITY, line, old, item.quantity,
                                        f"{item.reason}{note}", effective, amount=amount))

    def native_effective(self, item: BillableItem, agreement: Agreement) -> date:
        """Autotask-style: today (the PSA prorates), or the next billing period's start when the
        company disables prorating."""
        if not item.company.disable_prorate and self.prorates(item, agreement):
            return self.today
        return self.next_period_start(agreement)

    def next_period_start(self, agreement: Agreement) -> date:
        period = self.period(agreement)
        if period is None or agreement.start_date is None:
            return self.today
        cycle = _cycle(agreement)
        assert cycle is not None  # a period exists only for a known cycle
        return next_period(period, agreement.start_date, cycle).start

    def plan_decrease(self, item: BillableItem, agreement: Agreement, line: BilledLine, old: int,
                      unit_price: Decimal | None, capabilities: PsaCapabilities) -> None:
        key = hold_key(self.tenant.tenant_id, item.mapping_key, agreement.agreement_id, line.line_id, old,
                       item.quantity)
        decision = decide(
            old=old, new=item.quantity, key=key, custom=item.licence.custom is not None,
            policy=item.licence.decrease_policy, safety=self.config.safety, terms=self.terms(item),
            approval=self.decisions.approvals.get(key), deferral=self.decisions.deferrals.get(key), today=self.today)
        reason = f"{item.reason}; {decision.reason}"
        if decision.verdict != Verdict.APPLY:
            status = {Verdict.HOLD: ChangeStatus.HELD, Verdict.DEFER: ChangeStatus.DEFERRED,
                      Verdict.REJECTED: ChangeStatus.REJECTED}[decision.verdict]
            self.changes.append(self.change(item, ChangeKind.SET_QUANTITY, line, old, item.quantity, reason,
                                            decision.due or self.today, status=status, hold_key=key,
                                            due_date=decision.due))
            return
        effective = self.today
        if capabilities.prorate == "separate-line" and self.prorates(item, agreement) \
                and item.licence.allow_negative_prorate:
            lines = self.view.lines.get((item.company.psa, agreement.agreement_id), ())
            missing = self.prorate_line(item, agreement, line, item.quantity - old, unit_price, ChangeKind.CREDIT,
                                        lines, None)
            if missing:
                reason += f"; no credit: {missing}"
        elif capabilities.prorate == "native":
            # the PSA credits a decrease dated inside the current period: only where negative
            # prorating is allowed; otherwise the decrease takes effect with the next period
            effective = (self.native_effective(item, agreement) if item.licence.allow_negative_prorate
                         else self.next_period_start(agreement))
        self.changes.append(self.change(item, ChangeKind.SET_QUANTITY, line, old, item.quantity, reason, effective,
                                        hold_key=key))


def _cycle(agreement: Agreement) -> Cycle | None:
    cycle = agreement.billing_cycle
    if cycle in MONTHS_PER_PERIOD or cycle in DAYS_PER_PERIOD:
        return cast(Cycle, cycle)
    return None


def plan_tenant(config: SeatSyncConfig, tenant: TenantConfig, snapshot: TenantSnapshot, view: PsaView,
                today: date, decisions: Decisions | None = None) -> TenantPlan:
    """Plan every write for one tenant (``today`` is the day the changes are detected, UTC)."""
    return _Planner(config, tenant, snapshot, view, decisions or Decisions(), today).plan()
