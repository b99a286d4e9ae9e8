"""The pure core of the partner side: money that keeps its currency, matching partner
subscriptions to a tenant's, provenance (seats bought elsewhere are never billed), the terms a
source gives to NCE decisions, pricing from cost, and reconciliation arithmetic."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from shared.domain.billing import billable_items, bought_elsewhere, unlinked_licences
from shared.domain.decreases import commitment, decide, partner_commitment
from shared.domain.model import ChangeKind, ChangeStatus, PlannedChange, SkuCount
from shared.domain.money import CurrencyMismatch, Money, Totals, total
from shared.domain.partner import PartnerFacts, PartnerSubscription, Refundable, SourceLink, resolve_sku
from shared.domain.planning import plan_tenant
from shared.domain.provenance import provenance
from shared.domain.reconciliation import (
    BilledMapping,
    LicenceFacts,
    LineChange,
    licence_facts,
    reconcile,
    renewals,
    totals,
)
from shared.domain.sku_names import sku_id_for_name
from tests.unit.builders import E3, SPB, TENANT, TODAY, config, licence, line, snapshot, subscription, view

ANNUAL_SUB = "11111111-0000-4000-8000-00000000000a"
MONTHLY_SUB = "11111111-0000-4000-8000-00000000000b"
SOURCES = {"subscriptionSources": [{"name": "pc", "type": "partner-center",
                                    "partnerTenantId": "0a0a0a0a-0000-4000-8000-000000000001",
                                    "clientId": "5e1f0c2a-7d3b-4c8e-9a6f-2b4d8e1c3f70",
                                    "clientSecret": {"setting": "PC_SECRET"}}]}


def partner_sub(sub_id: str, quantity: int, *, term: str = "P1Y", billing: str = "monthly",
                end: date = date(2027, 2, 28), start: date = date(2026, 3, 1), cost: str | None = "18.00",
                currency: str = "USD", sku: str | None = None, commerce: str | None = "same", active: bool = True,
                refundable: tuple[Refundable, ...] | None = None, trial: bool = False) -> PartnerSubscription:
    return PartnerSubscription(
        source="pc", kind="partner-center", subscription_id=sub_id, customer_id=TENANT,
        product_id="CFQ7TTC0LCHC:0002", product_name="Microsoft 365 Business Premium", quantity=quantity,
        status="active" if active else "suspended", active=active, trial=trial, term=term, billing=billing,
        start=start, commitment_end=end, auto_renew=True, refundable=refundable,
        unit_cost=Decimal(cost) if cost else None, currency=currency,
        commerce_subscription_id=sub_id if commerce == "same" else commerce, sku_id=sku)


def facts(*subs: PartnerSubscription, known: bool = True) -> PartnerFacts:
    return PartnerFacts((SourceLink("pc", "partner-center", (TENANT,) if known else (), "tenant id"),), subs)


def graph_sub(sub_id: str, total: int, created: date, renews: date, sku: str = SPB) -> Any:
    return replace(subscription(sub_id, sku, total, created, renews), commerce_subscription_id=sub_id)


# --------------------------------------------------------------------------- money


def test_money_keeps_currencies_apart() -> None:
    assert Money(Decimal("19.80"), "usd") + Money(Decimal("0.20"), "USD") == Money(Decimal("20.00"), "USD")
    with pytest.raises(CurrencyMismatch):
        _ = Money(Decimal(1), "USD") + Money(Decimal(1), "EUR")
    with pytest.raises(CurrencyMismatch):
        total([Money(Decimal(1), "USD"), Money(Decimal(2), "GBP")])
    sums = Totals([Money(Decimal("1.10"), "USD"), Money(Decimal("2.20"), "EUR"), Money(Decimal("0.01"), "USD")])
    assert sums["USD"].amount == Decimal("1.11") and sums["EUR"].amount == Decimal("2.20")
    assert list(sums) == ["EUR", "USD"]
    with pytest.raises(CurrencyMismatch, match="cannot be added up"):
        sums.single()
    with pytest.raises(ValueError, match="finite Decimal"):
        Money(Decimal("NaN"), "USD")
    with pytest.raises(ValueError, match="ISO 4217"):
        Money(Decimal(1), "dollars")


def test_exact_decimal_monthly_cost() -> None:
    annual_billing = partner_sub("x", 3, billing="annual", cost="250.00")
    assert annual_billing.monthly_cost() == Decimal("250.00") / 12
    assert str(Money(annual_billing.monthly_cost() or Decimal(0), "USD").rounded()) == "20.83 USD"
    assert partner_sub("y", 1, trial=True).monthly_cost() == Decimal(0)
    assert partner_sub("z", 1, cost=None).monthly_cost() is None


# --------------------------------------------------------------------------- matching and provenance


def test_matching_by_commerce_id_then_by_sku() -> None:
    snap = snapshot([(SPB, 25, 23), (E3, 10, 9)],
                    subscriptions=(graph_sub(ANNUAL_SUB, 20, date(2026, 3, 1), date(2027, 3, 1)),
                                   graph_sub(MONTHLY_SUB, 5, date(2026, 10, 22), date(2026, 12, 22)),
                                   graph_sub("e3e3e3e3-0000-4000-8000-000000000001", 10, date(2026, 1, 1),
                                             date(2027, 1, 1), sku=E3)),
                    partner=facts(partner_sub(ANNUAL_SUB, 20),
                                  partner_sub("pax-1", 10, commerce=None, sku=E3),
                                  partner_sub("orphan", 4, commerce=None, sku=None)))
    origins = provenance(snap)
    spb = origins.licence(SPB)
    assert spb is not None and spb.ours_quantity == 20 and spb.elsewhere == 5
    assert spb.elsewhere_subscriptions == (MONTHLY_SUB,)
    e3 = origins.licence(E3)
    assert e3 is not None and e3.ours_quantity == 10 and e3.elsewhere == 0
    assert [s.subscription_id for s in origins.unmatched] == ["orphan"]
    assert origins.paired == {ANNUAL_SUB: "pc/" + ANNUAL_SUB,
                              "e3e3e3e3-0000-4000-8000-000000000001": "pc/pax-1"}, "the one E3 of size 10"
    assert [s.subscription_id for s in origins.partner_subscriptions(SPB, [ANNUAL_SUB])] == [ANNUAL_SUB]
    assert origins.partner_subscriptions(SPB, [MONTHLY_SUB]) == []


def test_a_pair_by_size_is_made_only_when_unambiguous() -> None:
    subs = (graph_sub(ANNUAL_SUB, 5, date(2026, 3, 1), date(2027, 3, 1)),
            graph_sub(MONTHLY_SUB, 5, date(2026, 10, 22), date(2026, 12, 22)))
    snap = snapshot([(SPB, 10, 10)], subscriptions=subs,
                    partner=facts(partner_sub("a", 5, commerce=None, sku=SPB), partner_sub("b", 5, commerce=None,
                                                                                          sku=SPB)))
    origins = provenance(snap)
    assert origins.paired == {}, "two subscriptions of 5 seats on each side: no pair is guessed"
    assert origins.partner_subscriptions(SPB, [ANNUAL_SUB]) == []
    licence_origin = origins.licence(SPB)
    assert licence_origin is not None and licence_origin.ours_quantity == 10 and licence_origin.elsewhere == 0


def test_a_tenant_no_source_knows_has_no_provenance() -> None:
    snap = snapshot([(SPB, 25, 23)], partner=facts(partner_sub(ANNUAL_SUB, 20), known=False))
    assert not provenance(snap).known
    assert provenance(snapshot([(SPB, 25, 23)])).licence(SPB) is None


def test_resolve_sku_by_map_then_by_microsoft_name() -> None:
    sub = partner_sub("x", 1, commerce=None)
    assert resolve_sku(sub, {}, sku_id_for_name) == SPB
    assert resolve_sku(sub, {"cfq7ttc0lchc": E3}, sku_id_for_name) == E3
    assert resolve_sku(replace(sub, product_name="Acme Backup"), {}, sku_id_for_name) is None


def test_seats_bought_elsewhere_are_never_billed_unless_the_mapping_says_so() -> None:
    snap = snapshot([(SPB, 25, 23)], partner=facts(partner_sub(ANNUAL_SUB, 20, commerce=None, sku=SPB)))
    [item], problems = billable_items(config(licence()), config(licence()).tenants[0], snap)
    assert not problems
    assert (item.counted, item.quantity, item.purchased) == (18, 18, 20)
    assert item.reason == "18 assigned (23 in the tenant, 5 bought elsewhere)"
    cfg = config(licence(countBasis="purchased"))
    [item], _ = billable_items(cfg, cfg.tenants[0], snap)
    assert (item.quantity, item.reason) == (20, "20 purchased (25 in the tenant, 5 bought elsewhere)")
    cfg = config(licence(billSeatsBoughtElsewhere=True))
    [item], _ = billable_items(cfg, cfg.tenants[0], snap)
    assert (item.quantity, item.reason) == (23, "23 assigned")
    # no source configured: no difference at all
    [item], _ = billable_items(config(licence()), config(licence()).tenants[0], snapshot([(SPB, 25, 23)]))
    assert (item.quantity, item.reason) == (23, "23 assigned")


def test_a_split_tenant_with_seats_bought_elsewhere_is_a_problem_not_a_guess() -> None:
    companies = [{"psa": "cw", "companyId": "19", "userFilter": {"department": ["Sales"]},
                  "licences": [licence()]},
                 {"psa": "cw", "companyId": "20", "userFilter": {"department": ["Ops"]},
                  "licences": [licence(agreementId="101", lineId="501")]}]
    cfg = config(companies=companies)
    snap = snapshot([(SPB, 25, 23)], partner=facts(partner_sub(ANNUAL_SUB, 20, commerce=None, sku=SPB)))
    items, problems = billable_items(cfg, cfg.tenants[0], snap)
    assert items == [] and len(problems) == 2
    assert "bought elsewhere" in problems[0].message and "nothing changed" in problems[0].message


def test_licences_wholly_bought_elsewhere_are_shown_not_called_unlinked() -> None:
    cfg = config(licence())
    snap = snapshot([(SPB, 20, 20), (E3, 3, 2)], partner=facts(partner_sub(ANNUAL_SUB, 20, commerce=None, sku=SPB)))
    assert unlinked_licences(cfg, cfg.tenants[0], snap) == []
    [(sku, origin)] = bought_elsewhere(cfg, cfg.tenants[0], snap)
    assert (sku.sku_id, origin.elsewhere, origin.ours_quantity) == (E3, 3, 0)
    assert [s.sku_id for s in unlinked_licences(cfg, cfg.tenants[0], snapshot([(SPB, 20, 20), (E3, 3, 2)]))] == [E3]


@pytest.mark.parametrize(("part_number", "cost"), [
    ("FLOW_FREE", None), ("POWER_BI_STANDARD", None), ("TEAMS_EXPLORATORY", None), ("POWERAPPS_VIRAL", None),
    ("X", "0"),  # a licence the source sells only at a price of 0
])
def test_free_self_service_licences_are_never_bought_elsewhere(part_number: str, cost: str | None) -> None:
    free_sku = "0c266dff-15dd-4b49-8397-2bb16070ed52"
    sold = [partner_sub(MONTHLY_SUB, 1, commerce=None, sku=free_sku, cost="0")] if cost == "0" else []
    snap = snapshot([(SPB, 20, 20)], partner=facts(partner_sub(ANNUAL_SUB, 20, commerce=None, sku=SPB), *sold))
    snap = replace(snap, skus=(*snap.skus, SkuCount(sku_id=free_sku, sku_part_number=part_number, purchased=10000,
                                                    consumed=12)))
    origin = provenance(snap).licence(free_sku)
    assert origin is not None and origin.free and origin.elsewhere == 0 and origin.elsewhere_subscriptions == ()
    cfg = config(licence())
    assert bought_elsewhere(cfg, cfg.tenants[0], snap) == []
    [facts_of] = licence_facts(TENANT, "Fabrikam", snap, [free_sku], {}, {}, TODAY)
    assert facts_of.elsewhere == 0


def test_a_paid_licence_or_a_free_trial_still_counts_what_was_bought_elsewhere() -> None:
    trial = partner_sub(MONTHLY_SUB, 25, commerce=None, sku=E3, cost="0", trial=True)
    snap = snapshot([(E3, 35, 30)], partner=facts(trial))
    origin = provenance(snap).licence(E3)
    assert origin is not None and not origin.free and origin.elsewhere == 10


# --------------------------------------------------------------------------- terms


def test_the_window_counts_from_the_real_renewal_of_a_monthly_term() -> None:
    monthly = partner_sub(MONTHLY_SUB, 5, term="P1M", start=date(2026, 6, 22), end=date(2026, 12, 21))
    terms = partner_commitment([monthly], TODAY)
    assert terms is not None and terms.in_cancellation_window
    assert (terms.window_start, terms.deadline, terms.renewal, terms.refundable) == (
        date(2026, 11, 22), date(2026, 11, 28), date(2026, 12, 22), None)
    assert terms.basis == "Partner Center: P1M term, billed monthly, ends 2026-12-21"
    annual = partner_sub(ANNUAL_SUB, 20, start=date(2026, 3, 1), end=date(2027, 2, 28))
    terms = partner_commitment([annual], TODAY)
    assert terms is not None and not terms.in_cancellation_window
    assert (terms.window_start, terms.renewal) == (date(2026, 3, 1), date(2027, 3, 1))


def test_refundable_quantity_decides_when_the_source_gives_it() -> None:
    until = datetime(2026, 11, 28, 10, tzinfo=UTC)
    sub = partner_sub(MONTHLY_SUB, 5, term="P1M", start=date(2026, 6, 22), end=date(2026, 12, 21),
                      refundable=(Refundable(2, until),))
    terms = partner_commitment([sub], TODAY)
    assert terms is not None and (terms.in_cancellation_window, terms.refundable, terms.deadline) == (
        True, 2, date(2026, 11, 28))
    safety = config().safety
    ok = decide(old=20, new=18, key="k", custom=False, policy="hold", safety=safety, terms=terms, approval=None,
                deferral=None, today=TODAY)
    assert ok.verdict == "apply" and "until 2026-11-28" in ok.reason and "[Partner Center: P1M term" in ok.reason
    too_many = decide(old=20, new=17, key="k", custom=False, policy="hold", safety=safety, terms=terms,
                      approval=None, deferral=None, today=TODAY)
    assert too_many.verdict == "hold" and "only 2 of the 3 seats can still be reduced" in too_many.reason
    expired = replace(sub, refundable=(Refundable(2, datetime(2026, 11, 25, 0, tzinfo=UTC)),))
    terms = partner_commitment([expired], TODAY)
    assert terms is not None and not terms.in_cancellation_window


def test_the_declared_term_stays_the_fallback_and_says_so() -> None:
    graph = [subscription(ANNUAL_SUB, SPB, 20, date(2026, 3, 1), date(2027, 3, 1))]
    terms = commitment(graph, "annual", TODAY)
    assert terms.basis == "declared annual term" and not terms.in_cancellation_window
    held = decide(old=20, new=19, key="k", custom=False, policy="hold", safety=config().safety, terms=terms,
                  approval=None, deferral=None, today=TODAY)
    assert held.reason.endswith("(renews 2027-03-01) [declared annual term]")


def test_only_the_source_tells_a_monthly_from_an_annual_subscription() -> None:
    """Two subscriptions of one SKU that look alike in the tenant; a decrease of the monthly one's
    mapping is refunded (renewed three days ago) only when the source says it is monthly."""
    subs = (graph_sub(ANNUAL_SUB, 20, date(2026, 6, 22), date(2027, 6, 22)),
            graph_sub(MONTHLY_SUB, 5, date(2026, 6, 22), date(2026, 12, 22)))
    mappings = [licence(subscriptionIds=[ANNUAL_SUB]),
                licence(subscriptionIds=[MONTHLY_SUB], agreementId="100", lineId="501")]
    cfg = config(*mappings)
    lines = view(line("500", 20), line("501", 5))
    without = snapshot([(SPB, 25, 23)], subscriptions=subs)
    plan = plan_tenant(cfg, cfg.tenants[0], without, lines, TODAY)
    [decrease] = [c for c in plan.changes if c.line_id == "501"]
    assert decrease.status == ChangeStatus.HELD and "[declared annual term]" in decrease.reason
    known = replace(without, partner=facts(
        partner_sub(ANNUAL_SUB, 20, start=date(2026, 6, 22), end=date(2027, 6, 21)),
        partner_sub(MONTHLY_SUB, 5, term="P1M", start=date(2026, 6, 22), end=date(2026, 12, 21))))
    plan = plan_tenant(cfg, cfg.tenants[0], known, lines, TODAY)
    [decrease] = [c for c in plan.changes if c.line_id == "501" and c.kind == ChangeKind.SET_QUANTITY]
    assert decrease.status == ChangeStatus.PLANNED and (decrease.old_quantity, decrease.new_quantity) == (5, 3)
    assert "Microsoft refunds the seats until 2026-11-28 [Partner Center: P1M term" in decrease.reason


# --------------------------------------------------------------------------- pricing from cost


COST_PLUS = {"billingProfiles": [{"name": "m365-bp", "psa": "cw", "productId": "1",
                                  "price": {"mode": "cost-plus", "percent": "20", "manageAdoptedLines": True}}],
             **SOURCES}


def test_cost_plus_prices_the_line_from_the_partner_cost() -> None:
    cfg = config(licence(profile="m365-bp"), **COST_PLUS)
    snap = snapshot([(SPB, 20, 20)], partner=facts(partner_sub(ANNUAL_SUB, 20, commerce=None, sku=SPB,
                                                               cost="18.50")))
    plan = plan_tenant(cfg, cfg.tenants[0], snap, view(line("500", 20, price="22.00")), TODAY)
    [change] = plan.changes
    assert (change.kind, change.old_unit_price, change.unit_price) == (
        ChangeKind.SET_DETAILS, Decimal("22.00"), Decimal("22.20"))
    assert change.reason == ("update the unit price 22.00 -> 22.20 from cost (18.5 USD + 20 %); profile 'm365-bp' "
                             "manages the price of lines it adopted")
    assert not plan.problems


@pytest.mark.parametrize(("subs", "problem"), [
    ((partner_sub(ANNUAL_SUB, 20, commerce=None, sku=SPB, currency="EUR"),),
     "its cost is in EUR, the PSA's prices in USD"),
    ((partner_sub(ANNUAL_SUB, 15, commerce=None, sku=SPB, cost="18.00"),
      partner_sub(MONTHLY_SUB, 5, commerce=None, sku=SPB, cost="21.60")), "its subscriptions cost differently"),
    ((partner_sub(ANNUAL_SUB, 20, commerce=None, sku=SPB, cost=None),), "no subscription source gives its cost"),
])
def test_a_cost_that_cannot_price_the_line_leaves_the_price_and_says_why(subs: tuple[PartnerSubscription, ...],
                                                                         problem: str) -> None:
    cfg = config(licence(profile="m365-bp"), **COST_PLUS)
    snap = snapshot([(SPB, 20, 20)], partner=facts(*subs))
    plan = plan_tenant(cfg, cfg.tenants[0], snap, view(line("500", 20, price="22.00")), TODAY)
    assert plan.changes == ()
    [found] = plan.problems
    assert problem in found.message and "the price is left as it is" in found.message


def test_cost_plus_needs_a_source() -> None:
    from shared.errors import ConfigError

    with pytest.raises(ConfigError, match="only a subscription source gives"):
        config(licence(profile="m365-bp"), billingProfiles=COST_PLUS["billingProfiles"])


# --------------------------------------------------------------------------- reconciliation


def licence_facts_of(**overrides: Any) -> LicenceFacts:
    base = LicenceFacts(
        tenant_id=TENANT, tenant_name="Fabrikam", sku_id=SPB, label="Microsoft 365 Business Premium", purchased=25,
        purchased_from="Partner Center (pc)", assigned=22, elsewhere=0,
        mappings=(BilledMapping("m1", "100", "500", 20, 22, Decimal("22.00"), 1, 0),),
        subscriptions=(), monthly_cost=Decimal("18.00") * 25, cost_currency="USD",
        reducible=((2, date(2026, 11, 28)),), renewal=date(2027, 3, 1), term_basis="Partner Center: P1Y term")
    return replace(base, **overrides)


def change(status: ChangeStatus, kind: ChangeKind = ChangeKind.SET_QUANTITY) -> PlannedChange:
    return PlannedChange(change_id="c1", kind=kind, tenant_id=TENANT, company_id="19", psa="cw", agreement_id="100",
                         line_id="500", sku_id=SPB, old_quantity=20, new_quantity=22, reason="", status=status,
                         mapping_key="m1")


def test_margin_arithmetic_is_exact_and_follows_what_the_psa_holds() -> None:
    line_ = reconcile(licence_facts_of(), [change(ChangeStatus.APPLIED)], "USD")
    assert line_.billed == 22
    assert line_.revenue == Money(Decimal("484.00"), "USD")
    assert line_.cost == Money(Decimal("450.00"), "USD")
    assert line_.margin == Money(Decimal("34.00"), "USD") and line_.margin_percent == Decimal("7.0")
    assert (line_.found_seats, line_.unused, line_.reducible, line_.locked) == (0, 3, ((2, date(2026, 11, 28)),), 1)
    assert line_.leaking == Money(Decimal("54.00"), "USD") and line_.locked_until == date(2027, 3, 1)
    failed = reconcile(licence_facts_of(), [change(ChangeStatus.FAILED)], "USD")
    assert failed.billed == 20 and failed.found_seats == 2 and failed.found == Money(Decimal("44.00"), "USD")
    held = reconcile(licence_facts_of(), [change(ChangeStatus.HELD)], "USD")
    assert held.billed == 20


@pytest.mark.parametrize("status", list(ChangeStatus))
def test_what_the_reconciliation_keeps_of_a_change_reconciles_as_the_change_does(status: ChangeStatus) -> None:
    """A run's reconciliation keeps a ``LineChange`` of each of its changes, not the change."""
    for kind in (ChangeKind.SET_QUANTITY, ChangeKind.CREATE_LINE):
        whole = change(status, kind)
        assert reconcile(licence_facts_of(), [LineChange.of(whole)], "USD") == \
            reconcile(licence_facts_of(), [whole], "USD")
    assert LineChange.of(change(status)) == LineChange("m1", ChangeKind.SET_QUANTITY, status, None)


