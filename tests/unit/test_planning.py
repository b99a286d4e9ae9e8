"""The change plan: increases with prorating, decreases with approvals and NCE rules, new lines,
price and description updates, problems, and stable ids for exactly-once writes."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from shared.config.schema import dump_config, parse_config
from shared.domain.decreases import Approval, Deferral
from shared.domain.model import BillingAttributes, BillMode, ChangeKind, ChangeStatus, PlannedChange
from shared.domain.planning import (
    CreatedLine,
    Decisions,
    PsaView,
    TenantPlan,
    change_id,
    line_tag,
    plan_tenant,
    prorate_tag,
    record_tag,
    recreate_key,
    stale_decisions,
)
from shared.domain.problems import DEFAULT_ACTIONS, ProblemKind
from tests.unit.builders import (
    AUTOTASK,
    CW,
    HALO,
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


def quantity_changes(result: TenantPlan) -> list[tuple[str, str, int]]:
    """The plan's quantity changes (what decisions on decreases are about), records aside."""
    return [(c.kind.value, c.status.value, c.new_quantity) for c in result.changes if c.kind == ChangeKind.SET_QUANTITY]


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
    assert prorate.tag == prorate_tag("500", prorate.change_id)
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
    assert quantity_changes(result) == [("set-quantity", status, new)]
    if status == "held":
        assert result.changes[0].hold_key


def test_a_licence_gone_from_the_tenant_is_held_not_zeroed() -> None:
    result = plan(decrease_config(decreasePolicy="apply"), snapshot([]), view(line(quantity=12)))
    assert kinds(result) == [("set-quantity", "held", 0)]
    assert "needs approval" in result.changes[0].reason


def test_a_decrease_credits_only_where_negative_prorate_is_allowed() -> None:
    plain = plan(decrease_config(decreasePolicy="apply"), seats(9), view(line(quantity=10)))
    # not credited: the removed seat stays charged to the period's end, and the quantity the
    # period was invoiced at is recorded (not billed) before the addition is lowered
    assert kinds(plain) == [("period-record", "planned", 10), ("set-quantity", "planned", 9)]
    assert "1 seat(s) stay charged to 2026-11-30 (no credit)" in plain.changes[1].reason
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
    assert quantity_changes(result) == [("set-quantity", "planned", 9)]
    assert "within 7 days" in result.changes[-1].reason


def test_a_decrease_within_seven_days_of_renewal_applies() -> None:
    result = plan(decrease_config(), with_subscription(9, date(2024, 11, 22), date(2027, 11, 22)),
                  view(line(quantity=10)))
    assert quantity_changes(result) == [("set-quantity", "planned", 9)]


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
    assert quantity_changes(later) == [("set-quantity", "planned", 9)]


def test_monthly_terms_renew_every_month() -> None:
    cfg = decrease_config(subscriptionTerm="monthly")
    result = plan(cfg, with_subscription(9, date(2026, 3, 21), date(2026, 12, 21)), view(line(quantity=10)))
    assert quantity_changes(result) == [("set-quantity", "planned", 9)], "renewed on 21 November: inside the window"


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
    applied = plan(cfg, seats(9), view(line(quantity=10)), decisions=approved)
    assert quantity_changes(applied) == [("set-quantity", "planned", 9)]
    rejected = Decisions(approvals={change.hold_key: Approval(change.hold_key, "rejected", 10, 9, "bob")})
    result = plan(cfg, seats(9), view(line(quantity=10)), decisions=rejected)
    assert quantity_changes(result) == [("set-quantity", "rejected", 9)]
    assert "rejected by bob" in result.changes[0].reason


def test_an_approval_of_another_decrease_does_not_apply() -> None:
    cfg = decrease_config()
    change = held(cfg, 9, 10)
    assert change.hold_key is not None
    approved = Decisions(approvals={change.hold_key: Approval(change.hold_key, "approved", 10, 9, "alice")})
    moved_on = plan(cfg, seats(8), view(line(quantity=10)), decisions=approved)
    assert kinds(moved_on) == [("set-quantity", "held", 8)]
    assert moved_on.changes[0].hold_key != change.hold_key


def test_decisions_that_no_longer_stand_are_stale_those_that_do_are_kept() -> None:
    """A decision is about one decrease (from, to): once the count moved on before it applied, it
    is stale, so that it never applies to a later decrease that merely has the same from and to."""
    cfg = decrease_config()
    change = held(cfg, 9, 10)
    key, mapping = change.hold_key, change.mapping_key
    assert key is not None
    decided = Decisions(approvals={key: Approval(key, "approved", 10, 9, "alice", mapping_key=mapping)},
                        deferrals={key: Deferral(key, date(2027, 3, 1), mapping)})
    still = plan(cfg, seats(9), view(line(quantity=10)), decisions=decided)
    assert stale_decisions(still, decided) == ([], [])
    for count in (8, 10):  # another decrease, or none
        moved_on = plan(cfg, seats(count), view(line(quantity=10)), decisions=decided)
        assert stale_decisions(moved_on, decided) == ([key], [key])
    rejected = Decisions(approvals={key: Approval(key, "rejected", 10, 9, "bob", mapping_key=mapping)})
    assert stale_decisions(plan(cfg, seats(10), view(line(quantity=10)), decisions=rejected), rejected) == ([key], [])
    # a licence frozen by a problem (here: its agreement is gone) keeps its decisions
    frozen = plan(cfg, seats(10), view(line(quantity=10), agreements=[]), decisions=decided)
    assert stale_decisions(frozen, decided) == ([], [])


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
    assert quantity_changes(plan(cfg, snapshot([], users), view(line(quantity=10)))) == [("set-quantity", "planned", 9)]


# --------------------------------------------------------------------------- new lines, details


def profile_licence(**options: Any) -> dict[str, Any]:
    return {"skuId": SPB, "agreementId": "100", "profile": "m365-bp", **options}


@pytest.mark.parametrize("created", [False, True], ids=["adopted", "created-by-seatsync"])
def test_a_line_whose_cancellation_is_dated_later_still_bills_and_is_never_doubled(created: bool) -> None:
    """The MSP dated the end of the line (31 December) in the PSA: it bills until then, so no second
    line is created for the licence; the line is left as it is and a person is told."""
    cfg = config(profile_licence())
    tag = plan(cfg, seats(4), view()).changes[0].tag if created else None
    result = plan(cfg, seats(6), view(line(quantity=4, cancelled=date(2026, 12, 31), tag=tag)))
    assert result.changes == ()
    [problem] = result.problems
    assert problem.kind == ProblemKind.LINE_CANCELLED and problem.blocks
    assert "line 500 stops billing on 2026-12-31" in problem.message


