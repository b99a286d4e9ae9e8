"""Seats that are not active (warning, suspended, locked out, deleted) never raise a bill, and a
person is told the state, since when and the seats still assigned; disabled accounts holding a
licence are billed as Microsoft counts them and named, with what they cost."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.domain.model import ChangeKind, SkuCount, TenantSnapshot
from shared.domain.planning import TenantPlan, plan_tenant
from shared.domain.problems import ProblemKind
from shared.domain.subscriptions import (
    LicenceState,
    Since,
    StateRecord,
    licence_state,
    state_since,
    subscriptions_state,
)
from tests.unit.builders import SPB, TODAY, config, licence, line, mailbox, snapshot, subscription, user, view

SUB = "11111111-aaaa-0000-0000-000000000001"
SUB2 = "11111111-aaaa-0000-0000-000000000002"


def seats(enabled: int, consumed: int, *, warning: int = 0, suspended: int = 0, locked_out: int = 0,
          status: str = "Enabled", **extra: Any) -> TenantSnapshot:
    base = snapshot(**extra)
    sku = SkuCount(SPB, "SPB", purchased=enabled, consumed=consumed, warning=warning, suspended=suspended,
                   locked_out=locked_out, capability_status=status)
    return TenantSnapshot(base.tenant_id, base.run_id, base.collected_at, (sku,), base.users, base.subscriptions,
                          base.groups, base.mailboxes)


def plan(snap: TenantSnapshot, old: int | None, history: dict[str, list[StateRecord]] | None = None,
         **options: Any) -> TenantPlan:
    cfg = config(licence(**options))
    psa = view(line(quantity=old)) if old is not None else view()
    return plan_tenant(cfg, cfg.tenants[0], snap, psa, TODAY, None, history)


def quantity(result: TenantPlan) -> int | None:
    sets = [c.new_quantity for c in result.changes if c.kind == ChangeKind.SET_QUANTITY]
    return sets[0] if sets else None


# --------------------------------------------------------------------------- states


@pytest.mark.parametrize(("sku", "subscriptions", "state"), [
    (SkuCount(SPB, "SPB", 25, 22), (), None),
    (SkuCount(SPB, "SPB", 20, 22, suspended=5), (), "Suspended"),
    (SkuCount(SPB, "SPB", 0, 22, warning=25, capability_status="Warning"), (), "Warning"),
    (SkuCount(SPB, "SPB", 20, 22, warning=3, locked_out=2), (), "LockedOut"),
    (SkuCount(SPB, "SPB", 20, 20), (subscription(SUB, SPB, 5, date(2026, 1, 1), date(2027, 1, 1),
                                                 status="suspended"),), "Suspended"),
    (SkuCount(SPB, "SPB", 20, 20), (subscription(SUB, SPB, 5, date(2026, 1, 1), date(2027, 1, 1),
                                                 status="Suspended", trial=True),), None),
    (SkuCount(SPB, "SPB", 0, 0, capability_status="Deleted"), (), "Deleted"),
], ids=["active", "suspended-seats", "warning", "locked-out-is-worst", "suspended-subscription", "trial-ignored",
        "deleted"])
def test_the_state_of_a_licence(sku: SkuCount, subscriptions: tuple[Any, ...], state: str | None) -> None:
    found = licence_state(sku, subscriptions)
    assert (found.state if found else None) == state


def test_the_state_of_split_subscriptions_counts_only_the_enabled_ones_as_active() -> None:
    mapped = [subscription(SUB, SPB, 20, date(2026, 1, 1), date(2027, 1, 1)),
              subscription(SUB2, SPB, 5, date(2026, 1, 1), date(2027, 1, 1), status="Warning")]
    assert subscriptions_state(mapped) == LicenceState("Warning", 20, 5, 0, 0, ((SUB2, "Warning"),))
    assert subscriptions_state(mapped[:1]) is None


@pytest.mark.parametrize(("history", "since"), [
    ([], Since(TODAY, exact=False)),
    ([("2026-11-25", "Suspended"), ("2026-11-24", "Suspended"), ("2026-11-23", "")], Since(date(2026, 11, 24), True)),
    ([("2026-11-25", "Suspended"), ("2026-11-24", "Warning")], Since(date(2026, 11, 25), True)),
    ([("2026-11-25", "Suspended"), ("2026-11-10", "suspended")], Since(date(2026, 11, 10), False)),
    ([("2026-11-25", "Suspended"), ("2026-11-20", None), ("2026-11-01", "")], Since(date(2026, 11, 25), False)),
], ids=["no-history", "started-after-an-active-run", "changed-state", "history-too-short", "unrecorded-run"])
def test_since_when_a_state_holds(history: list[tuple[str, str | None]], since: Since) -> None:
    records = [StateRecord(date.fromisoformat(d), s) for d, s in history]
    assert state_since("Suspended", records, TODAY) == since


# --------------------------------------------------------------------------- billing


@pytest.mark.parametrize(("snap", "old", "expected", "billing"), [
    (seats(20, 22, suspended=5), 20, None, "kept at 20, not raised to 22"),
    (seats(20, 22, suspended=5), 18, 20, "20 seat(s), not 22"),
    (seats(20, 22, suspended=5), None, 20, "20 seat(s), not 22"),
    (seats(0, 22, warning=25, status="Warning"), 22, None, "as counted"),
    (seats(0, 22, suspended=25, status="Suspended"), 22, None, "as counted"),
    (seats(0, 24, suspended=25, status="Suspended"), 22, None, "kept at 22, not raised to 24"),
    (seats(0, 18, suspended=25, status="Suspended"), 22, 18, "as counted"),
    (seats(10, 12, locked_out=5, status="LockedOut"), 12, None, "as counted"),
], ids=["never-raised-by-suspended-seats", "raised-only-to-the-active-seats", "new-line-only-for-active-seats",
        "lapsed-keeps-billing", "suspended-keeps-billing", "suspended-never-raises", "a-decrease-is-a-decrease",
        "locked-out-keeps-billing"])
def test_seats_that_are_not_active_never_raise_a_bill(snap: TenantSnapshot, old: int | None, expected: int | None,
                                                      billing: str) -> None:
    options = {"profile": "m365-bp", "lineId": None} if old is None else {"decreasePolicy": "apply"}
    result = plan(snap, old, **options)
    planned = [c for c in result.changes if c.kind in (ChangeKind.SET_QUANTITY, ChangeKind.CREATE_LINE)]
    assert (planned[0].new_quantity if planned else None) == expected
    [problem] = [p for p in result.problems if p.kind == ProblemKind.SUBSCRIPTION_NOT_ACTIVE]
    assert problem.blocks is False
    assert dict(problem.facts)["Billing"] == billing
    assert dict(problem.facts)["Seats still assigned"] == str(snap.skus[0].consumed)


def test_a_not_active_problem_says_the_state_and_since_when() -> None:
    history = {SPB: [StateRecord(TODAY, "Suspended"), StateRecord(TODAY - timedelta(days=3), "Suspended"),
                     StateRecord(TODAY - timedelta(days=4), "")]}
    snap = seats(20, 22, suspended=5, subscriptions=(
        subscription(SUB, SPB, 5, date(2026, 1, 1), date(2027, 1, 1), status="Suspended"),))
    [problem] = plan(snap, 20, history).problems
    assert problem.message == ("suspended since 2026-11-22: 20 active, 5 suspended; 22 seat(s) still assigned; "
                               "billing kept at 20, not raised to 22")
    assert problem.facts == (("State", "Suspended"), ("Since", "2026-11-22"), ("Seats", "20 active, 5 suspended"),
                             ("Subscriptions", f"{SUB} Suspended"), ("Seats still assigned", "22"),
                             ("Billing", "kept at 20, not raised to 22"))
    [short] = plan(snap, 20, {SPB: [StateRecord(TODAY - timedelta(days=9), "Suspended")]}).problems
    assert "suspended since at least 2026-11-16" in short.message


def test_inactive_seats_the_active_ones_cover_are_not_a_problem() -> None:
    result = plan(seats(25, 18, suspended=5), 17)
    assert result.problems == ()
    assert quantity(result) == 18


def test_a_suspended_subscription_of_a_split_mapping_never_raises_its_bill() -> None:
    snap = seats(20, 30, subscriptions=(
        subscription(SUB, SPB, 20, date(2026, 1, 1), date(2027, 1, 1)),
        subscription(SUB2, SPB, 10, date(2026, 1, 1), date(2027, 1, 1), status="Suspended")))
    cfg = config({"skuId": SPB, "subscriptionIds": [SUB], "agreementId": "100", "lineId": "500"},
                 {"skuId": SPB, "subscriptionIds": [SUB2], "agreementId": "100", "lineId": "501"})
    psa = view(line("500", 20), line("501", 6))
    result = plan_tenant(cfg, cfg.tenants[0], snap, psa, TODAY)
    assert [(c.line_id, c.new_quantity) for c in result.changes if c.kind == ChangeKind.SET_QUANTITY] == []
    [problem] = result.problems
    assert (problem.kind, problem.line_id) == (ProblemKind.SUBSCRIPTION_NOT_ACTIVE, "501")
    assert dict(problem.facts)["Billing"] == "kept at 6, not raised to 10"


# --------------------------------------------------------------------------- disabled accounts


def test_disabled_accounts_are_billed_as_microsoft_counts_them_and_named_with_their_cost() -> None:
    users = [user("ana", SPB), user("ben", SPB, account_enabled=False), user("cy", SPB, account_enabled=False),
             user("info", SPB, account_enabled=False)]
    snap = seats(25, 4, users=users, mailboxes=(mailbox("info", "Shared"),))
    result = plan(snap, 3)
    assert quantity(result) == 4, "consumedUnits counts disabled accounts"
    [problem] = result.problems
    assert (problem.kind, problem.blocks) == (ProblemKind.DISABLED_USERS_LICENSED, False)
    assert problem.users == ("ben@fabrikam.example", "cy@fabrikam.example"), "a shared mailbox has its own alert"
    assert problem.facts == (("Disabled accounts", "2"), ("Monthly cost", "44.00 USD (2 x 22.00)"))


def test_disabled_accounts_without_a_known_price_are_named_without_a_cost() -> None:
    snap = seats(5, 1, users=[user("ben", SPB, account_enabled=False)])
    cfg = config(licence(lineId=None, profile="m365-bp"))
    result = plan_tenant(cfg, cfg.tenants[0], snap, view(price=None), TODAY)
    disabled = [p for p in result.problems if p.kind == ProblemKind.DISABLED_USERS_LICENSED]
    assert disabled[0].facts == (("Disabled accounts", "1"),)


def test_the_cost_of_disabled_accounts_is_at_the_line_s_unit_price() -> None:
    result = plan(seats(5, 1, users=[user("ben", SPB, account_enabled=False)]), 1)
    assert ("Monthly cost", "22.00 USD (1 x 22.00)") in result.problems[0].facts
    assert Decimal("22.00") == result.outcomes[0].unit_price