def test_an_annual_agreement_price_is_a_month_of_it() -> None:
    facts_ = licence_facts_of(mappings=(BilledMapping("m1", "100", "500", 22, 22, Decimal("240.00"), 12, 2),),
                              monthly_cost=Decimal("450.00"), purchased=25, assigned=24)
    line_ = reconcile(facts_, [], "USD")
    assert line_.revenue == Money(Decimal("440.00"), "USD")
    assert line_.found_seats == 0, "the two seats the mapping includes are not money found"


def test_a_cost_in_another_currency_gives_no_margin_and_totals_stay_apart() -> None:
    euro = reconcile(licence_facts_of(cost_currency="EUR"), [change(ChangeStatus.APPLIED)], "USD")
    assert euro.margin is None and euro.margin_percent is None
    assert euro.problem and "the cost is in EUR and the price in USD" in euro.problem
    dollar = reconcile(licence_facts_of(), [change(ChangeStatus.APPLIED)], "USD")
    sums = totals([euro, dollar])
    assert sums.cost["EUR"].amount == Decimal("450.00") and sums.cost["USD"].amount == Decimal("450.00")
    assert list(sums.margin) == ["USD"]
    with pytest.raises(CurrencyMismatch):
        sums.cost.single()


def test_renewals_with_unused_seats_within_the_days() -> None:
    from shared.domain.reconciliation import SubscriptionFact

    subs = (SubscriptionFact("Partner Center", "a", 20, True, "P1Y", "monthly", date(2026, 12, 10)),
            SubscriptionFact("Partner Center", "b", 5, True, "P1M", "monthly", date(2027, 2, 10)))
    line_ = reconcile(licence_facts_of(subscriptions=subs), [change(ChangeStatus.APPLIED)], "USD")
    [soon] = renewals([line_], TODAY, 30)
    assert (soon.subscription.subscription_id, soon.unused, soon.days_left) == ("a", 3, 15)
    assert renewals([line_], TODAY, 10) == []
    full = reconcile(licence_facts_of(subscriptions=subs, assigned=25), [change(ChangeStatus.APPLIED)], "USD")
    assert renewals([full], TODAY, 90) == [], "no unused seats: nothing to reduce before the renewal"