def test_a_line_cancelled_before_today_is_history_and_a_new_line_is_created() -> None:
    result = plan(config(profile_licence()), seats(4), view(line(quantity=9, cancelled=date(2026, 6, 30))))
    assert kinds(result) == [("create-line", "planned", 4)]
    assert result.problems == ()


def seatsync_line(cfg: Any, line_id: str = "500", **options: Any) -> Any:
    """A line SeatSync created for the licence (it carries the licence's tag)."""
    return line(line_id, tag=plan(cfg, seats(4), view()).changes[0].tag, **options)


@pytest.mark.parametrize("capabilities", [CW, AUTOTASK, HALO], ids=["connectwise", "autotask", "halopsa"])
def test_a_line_seatsync_created_that_the_msp_cancelled_is_frozen_and_not_created_again(capabilities: Any) -> None:
    """The MSP ended SeatSync's line on 30 June: billing is not restarted by a new line; a person is
    told which tenant, licence, agreement and line, and what to do."""
    cfg = config(profile_licence())
    ended = seatsync_line(cfg, quantity=9, cancelled=date(2026, 6, 30))
    result = plan(cfg, seats(4), view(ended, capabilities=capabilities))
    assert result.changes == ()
    [problem] = result.problems
    assert (problem.kind, problem.blocks) == (ProblemKind.LINE_CANCELLED, True)
    assert (problem.tenant_id, problem.label, problem.agreement_id, problem.line_id) == (
        TENANT, "Microsoft 365 Business Premium", "100", "500")
    assert "line 500 was cancelled on 2026-06-30" in problem.message and "SeatSync created the line" in problem.message
    assert "lineId" in problem.action and f"clear SeatSync's tag ({ended.tag})" in problem.action


def test_the_latest_of_several_cancelled_seatsync_lines_is_named() -> None:
    cfg = config(profile_licence())
    result = plan(cfg, seats(4), view(seatsync_line(cfg, "500", cancelled=date(2026, 3, 31)),
                                      seatsync_line(cfg, "501", cancelled=date(2026, 6, 30))))
    assert result.changes == ()
    assert [(p.kind, p.line_id) for p in result.problems] == [(ProblemKind.LINE_CANCELLED, "501")]


def test_a_billing_seatsync_line_wins_over_an_earlier_cancelled_one() -> None:
    cfg = config(profile_licence())
    result = plan(cfg, seats(6), view(seatsync_line(cfg, "500", cancelled=date(2026, 3, 31)),
                                      seatsync_line(cfg, "501", quantity=4)))
    assert result.problems == ()
    assert [(c.kind, c.line_id, c.new_quantity) for c in result.changes if c.kind == ChangeKind.SET_QUANTITY] == [
        (ChangeKind.SET_QUANTITY, "501", 6)]


@pytest.mark.parametrize("capabilities", [CW, AUTOTASK, HALO], ids=["connectwise", "autotask", "halopsa"])
@pytest.mark.parametrize("duplicate", ["msp-line", "same-tag"])
def test_a_line_billing_beside_seatsync_line_is_reported_and_neither_is_written(capabilities: Any,
                                                                               duplicate: str) -> None:
    """The MSP added its own line of the product beside SeatSync's, or two lines carry the licence's
    tag: both bill, so nothing is written to either (nothing raised, nothing lowered) until a person
    says which line bills the licence."""
    cfg = config(profile_licence(decreasePolicy="apply"))
    other = line("610", 3) if duplicate == "msp-line" else seatsync_line(cfg, "610", quantity=3)
    for count in (2, 20):
        result = plan(cfg, seats(count), view(seatsync_line(cfg, quantity=5), other, capabilities=capabilities))
        assert result.changes == ()
        [problem] = result.problems
        assert (problem.kind, problem.blocks, problem.line_id) == (ProblemKind.SEVERAL_CANDIDATE_LINES, True, "500")
        assert ("Candidate lines", "500, 610") in problem.facts
        assert "nothing is written to any of them" in problem.message and "lineId" in problem.action


def test_a_line_another_mapping_names_is_no_duplicate_of_seatsync_line() -> None:
    cfg = config(profile_licence(), {"skuId": "c42b9cae-ea4f-4ab7-9717-81576235ccac", "agreementId": "100",
                                     "lineId": "610"})
    result = plan(cfg, snapshot([(SPB, 6, 6), ("c42b9cae-ea4f-4ab7-9717-81576235ccac", 3, 3)]),
                  view(seatsync_line(cfg, quantity=6), line("610", 3)))
    assert [p.kind for p in result.problems] == []


def test_a_cancelled_msp_line_beside_seatsync_line_is_history() -> None:
    cfg = config(profile_licence())
    result = plan(cfg, seats(6), view(seatsync_line(cfg, quantity=6), line("610", 3, cancelled=date(2026, 6, 30))))
    assert result.problems == () and result.changes == ()


def created_by_seatsync(cfg: Any, *line_ids: str, emptied: frozenset[str] = frozenset(),
                        approvals: dict[str, Approval] | None = None) -> Decisions:
    """What SeatSync's ledger says: it created ``line_ids`` (oldest first) for the licence."""
    tag = plan(cfg, seats(4), view()).changes[0].tag
    assert tag is not None
    return Decisions(approvals=approvals or {}, emptied_by_seatsync=emptied,
                     created={tag: tuple(CreatedLine(i, date(2026, 10, 1 + n), "run-1")
                                         for n, i in enumerate(line_ids))})


def mapping_of(cfg: Any) -> str:
    return plan(cfg, seats(4), view()).changes[0].mapping_key


