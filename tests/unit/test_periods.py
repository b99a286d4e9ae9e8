"""Billing periods and proration: worked examples and properties."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.periods import (
    BillingPeriod,
    add_months,
    invoicing,
    next_period,
    period_change,
    period_containing,
    prorate,
)

days = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))
cycles = st.sampled_from(["weekly", "bi-weekly", "monthly", "bi-monthly", "quarterly", "semi-annual", "annual"])
LONGEST = {"weekly": 7, "bi-weekly": 14, "monthly": 31, "bi-monthly": 62, "quarterly": 92, "semi-annual": 184,
           "annual": 366}
SHORTEST = {"weekly": 7, "bi-weekly": 14, "monthly": 28, "bi-monthly": 59, "quarterly": 89, "semi-annual": 181,
            "annual": 365}
prices = st.decimals(min_value=Decimal("0.00"), max_value=Decimal("10000"), places=2)


@pytest.mark.parametrize(("day", "anchor", "cycle", "start", "end"), [
    (date(2026, 11, 25), date(2026, 1, 1), "monthly", date(2026, 11, 1), date(2026, 11, 30)),
    (date(2026, 11, 14), date(2026, 1, 15), "monthly", date(2026, 10, 15), date(2026, 11, 14)),
    (date(2026, 11, 15), date(2026, 1, 15), "monthly", date(2026, 11, 15), date(2026, 12, 14)),
    (date(2026, 2, 28), date(2026, 1, 31), "monthly", date(2026, 2, 28), date(2026, 3, 30)),
    (date(2026, 3, 30), date(2026, 1, 31), "monthly", date(2026, 2, 28), date(2026, 3, 30)),
    (date(2026, 3, 31), date(2026, 1, 31), "monthly", date(2026, 3, 31), date(2026, 4, 29)),
    (date(2028, 2, 29), date(2028, 1, 31), "monthly", date(2028, 2, 29), date(2028, 3, 30)),
    (date(2026, 11, 25), date(2025, 3, 1), "annual", date(2026, 3, 1), date(2027, 2, 28)),
    (date(2028, 2, 29), date(2027, 3, 1), "annual", date(2027, 3, 1), date(2028, 2, 29)),
    (date(2029, 2, 28), date(2028, 2, 29), "annual", date(2029, 2, 28), date(2030, 2, 27)),
    (date(2025, 12, 31), date(2026, 1, 1), "monthly", date(2025, 12, 1), date(2025, 12, 31)),
    (date(2026, 11, 25), date(2026, 1, 1), "quarterly", date(2026, 10, 1), date(2026, 12, 31)),
    (date(2026, 11, 25), date(2026, 11, 2), "weekly", date(2026, 11, 23), date(2026, 11, 29)),
], ids=["first-of-month", "mid-anchor-before", "mid-anchor-on", "31st-in-february", "31st-end-march",
        "31st-on-31st", "leap-february", "annual", "annual-leap-end", "annual-from-29-feb", "before-anchor",
        "quarterly", "weekly"])
def test_periods(day: date, anchor: date, cycle: str, start: date, end: date) -> None:
    assert period_containing(day, anchor, cycle) == BillingPeriod(start, end)  # type: ignore[arg-type]


def test_worked_prorate_example() -> None:
    # 3 seats at 22.00 added on 25 November in a November period: 6 of 30 days
    charge = prorate(Decimal("22.00"), 3, date(2026, 11, 25), BillingPeriod(date(2026, 11, 1), date(2026, 11, 30)))
    assert charge.days == 6
    assert charge.prorated_unit_price == Decimal("4.40")
    assert charge.amount == Decimal("13.20")


def test_prorate_rounds_half_away_from_zero_to_the_cent() -> None:
    period = BillingPeriod(date(2026, 2, 1), date(2026, 2, 28))
    charge = prorate(Decimal("10.00"), 1, date(2026, 2, 27), period)  # 10 x 2/28 = 0.714...
    assert charge.prorated_unit_price == Decimal("0.71")
    credit = prorate(Decimal("10.00"), -1, date(2026, 2, 27), period)
    assert credit.amount == Decimal("-0.71")


def test_leap_february_has_29_days() -> None:
    charge = prorate(Decimal("29.00"), 1, date(2028, 2, 1), BillingPeriod(date(2028, 2, 1), date(2028, 2, 29)))
    assert (charge.days, charge.prorated_unit_price) == (29, Decimal("29.00"))


def test_a_day_outside_the_period_is_refused() -> None:
    with pytest.raises(ValueError, match="not in the period"):
        prorate(Decimal("1"), 1, date(2026, 12, 1), BillingPeriod(date(2026, 11, 1), date(2026, 11, 30)))


@given(day=days, anchor=days, cycle=cycles)
def test_the_period_contains_the_day(day: date, anchor: date, cycle: str) -> None:
    period = period_containing(day, anchor, cycle)  # type: ignore[arg-type]
    assert period.contains(day)
    assert SHORTEST[cycle] <= period.days <= LONGEST[cycle]


@given(day=days, anchor=days, cycle=cycles)
def test_periods_are_contiguous(day: date, anchor: date, cycle: str) -> None:
    period = period_containing(day, anchor, cycle)  # type: ignore[arg-type]
    following = next_period(period, anchor, cycle)  # type: ignore[arg-type]
    assert following.start == period.end + timedelta(days=1)
    assert period_containing(period.start - timedelta(days=1), anchor, cycle).end == period.start - timedelta(days=1)  # type: ignore[arg-type]


@given(day=days, anchor=days, cycle=cycles, price=prices, units=st.integers(min_value=1, max_value=10_000))
def test_an_increase_and_the_same_decrease_on_one_day_net_to_zero(day: date, anchor: date, cycle: str,
                                                                  price: Decimal, units: int) -> None:
    period = period_containing(day, anchor, cycle)  # type: ignore[arg-type]
    up = prorate(price, units, day, period)
    down = prorate(price, -units, day, period)
    assert up.amount + down.amount == 0


@given(day=days, anchor=days, cycle=cycles, price=prices)
def test_a_prorated_price_never_exceeds_the_full_price(day: date, anchor: date, cycle: str, price: Decimal) -> None:
    period = period_containing(day, anchor, cycle)  # type: ignore[arg-type]
    charge = prorate(price, 1, day, period)
    assert Decimal(0) <= charge.prorated_unit_price <= price
    assert 1 <= charge.days <= period.days
    if day == period.start:
        assert charge.prorated_unit_price == price


@given(anchor=days, months=st.integers(min_value=-1200, max_value=1200))
def test_add_months_keeps_the_anchor_day_where_the_month_allows(anchor: date, months: int) -> None:
    moved = add_months(anchor, months)
    assert moved.day == anchor.day or moved.day < anchor.day
    assert (moved.year * 12 + moved.month) - (anchor.year * 12 + anchor.month) == months


# --------------------------------------------------------------------------- what a period is charged for

NOVEMBER = BillingPeriod(date(2026, 11, 1), date(2026, 11, 30))


@pytest.mark.parametrize(("next_invoice", "when_unknown", "invoiced", "known"), [
    (date(2026, 12, 1), False, True, True),     # November invoiced: the next invoice is December's
    (date(2027, 1, 1), False, True, True),      # invoiced ahead, December too
    (date(2026, 11, 1), True, False, True),     # November's invoice not made yet
    (date(2026, 10, 1), True, False, True),     # behind: October not invoiced either
    (None, True, True, False),                  # the PSA does not say: the setting decides
    (None, False, False, False),
], ids=["invoiced", "invoiced-ahead", "not-yet", "behind", "unknown-invoiced", "unknown-not-invoiced"])
def test_whether_the_current_period_is_invoiced(next_invoice: date | None, when_unknown: bool, invoiced: bool,
                                                known: bool) -> None:
    state = invoicing(NOVEMBER, next_invoice, when_unknown)
    assert (state.invoiced, state.known) == (invoiced, known)


@pytest.mark.parametrize(
    ("charged", "target", "invoiced", "prorate", "credit", "charge", "charged_after", "still"), [
        (10, 13, True, True, False, 3, 13, 0),      # increase: the 3 added seats charged to the period's end
        (10, 13, False, True, False, 0, 13, 0),     # not invoiced yet: invoiced at 13, nothing prorated
        (10, 13, True, False, False, 0, 10, -3),    # agreement does not prorate: billed from the next period
        (13, 10, True, True, False, 0, 13, 3),      # decrease, no credit: the 3 seats stay charged to the end
        (13, 10, True, True, True, -3, 10, 0),      # decrease credited for the rest of the period
        (13, 10, True, False, True, 0, 13, 3),      # no credit where the agreement does not prorate
        (13, 10, False, True, False, 0, 10, 0),     # not invoiced yet: invoiced at 10
        (13, 13, True, True, False, 0, 13, 0),      # re-increase after an uncredited decrease: nothing again
        (13, 15, True, True, False, 2, 15, 0),      # ... and only the seats beyond those charged
        (13, 11, True, True, False, 0, 13, 2),      # partial re-increase: still nothing charged
        (10, 10, True, True, True, 0, 10, 0),       # reversal credited earlier: nothing left to do
    ], ids=["increase", "increase-not-invoiced", "increase-no-prorate", "decrease-no-credit", "decrease-credit",
            "decrease-credit-no-prorate", "decrease-not-invoiced", "re-increase", "re-increase-beyond",
            "partial-re-increase", "unchanged"])
def test_period_change(charged: int, target: int, invoiced: bool, prorate: bool, credit: bool, charge: int,
                       charged_after: int, still: int) -> None:
    change = period_change(charged=charged, target=target, invoiced=invoiced, prorate=prorate, credit=credit)
    assert (change.charge, change.charged, change.next_quantity, change.still_charged) == (
        charge, charged_after, target, still)


@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=8), st.booleans())
def test_a_period_never_charges_a_seat_twice(counts: list[int], credit: bool) -> None:
    """Whatever the counts found day after day in one invoiced period, the seats charged to its end
    are never more than the most seats used (nor, without credits, fewer than the invoiced ones)."""
    charged = invoiced_at = 10
    for count in counts:
        change = period_change(charged=charged, target=count, invoiced=True, prorate=True, credit=credit)
        assert change.charged == charged + change.charge
        charged = change.charged
        assert charged <= max([invoiced_at, *counts])
        if not credit:
            assert charged >= invoiced_at
    assert charged >= counts[-1]
