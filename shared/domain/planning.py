"""The change plan: from a tenant's snapshot, its configuration, what the PSA bills now and the
decisions taken on earlier runs, the exact writes that bring the PSA in line. Pure code.

Rules (tests/unit/test_planning.py covers each):
- only what differs is written: an unchanged day plans nothing;
- a mapping's line is the configured ``lineId``, else the line SeatSync created (found by its
  tag), else the one active line of the profile's product on the agreement; when there is none,
  a line is created from the billing profile (never a line of zero seats);
- a quantity change is planned from what the PSA bills for the current billing period and the
  next (shared.domain.periods): a period not invoiced yet is invoiced at the new quantity (no
  prorating); in an invoiced period, seats above what the period is already charged for are
  charged for the rest of it where the agreement prorates: a tagged prorate line running from
  the day detected to the period's end (ConnectWise, which prorates such a line itself), or a
  change dated today (Autotask and HaloPSA prorate it themselves); what the line bills from the
  next period on is the new quantity (the addition's quantity; a change dated the next period's
  start); seats the period is already charged for are never charged again;
- decreases follow shared.domain.decreases (approval, NCE window, deferral), with the terms a
  subscription source gives where one sells the licence; a decrease is
  credited for the rest of the period only where the mapping allows negative prorating;
  otherwise the removed seats stay charged to the period's end (on ConnectWise SeatSync records
  the quantity the period was invoiced at in a not-billed addition, so that a re-increase is
  not charged twice);
- a profile priced from cost (``cost-plus``) sets the line's price from the partner's cost a
  seat a month (times the agreement's months a period) plus its percentage; a cost the sources do
  not give, give differently for subscriptions billed through one line, or give in another
  currency than the PSA's leaves the price as it is and is reported;
- every change has a deterministic id and SeatSync's records a deterministic tag, so a
  retried or repeated run finds what it already wrote instead of writing it twice;
- anything the plan cannot decide (a missing agreement, a line on another agreement, a
  cancelled line, several candidate lines) is a problem: reported, never guessed; a line SeatSync
  created that the MSP cancelled is never created again, and a line billing beside SeatSync's
  (the MSP's own line of the product, or a second line with its tag) freezes both;
- a line SeatSync created (its ledger says so, ``Decisions.created``) that the PSA no longer shows
  (the MSP deleted an Autotask contract service or a Halo recurring invoice line), or that the
  MSP emptied (no seats from the next period on, where SeatSync never lowered it to 0 itself), is
  removed: frozen and reported, and billed again only once a person approves its recreation
  (a held change, ``recreate_key``), or points the mapping at the line that bills it now;
- one PSA line bills one licence: two mappings that find the same line (by lineId or by adopting
  it) are frozen and reported (``line-shared``), and a configured line with a line SeatSync
  created for the licence still billing beside it freezes both (several candidate lines).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from shared.config.schema import BillingProfile, SeatSyncConfig, TenantConfig
from shared.domain.billing import BillableItem, billable_items, invoice_description, overlapping_users
from shared.domain.decreases import (
    Approval,
    Commitment,
    Deferral,
    Verdict,
    commitment,
    decide,
    hold_key,
    partner_commitment,
)
from shared.domain.model import (
    MAX_COUNT,
    Agreement,
    BilledLine,
    BillingAttributes,
    BillMode,
    ChangeKind,
    ChangeStatus,
    PlannedChange,
    Product,
    PsaCapabilities,
    TenantSnapshot,
)
from shared.domain.partner import PartnerSubscription
from shared.domain.periods import (
    CENT,
    DAYS_PER_PERIOD,
    MONTHS_PER_PERIOD,
    BillingPeriod,
    Cycle,
    Invoicing,
    PeriodChange,
    invoicing,
    period_change,
    period_containing,
    prorate,
)
from shared.domain.problems import Problem, ProblemKind
from shared.domain.provenance import provenance
from shared.domain.sku_names import sku_display_name
from shared.domain.subscriptions import StateRecord, state_since

AgreementKey = tuple[str, str]  # (psa connection, agreement id)
LINE_TAG = "seatsync:l:"
CHANGE_TAG = "seatsync:c:"
RECORD_TAG = "seatsync:i:"
TAG_MAX = 50  # the shortest tag field SeatSync writes a prorate tag to (ConnectWise serialNumber)
BILL_MODES = {"billable": BillMode.BILLABLE, "do-not-bill": BillMode.DO_NOT_BILL, "no-charge": BillMode.NO_CHARGE}
# Order in which a tenant's writes are made: a prorate line before the base quantity it
# accompanies, so a crash between the two is repaired by the next attempt (the prorate line is
# found by its tag, the base quantity still differs).
# A period's record is written before the decrease it records, for the same reason.
WRITE_ORDER = {ChangeKind.PRORATE: 0, ChangeKind.CREDIT: 0, ChangeKind.PERIOD_RECORD: 0, ChangeKind.CREATE_LINE: 1,
               ChangeKind.SET_QUANTITY: 2, ChangeKind.SET_DETAILS: 3}


@dataclass(frozen=True)
class PsaView:
    """What the PSAs bill now for one tenant, read just before planning."""

    agreements: Mapping[AgreementKey, Agreement]
    lines: Mapping[AgreementKey, tuple[BilledLine, ...]]
    products: Mapping[AgreementKey, Product]  # (psa, product id)
    capabilities: Mapping[str, PsaCapabilities]


@dataclass(frozen=True)
class CreatedLine:
    """A line SeatSync created for a licence, as its ledger records it: the PSA may no longer show
    it (an MSP can delete an Autotask contract service or a Halo recurring invoice line)."""

    line_id: str
    created: date
    run_id: str


@dataclass(frozen=True)
class Decisions:
    """Decisions recorded on earlier runs, by hold key, and SeatSync's record of its own lines."""

    approvals: Mapping[str, Approval] = field(default_factory=dict)
    deferrals: Mapping[str, Deferral] = field(default_factory=dict)
    guard: str | None = None
    """Why every decrease of the tenant waits for a person this run (shared.domain.lifecycle)."""
    created: Mapping[str, tuple[CreatedLine, ...]] = field(default_factory=dict)
    """The lines SeatSync created, by the tag it gave them (``line_tag``), oldest first."""
    emptied_by_seatsync: frozenset[str] = frozenset()
    """Of the lines SeatSync created that bill no seats now, those SeatSync itself set to 0 (or
    whose records do not say): an empty line of these is SeatSync's doing, not a removal."""


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