@pytest.mark.parametrize("capabilities", [CW, AUTOTASK, HALO], ids=["connectwise", "autotask", "halopsa"])
def test_a_line_seatsync_created_that_the_msp_deleted_is_not_created_again_without_approval(capabilities: Any) -> None:
    """The ledger says SeatSync created line 500 for the licence; the PSA no longer has it (an
    Autotask contract service or a Halo recurring invoice line the MSP deleted). Nothing is created:
    the new line waits for a person's approval, and the problem names the tenant, the licence, the
    agreement, the deleted line and what to do."""
    cfg = config(profile_licence())
    result = plan(cfg, seats(4), view(capabilities=capabilities), decisions=created_by_seatsync(cfg, "500"))
    key = recreate_key(TENANT, mapping_of(cfg), "500")
    [held] = result.changes
    assert (held.kind, held.status, held.hold_key, held.new_quantity, held.writes) == (
        ChangeKind.CREATE_LINE, ChangeStatus.HELD, key, 4, False)
    assert "line 500 is no longer in cw: it was deleted there (SeatSync created it on 2026-10-01)" in held.reason
    [problem] = result.problems
    assert (problem.kind, problem.blocks) == (ProblemKind.LINE_REMOVED, True)
    assert (problem.tenant_id, problem.label, problem.agreement_id, problem.line_id) == (
        TENANT, "Microsoft 365 Business Premium", "100", "500")
    assert "SeatSync does not bill the licence's 4 seat(s) again on its own" in problem.message
    assert f"seatsync approvals approve {key}" in problem.action and "lineId" in problem.action
    assert ("Approval id", key) in problem.facts


def test_the_latest_deleted_line_is_the_one_named() -> None:
    cfg = config(profile_licence())
    result = plan(cfg, seats(4), view(), decisions=created_by_seatsync(cfg, "500", "512"))
    assert [(p.kind, p.line_id) for p in result.problems] == [(ProblemKind.LINE_REMOVED, "512")]
    assert result.changes[0].hold_key == recreate_key(TENANT, mapping_of(cfg), "512")


def test_an_approved_recreation_creates_the_line_once() -> None:
    cfg = config(profile_licence())
    key = recreate_key(TENANT, mapping_of(cfg), "500")
    approved = {key: Approval(key, "approved", 0, 4, "ops@msp.example", None, mapping_of(cfg))}
    result = plan(cfg, seats(4), view(), decisions=created_by_seatsync(cfg, "500", approvals=approved))
    assert result.problems == ()
    [created] = result.changes
    assert (created.kind, created.status, created.hold_key, created.writes) == (
        ChangeKind.CREATE_LINE, ChangeStatus.PLANNED, key, True)
    assert "billing the licence again approved by ops@msp.example" in created.reason
    assert stale_decisions(result, Decisions(approvals=approved)) == ([], []), "the approval stands until applied"


def test_a_rejected_recreation_stays_frozen_and_reported() -> None:
    cfg = config(profile_licence())
    key = recreate_key(TENANT, mapping_of(cfg), "500")
    rejected = {key: Approval(key, "rejected", 0, 4, "ops@msp.example", None, mapping_of(cfg))}
    result = plan(cfg, seats(4), view(), decisions=created_by_seatsync(cfg, "500", approvals=rejected))
    assert [(c.kind, c.status, c.hold_key) for c in result.changes] == [
        (ChangeKind.CREATE_LINE, ChangeStatus.REJECTED, key)]
    [problem] = result.problems
    assert "billing it again was rejected by ops@msp.example" in problem.message
    assert "remove it from the mapping" in problem.action
    assert stale_decisions(result, Decisions(approvals=rejected)) == ([], []), "the rejection stands"


def test_a_deleted_line_and_an_msp_line_of_the_product_ask_which_line_bills() -> None:
    """SeatSync's line is gone and the MSP has its own line of the product on the agreement: it is
    not adopted on a guess, and no line is created beside it."""
    cfg = config(profile_licence())
    result = plan(cfg, seats(4), view(line("610", 3)), decisions=created_by_seatsync(cfg, "500"))
    assert result.changes == ()
    [problem] = result.problems
    assert (problem.kind, problem.line_id) == (ProblemKind.LINE_REMOVED, "500")
    assert "line(s) 610 of the product bill on the agreement instead" in problem.message
    assert "lineId" in problem.action


def test_a_deleted_line_with_no_seats_to_bill_raises_nothing() -> None:
    cfg = config(profile_licence())
    result = plan(cfg, seats(0), view(), decisions=created_by_seatsync(cfg, "500"))
    assert result.changes == () and result.problems == ()


def test_a_line_the_mapping_names_by_line_id_is_no_deleted_line() -> None:
    cfg = config(profile_licence(lineId="610"))  # the same mapping (key) as without lineId
    result = plan(cfg, seats(4), view(line("610", 3)),
                  decisions=created_by_seatsync(config(profile_licence()), "500"))
    assert result.problems == ()
    assert [(c.kind, c.line_id) for c in result.changes if c.kind == ChangeKind.SET_QUANTITY] == [
        (ChangeKind.SET_QUANTITY, "610")]


@pytest.mark.parametrize("capabilities", [AUTOTASK, HALO], ids=["autotask", "halopsa"])
def test_a_line_seatsync_created_that_the_msp_emptied_waits_for_approval(capabilities: Any) -> None:
    """The MSP removed the units of SeatSync's contract service (it bills 0 from the next period
    on) and SeatSync never set it to 0 itself: it is not raised again without a person."""
    cfg = config(profile_licence())
    emptied = seatsync_line(cfg, quantity=0)
    result = plan(cfg, seats(4), view(emptied, capabilities=capabilities), decisions=created_by_seatsync(cfg, "500"))
    key = recreate_key(TENANT, mapping_of(cfg), "500")
    assert [(c.kind, c.status, c.hold_key, c.old_quantity, c.new_quantity) for c in result.changes] == [
        (ChangeKind.SET_QUANTITY, ChangeStatus.HELD, key, 0, 4)]
    [problem] = result.problems
    assert problem.kind == ProblemKind.LINE_REMOVED
    assert "bills no seats from the next period on: its units were removed in cw" in problem.message

    # SeatSync lowered it to 0 itself (the licence had no seats): raised as any line is
    ours = plan(cfg, seats(4), view(emptied, capabilities=capabilities),
                decisions=created_by_seatsync(cfg, "500", emptied=frozenset({"500"})))
    assert ours.problems == () and [c.status for c in ours.changes] == [ChangeStatus.PLANNED]

    # approved: raised, and the change carries the approval's key (marked applied when written)
    approved = {key: Approval(key, "approved", 0, 4, "ops@msp.example", None, mapping_of(cfg))}
    again = plan(cfg, seats(4), view(emptied, capabilities=capabilities),
                 decisions=created_by_seatsync(cfg, "500", approvals=approved))
    assert again.problems == ()
    assert [(c.status, c.hold_key, c.new_quantity) for c in again.changes] == [(ChangeStatus.PLANNED, key, 4)]


E5 = "c42b9cae-ea4f-4ab7-9717-81576235ccac"
E5_NAME = "Microsoft 365 E5 Developer (without Windows and Audio Conferencing)"


