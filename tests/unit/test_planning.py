"""The change plan: increases with prorating, decreases with approvals and NCE rules, new lines,
price and description updates, problems, and stable ids for exactly-once writes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from shared.domain.decreases import Approval, Deferral
from shared.domain.model import BillMode, ChangeKind, ChangeStatus, PlannedChange
from shared.domain.planning import Decisions, PsaView, TenantPlan, change_id, change_tag, line_tag, plan_tenant
from tests.unit.builders import (
    AUTOTASK,
    SPB,
    TENANT,
    TODAY,
    agreement,
    config,
    licence,
    line,
    snapshot,
    subscription,
    user,
    view,
)


def plan(cfg: Any, snap: Any, psa: PsaView, today: date = TODAY, decisions: Decisions | None = None) -> TenantPlan:
    return plan_tenant(cfg, cfg.tenants[0], snap, psa, today, decisions)


def kinds(result: TenantPlan) -> list[tuple[str, str, int]]:
    return [(c.kind.value, c.status.value, c.new_quantity) for c in result.changes]


def seats(count: int, purchased: int | None = None) -> Any:
    return snapshot([(SPB, purchased if purchased is not None else count, count)])


# --------------------------------------------------------------------------- unchanged, increases


def test_an_unchanged_quantity_plans_nothing() -> None:
    result = plan(config(licence()), seats(20), view(line(quantity="20.0")))
    assert result.changes == ()
    assert result.unchanged == 1
    assert result.outcomes[0].billed_before == 20


def test_an_increase_with_prorating_adds_a_prorate_line_then_sets_the_quantity() -> None:
    result = plan(config(licence()), seats(23), view(line(quantity=20)))
    assert kinds(result) == [("prorate", "planned", 3), ("set-quantity", "planned", 23)]
    prorate, base = result.changes
    # 25..30 November of a November period: 6 of 30 days at 22.00 = 4.40 a seat; the line carries
    # the full price (the PSA prorates a line that starts mid-period), the amount is the charge
    assert (prorate.unit_price, prorate.amount) == (Decimal("22.00"), Decimal("13.20"))
    assert (prorate.effective_date, prorate.end_date) == (TODAY, date(2026, 11, 30))
    assert prorate.tag == change_tag(prorate.change_id)
    assert prorate.product_id == "1"
    assert (base.old_quantity, base.line_id) == (20, "500")


def test_no_prorate_line_when_the_agreement_does_not_prorate() -> None:
    result = plan(config(licence()), seats(23), view(line(quantity=20), agreements=[agreement(prorate=False)]))
    assert kinds(result) == [("set-quantity", "planned", 23)]


def test_a_company_can_disable_prorating() -> None:
    cfg = config(companies=[{"psa": "cw", "companyId": "19", "disableProrate": True, "licences": [licence()]}])
    assert kinds(plan(cfg, seats(23), view(line(quantity=20)))) == [("set-quantity", "planned", 23)]


def test_prorating_follows_the_agreement_anchor_and_cycle() -> None:
    result = plan(config(licence()), seats(21),
                  view(line(quantity=20), agreements=[agreement(cycle="annual", start=date(2026, 3, 1))]))
    prorate = result.changes[0]
    assert prorate.end_date == date(2027, 2, 28)
    # 25 Nov 2026 .. 28 Feb 2027 is 96 of 365 days: 22.00 x 96 / 365 = 5.786..., rounded to the cent
    assert prorate.amount == Decimal("5.79")


def test_a_native_prorating_psa_gets_the_effective_date_instead_of_a_line() -> None:
    result = plan(config(licence()), seats(23), view(line(quantity=20), capabilities=AUTOTASK))
    assert kinds(result) == [("set-quantity", "planned", 23)]
    assert result.changes[0].effective_date == TODAY


def test_disabling_prorate_on_a_native_psa_moves_the_change_to_the_next_billing_period() -> None:
    cfg = config(companies=[{"psa": "cw", "companyId": "19", "disableProrate": True, "licences": [licence()]}])
    result = plan(cfg, seats(23), view(line(quantity=20), capabilities=AUTOTASK))
    assert result.changes[0].effective_date == date(2026, 12, 1)


def test_a_native_psa_credits_a_decrease_only_where_negative_prorating_is_allowed() -> None:
    cfg = config(licence(decreasePolicy="apply"))
    result = plan(cfg, seats(9), view(line(quantity=10), capabilities=AUTOTASK))
    assert result.changes[0].effective_date == date(2026, 12, 1)
    credited = plan(config(licence(decreasePolicy="apply", allowNegativeProrate=True)), seats(9),
                    view(line(quantity=10), capabilities=AUTOTASK))
    assert kinds(credited) == [("set-quantity", "planned", 9)]
    assert credited.changes[0].effective_date == TODAY


def test_an_earlier_attempt_s_prorate_line_is_found_and_not_written_twice() -> None:
    first = plan(config(licence()), seats(23), view(line(quantity=20)))
    prorate = first.changes[0]
    written = line("900", 3, price="22.00", tag=prorate.tag)
    retried = plan(config(licence()), seats(23), view(line(quantity=20), written))
    assert kinds(retried) == [("prorate", "applied", 3), ("set-quantity", "planned", 23)]
    assert retried.changes[0].line_id == "900"
    assert not retried.changes[0].writes


# --------------------------------------------------------------------------- decreases


def decrease_config(**options: Any) -> Any:
    return config(licence(**options))


@pytest.mark.parametrize(("old", "new", "policy", "status"), [
    (10, 9, "apply", "planned"),
    (10, 8, "apply", "planned"),
    (10, 7, "apply", "held"),
    (2, 0, "apply", "held"),
    (100, 79, "apply", "held"),
    (100, 80, "apply", "planned"),
    (10, 9, "hold", "held"),
], ids=["one-seat", "two-seats", "three-seats-30pc", "to-zero", "21-seats-21pc", "20-seats-20pc", "policy-hold"])
def test_decrease_safety_thresholds(old: int, new: int, policy: str, status: str) -> None:
    result = plan(decrease_config(decreasePolicy=policy), seats(new), view(line(quantity=old)))
    assert kinds(result) == [("set-quantity", status, new)]
    if status == "held":
        assert result.changes[0].hold_key


def test_a_licence_gone_from_the_tenant_is_held_not_zeroed() -> None:
    result = plan(decrease_config(decreasePolicy="apply"), snapshot([]), view(line(quantity=12)))
    assert kinds(result) == [("set-quantity", "held", 0)]
    assert "needs approval" in result.changes[0].reason


def test_a_decrease_credits_only_where_negative_prorate_is_allowed() -> None:
    plain = plan(decrease_config(decreasePolicy="apply"), seats(9), view(line(quantity=10)))
    assert kinds(plain) == [("set-quantity", "planned", 9)]
    credited = plan(decrease_config(decreasePolicy="apply", allowNegativeProrate=True), seats(9),
                    view(line(quantity=10)))
    assert kinds(credited) == [("credit", "planned", -1), ("set-quantity", "planned", 9)]
    assert credited.changes[0].amount == Decimal("-4.40")


def test_an_increase_and_the_same_decrease_on_one_day_net_to_zero() -> None:
    up = plan(config(licence(allowNegativeProrate=True, decreasePolicy="apply")), seats(12), view(line(quantity=10)))
    down = plan(config(licence(allowNegativeProrate=True, decreasePolicy="apply")), seats(10), view(line(quantity=12)))
    assert up.changes[0].amount is not None and down.changes[0].amount is not None
    assert up.changes[0].amount + down.changes[0].amount == 0


SUB = "11111111-aaaa-0000-0000-000000000001"


def with_subscription(count: int, created: date, renews: date) -> Any:
    return snapshot([(SPB, 20, count)], subscriptions=(subscription(SUB, SPB, 20, created, renews),))


def test_a_decrease_within_seven_days_of_purchase_applies() -> None:
    result = plan(decrease_config(), with_subscription(9, date(2026, 11, 20), date(2027, 11, 20)),
                  view(line(quantity=10)))
    assert kinds(result) == [("set-quantity", "planned", 9)]
    assert "within 7 days" in result.changes[0].reason


def test_a_decrease_within_seven_days_of_renewal_applies() -> None:
    result = plan(decrease_config(), with_subscription(9, date(2024, 11, 22), date(2027, 11, 22)),
                  view(line(quantity=10)))
    assert kinds(result) == [("set-quantity", "planned", 9)]


def test_a_later_decrease_is_held_by_default() -> None:
    result = plan(decrease_config(), with_subscription(9, date(2026, 3, 1), date(2027, 3, 1)), view(line(quantity=10)))
    assert kinds(result) == [("set-quantity", "held", 9)]
    assert "renews 2027-03-01" in result.changes[0].reason


def test_a_later_decrease_can_be_deferred_to_the_renewal() -> None:
    result = plan(decrease_config(decreasePolicy="defer"), with_subscription(9, date(2026, 3, 1), date(2027, 3, 1)),
                  view(line(quantity=10)))
    assert kinds(result) == [("set-quantity", "deferred", 9)]
    assert result.changes[0].due_date == date(2027, 3, 1)


def test_a_deferred_decrease_applies_when_its_renewal_comes() -> None:
    cfg = decrease_config(decreasePolicy="defer")
    snap = with_subscription(9, date(2026, 3, 1), date(2027, 3, 1))
    held = plan(cfg, snap, view(line(quantity=10))).changes[0]
    assert held.hold_key is not None
    due = Decisions(deferrals={held.hold_key: Deferral(held.hold_key, date(2027, 3, 1))})
    later = plan(cfg, snap, view(line(quantity=10)), today=date(2027, 3, 1), decisions=due)
    assert kinds(later) == [("set-quantity", "planned", 9)]


def test_monthly_terms_renew_every_month() -> None:
    cfg = decrease_config(subscriptionTerm="monthly")
    result = plan(cfg, with_subscription(9, date(2026, 3, 21), date(2026, 12, 21)), view(line(quantity=10)))
    assert kinds(result) == [("set-quantity", "planned", 9)], "renewed on 21 November: inside the window"


def test_trial_and_suspended_subscriptions_do_not_open_the_window() -> None:
    snap = snapshot([(SPB, 20, 9)], subscriptions=(
        subscription(SUB, SPB, 20, date(2026, 11, 22), date(2026, 12, 22), trial=True),
        subscription("11111111-aaaa-0000-0000-000000000002", SPB, 5, date(2026, 11, 22), date(2027, 11, 22),
                     status="Suspended")))
    assert kinds(plan(decrease_config(), snap, view(line(quantity=10)))) == [("set-quantity", "held", 9)]


def held(cfg: Any, count: int, old: int) -> PlannedChange:
    change = plan(cfg, seats(count), view(line(quantity=old))).changes[0]
    assert change.status == ChangeStatus.HELD
    return change


def test_an_approved_decrease_applies_and_a_rejected_one_stays() -> None:
    cfg = decrease_config()
    change = held(cfg, 9, 10)
    assert change.hold_key is not None
    approved = Decisions(approvals={change.hold_key: Approval(change.hold_key, "approved", 10, 9, "alice")})
    assert kinds(plan(cfg, seats(9), view(line(quantity=10)), decisions=approved)) == [("set-quantity", "planned", 9)]
    rejected = Decisions(approvals={change.hold_key: Approval(change.hold_key, "rejected", 10, 9, "bob")})
    result = plan(cfg, seats(9), view(line(quantity=10)), decisions=rejected)
    assert kinds(result) == [("set-quantity", "rejected", 9)]
    assert "rejected by bob" in result.changes[0].reason


def test_an_approval_of_another_decrease_does_not_apply() -> None:
    cfg = decrease_config()
    change = held(cfg, 9, 10)
    assert change.hold_key is not None
    approved = Decisions(approvals={change.hold_key: Approval(change.hold_key, "approved", 10, 9, "alice")})
    moved_on = plan(cfg, seats(8), view(line(quantity=10)), decisions=approved)
    assert kinds(moved_on) == [("set-quantity", "held", 8)]
    assert moved_on.changes[0].hold_key != change.hold_key


def test_hold_keys_are_stable_across_days() -> None:
    cfg = decrease_config()
    first = plan(cfg, seats(9), view(line(quantity=10))).changes[0]
    next_day = plan(cfg, seats(9), view(line(quantity=10)), today=date(2026, 11, 26)).changes[0]
    assert first.hold_key == next_day.hold_key
    assert first.change_id != next_day.change_id


def test_custom_licence_decreases_skip_the_nce_rules() -> None:
    cfg = config({"custom": "devices", "agreementId": "100", "lineId": "500"},
                 customLicences=[{"name": "devices", "kind": "entra-users", "scope": "all"}])
    users = [user(f"u{i}") for i in range(9)]
    assert kinds(plan(cfg, snapshot([], users), view(line(quantity=10)))) == [("set-quantity", "planned", 9)]


# --------------------------------------------------------------------------- new lines, details


def profile_licence(**options: Any) -> dict[str, Any]:
    return {"skuId": SPB, "agreementId": "100", "profile": "m365-bp", **options}


def test_a_missing_line_is_created_from_the_profile() -> None:
    result = plan(config(profile_licence()), seats(4), view())
    assert kinds(result) == [("create-line", "planned", 4)], "the PSA prorates a line that starts mid-period"
    created = result.changes[0]
    assert (created.product_id, created.unit_price, created.bill_mode) == ("1", Decimal("22.00"), BillMode.BILLABLE)
    assert created.tag == line_tag(created.mapping_key)
    assert created.effective_date == TODAY


def test_a_start_date_in_the_future_creates_the_line_from_then_without_prorating() -> None:
    result = plan(config(profile_licence(startDate="2026-12-01")), seats(4), view())
    assert kinds(result) == [("create-line", "planned", 4)]
    assert result.changes[0].effective_date == date(2026, 12, 1)


def test_no_line_is_created_for_zero_seats() -> None:
    assert plan(config(profile_licence()), seats(0), view()).changes == ()


def test_the_line_seatsync_created_is_found_by_its_tag() -> None:
    first = plan(config(profile_licence()), seats(4), view()).changes[0]
    assert first.tag is not None
    existing = line("777", 4, tag=first.tag)
    assert plan(config(profile_licence()), seats(4), view(existing)).changes == ()
    grown = plan(config(profile_licence()), seats(5), view(existing))
    assert [(c.kind.value, c.line_id) for c in grown.changes] == [("prorate", None), ("set-quantity", "777")]


def test_an_existing_line_of_the_product_is_adopted_rather_than_duplicated() -> None:
    result = plan(config(profile_licence()), seats(5), view(line("610", 5)))
    assert result.changes == ()
    assert result.outcomes[0].line_id == "610"


def test_several_candidate_lines_are_a_problem() -> None:
    result = plan(config(profile_licence()), seats(5), view(line("610", 5), line("611", 2)))
    assert result.changes == ()
    assert "several lines of product 1" in result.problems[0].message


@pytest.mark.parametrize(("price", "expected"), [
    ({"mode": "psa"}, Decimal("24.00")),
    ({"mode": "custom", "amount": "19.99"}, Decimal("19.99")),
    ({"mode": "markup", "percent": "-10"}, Decimal("21.60")),
    ({"mode": "markup", "percent": "12.5"}, Decimal("27.00")),
], ids=["psa", "custom", "discount", "markup"])
def test_prices_follow_the_profile_and_the_catalogue(price: dict[str, Any], expected: Decimal) -> None:
    cfg = config(profile_licence(lineId="500"),
                 billingProfiles=[{"name": "m365-bp", "psa": "cw", "productId": "1", "price": price}])
    result = plan(cfg, seats(5), view(line(quantity=5, price="22.00"), price="24.00"))
    assert [(c.kind, c.unit_price) for c in result.changes] == [(ChangeKind.SET_DETAILS, expected)]


def test_user_names_update_the_description_only_when_they_change() -> None:
    cfg = config(licence(includeUserNames=True, description="Microsoft 365 BP"))
    snap = snapshot([(SPB, 2, 2)], [user("ana", SPB), user("ben", SPB)])
    result = plan(cfg, snap, view(line(quantity=2)))
    assert [(c.kind, c.description) for c in result.changes] == [
        (ChangeKind.SET_DETAILS, "Microsoft 365 BP\nUsers: Ana, Ben")]
    same = plan(cfg, snap, view(line(quantity=2, description="Microsoft 365 BP\nUsers: Ana, Ben")))
    assert same.changes == ()


# --------------------------------------------------------------------------- problems, ids


@pytest.mark.parametrize(("psa", "message"), [
    (view(agreements=[]), "agreement 100 was not found"),
    (view(line(), agreements=[agreement(active=False)]), "is not active"),
    (view(line(), agreements=[agreement(company="77")]), "belongs to company 77"),
    (view(line(agreement="200"), agreements=[agreement(), agreement("200")]), "belongs to agreement 200"),
    (view(line(quantity=5, cancelled=date(2026, 6, 1))), "was cancelled"),
    (view(line(quantity="5.5")), "fractional"),
    (view(line(line_id="501")), "line 500 was not found"),
], ids=["no-agreement", "inactive", "other-company", "line-elsewhere", "cancelled", "fractional", "no-line"])
def test_problems_are_reported_and_change_nothing(psa: PsaView, message: str) -> None:
    result = plan(config(licence()), seats(8), psa)
    assert result.changes == ()
    assert message in result.problems[0].message


def test_a_profile_limited_to_other_agreement_types_is_refused() -> None:
    cfg = config(profile_licence(), billingProfiles=[{**{"name": "m365-bp", "psa": "cw", "productId": "1"},
                                                      "agreementTypes": ["Azure"]}])
    result = plan(cfg, seats(3), view())
    assert "may not be used on agreement type 'Microsoft 365'" in result.problems[0].message


def test_overlapping_filters_stop_the_filtered_licences() -> None:
    cfg = config(companies=[
        {"psa": "cw", "companyId": "19", "userFilter": {"department": ["Sales"]}, "licences": [licence()]},
        {"psa": "cw", "companyId": "20", "userFilter": {"city": ["Leeds"]},
         "licences": [{**licence(), "agreementId": "200", "lineId": "600"}]},
    ])
    snap = snapshot([(SPB, 9, 3)], [user("ana", SPB, department="Sales", city="Leeds")])
    result = plan(cfg, snap, view(line(quantity=5), agreements=[agreement()]))
    assert result.changes == ()
    assert "ana@fabrikam.example" in result.problems[0].message


def test_change_ids_are_stable_and_specific() -> None:
    base = change_id(TENANT, SPB, "100", "500", ChangeKind.SET_QUANTITY, 22, TODAY)
    assert base == change_id(TENANT.upper(), SPB.upper(), "100", "500", ChangeKind.SET_QUANTITY, 22, TODAY)
    variants = {
        change_id(TENANT, SPB, "100", "500", ChangeKind.SET_QUANTITY, 23, TODAY),
        change_id(TENANT, SPB, "100", "500", ChangeKind.SET_QUANTITY, 22, date(2026, 11, 26)),
        change_id(TENANT, SPB, "101", "500", ChangeKind.SET_QUANTITY, 22, TODAY),
        change_id(TENANT, SPB, "100", "501", ChangeKind.SET_QUANTITY, 22, TODAY),
        change_id(TENANT, "custom:x", "100", "500", ChangeKind.SET_QUANTITY, 22, TODAY),
        change_id(TENANT, SPB, "100", "500", ChangeKind.PRORATE, 22, TODAY),
    }
    assert base not in variants
    assert len(variants) == 6


def test_the_same_day_replans_the_same_ids() -> None:
    first = plan(config(licence()), seats(23), view(line(quantity=20)))
    again = plan(config(licence()), seats(23), view(line(quantity=20)))
    assert [c.change_id for c in first.changes] == [c.change_id for c in again.changes]
