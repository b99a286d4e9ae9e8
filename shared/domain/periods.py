"""Billing periods and prorated charges. Pure code, no I/O.

Day-count convention (one, used everywhere): **actual days of the billing period**. A period
runs from its start date to its end date, both included; a seat added on day D is charged for
the days from D to the end of the period, both included:

    prorated unit price = unit price x days remaining / days in the period

rounded half away from zero to the cent; a prorate line charges its units at that price. A
removal on the same day computes the same unit price with negative units, so an increase and
the same decrease on one day net to exactly zero.

Cycles: weekly and bi-weekly (7 and 14 days), monthly, bi-monthly, quarterly, semi-annual
and annual (1, 2, 3, 6 and 12 months). Periods are anchored on the agreement's start date: a
monthly agreement starting on the 15th bills 15th to 14th; one starting on the 31st bills
from the last day of shorter months (the 31st of January, 28th or 29th of February, 31st of
March ...), always counted from the anchor, never drifting. Annual periods run from the
anniversary; a 29 February anchor falls on 28 February in other years.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

Cycle = Literal["weekly", "bi-weekly", "monthly", "bi-monthly", "quarterly", "semi-annual", "annual"]
MONTHS_PER_PERIOD: dict[str, int] = {"monthly": 1, "bi-monthly": 2, "quarterly": 3, "semi-annual": 6, "annual": 12}
DAYS_PER_PERIOD: dict[str, int] = {"weekly": 7, "bi-weekly": 14}
CENT = Decimal("0.01")


@dataclass(frozen=True)
class BillingPeriod:
    start: date
    end: date  # included

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"a period cannot end ({self.end}) before it starts ({self.start})")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def days_from(self, day: date) -> int:
        """Days from ``day`` to the end of the period, both included."""
        if not self.contains(day):
            raise ValueError(f"{day} is not in the period {self.start}..{self.end}")
        return (self.end - day).days + 1


def add_months(anchor: date, months: int) -> date:
    """``anchor`` moved by whole months, its day clamped to the target month's length."""
    index = anchor.year * 12 + (anchor.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(anchor.day, calendar.monthrange(year, month)[1]))


def _period_start(anchor: date, cycle: Cycle, k: int) -> date:
    if cycle in DAYS_PER_PERIOD:
        return anchor + timedelta(days=DAYS_PER_PERIOD[cycle] * k)
    return add_months(anchor, MONTHS_PER_PERIOD[cycle] * k)


def period_containing(day: date, anchor: date, cycle: Cycle) -> BillingPeriod:
    """The billing period of an agreement anchored on ``anchor`` that contains ``day``."""
    if cycle in DAYS_PER_PERIOD:
        k = (day - anchor).days // DAYS_PER_PERIOD[cycle]
    else:
        step = MONTHS_PER_PERIOD[cycle]
        k = ((day.year - anchor.year) * 12 + (day.month - anchor.month)) // step
    # the month arithmetic is an estimate at most one period off; settle it exactly
    while _period_start(anchor, cycle, k) > day:
        k -= 1
    while _period_start(anchor, cycle, k + 1) <= day:
        k += 1
    start = _period_start(anchor, cycle, k)
    return BillingPeriod(start, _period_start(anchor, cycle, k + 1) - timedelta(days=1))


def next_period(period: BillingPeriod, anchor: date, cycle: Cycle) -> BillingPeriod:
    return period_containing(period.end + timedelta(days=1), anchor, cycle)


@dataclass(frozen=True)
class ProratedCharge:
    units: int
    unit_price: Decimal
    prorated_unit_price: Decimal
    period: BillingPeriod
    start: date  # first day charged
    days: int

    @property
    def amount(self) -> Decimal:
        return self.prorated_unit_price * self.units


def prorate(unit_price: Decimal, units: int, day: date, period: BillingPeriod) -> ProratedCharge:
    """The charge (or, with negative units, the credit) for ``units`` seats from ``day`` to the
    end of ``period``."""
    if units == 0:
        raise ValueError("nothing to prorate: units is 0")
    days = period.days_from(day)
    exact = unit_price * days / period.days
    return ProratedCharge(
        units=units, unit_price=unit_price,
        prorated_unit_price=exact.quantize(CENT, rounding=ROUND_HALF_UP),
        period=period, start=day, days=days,
    )