@pytest.mark.parametrize("capabilities", [CW, AUTOTASK, HALO], ids=["connectwise", "autotask", "halopsa"])
@pytest.mark.parametrize("configured", [True, False], ids=["line-id-and-adopted", "both-adopted"])
def test_two_licences_finding_the_same_line_are_both_frozen(capabilities: Any, configured: bool) -> None:
    """Business Premium names line 500 by lineId (or adopts it), and another licence of the same
    profile adopts it as the one line of the product: each would write its own quantity to it (24,
    then 3). Neither is written; each is told which licence it shares the line with."""
    first = profile_licence(lineId="500") if configured else profile_licence()
    cfg = config(first, {"skuId": E5, "agreementId": "100", "profile": "m365-bp"})
    result = plan(cfg, snapshot([(SPB, 24, 24), (E5, 3, 3)]), view(line("500", 20), capabilities=capabilities))
    assert result.changes == () and result.outcomes == ()
    assert [(p.kind, p.line_id, p.blocks) for p in result.problems] == [(ProblemKind.LINE_SHARED, "500", True)] * 2
    bp, e5 = sorted(result.problems, key=lambda p: p.label != "Microsoft 365 Business Premium")
    how = "lineId" if configured else "adopted"
    assert f"line 500 on agreement 100 is also the line of {E5_NAME} (adopted)" in bp.message
    assert f"is also the line of Microsoft 365 Business Premium ({how})" in e5.message
    assert "nothing is written to it for any of them" in e5.message
    assert ("Licences", f"Microsoft 365 Business Premium ({how}); {E5_NAME} (adopted)") in bp.facts


def test_licences_on_lines_of_their_own_are_no_shared_line() -> None:
    cfg = config(profile_licence(lineId="500"), {"skuId": E5, "agreementId": "100", "lineId": "610"})
    result = plan(cfg, snapshot([(SPB, 24, 24), (E5, 3, 3)]), view(line("500", 20), line("610", 2, product="3")))
    assert [p.kind for p in result.problems] == []
    assert {c.line_id for c in result.changes if c.kind == ChangeKind.SET_QUANTITY} == {"500", "610"}


@pytest.mark.parametrize("stored", [False, True], ids=["as-given", "as-stored"])
def test_a_line_another_customer_names_by_line_id_is_not_adopted(stored: bool) -> None:
    """Contoso's mapping names line 500 by lineId; Fabrikam's licence of the same profile finds line
    500 as the one line of the product on the agreement: it is not Fabrikam's to adopt. The same
    when the configuration is read from storage (its tenants kept as compact documents)."""
    document = dump_config(config(profile_licence()))
    document["tenants"].append({"tenantId": "bbbbbbbb-0000-0000-0000-000000000002", "name": "Contoso",
                                "companies": [{"psa": "cw", "companyId": "19", "licences": [
                                    {"skuId": E5, "agreementId": "100", "lineId": "500"}]}]})
    cfg = parse_config(document).compacted() if stored else parse_config(document)
    result = plan(cfg, seats(24), view(line("500", 20)))
    assert result.changes == ()
    [problem] = result.problems
    assert (problem.kind, problem.line_id, problem.blocks) == (ProblemKind.LINE_SHARED, "500", True)
    assert f"is the line {E5_NAME} of Contoso names by lineId" in problem.message


@pytest.mark.parametrize("capabilities", [CW, AUTOTASK, HALO], ids=["connectwise", "autotask", "halopsa"])
def test_a_configured_line_with_seatsync_line_billing_beside_it_freezes_both(capabilities: Any) -> None:
    """The mapping names line 610 by lineId, but the line SeatSync created for the licence (its tag)
    still bills on the agreement: both would bill the seats; nothing is written to either."""
    created = seatsync_line(config(profile_licence()), "500", quantity=5)
    cfg = config(profile_licence(lineId="610"))
    for count in (2, 20):
        result = plan(cfg, seats(count), view(created, line("610", 3), capabilities=capabilities))
        assert result.changes == ()
        [problem] = result.problems
        assert (problem.kind, problem.line_id, problem.blocks) == (ProblemKind.SEVERAL_CANDIDATE_LINES, "610", True)
        assert ("Candidate lines", "610, 500") in problem.facts
        assert "line 610 (the mapping's lineId) and line(s) 500 (created by SeatSync for this licence" in \
            problem.message
        assert "end line(s) 500 in the PSA" in problem.action


def test_a_cancelled_seatsync_line_beside_a_configured_line_is_history() -> None:
    created = seatsync_line(config(profile_licence()), "500", quantity=5, cancelled=date(2026, 6, 30))
    result = plan(config(profile_licence(lineId="610")), seats(4), view(created, line("610", 3)))
    assert result.problems == ()
    assert [(c.line_id, c.new_quantity) for c in result.changes if c.kind == ChangeKind.SET_QUANTITY] == [("610", 4)]


def test_a_missing_line_is_created_from_the_profile() -> None:
    result = plan(config(profile_licence()), seats(4), view())
    assert kinds(result) == [("create-line", "planned", 4)], "the PSA prorates a line that starts mid-period"
    created = result.changes[0]
    assert (created.product_id, created.unit_price, created.bill_mode) == ("1", Decimal("22.00"), BillMode.BILLABLE)
    assert created.tag == line_tag(created.mapping_key)
    assert created.effective_date == TODAY


def test_a_new_line_in_an_invoiced_period_is_charged_for_the_rest_of_it() -> None:
    """25 November, November invoiced: 4 seats at 22.00 for 6/30 of the month (4.40 a seat)."""
    [created] = plan(config(profile_licence()), seats(4), view()).changes
    assert (created.effective_date, created.amount) == (TODAY, Decimal("17.60"))
    assert "charged from 2026-11-25 to 2026-11-30: 6/30 days x 22.00 = 4.40 per seat" in created.reason