def stale_decisions(plan: TenantPlan, decisions: Decisions) -> tuple[list[str], list[str]]:
    """(hold keys of approved or rejected decreases, hold keys of deferrals) that no longer stand:
    their licence was planned and no longer decreases from the same quantity to the same one (the
    count moved on before the decision applied). They are superseded, never kept for later: an
    approval or a due deferral must not apply to a decrease that merely happens to have the same
    from and to months later (after a renewal that locked the seats for a new term). A licence
    frozen by a problem, or not planned, keeps its decisions."""
    planned = {c.mapping_key for c in plan.changes} | {o.item.mapping_key for o in plan.outcomes}
    standing = {c.hold_key for c in plan.changes if c.hold_key}
    approvals = sorted(key for key, approval in decisions.approvals.items()
                       if approval.status in ("approved", "rejected") and approval.mapping_key in planned
                       and key not in standing)
    deferrals = sorted(key for key, deferral in decisions.deferrals.items()
                       if deferral.mapping_key in planned and key not in standing)
    return approvals, deferrals


def change_id(tenant_id: str, source: str, agreement_id: str, line: str | None, kind: ChangeKind, quantity: int,
              effective: date) -> str:
    """A stable id for one intended write: tenant, licence, agreement, line, kind, target quantity and
    effective date. The same intent on the same day has the same id."""
    material = "|".join([tenant_id.lower(), source.lower(), agreement_id, line or "-", kind.value, str(quantity),
                         effective.isoformat()])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def concerns(item: BillableItem, profile: BillingProfile | None, line: BilledLine) -> bool:
    """Whether ``line`` can bear on the plan of ``item``'s licence: its configured line, a line of
    its profile's product (a candidate), or any line SeatSync tagged (its own line or the
    period lines accompanying one). A line that cannot is left out of the licence's checks."""
    if line.line_id == item.licence.line_id or (profile is not None and line.product_id == profile.product_id):
        return True
    return (line.tag or "").lower().startswith("seatsync")


def _seatsync_tagged(line: BilledLine) -> bool:
    """Whether SeatSync wrote ``line`` (a licence's line, or a period line of one)."""
    return (line.tag or "").lower().startswith("seatsync:")


def line_tag(mapping_key: str) -> str:
    return f"{LINE_TAG}{mapping_key}"


def recreate_key(tenant_id: str, mapping_key: str, line_id: str) -> str:
    """The hold key of the recreation of a removed line SeatSync created: one decision per removed
    line, whatever the count does meanwhile (a line removed again later is a new decision)."""
    material = "|".join(["recreate", tenant_id, mapping_key, line_id])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:24]


def change_tag(identifier: str) -> str:
    return f"{CHANGE_TAG}{identifier}"


def prorate_tag(base_line_id: str, identifier: str) -> str:
    """The tag of a prorate or credit line of a base line: ``seatsync:c:<base line>.<change id>``,
    cut to 50 characters (the change id keeps at least 28 hex digits for a base id of up to 10)."""
    return f"{CHANGE_TAG}{base_line_id}.{identifier}"[:TAG_MAX]


def record_tag(base_line_id: str, period_start: date) -> str:
    """The tag of the record of the quantity a base line's period was invoiced at."""
    return f"{RECORD_TAG}{base_line_id}.{period_start:%Y%m%d}"


def is_period_line(line: BilledLine, base_line_id: str, period: BillingPeriod) -> bool:
    """Whether ``line`` is a prorate or credit line of the base line for ``period`` (charged from a
    day of the period to its end)."""
    return (bool(line.tag) and str(line.tag).startswith(f"{CHANGE_TAG}{base_line_id}.")
            and line.effective_date is not None and period.contains(line.effective_date))


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