def test_skus_of_the_snapshot_builder_are_plain() -> None:
    assert snapshot([(SPB, 1, 1)]).skus == (SkuCount(SPB, "X", 1, 1),)


def test_seats_without_a_known_price_or_cost_are_counted_and_said_never_valued_at_zero() -> None:
    """A licence no line prices has money found but no amount, a licence with no known cost an
    unused seat but no amount: the totals count them apart, and the report says so rather than
    printing a sum that reads as their value."""
    from shared.services.reconcile import Reconciliation, render_sections, to_json

    priced = reconcile(licence_facts_of(), [change(ChangeStatus.FAILED)], "USD")  # 2 found, 44.00; 3 unused, 54.00
    unpriced = reconcile(licence_facts_of(sku_id=E3, label="Office 365 E3", mappings=(), purchased=3, assigned=3),
                         [], "USD")  # nothing bills it: 3 found, no price
    uncosted = reconcile(licence_facts_of(sku_id=E3, label="Office 365 E3", monthly_cost=None, cost_currency=None,
                                          purchased=4, assigned=3, reducible=()), [], "USD")
    assert (unpriced.found_seats, unpriced.found) == (3, None) and (uncosted.unused, uncosted.leaking) == (1, None)
    sums = totals([priced, unpriced, uncosted])
    assert (sums.found_seats, sums.found_unpriced_seats) == (5, 3)
    assert (sums.unused_seats, sums.unused_uncosted_seats) == (4, 1)
    assert sums.found["USD"].amount == Decimal("44.00") and sums.leaking["USD"].amount == Decimal("54.00")

    def text(*lines: Any) -> str:
        money = to_json(Reconciliation("r", False, TODAY, "USD", lines, ()))
        return "\n".join(render_sections(money)) + "\n" + "\n".join(render_sections(money, summary=True))

    mixed = text(priced, unpriced, uncosted)
    assert "Money found (seats used but not billed): 5 seats, 44.00 USD a month for 2 of them (no price known for 3)" \
        in mixed
    assert "Fabrikam: Office 365 E3: 3 used, not billed (no price known)" in mixed
    assert "Money leaking (seats bought, not assigned): 4 seats, 54.00 USD a month for 3 of them (no cost known " \
           "for 1); 2 can still be reduced" in mixed
    assert "Fabrikam: Office 365 E3: 1 unused, no cost known (1 locked" in mixed
    assert "money found: 5 seats, 44.00 USD a month for 2 of them (no price known for 3); money leaking: 4 seats" \
        in mixed
    only = text(unpriced)
    assert [row for row in only.splitlines() if "oney found" in row] == [
        "Money found (seats used but not billed): 3 seats, no price known for any of them",
        "  money found: 3 seats, no price known for any of them; money leaking: 0 seats, 0.00 USD a month, 0 still "
        "reducible; 0 renewals with unused seats"]
    assert "Money found (seats used but not billed): 2 seats, 44.00 USD a month\n" in text(priced)
    to_output_totals = to_json(Reconciliation("r", False, TODAY, "USD", (priced, unpriced, uncosted), ()))["totals"]
    assert (to_output_totals["moneyFoundUnpricedSeats"], to_output_totals["unusedUncostedSeats"]) == (3, 1)
    # the margin is not the revenue less the cost when a licence has only one of them: said, not left to be found
    assert sums.unmargined == 2 and to_output_totals["licencesWithoutMargin"] == 2
    assert f"margin {sums.margin['USD'].amount:,} USD (without the 2 licence(s) that have a revenue or a cost but " \
           "not both)" in mixed
    assert "without the" not in text(priced)
    assert "margin - (no licence has both a revenue and a cost)" in text(unpriced, uncosted)