@pytest.mark.parametrize(("company", "agreements", "why"), [
    ({"disableProrate": True}, [agreement()], "the company disables prorating"),
    ({}, [agreement(prorate=False)], "agreement 100 does not prorate"),
], ids=["company-disables-prorating", "agreement-does-not-prorate"])
def test_a_new_line_without_prorating_starts_with_the_next_period(
        company: dict[str, Any], agreements: list[Any], why: str) -> None:
    """As an increase of an existing line would: no partial charge, billed from 1 December."""
    cfg = config(companies=[{"psa": "cw", "companyId": "19", **company, "licences": [profile_licence()]}])
    for capabilities in (CW, AUTOTASK, HALO):
        [created] = plan(cfg, seats(4), view(agreements=agreements, capabilities=capabilities)).changes
        assert (created.kind, created.new_quantity, created.effective_date, created.amount) == (
            ChangeKind.CREATE_LINE, 4, date(2026, 12, 1), None)
        assert f"billed from the next period (2026-12-01): {why}" in created.reason


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
def test_a_line_seatsync_created_follows_the_profile_and_the_catalogue(price: dict[str, Any],
                                                                      expected: Decimal) -> None:
    cfg = config(profile_licence(), billingProfiles=[{"name": "m365-bp", "psa": "cw", "productId": "1",
                                                      "price": price}])
    created = plan(cfg, seats(5), view()).changes[0]
    result = plan(cfg, seats(5), view(line("777", 5, price="22.00", tag=created.tag), price="24.00"))
    assert [(c.kind, c.old_unit_price, c.unit_price) for c in result.changes] == [
        (ChangeKind.SET_DETAILS, Decimal("22.00"), expected)]
    assert "created by SeatSync" in result.changes[0].reason
    assert result.problems == ()


@pytest.mark.parametrize(("price", "line_id"), [
    ({"mode": "psa"}, "500"),
    ({"mode": "custom", "amount": "19.99"}, "500"),
    ({"mode": "markup", "percent": "12.5"}, None),
], ids=["psa-configured-line", "custom-configured-line", "markup-found-by-product"])
def test_an_adopted_line_keeps_its_price_and_the_difference_is_a_problem(price: dict[str, Any],
                                                                       line_id: str | None) -> None:
    options = {"lineId": line_id} if line_id else {}
    cfg = config(profile_licence(**options), billingProfiles=[{"name": "m365-bp", "psa": "cw", "productId": "1",
                                                               "price": price}])
    result = plan(cfg, seats(6), view(line(quantity=5, price="20.00"), price="24.00"))
    assert [c.kind for c in result.changes] == [ChangeKind.PRORATE, ChangeKind.SET_QUANTITY], \
        "the quantity still syncs; the price is left alone"
    assert all(c.unit_price in (None, Decimal("20.00")) for c in result.changes), "prorated at the line's price"
    [problem] = result.problems
    assert (problem.kind, problem.blocks, problem.line_id) == (ProblemKind.PRICE_DIFFERS, False, "500")
    assert problem.facts[0] == ("Line's unit price", "20.00")


def test_a_profile_that_manages_adopted_lines_plans_the_price_change() -> None:
    cfg = config(profile_licence(lineId="500"), billingProfiles=[{
        "name": "m365-bp", "psa": "cw", "productId": "1",
        "price": {"mode": "custom", "amount": "21.50", "manageAdoptedLines": True}}])
    result = plan(cfg, seats(5), view(line(quantity=5, price="20.00")))
    [change] = result.changes
    assert (change.kind, change.old_unit_price, change.unit_price, change.line_id) == (
        ChangeKind.SET_DETAILS, Decimal("20.00"), Decimal("21.50"), "500")
    assert change.reason == ("update the unit price 20.00 -> 21.50; profile 'm365-bp' manages the price of lines it "
                             "adopted")
    assert result.problems == ()
    assert result.outcomes[0].unit_price == Decimal("21.50")


def test_an_equal_price_is_neither_a_change_nor_a_problem() -> None:
    cfg = config(profile_licence(lineId="500"))
    result = plan(cfg, seats(5), view(line(quantity=5, price="22.00"), price="22.0"))
    assert (result.changes, result.problems) == ((), ())


def test_a_configured_line_of_another_product_is_a_problem() -> None:
    result = plan(config(profile_licence(lineId="500")), seats(6), view(line(quantity=5, product="9")))
    assert result.changes == ()
    [problem] = result.problems
    assert (problem.kind, problem.line_id, problem.blocks) == (ProblemKind.PRODUCT_DIFFERS, "500", True)
    assert "bills product M365-BP, but profile 'm365-bp' bills product 1" in problem.message


def test_user_names_update_the_description_only_when_they_change() -> None:
    cfg = config(licence(includeUserNames=True, description="Microsoft 365 BP"))
    snap = snapshot([(SPB, 2, 2)], [user("ana", SPB), user("ben", SPB)])
    result = plan(cfg, snap, view(line(quantity=2)))
    assert [(c.kind, c.description) for c in result.changes] == [
        (ChangeKind.SET_DETAILS, "Microsoft 365 BP\nUsers: Ana, Ben")]
    same = plan(cfg, snap, view(line(quantity=2, description="Microsoft 365 BP\nUsers: Ana, Ben")))
    assert same.changes == ()


# --------------------------------------------------------------------------- problems, ids


@pytest.mark.parametrize(("psa", "kind", "message"), [
    (view(agreements=[]), ProblemKind.AGREEMENT_MISSING, "agreement 100 was not found"),
    (view(line(), agreements=[agreement(active=False)]), ProblemKind.AGREEMENT_INACTIVE, "is not active"),
    (view(line(), agreements=[agreement(end=date(2026, 10, 31))]), ProblemKind.AGREEMENT_ENDED,
     "ended on 2026-10-31"),
    # every PSA also reports an agreement past its end as not active: it is still said as ended
    (view(line(), agreements=[agreement(active=False, end=date(2026, 10, 31))]), ProblemKind.AGREEMENT_ENDED,
     "ended on 2026-10-31"),
    (view(line(), agreements=[agreement(company="77")]), ProblemKind.AGREEMENT_OF_ANOTHER_COMPANY,
     "belongs to company 77"),
    (view(line(agreement="200"), agreements=[agreement(), agreement("200")]), ProblemKind.LINE_ON_ANOTHER_AGREEMENT,
     "belongs to agreement 200"),
    (view(line(quantity=5, cancelled=date(2026, 6, 1))), ProblemKind.LINE_CANCELLED, "was cancelled"),
    (view(line(quantity="5.5")), ProblemKind.FRACTIONAL_QUANTITY, "fractional"),
    (view(line(line_id="501")), ProblemKind.LINE_MISSING, "line 500 was not found"),
    (view(line(), capabilities_for={}), ProblemKind.PSA_NOT_READ, "'cw' was not read"),
], ids=["no-agreement", "inactive", "ended", "ended-and-inactive", "other-company", "line-elsewhere", "cancelled",
        "fractional", "no-line",
        "psa-not-read"])