def money(amount: Decimal | None) -> str:
    """A price as people read it: at least two decimals (20.0 -> 20.00), more only when it has them."""
    if amount is None:
        return "-"
    return str(amount.quantize(CENT) if amount == amount.quantize(CENT) else amount)


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
                 decisions: Decisions, today: date, history: Mapping[str, Sequence[StateRecord]]) -> None:
        self.history = history
        self.config = config
        self.tenant = tenant
        self.snapshot = snapshot
        self.view = view
        self.decisions = decisions
        self.today = today
        self.changes: list[PlannedChange] = []
        self.outcomes: list[ItemOutcome] = []
        self.problems: list[Problem] = []
        self.origins = provenance(snapshot)
        self.deleted: dict[str, CreatedLine] = {}  # by mapping key: the licence's line SeatSync created, deleted

    # -- helpers ------------------------------------------------------------------------------
    def problem(self, item: BillableItem, kind: ProblemKind, message: str, line_id: str | None = None,
                **details: Any) -> None:
        self.problems.append(Problem(
            kind, self.tenant.tenant_id, message, source=item.licence.source, label=item.label,
            psa=item.company.psa, company_id=item.company.company_id, agreement_id=item.licence.agreement_id,
            line_id=line_id or item.licence.line_id, **details))

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
                  lines: tuple[BilledLine, ...]) -> tuple[BilledLine | None, bool]:
        """(the line, whether the search succeeded); a failed search records its problem."""
        licence = item.licence
        if licence.line_id is not None:
            for line in lines:
                if line.line_id == licence.line_id:
                    return self.configured_line(item, line, lines)
            for other in self.view.lines.values():
                for line in other:
                    if line.line_id == licence.line_id and line.psa == item.company.psa:
                        self.problem(item, ProblemKind.LINE_ON_ANOTHER_AGREEMENT,
                                     f"line {licence.line_id} belongs to agreement {line.agreement_id}, "
                                     f"not {licence.agreement_id}")
                        return None, False
            self.problem(item, ProblemKind.LINE_MISSING,
                         f"line {licence.line_id} was not found on agreement {licence.agreement_id}")
            return None, False
        # a line whose cancellation is dated today or later still bills: it is the licence's line
        # (frozen, below), never a reason to create another that would bill the seats twice
        billing = [line for line in lines if line.cancelled_date is None or line.cancelled_date >= self.today]
        mine = [line for line in lines if line.tag == line_tag(item.mapping_key)]
        tagged = [line for line in mine if line in billing]
        if tagged:
            return self.own_line(item, profile, tagged, billing)
        if mine:
            # SeatSync created the licence's line and the MSP ended it in the PSA: creating another
            # would silently restart billing the MSP stopped, so the line stays the licence's (frozen)
            return max(mine, key=lambda line: line.cancelled_date or date.min), True
        created = self.decisions.created.get(line_tag(item.mapping_key), ())
        if created:
            # SeatSync created the licence's line and the PSA no longer shows it: the MSP deleted it
            return self.after_deletion(item, profile, created[-1], billing)
        if profile is None:
            return None, True
        candidates = [line for line in billing if line.product_id == profile.product_id
                      and not _seatsync_tagged(line)]
        if len(candidates) > 1:
            ids = ", ".join(line.line_id for line in candidates)
            self.problem(item, ProblemKind.SEVERAL_CANDIDATE_LINES,
                         f"agreement {licence.agreement_id} has several lines of product {profile.product_id} "
                         f"({ids}); set 'lineId' to say which one bills this licence",
                         facts=(("Candidate lines", ids),))
            return None, False
        if candidates:
            owner = self.claimed_by_another_tenant(item, candidates[0].line_id)
            if owner is not None:
                line_id = candidates[0].line_id
                self.problem(item, ProblemKind.LINE_SHARED,
                             f"line {line_id} on agreement {licence.agreement_id}, the one line of product "
                             f"{profile.product_id} there, is the line {owner} names by lineId: each would write "
                             "its own quantity to it; nothing is written to it for this licence", line_id,
                             facts=(("Licences", f"{item.label} (adopted); {owner} (lineId)"),))
                return None, False
        return (candidates[0], True) if candidates else (None, True)

    def claimed_by_another_tenant(self, item: BillableItem, line_id: str) -> str | None:
        """The mapping of another tenant naming ``line_id`` by lineId (as "<licence> of <tenant>"),
        if any: that line is not this licence's to adopt. (Within one tenant, ``shared_lines``
        freezes both.)"""
        if line_id not in self.config.lines_named(item.company.psa):
            return None
        for tenant in self.config.tenants:
            if tenant.tenant_id == self.tenant.tenant_id:
                continue
            for company in tenant.companies:
                for licence in company.licences:
                    if company.psa == item.company.psa and licence.line_id == line_id:
                        name = licence.custom or sku_display_name(licence.sku_id or "")
                        return f"{name} of {tenant.name}"
        return None

    def configured_line(self, item: BillableItem, line: BilledLine, lines: tuple[BilledLine, ...]
                        ) -> tuple[BilledLine | None, bool]:
        """The line the mapping names by lineId, unless a line SeatSync created for the licence (it
        carries the licence's tag) still bills beside it: both would bill the seats, so neither is
        written until a person ends one of them."""
        tag = line_tag(item.mapping_key)
        rivals = [other for other in lines if other.tag == tag and other.line_id != line.line_id
                  and (other.cancelled_date is None or other.cancelled_date >= self.today)]
        if not rivals:
            return line, True
        ids = ", ".join(other.line_id for other in rivals)
        self.problem(item, ProblemKind.SEVERAL_CANDIDATE_LINES,
                     f"agreement {item.licence.agreement_id}: line {line.line_id} (the mapping's lineId) and line(s) "
                     f"{ids} (created by SeatSync for this licence, tagged {tag}) bill this licence side by side; "
                     "nothing is written to any of them until one is chosen", line.line_id,
                     action=f"If line {line.line_id} bills the licence, end line(s) {ids} in the PSA (or clear "
                            f"SeatSync's tag from them); otherwise set the mapping's lineId to the line that bills it.",
                     facts=(("Candidate lines", f"{line.line_id}, {ids}"),))
        return None, False

    def claimed(self, item: BillableItem) -> frozenset[str]:
        """The lines the mappings of the licence's PSA name by lineId."""
        return self.config.lines_named(item.company.psa)

    def after_deletion(self, item: BillableItem, profile: BillingProfile | None, deleted: CreatedLine,
                       billing: list[BilledLine]) -> tuple[BilledLine | None, bool]:
        """The licence's line SeatSync created is gone from the PSA. With no other line of the
        product on the agreement, the licence has no line (a new one waits for a person's approval,
        ``plan_new_line``); a line of the product the MSP has there instead is not adopted on a
        guess: a person says which line bills the licence."""
        claimed = self.claimed(item)
        others = [line for line in billing if profile is not None and line.product_id == profile.product_id
                  and not _seatsync_tagged(line) and line.line_id not in claimed]
        if not others:
            self.deleted[item.mapping_key] = deleted
            return None, True
        ids = ", ".join(line.line_id for line in others)
        self.problem(item, ProblemKind.LINE_REMOVED,
                     f"line {deleted.line_id}, which SeatSync created on {deleted.created} for this licence on "
                     f"agreement {item.licence.agreement_id}, is no longer in {item.company.psa} (deleted there), and "
                     f"line(s) {ids} of the product bill on the agreement instead; nothing is written or created until "
                     "a person says which line bills the licence", deleted.line_id,
                     action=f"Set the mapping's lineId to the line that bills this licence now (one of {ids}); to stop "
                            "billing the licence, remove it from the mapping.",
                     facts=(("Deleted line", deleted.line_id), ("Lines of the product", ids)))
        return None, False

    def recreation(self, item: BillableItem, removed: str, how: str) -> tuple[ChangeStatus, str, str]:
        """Whether the licence's line SeatSync created, which the MSP removed in the PSA, may bill
        again: (status of the change that would bill it, its hold key, a note for its reason). It
        waits for a person (held) until one approves, stays frozen once one rejects, and both raise
        the problem: SeatSync never silently restarts billing an MSP removed."""
        key = recreate_key(self.tenant.tenant_id, item.mapping_key, removed)
        approval = self.decisions.approvals.get(key)
        who = (approval.decided_by or "a person") if approval is not None else ""
        if approval is not None and approval.status == "approved":
            return ChangeStatus.PLANNED, key, f"; line {removed} {how}: billing the licence again approved by {who}"
        rejected = approval is not None and approval.status == "rejected"
        decided = ""
        if approval is not None and rejected:
            decided = f"; billing it again was rejected by {who}" + (
                f" on {approval.decided_at:%Y-%m-%d}" if approval.decided_at else "")
        action = ("The licence stays unbilled here (rejected): remove it from the mapping to end this report, or set "
                  "the mapping's lineId to the line that bills it now." if rejected else
                  f"If the customer should be billed again, approve the recreation (seatsync approvals approve {key}, "
                  f"or POST /api/approvals/{key}/approve), or set the mapping's lineId to the line that bills the "
                  f"licence now; if not, reject it (seatsync approvals reject {key}) or remove the licence from the "
                  "mapping.")
        self.problem(item, ProblemKind.LINE_REMOVED,
                     f"line {removed}, which SeatSync created for this licence on agreement "
                     f"{item.licence.agreement_id}, {how}; SeatSync does not bill the licence's {item.quantity} "
                     f"seat(s) again on its own{decided}", removed, action=action,
                     facts=(("Removed line", removed), ("Approval id", key)))
        return (ChangeStatus.REJECTED if rejected else ChangeStatus.HELD), key, f"; line {removed} {how}{decided}"

    def own_line(self, item: BillableItem, profile: BillingProfile | None, tagged: list[BilledLine],
                 billing: list[BilledLine]) -> tuple[BilledLine | None, bool]:
        """The line SeatSync created for the licence, unless another line bills beside it: a second
        line with its tag, or a line of the profile's product the MSP added on the agreement (one no
        mapping names by lineId). Both would bill the seats, so neither is written until a person
        says which one bills the licence."""
        claimed = self.claimed(item)
        others = [line for line in billing if profile is not None and line.product_id == profile.product_id
                  and not _seatsync_tagged(line) and line.line_id not in claimed]
        if len(tagged) == 1 and not others:
            return tagged[0], True
        ids = ", ".join(line.line_id for line in [*tagged, *others])
        why = (f"lines {ids} all carry SeatSync's tag {line_tag(item.mapping_key)}" if not others else
               f"line {tagged[0].line_id} (created by SeatSync) and line(s) "
               f"{', '.join(line.line_id for line in [*tagged[1:], *others])} of product "
               f"{others[0].product_identifier or others[0].product_id}")
        self.problem(item, ProblemKind.SEVERAL_CANDIDATE_LINES,
                     f"agreement {item.licence.agreement_id}: {why} bill this licence side by side; nothing is "
                     "written to any of them until one is chosen", tagged[0].line_id,
                     action="Say which line bills this licence: set the mapping's lineId to it, and end the other "
                            "line(s) in the PSA (or clear SeatSync's tag from them) if they bill the same seats.",
                     facts=(("Candidate lines", ids),))
        return None, False

    def partner_subscriptions(self, item: BillableItem) -> list[PartnerSubscription]:
        licence = item.licence
        if licence.sku_id is None:
            return []
        return self.origins.partner_subscriptions(licence.sku_id, licence.subscription_ids)

    def terms(self, item: BillableItem) -> Commitment | None:
        """The partner side's terms where a source sells the licence, else the tenant's
        subscriptions with the mapping's declared term."""
        licence = item.licence
        if licence.sku_id is None:
            return None
        from_source = partner_commitment(self.partner_subscriptions(item), self.today)
        if from_source is not None:
            return from_source
        wanted = set(licence.subscription_ids)
        subscriptions = [s for s in self.snapshot.subscriptions
                         if s.sku_id.lower() == licence.sku_id and (not wanted or s.id.lower() in wanted)]
        return commitment(subscriptions, licence.subscription_term, self.today) if subscriptions else None

    # -- planning -----------------------------------------------------------------------------
    def plan(self) -> TenantPlan:
        blocked_companies = self.overlaps()
        items, item_problems = billable_items(self.config, self.tenant, self.snapshot)
        self.problems.extend(item_problems)
        for item in items:
            index = self.tenant.companies.index(item.company)
            filtered = item.company.user_filter is not None and not item.licence.ignore_filter
            if index in blocked_companies and filtered:
                continue
            self.plan_item(item)
        self.shared_lines()
        self.changes.sort(key=lambda c: (c.mapping_key, WRITE_ORDER[c.kind]))
        return TenantPlan(self.tenant.tenant_id, tuple(self.changes), tuple(self.outcomes), tuple(self.problems))

    def shared_lines(self) -> None:
        """One PSA line bills one licence: two mappings that found the same line (one naming it by
        lineId and another adopting it as the one line of its product, or two licences of a
        profile adopting the same line) would each write their own quantity to it. All of them are
        frozen (their changes are dropped: nothing is written) and each is told which licences
        share the line."""
        by_line: dict[tuple[str, str, str], list[ItemOutcome]] = {}
        for outcome in self.outcomes:
            if outcome.line_id is not None:
                where = (outcome.item.company.psa, outcome.agreement_id, outcome.line_id)
                by_line.setdefault(where, []).append(outcome)
        frozen: set[str] = set()
        for (_, agreement_id, line_id), sharing in sorted(by_line.items()):
            if len(sharing) < 2:
                continue
            names = [f"{o.item.label} ({'lineId' if o.item.licence.line_id == line_id else 'adopted'})"
                     for o in sharing]
            for index, outcome in enumerate(sharing):
                frozen.add(outcome.item.mapping_key)
                others = ", ".join(name for n, name in enumerate(names) if n != index)
                self.problem(outcome.item, ProblemKind.LINE_SHARED,
                             f"line {line_id} on agreement {agreement_id} is also the line of {others}: each licence "
                             "would write its own quantity to it; nothing is written to it for any of them", line_id,
                             facts=(("Licences", "; ".join(names)),))
        if frozen:
            self.changes = [c for c in self.changes if c.mapping_key not in frozen]
            self.outcomes = [o for o in self.outcomes if o.item.mapping_key not in frozen]

    def overlaps(self) -> set[int]:
        """Users matching the filters of several companies would be billed twice: one problem per
        group of companies, naming the users; returns the companies whose filtered licences are
        frozen (nothing written for them) until the filters are fixed."""
        groups: dict[tuple[int, ...], list[str]] = {}
        for user, hits in overlapping_users(self.tenant, self.snapshot):
            groups.setdefault(tuple(hits), []).append(user.user_principal_name)
        blocked: set[int] = set()
        for group, users in groups.items():
            blocked.update(group)
            users.sort(key=str.casefold)
            companies = [self.tenant.companies[i] for i in group]
            names = " and ".join(f"{c.psa} {c.company_id}" + (f" ({c.name})" if c.name else "") for c in companies)
            shown = ", ".join(users[:10]) + (f" and {len(users) - 10} more" if len(users) > 10 else "")
            self.problems.append(Problem(
                ProblemKind.USERS_OVERLAP, self.tenant.tenant_id,
                f"{len(users)} user(s) match the filters of {names} and would be billed twice: {shown}; nothing is "
                "written for the filtered licences of those companies", users=tuple(users),
                psa=companies[-1].psa, company_id=companies[-1].company_id, facts=(("Companies", names),)))
        return blocked

    def plan_item(self, item: BillableItem) -> None:
        licence, company = item.licence, item.company
        key = (company.psa, licence.agreement_id)
        agreement = self.view.agreements.get(key)
        if agreement is None:
            self.problem(item, ProblemKind.AGREEMENT_MISSING,
                         f"agreement {licence.agreement_id} was not found in {company.psa}")
            return
        # An agreement past its end date is one every PSA also reports as not active (ConnectWise
        # "Expired", an Autotask contract or Halo invoice past its end): said as ended, with the day.
        if agreement.end_date is not None and agreement.end_date < self.today:
            self.problem(item, ProblemKind.AGREEMENT_ENDED,
                         f"agreement {licence.agreement_id} ({agreement.name}) ended on {agreement.end_date}")
            return
        if not agreement.active:
            self.problem(item, ProblemKind.AGREEMENT_INACTIVE,
                         f"agreement {licence.agreement_id} ({agreement.name}) is not active in {company.psa} "
                         "(cancelled, expired or inactive)")
            return
        if agreement.company_id != company.company_id:
            self.problem(item, ProblemKind.AGREEMENT_OF_ANOTHER_COMPANY,
                         f"agreement {licence.agreement_id} belongs to company {agreement.company_id}, "
                         f"not {company.company_id}")
            return
        profile = self.config.profile(licence.profile) if licence.profile else None
        if profile is not None and profile.agreement_types and agreement.type_name not in profile.agreement_types:
            self.problem(item, ProblemKind.AGREEMENT_TYPE_NOT_ALLOWED,
                         f"profile '{profile.name}' may not be used on agreement type "
                         f"'{agreement.type_name}' (allowed: {', '.join(profile.agreement_types)})")
            return
        capabilities = self.view.capabilities.get(company.psa)
        if capabilities is None:
            self.problem(item, ProblemKind.PSA_NOT_READ, f"PSA connection '{company.psa}' was not read")
            return
        if item.quantity > MAX_COUNT:
            self.problem(item, ProblemKind.IMPOSSIBLE_VALUE,
                         f"the count to bill ({item.quantity}) is beyond {MAX_COUNT}; nothing written")
            return
        product = self.view.products.get((profile.psa, profile.product_id)) if profile else None
        lines = self.view.lines.get(key, ())
        unreadable = [line for line in lines if line.unreadable and concerns(item, profile, line)]
        for bad in unreadable:
            self.problem(item, ProblemKind.IMPOSSIBLE_VALUE,
                         f"line {bad.line_id} on agreement {licence.agreement_id} holds impossible values "
                         f"({bad.unreadable}); nothing is written for this licence until it is corrected in "
                         f"{company.psa}", bad.line_id)
        if unreadable:
            return
        unknown = [line for line in lines if line.period_unknown and concerns(item, profile, line)]
        for bad in unknown:
            self.problem(item, ProblemKind.PERIOD_INVOICE_MISSING,
                         f"line {bad.line_id} on agreement {licence.agreement_id}: {bad.period_unknown}; nothing is "
                         "written for this licence on a guess", bad.line_id)
        if unknown:
            return
        if product is not None and product.unreadable:
            self.problem(item, ProblemKind.IMPOSSIBLE_VALUE,
                         f"product {product.product_id} of profile '{profile.name if profile else ''}' holds "
                         f"impossible values ({product.unreadable}); nothing is written for this licence until it "
                         f"is corrected in {company.psa}")
            return
        line, found = self.find_line(item, profile, lines)
        if not found:
            return
        if line is not None and profile is not None and line.product_id != profile.product_id \
                and line.tag != line_tag(item.mapping_key):
            self.problem(item, ProblemKind.PRODUCT_DIFFERS,
                         f"line {line.line_id} bills product {line.product_identifier or line.product_id}, but "
                         f"profile '{profile.name}' bills product {profile.product_id}", line.line_id)
            return
        price = profile_price(profile, product) if profile else None
        price_note = ""
        if profile is not None and profile.price.mode == "cost-plus":
            price, price_note = self.cost_plus_price(item, profile, agreement)
        description = None
        if licence.include_user_names or licence.show_unassigned or licence.description:
            base = licence.description or (profile.description if profile else None) or item.label
            description = invoice_description(item, base, capabilities.description_limit)
        if line is None:
            item = self.not_active(item, None)
            self.disabled_users(item, price)
            self.outcomes.append(ItemOutcome(item, licence.agreement_id, None, None, price))
            self.plan_new_line(item, agreement, profile, product, price, description, capabilities)
            return
        if not line.active:
            if line.cancelled_date is not None and line.cancelled_date >= self.today:
                message = (f"line {line.line_id} stops billing on {line.cancelled_date} (its cancellation is dated in "
                           "the PSA); SeatSync neither changes it nor creates another line while it bills")
            else:
                message = (f"line {line.line_id} was cancelled on {line.cancelled_date}; billing is not restarted "
                           "automatically")
            details: dict[str, Any] = {}
            if line.tag == line_tag(item.mapping_key):
                message += " (SeatSync created the line; no other line is created while it carries SeatSync's tag)"
                details["action"] = (
                    "If the customer should be billed again, set the mapping's lineId to the line that bills the "
                    f"licence now, or clear SeatSync's tag ({line.tag}) from line {line.line_id} in the PSA so "
                    "SeatSync creates a new line; if it should not, remove the licence from the mapping.")
            self.problem(item, ProblemKind.LINE_CANCELLED, message, line.line_id, **details)
            return
        current = line.quantity
        if current != current.to_integral_value():
            self.problem(item, ProblemKind.FRACTIONAL_QUANTITY,
                         f"line {line.line_id} bills a fractional quantity ({current})", line.line_id)
            return
        old = int(current)
        recreating: tuple[str, str] | None = None
        if old == 0 and item.quantity > 0 and self.emptied(item, line):
            status, hold, note = self.recreation(
                item, line.line_id, f"bills no seats from the next period on: its units were removed in {company.psa}")
            if status != ChangeStatus.PLANNED:
                self.changes.append(self.change(item, ChangeKind.SET_QUANTITY, line, old, item.quantity,
                                                item.reason + note, self.today, status=status, hold_key=hold))
                return
            recreating = hold, note
        item = self.not_active(item, old)
        new_price = self.price_rule(item, profile, line, price)
        unit_price = new_price or (line.unit_price if line.unit_price is not None else price)
        self.disabled_users(item, unit_price)
        self.outcomes.append(ItemOutcome(item, licence.agreement_id, line.line_id, old, unit_price))
        new_description = description if description is not None and description != line.invoice_description \
            else None
        if new_description is not None or new_price is not None:
            what = " and ".join(w for w, v in (("description", new_description),
                                                (f"unit price {money(line.unit_price)} -> {money(new_price)}"
                                                 f"{price_note}",
                                                 new_price)) if v)
            why = ""
            if new_price is not None:
                why = ("; the line was created by SeatSync, so it follows the profile"
                       if line.tag == line_tag(item.mapping_key) else
                       f"; profile '{profile.name if profile else ''}' manages the price of lines it adopted")
            self.changes.append(self.change(
                item, ChangeKind.SET_DETAILS, line, old, old, f"update the {what}{why}", self.today,
                description=new_description, unit_price=new_price,
                old_unit_price=line.unit_price if new_price is not None else None))
        if item.quantity == old:
            return
        if recreating is not None:
            hold, note = recreating
            self.plan_quantity(item, agreement, line, old, unit_price, capabilities, item.reason + note, hold)
        elif item.quantity > old:
            self.plan_increase(item, agreement, line, old, unit_price, capabilities)
        else:
            self.plan_decrease(item, agreement, line, old, unit_price, capabilities)

    def emptied(self, item: BillableItem, line: BilledLine) -> bool:
        """Whether ``line`` (billing no seats) is the licence's line SeatSync created and emptied by
        the MSP: SeatSync never set it to 0 itself."""
        tag = line_tag(item.mapping_key)
        return line.tag == tag and line.line_id not in self.decisions.emptied_by_seatsync and any(
            created.line_id == line.line_id for created in self.decisions.created.get(tag, ()))

    def cost_plus_price(self, item: BillableItem, profile: BillingProfile, agreement: Agreement
                        ) -> tuple[Decimal | None, str]:
        """(price, how it was reached) for a profile priced from cost; a problem and no price when
        the cost is unknown, differs between the line's subscriptions or is in another currency."""
        assert profile.price.percent is not None
        subscriptions = [s for s in self.partner_subscriptions(item) if s.active and not s.trial]
        costs = {(cost, s.currency) for s in subscriptions if (cost := s.monthly_cost()) is not None}
        currency = self.config.notifications.currency.upper()
        months = MONTHS_PER_PERIOD.get(agreement.billing_cycle)
        trouble = None
        if not subscriptions or any(s.monthly_cost() is None for s in subscriptions):
            trouble = "no subscription source gives its cost"
        elif len(costs) > 1:
            listed = ", ".join(sorted(f"{c.quantize(CENT, rounding=ROUND_HALF_UP)} {cur}" for c, cur in costs))
            trouble = (f"its subscriptions cost differently ({listed} a seat a month): split the licence by "
                       "subscription so that each line is priced from its own cost")
        elif months is None:
            trouble = f"agreement {agreement.agreement_id} bills {agreement.billing_cycle}, not by months"
        else:
            cost, cost_currency = next(iter(costs))
            if (cost_currency or "").upper() != currency:
                trouble = (f"its cost is in {cost_currency or 'an unknown currency'}, the PSA's prices in {currency}; "
                           "SeatSync never converts")
            else:
                percent = profile.price.percent
                price = (cost * months * (100 + percent) / 100).quantize(CENT, rounding=ROUND_HALF_UP)
                shown = (cost * months).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP).normalize()
                return price, f" from cost ({shown} {currency} + {percent} %)"
        self.problem(item, ProblemKind.COST_UNKNOWN,
                     f"profile '{profile.name}' prices from cost, but {trouble}; the price is left as it is",
                     blocks=False)
        return None, ""

    def price_rule(self, item: BillableItem, profile: BillingProfile | None, line: BilledLine,
                   price: Decimal | None) -> Decimal | None:
        """The unit price to set on an existing line, or None to leave it. A line SeatSync created
        (found by its tag) follows the profile; a line it adopted keeps the MSP's price unless the
        profile manages adopted lines' prices: a difference is reported, never written silently."""
        if profile is None or price is None or line.unit_price is None or price == line.unit_price:
            return None
        if line.tag == line_tag(item.mapping_key) or profile.price.manage_adopted_lines:
            return price
        self.problem(item, ProblemKind.PRICE_DIFFERS,
                     f"line {line.line_id} bills {money(line.unit_price)} a seat, profile '{profile.name}' "
                     f"{money(price)}; the line keeps its price (SeatSync did not create it)", line.line_id,
                     blocks=False, facts=(("Line's unit price", money(line.unit_price)),
                                          ("Profile's unit price", money(price))))
        return None

    def not_active(self, item: BillableItem, old: int | None) -> BillableItem:
        """Never raise a bill because of seats that are not active: the quantity grows only as far
        as the active seats allow (it is not lowered because of them either); a person is told."""
        state = item.state
        if state is None or item.active is None:
            return item
        capped = item.quantity > item.active
        if not capped and state.enabled > 0 and not item.licence.subscription_ids:
            return item  # the active seats cover every seat billed: nothing depends on the others
        if item.counted == 0 and not old:
            return item  # nothing assigned, nothing billed: nothing to tell
        target = item.active if capped and old is None else max(item.active, min(item.quantity, old or 0))
        target = target if capped else item.quantity
        billed = "as counted"
        if target != item.quantity:
            billed = (f"kept at {target}, not raised to {item.quantity}" if target == old
                      else f"{target} seat(s), not {item.quantity}")
        since = state_since(state.state, self.history.get(item.licence.sku_id or "", ()), self.today)
        lapsed = ", ".join(f"{sub} {status}" for sub, status in state.subscriptions)
        facts = [("State", state.state), ("Since", since.text), ("Seats", state.seats),
                 ("Seats still assigned", str(item.counted)), ("Billing", billed)]
        if lapsed:
            facts.insert(3, ("Subscriptions", lapsed))
        self.problem(item, ProblemKind.SUBSCRIPTION_NOT_ACTIVE,
                     f"{state.state.lower()} since {since.text}: {state.seats}; {item.counted} seat(s) still "
                     f"assigned; billing {billed}", blocks=False, facts=tuple(facts))
        if target == item.quantity:
            return item
        return replace(item, quantity=target,
                       reason=f"{item.reason}; billing {billed}: seats {state.state.lower()}, never billed")

    def disabled_users(self, item: BillableItem, unit_price: Decimal | None) -> None:
        """Disabled accounts holding a paid licence: Microsoft counts (and bills) them, so SeatSync
        does too, and tells a person, with what they cost a month where the price is known."""
        if not item.disabled:
            return
        count = len(item.disabled)
        facts = [("Disabled accounts", str(count))]
        if unit_price is not None:
            facts.append(("Monthly cost", f"{money(unit_price * count)} {self.config.notifications.currency}"
                                          f" ({count} x {money(unit_price)})"))
        self.problem(item, ProblemKind.DISABLED_USERS_LICENSED,
                     f"{count} disabled account(s) hold it and are billed, as Microsoft counts them: "
                     + ", ".join(item.disabled[:10]) + (f" and {count - 10} more" if count > 10 else ""),
                     users=item.disabled, blocks=False, facts=tuple(facts))

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
        tag = prorate_tag(base.line_id, identifier) if base else change_tag(identifier)
        verb = "added" if units > 0 else "removed"
        unit_cost, billing = self.inherited(item, base, product)
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
            tag=tag, amount=charge.amount, unit_cost=unit_cost, billing=billing,
            description=(f"{item.label}: {abs(units)} seat(s) {verb} {self.today:%d %b %Y}, prorated to "
                         f"{period.end:%d %b %Y} ({charge.days}/{period.days} days)"),
        ))
        self.found_by_tag(lines)
        return None

    def inherited(self, item: BillableItem, base: BilledLine | None,
                  product_id: str) -> tuple[Decimal | None, BillingAttributes | None]:
        """The unit cost and billing attributes a line SeatSync creates takes over: its base line's,
        or, with no base line, its product's (as read from the PSA)."""
        if base is not None:
            return base.unit_cost, base.billing
        product = self.view.products.get((item.company.psa, product_id))
        return (product.cost, product.billing) if product is not None else (None, None)

    def found_by_tag(self, lines: tuple[BilledLine, ...]) -> None:
        """The change just planned, marked applied when an earlier attempt wrote it (its line is
        found by its tag): a line SeatSync creates is never written twice."""
        planned = self.changes[-1]
        written = next((line for line in lines if planned.tag and line.tag == planned.tag), None)
        if written is not None:
            self.changes[-1] = replace(planned, status=ChangeStatus.APPLIED, line_id=written.line_id,
                                       reason=planned.reason + "; already written (found by its tag)")

    def plan_new_line(self, item: BillableItem, agreement: Agreement, profile: BillingProfile | None,
                      product: Product | None, price: Decimal | None, description: str | None,
                      capabilities: PsaCapabilities) -> None:
        if profile is None:
            self.problem(item, ProblemKind.NO_LINE_NO_PROFILE,
                         f"no line bills it on agreement {agreement.agreement_id} and no billing profile says how to "
                         "create one")
            return
        if item.quantity == 0:
            return
        if profile.price.mode == "cost-plus" and price is None:
            self.problem(item, ProblemKind.COST_UNKNOWN,
                         "no price from cost could be set (see the problem above); the line was not created")
            return
        if profile.price.mode != "custom" and price is None:
            self.problem(item, ProblemKind.PRODUCT_WITHOUT_PRICE,
                         f"product {profile.product_id} has no price in {profile.psa}; the line was not created")
            return
        start = item.licence.start_date
        effective = start if start is not None else self.today
        reason, amount = f"new line: {item.reason}", None
        period = self.period(agreement)
        if start is None and period is not None \
                and invoicing(period, agreement.next_invoice_date, capabilities.invoiced_when_unknown).invoiced:
            # A line that starts inside an invoiced period is charged for the rest of it (every PSA
            # prorates a line by its start), like an increase; where the company or the agreement
            # does not prorate, it starts with the next period, as an increase would bill.
            if self.prorates(item, agreement):
                if price is not None:
                    charge = prorate(price, item.quantity, self.today, period)
                    amount = charge.amount
                    reason += (f"; charged from {self.today} to {period.end}: {charge.days}/{period.days} days x "
                               f"{money(price)} = {charge.prorated_unit_price} per seat")
            else:
                effective = period.end + timedelta(days=1)
                why = ("the company disables prorating" if item.company.disable_prorate
                       else f"agreement {agreement.agreement_id} does not prorate")
                reason += f"; billed from the next period ({effective}): {why}"
        status, key = ChangeStatus.PLANNED, None
        deleted = self.deleted.get(item.mapping_key)
        if deleted is not None:
            status, key, note = self.recreation(
                item, deleted.line_id, f"is no longer in {item.company.psa}: it was deleted there (SeatSync created "
                                       f"it on {deleted.created})")
            reason += note
        tag = line_tag(item.mapping_key) if capabilities.tag_limit >= len(line_tag(item.mapping_key)) else None
        planned = self.change(
            item, ChangeKind.CREATE_LINE, None, None, item.quantity, reason,
            effective, status=status, hold_key=key,
            product_id=profile.product_id, unit_price=price, bill_mode=BILL_MODES[profile.billing], tag=tag,
            description=description or (profile.description or item.label),
            unit_cost=product.cost if product is not None else None,
            billing=product.billing if product is not None else None, amount=amount)
        if deleted is not None:
            # a write of its own, never taken for the creation of the deleted line (the same day, the
            # same quantity): its id names the line it replaces
            planned = replace(planned, change_id=change_id(
                self.tenant.tenant_id, item.licence.source, item.licence.agreement_id,
                f"{tag or item.mapping_key}>{deleted.line_id}", ChangeKind.CREATE_LINE, item.quantity, effective))
        self.changes.append(planned)

    def plan_increase(self, item: BillableItem, agreement: Agreement, line: BilledLine, old: int,
                      unit_price: Decimal | None, capabilities: PsaCapabilities) -> None:
        self.plan_quantity(item, agreement, line, old, unit_price, capabilities, item.reason, None)

    def plan_decrease(self, item: BillableItem, agreement: Agreement, line: BilledLine, old: int,
                      unit_price: Decimal | None, capabilities: PsaCapabilities) -> None:
        key = hold_key(self.tenant.tenant_id, item.mapping_key, agreement.agreement_id, line.line_id, old,
                       item.quantity)
        decision = decide(
            old=old, new=item.quantity, key=key, custom=item.licence.custom is not None,
            policy=item.licence.decrease_policy, safety=self.config.safety, terms=self.terms(item),
            approval=self.decisions.approvals.get(key), deferral=self.decisions.deferrals.get(key), today=self.today,
            guard=self.decisions.guard)
        reason = f"{item.reason}; {decision.reason}"
        if decision.verdict != Verdict.APPLY:
            status = {Verdict.HOLD: ChangeStatus.HELD, Verdict.DEFER: ChangeStatus.DEFERRED,
                      Verdict.REJECTED: ChangeStatus.REJECTED}[decision.verdict]
            self.changes.append(self.change(item, ChangeKind.SET_QUANTITY, line, old, item.quantity, reason,
                                            decision.due or self.today, status=status, hold_key=key,
                                            due_date=decision.due))
            return
        self.plan_quantity(item, agreement, line, old, unit_price, capabilities, reason, key)

    # -- billing periods ------------------------------------------------------------------------
    def plan_quantity(self, item: BillableItem, agreement: Agreement, line: BilledLine, old: int,
                      unit_price: Decimal | None, capabilities: PsaCapabilities, reason: str,
                      key: str | None) -> None:
        """Bring a line from ``old`` (what the PSA bills from the next period on) to the item's
        quantity, as the PSA bills the current period and the next (shared.domain.periods)."""
        period = self.period(agreement)
        if period is None:  # no period to reason about: the change applies from today
            note = ""
            if capabilities.prorate == "separate-line" and self.prorates(item, agreement):
                note = f"; not prorated: agreement {agreement.agreement_id} has no billing period SeatSync can " \
                       "prorate over"
            self.changes.append(self.change(item, ChangeKind.SET_QUANTITY, line, old, item.quantity,
                                            reason + note, self.today, hold_key=key))
            return
        state = invoicing(period, agreement.next_invoice_date, capabilities.invoiced_when_unknown)
        if capabilities.prorate == "separate-line":
            self.plan_separate_line(item, agreement, line, old, unit_price, period, state, reason, key)
        else:
            self.plan_native(item, agreement, line, old, unit_price, capabilities, period, state, reason, key)

    def plan_separate_line(self, item: BillableItem, agreement: Agreement, line: BilledLine, old: int,
                           unit_price: Decimal | None, period: BillingPeriod, state: Invoicing, reason: str,
                           key: str | None) -> None:
        """ConnectWise: the addition's quantity is what the next invoice bills; a change inside an
        invoiced period is charged (or credited) by a separate prorate (credit) addition. What the
        period is charged for is the quantity it was invoiced at (the addition's quantity until a
        decrease is not credited, then SeatSync's not-billed record of it) plus the period's
        prorate and credit additions of this line."""
        lines = self.view.lines.get((item.company.psa, agreement.agreement_id), ())
        started = line.effective_date
        if state.invoiced and started is not None and period.start < started <= self.today:
            # The period was invoiced before the addition existed: ConnectWise charges its part of
            # the period (from its start) on the next invoice, at the quantity it has then. A
            # prorate line or a record of an invoiced quantity would charge its seats twice.
            note = (f"line {line.line_id} started on {started}, after the period {period.start:%d %b %Y}.."
                    f"{period.end:%d %b %Y} was invoiced: ConnectWise charges it from then at {item.quantity} on "
                    f"the next invoice ({state.next_invoice or 'not known'}); nothing prorated")
            self.changes.append(self.change(item, ChangeKind.SET_QUANTITY, line, old, item.quantity,
                                            f"{reason}; {note}", self.today, hold_key=key))
            return
        prorating = self.prorates(item, agreement)
        adjustments = sum((int(other.quantity) for other in lines if is_period_line(other, line.line_id, period)), 0)
        record = next((other for other in lines if other.tag == record_tag(line.line_id, period.start)), None)
        invoiced_at = int(record.quantity) if record is not None else old - adjustments
        charged = invoiced_at + adjustments if state.invoiced else old
        change = period_change(charged=charged, target=item.quantity, invoiced=state.invoiced, prorate=prorating,
                               credit=item.licence.allow_negative_prorate)
        notes = self.period_notes(item, line, old, period, state, change, charged, "ConnectWise", prorating)
        if change.charge:
            kind = ChangeKind.PRORATE if change.charge > 0 else ChangeKind.CREDIT
            missing = self.prorate_line(item, agreement, line, change.charge, unit_price, kind, lines, None)
            if missing:
                notes.append(f"not {'prorated' if change.charge > 0 else 'credited'}: {missing}")
        if state.invoiced and prorating and record is None and change.charged != change.next_quantity:
            self.period_record(item, agreement, line, invoiced_at, period, lines)
        self.changes.append(self.change(item, ChangeKind.SET_QUANTITY, line, old, item.quantity,
                                        "; ".join([reason, *notes]), self.today, hold_key=key))

    def period_record(self, item: BillableItem, agreement: Agreement, line: BilledLine, invoiced_at: int,
                      period: BillingPeriod, lines: tuple[BilledLine, ...]) -> None:
        """A not-billed addition recording the quantity the period was invoiced at, written before
        the first decrease of the period that is not credited: ConnectWise's API does not say it,
        and without it a re-increase in the same period would charge the removed seats twice."""
        tag = record_tag(line.line_id, period.start)
        span = f"{period.start:%d %b %Y}..{period.end:%d %b %Y}"
        self.changes.append(self.change(
            item, ChangeKind.PERIOD_RECORD, None, None, invoiced_at,
            f"record: the period {span} was invoiced at {invoiced_at} (not billed; SeatSync counts the seats "
            "already charged from it)", period.start, tag=tag, product_id=line.product_id,
            unit_price=line.unit_price, bill_mode=BillMode.DO_NOT_BILL, end_date=period.end,
            unit_cost=line.unit_cost, billing=line.billing,
            description=f"{item.label}: {invoiced_at} seat(s) invoiced for {span} (SeatSync's record, not billed)"))
        self.found_by_tag(lines)

    def plan_native(self, item: BillableItem, agreement: Agreement, line: BilledLine, old: int,
                    unit_price: Decimal | None, capabilities: PsaCapabilities, period: BillingPeriod,
                    state: Invoicing, reason: str, key: str | None) -> None:
        """Autotask and HaloPSA prorate a change dated inside the period themselves. A change the
        period is charged for is dated today (Autotask adjusts the units from today, Halo adds a
        pro-rata entry); what the line bills from the next period on is then brought to the new
        quantity by a change dated the next period's start (an adjustment dated then, Halo's line
        quantity), so that a future-dated entry never contradicts today's count."""
        charged = old
        if state.invoiced and line.period_quantity is not None:
            if line.period_quantity != line.period_quantity.to_integral_value():
                self.problem(item, ProblemKind.FRACTIONAL_QUANTITY,
                             f"line {line.line_id} is charged a fractional quantity this period "
                             f"({line.period_quantity})", line.line_id)
                return
            charged = int(line.period_quantity)
        prorating = self.prorates(item, agreement)
        change = period_change(charged=charged, target=item.quantity, invoiced=state.invoiced, prorate=prorating,
                               credit=item.licence.allow_negative_prorate)
        psa = {"autotask": "Autotask", "halopsa": "Halo"}.get(capabilities.kind, "the PSA")
        notes = self.period_notes(item, line, old, period, state, change, charged, psa, prorating)
        if not state.invoiced:  # the period is invoiced later, at the new quantity
            self.changes.append(self.change(item, ChangeKind.SET_QUANTITY, line, old, item.quantity,
                                            "; ".join([reason, *notes]), self.today, hold_key=key))
            return
        after = old
        if change.charge:
            amount = prorate(unit_price, change.charge, self.today, period).amount if unit_price is not None else None
            self.changes.append(self.change(
                item, ChangeKind.SET_QUANTITY, line, charged, charged + change.charge,
                "; ".join([reason, *notes, f"{psa} prorates it to {period.end}"]), self.today, hold_key=key,
                amount=amount, end_date=period.end))
            after = old + change.charge
            notes = []
        if after != item.quantity:
            next_start = period.end + timedelta(days=1)
            self.changes.append(self.change(
                item, ChangeKind.SET_QUANTITY, line, after, item.quantity,
                "; ".join([reason, *notes, f"billed from the next period ({next_start})"]), next_start,
                hold_key=key))

    def period_notes(self, item: BillableItem, line: BilledLine, old: int, period: BillingPeriod,
                     state: Invoicing, change: PeriodChange, charged: int, psa: str, prorating: bool) -> list[str]:
        """What the report says about the period: whether it is invoiced, and seats not charged
        twice or kept charged without a credit."""
        notes: list[str] = []
        if state.known or psa == "ConnectWise":
            notes.append(state.describe(period))
        if not state.invoiced:
            notes.append(f"{psa} invoices it at {item.quantity}")
            return notes
        target = item.quantity
        if target > old and charged > old and prorating:
            already = min(target, charged) - old
            notes.append(f"{already} seat(s) already charged to {period.end} this period: not charged again")
        if target < charged and change.charge == 0 and prorating:
            notes.append(f"{charged - target} seat(s) stay charged to {period.end} (no credit); billed at {target} "
                         "from the next period")
        return notes


def _cycle(agreement: Agreement) -> Cycle | None:
    cycle = agreement.billing_cycle
    if cycle in MONTHS_PER_PERIOD or cycle in DAYS_PER_PERIOD:
        return cast(Cycle, cycle)
    return None


def plan_tenant(config: SeatSyncConfig, tenant: TenantConfig, snapshot: TenantSnapshot, view: PsaView,
                today: date, decisions: Decisions | None = None,
                history: Mapping[str, Sequence[StateRecord]] | None = None) -> TenantPlan:
    """Plan every write for one tenant (``today`` is the day the changes are detected, UTC).
    ``history``: per licence (SKU id), the states earlier runs recorded, to say since when seats
    have not been active (only the licences that have such seats need one)."""
    return _Planner(config, tenant, snapshot, view, decisions or Decisions(), today, history or {}).plan()