def test_problems_are_reported_with_their_kind_and_change_nothing(psa: PsaView, kind: ProblemKind,
                                                                  message: str) -> None:
    result = plan(config(licence()), seats(8), psa)
    assert result.changes == ()
    [problem] = result.problems
    assert (problem.kind, problem.blocks) == (kind, True)
    assert message in problem.message
    assert (problem.tenant_id, problem.source, problem.sku_id, problem.label) == (
        TENANT, f"sku:{SPB}", SPB, "Microsoft 365 Business Premium")
    assert (problem.psa, problem.company_id, problem.agreement_id) == ("cw", "19", "100")
    assert problem.action == DEFAULT_ACTIONS[kind]


def test_an_agreement_ending_today_still_bills() -> None:
    result = plan(config(licence()), seats(21), view(line(quantity=20), agreements=[agreement(end=TODAY)]))
    assert result.problems == ()
    assert [c.kind for c in result.changes] == [ChangeKind.PRORATE, ChangeKind.SET_QUANTITY]


@pytest.mark.parametrize(("options", "psa", "kind"), [
    ({}, view(line("610", 5), line("611", 2)), ProblemKind.SEVERAL_CANDIDATE_LINES),
    ({"subscriptionIds": ["11111111-aaaa-0000-0000-00000000000f"]}, view(line("610", 5)),
     ProblemKind.SUBSCRIPTION_NOT_FOUND),
    ({}, view(price=None), ProblemKind.PRODUCT_WITHOUT_PRICE),
], ids=["several-lines", "unknown-subscription", "no-price"])
def test_profile_mapping_problems_have_their_kind(options: dict[str, Any], psa: PsaView, kind: ProblemKind) -> None:
    result = plan(config(profile_licence(**options)), seats(5), psa)
    assert result.changes == ()
    assert [p.kind for p in result.problems] == [kind]


def test_a_profile_limited_to_other_agreement_types_is_refused() -> None:
    cfg = config(profile_licence(), billingProfiles=[{**{"name": "m365-bp", "psa": "cw", "productId": "1"},
                                                      "agreementTypes": ["Azure"]}])
    result = plan(cfg, seats(3), view())
    assert "may not be used on agreement type 'Microsoft 365'" in result.problems[0].message
    assert result.problems[0].kind == ProblemKind.AGREEMENT_TYPE_NOT_ALLOWED


def test_overlapping_filters_stop_the_filtered_licences() -> None:
    cfg = config(companies=[
        {"psa": "cw", "companyId": "19", "userFilter": {"department": ["Sales"]}, "licences": [licence()]},
        {"psa": "cw", "companyId": "20", "userFilter": {"city": ["Leeds"]},
         "licences": [{**licence(), "agreementId": "200", "lineId": "600"}]},
    ])
    snap = snapshot([(SPB, 9, 3)], [user("ana", SPB, department="Sales", city="Leeds")])
    result = plan(cfg, snap, view(line(quantity=5), agreements=[agreement()]))
    assert result.changes == ()
    [problem] = result.problems
    assert (problem.kind, problem.users, problem.blocks) == (ProblemKind.USERS_OVERLAP, ("ana@fabrikam.example",),
                                                              True)
    assert "ana@fabrikam.example" in problem.message
    assert problem.facts == (("Companies", "cw 19 and cw 20"),)


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


# --------------------------------------------------------------------------- billing periods
#
# The plan reasons about what the PSA bills for the current period (invoiced or not) and the next.
# Each case: what the PSA holds, the new count, and the writes planned (kind, effective date,
# from, to).

NOV_20 = date(2026, 11, 20)
NO_HOLD = {"holdDecreasePercent": 100, "holdDecreaseSeats": 100}  # decreases apply: these tests are about periods
DEC_1 = date(2026, 12, 1)
Write = tuple[str, date | None, int | None, int]


def writes(result: TenantPlan) -> list[Write]:
    return [(c.kind.value, c.effective_date, c.old_quantity, c.new_quantity) for c in result.changes]


def invoiced_until(next_invoice: date | None, **extra: Any) -> Any:
    """The default agreement with ConnectWise's next invoice date (the first day not invoiced)."""
    return [replace(agreement(), next_invoice_date=next_invoice, **extra)]


def cw_line_of_period(change_kind: ChangeKind, units: int, day: date = NOV_20, line_id: str = "900") -> Any:
    """A prorate or credit line SeatSync wrote for base line 500 earlier in November."""
    return replace(line(line_id, units, tag=prorate_tag("500", f"{change_kind.value}{day:%d}" + "0" * 28),
                        cancelled=date(2026, 11, 30)), effective_date=day)


def cw_record(quantity: int) -> Any:
    return replace(line("901", quantity, tag=record_tag("500", date(2026, 11, 1)), cancelled=date(2026, 11, 30)),
                   bill_mode=BillMode.DO_NOT_BILL, effective_date=date(2026, 11, 1))


CW_CASES: list[tuple[str, list[Any], date | None, dict[str, Any], int, list[Write]]] = [
    ("increase-invoiced", [line(quantity=10)], DEC_1, {}, 13,
     [("prorate", TODAY, None, 3), ("set-quantity", TODAY, 10, 13)]),
    ("increase-not-invoiced", [line(quantity=10)], date(2026, 11, 1), {}, 13,
     [("set-quantity", TODAY, 10, 13)]),
    ("decrease-credited", [line(quantity=10)], DEC_1, {"allowNegativeProrate": True}, 9,
     [("credit", TODAY, None, -1), ("set-quantity", TODAY, 10, 9)]),
    ("decrease-not-credited-records-the-invoiced-quantity", [line(quantity=10)], DEC_1, {}, 9,
     [("period-record", date(2026, 11, 1), None, 10), ("set-quantity", TODAY, 10, 9)]),
    ("decrease-not-invoiced", [line(quantity=10)], date(2026, 11, 1), {}, 9,
     [("set-quantity", TODAY, 10, 9)]),
    # increase on the 20th (a prorate line of 3), then the 3 seats removed on the 25th
    ("increase-then-decrease", [line(quantity=13), cw_line_of_period(ChangeKind.PRORATE, 3)], DEC_1, {}, 10,
     [("period-record", date(2026, 11, 1), None, 10), ("set-quantity", TODAY, 13, 10)]),
    ("increase-then-decrease-credited", [line(quantity=13), cw_line_of_period(ChangeKind.PRORATE, 3)], DEC_1,
     {"allowNegativeProrate": True}, 10, [("credit", TODAY, None, -3), ("set-quantity", TODAY, 13, 10)]),
    # ... and back to 13 on the 25th: the prorate line of the 20th still charges them
    ("increase-decrease-increase", [line(quantity=10), cw_line_of_period(ChangeKind.PRORATE, 3), cw_record(10)],
     DEC_1, {}, 13, [("set-quantity", TODAY, 10, 13)]),
    ("increase-decrease-increase-beyond", [line(quantity=10), cw_line_of_period(ChangeKind.PRORATE, 3),
                                           cw_record(10)], DEC_1, {}, 14,
     [("prorate", TODAY, None, 1), ("set-quantity", TODAY, 10, 14)]),
    ("credited-then-increase", [line(quantity=10), cw_line_of_period(ChangeKind.PRORATE, 3),
                                cw_line_of_period(ChangeKind.CREDIT, -3, date(2026, 11, 22), "902")], DEC_1,
     {"allowNegativeProrate": True}, 13, [("prorate", TODAY, None, 3), ("set-quantity", TODAY, 10, 13)]),
    # decrease on the 20th (not credited, recorded), back up on the 25th: nothing charged twice
    ("decrease-then-increase", [line(quantity=7), cw_record(10)], DEC_1, {}, 10,
     [("set-quantity", TODAY, 7, 10)]),
    ("decrease-then-partial-increase", [line(quantity=7), cw_record(10)], DEC_1, {}, 9,
     [("set-quantity", TODAY, 7, 9)]),
    # a crash after the record was written and before the addition was lowered
    ("retry-after-the-record", [line(quantity=10), cw_record(10)], DEC_1, {}, 9,
     [("set-quantity", TODAY, 10, 9)]),
    # a line that started on the 20th, after November was invoiced: ConnectWise charges its part of
    # November on the next invoice at the quantity it has then, so nothing is prorated or recorded
    ("line-started-in-the-period-increase", [replace(line(quantity=3), effective_date=NOV_20)], DEC_1, {}, 5,
     [("set-quantity", TODAY, 3, 5)]),
    ("line-started-in-the-period-decrease", [replace(line(quantity=3), effective_date=NOV_20)], DEC_1, {}, 2,
     [("set-quantity", TODAY, 3, 2)]),
    ("line-started-with-the-period", [replace(line(quantity=10), effective_date=date(2026, 11, 1))], DEC_1, {}, 13,
     [("prorate", TODAY, None, 3), ("set-quantity", TODAY, 10, 13)]),
    # last month's lines and records are not this period's
    ("lines-of-another-period", [line(quantity=10), cw_line_of_period(ChangeKind.PRORATE, 3, date(2026, 10, 20))],
     DEC_1, {}, 13, [("prorate", TODAY, None, 3), ("set-quantity", TODAY, 10, 13)]),
]


@pytest.mark.parametrize(("lines", "next_invoice", "options", "count", "expected"),
                         [case[1:] for case in CW_CASES], ids=[case[0] for case in CW_CASES])
def test_connectwise_plans_from_what_the_period_is_charged(lines: list[Any], next_invoice: date | None,
                                                            options: dict[str, Any], count: int,
                                                            expected: list[Write]) -> None:
    cfg = config(licence(decreasePolicy="apply", **options), safety=NO_HOLD)
    result = plan(cfg, seats(count), view(*lines, agreements=invoiced_until(next_invoice)))
    assert writes(result) == expected
    assert result.problems == ()


def test_a_period_not_invoiced_yet_is_invoiced_at_the_new_quantity() -> None:
    result = plan(config(licence()), seats(13), view(line(quantity=10), agreements=invoiced_until(date(2026, 11, 1))))
    assert "the period 01 Nov 2026..30 Nov 2026 is not invoiced yet; ConnectWise invoices it at 13" in \
        result.changes[0].reason


def test_a_re_increase_says_the_seats_are_not_charged_again() -> None:
    result = plan(config(licence()), seats(13), view(line(quantity=7), cw_record(10),
                                                     agreements=invoiced_until(DEC_1)))
    assert writes(result) == [("prorate", TODAY, None, 3), ("set-quantity", TODAY, 7, 13)]
    assert "3 seat(s) already charged to 2026-11-30 this period: not charged again" in result.changes[-1].reason


def test_the_period_record_is_not_billed_and_runs_through_the_period() -> None:
    result = plan(config(licence(decreasePolicy="apply")), seats(9), view(line(quantity=10),
                                                                          agreements=invoiced_until(DEC_1)))
    record = result.changes[0]
    assert (record.bill_mode, record.tag, record.end_date) == (BillMode.DO_NOT_BILL, "seatsync:i:500.20261101",
                                                              date(2026, 11, 30))
    assert record.amount is None and record.unit_price == Decimal("22.00")
    again = plan(config(licence(decreasePolicy="apply")), seats(9),
                 view(line(quantity=10), replace(cw_record(10), line_id="950", tag=record.tag),
                      agreements=invoiced_until(DEC_1)))
    assert writes(again) == [("set-quantity", TODAY, 10, 9)], "a record already written is not written twice"


@pytest.mark.parametrize(("day", "next_invoice", "expected"), [
    (DEC_1, DEC_1, [("set-quantity", DEC_1, 10, 13)]),
    (DEC_1, date(2027, 1, 1), [("prorate", DEC_1, None, 3), ("set-quantity", DEC_1, 10, 13)]),
], ids=["not-invoiced", "invoiced"])
def test_a_change_on_the_first_day_of_a_period(day: date, next_invoice: date, expected: list[Write]) -> None:
    result = plan(config(licence()), seats(13), view(line(quantity=10), agreements=invoiced_until(next_invoice)),
                  today=day)
    assert writes(result) == expected
    if len(expected) == 2:
        assert result.changes[0].amount == Decimal("66.00"), "the whole period: 31/31 days x 22.00 x 3"


@pytest.mark.parametrize(("when_unknown", "expected"), [
    (True, [("prorate", TODAY, None, 3), ("set-quantity", TODAY, 10, 13)]),
    (False, [("set-quantity", TODAY, 10, 13)]),
], ids=["invoiced", "not-invoiced"])
def test_when_the_psa_does_not_say_the_setting_decides(when_unknown: bool, expected: list[Write]) -> None:
    capabilities = replace(CW, invoiced_when_unknown=when_unknown)
    result = plan(config(licence()), seats(13), view(line(quantity=10), capabilities=capabilities))
    assert writes(result) == expected
    assert "(the PSA does not say)" in result.changes[-1].reason


# Autotask and Halo: the line's quantity is what it bills from the next period on; its period
# quantity what the current period is charged for (Autotask's units today, Halo's invoiced
# quantity plus pending pro-rata entries).
NATIVE_CASES: list[tuple[str, Any, int, int | None, date | None, dict[str, Any], int, list[Write]]] = [
    ("increase", AUTOTASK, 10, None, None, {}, 13, [("set-quantity", TODAY, 10, 13)]),
    ("decrease-not-credited", AUTOTASK, 10, None, None, {}, 9, [("set-quantity", DEC_1, 10, 9)]),
    ("decrease-credited", AUTOTASK, 10, None, None, {"allowNegativeProrate": True}, 9,
     [("set-quantity", TODAY, 10, 9)]),
    # a decrease dated 1 December is pending; the count is back to 10 before then: the pending
    # adjustment is netted from 1 December, nothing is charged today
    ("pending-decrease-reversed", AUTOTASK, 7, 10, None, {}, 10, [("set-quantity", DEC_1, 7, 10)]),
    ("pending-decrease-then-increase", AUTOTASK, 7, 10, None, {}, 12,
     [("set-quantity", TODAY, 10, 12), ("set-quantity", DEC_1, 9, 12)]),
    ("pending-decrease-partly-reversed", AUTOTASK, 7, 10, None, {}, 8, [("set-quantity", DEC_1, 7, 8)]),
    # increased by 3 today (units 13 from today), then 3 removed again
    ("increase-then-decrease", AUTOTASK, 13, None, None, {}, 10, [("set-quantity", DEC_1, 13, 10)]),
    ("increase-then-decrease-credited", AUTOTASK, 13, None, None, {"allowNegativeProrate": True}, 10,
     [("set-quantity", TODAY, 13, 10)]),
    ("halo-increase", HALO, 10, None, DEC_1, {}, 13, [("set-quantity", TODAY, 10, 13)]),
    ("halo-not-invoiced", HALO, 10, None, date(2026, 11, 1), {}, 13, [("set-quantity", TODAY, 10, 13)]),
    ("halo-not-invoiced-decrease", HALO, 10, None, date(2026, 11, 1), {}, 9, [("set-quantity", TODAY, 10, 9)]),
    # invoiced at 10, lowered to 7 from the next invoice (no credit), back to 10: no pro-rata
    ("halo-decrease-then-increase", HALO, 7, 10, DEC_1, {}, 10, [("set-quantity", DEC_1, 7, 10)]),
    # invoiced at 10, +3 pro-rata pending (charged 13, billed 13 next), then 3 removed, no credit
    ("halo-increase-then-decrease", HALO, 13, 13, DEC_1, {}, 10, [("set-quantity", DEC_1, 13, 10)]),
]


@pytest.mark.parametrize(("capabilities", "billed_next", "charged", "next_invoice", "options", "count", "expected"),
                         [case[1:] for case in NATIVE_CASES], ids=[case[0] for case in NATIVE_CASES])
def test_native_psas_plan_the_current_period_and_the_next(capabilities: Any, billed_next: int, charged: int | None,
                                                          next_invoice: date | None, options: dict[str, Any],
                                                          count: int, expected: list[Write]) -> None:
    cfg = config(licence(decreasePolicy="apply", **options), safety=NO_HOLD)
    billed = replace(line(quantity=billed_next), period_quantity=None if charged is None else Decimal(charged))
    result = plan(cfg, seats(count), view(billed, agreements=invoiced_until(next_invoice), capabilities=capabilities))
    assert writes(result) == expected
    today_writes = [c for c in result.changes if c.effective_date == TODAY]
    for change in today_writes:
        invoiced = next_invoice is None or next_invoice > date(2026, 11, 1)
        assert (change.amount is not None) == invoiced, "an amount only where the PSA prorates a charge"
        # what the read-back compares with the period's charge rather than the next period's
        assert change.end_date == (date(2026, 11, 30) if invoiced else None)


def test_native_changes_say_what_happens_to_the_period() -> None:
    result = plan(config(licence(decreasePolicy="apply")), seats(10),
                  view(replace(line(quantity=7), period_quantity=Decimal(10)), capabilities=AUTOTASK))
    assert result.changes[0].reason.endswith("billed from the next period (2026-12-01)")
    halo = plan(config(licence()), seats(13), view(line(quantity=10), agreements=invoiced_until(date(2026, 11, 1)),
                                                    capabilities=HALO))
    assert "is not invoiced yet; Halo invoices it at 13" in halo.changes[0].reason


@pytest.mark.parametrize("count", [13, 10, 9])
def test_a_period_whose_invoice_the_psa_does_not_list_is_a_problem_never_a_guess(count: int) -> None:
    """Halo says the period is invoiced but lists no invoice for it: whatever the count, nothing
    is written for the licence (not even an unchanged-looking line is taken as charged at its
    quantity) and a person is told which recurring invoice it is."""
    why = ("recurring invoice -101 (Contoso M365) has invoiced the current period (next creation date 2026-12-01), "
           "but Halo lists no invoice created from it, so what the period is charged for is unknown")
    unknown = replace(line(quantity=10), period_unknown=why)
    other = line("501", 3, product="77")
    result = plan(config(licence(decreasePolicy="apply")), seats(count),
                  view(unknown, other, agreements=invoiced_until(DEC_1), capabilities=HALO))
    assert not result.changes
    [problem] = result.problems
    assert (problem.kind, problem.line_id, problem.blocks) == (ProblemKind.PERIOD_INVOICE_MISSING, "500", True)
    assert problem.message == f"line 500 on agreement 100: {why}; nothing is written for this licence on a guess"
    assert problem.action == DEFAULT_ACTIONS[ProblemKind.PERIOD_INVOICE_MISSING]
    # a line of another product does not concern the licence: it is no reason to freeze it
    ignored = plan(config(licence(decreasePolicy="apply")), seats(count),
                   view(line(quantity=10), replace(other, period_unknown=why), agreements=invoiced_until(DEC_1),
                        capabilities=HALO))
    assert not ignored.problems and len(ignored.changes) == (count != 10)


def test_the_period_record_takes_the_base_line_s_billing_attributes() -> None:
    base = replace(line(quantity=10), unit_cost=Decimal("19.80"), billing=BillingAttributes(taxable=True))
    result = plan(config(licence(decreasePolicy="apply")), seats(9), view(base, agreements=invoiced_until(DEC_1)))
    record = result.changes[0]
    assert (record.kind, record.unit_cost, record.billing) == (ChangeKind.PERIOD_RECORD, Decimal("19.80"),
                                                               BillingAttributes(taxable=True))
