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


# --------------------------------------------------------------------------- what a PSA bills per period
#
# A PSA bills a line period by period. At any day SeatSync needs two numbers for a line:
#
# - ``charged``: the seats the PSA charges through the end of the *current* period: what it
#   invoiced the period at, plus the prorated charges and credits already recorded for it
#   (ConnectWise prorate and credit additions, Halo pending pro-rata entries, Autotask units of
#   adjustments dated inside the period);
# - ``billed_next``: the seats it bills from the *next* period on (the ConnectWise addition's
#   quantity, Autotask units after every future-dated adjustment, Halo's quantity once the
#   pending pro-rata entries are invoiced).
#
# and whether the current period has been invoiced yet. ``period_change`` turns them and the
# new quantity into what to write, so that an increase, a decrease and their reversal within one
# period never charge a seat twice and never leave a future entry contradicting today's count.


@dataclass(frozen=True)
class Invoicing:
    """Whether the PSA has invoiced the current period, and whether the PSA said so (``known``)
    or the connection's setting assumed it."""

    invoiced: bool
    known: bool
    next_invoice: date | None = None

    def describe(self, period: BillingPeriod) -> str:
        span = f"{period.start:%d %b %Y}..{period.end:%d %b %Y}"
        if not self.known:
            state = "invoiced" if self.invoiced else "not invoiced yet"
            return f"the period {span} is taken as {state} (the PSA does not say)"
        if self.invoiced:
            return f"the period {span} is invoiced (next invoice {self.next_invoice:%d %b %Y})"
        return f"the period {span} is not invoiced yet"


def invoicing(period: BillingPeriod, next_invoice: date | None, when_unknown: bool) -> Invoicing:
    """The current period is invoiced when the PSA's next invoice date is after its start (the
    PSA bills in advance: invoicing a period moves the date to the next period's start)."""
    if next_invoice is None:
        return Invoicing(when_unknown, False)
    return Invoicing(next_invoice > period.start, True, next_invoice)


@dataclass(frozen=True)
class PeriodChange:
    """What a change of a line's quantity does to the current period and the next.

    ``charge``: seats to charge (positive) or credit (negative) from today to the end of the
    current period, on top of what the PSA already charges for it. ``charged``: the seats charged
    through the end of the current period afterwards (at least the new quantity, unless a
    decrease was credited). ``next_quantity``: the seats billed from the next period on.
    """

    charge: int
    charged: int
    next_quantity: int

    @property
    def still_charged(self) -> int:
        """Seats charged to the end of the period though no longer used (a decrease not credited)."""
        return self.charged - self.next_quantity


def period_change(*, charged: int, target: int, invoiced: bool, prorate: bool, credit: bool) -> PeriodChange:
    """The change that brings a line to ``target`` seats.

    - A period not invoiced yet is invoiced at the quantity the line has then: nothing is
      prorated, the line simply bills ``target`` (for the whole period).
    - Otherwise seats above ``charged`` (what the period is already charged for, prorated
      additions included) are charged for the rest of the period when the agreement prorates;
      seats the period is already charged for are never charged again (a re-increase after a
      decrease that was not credited charges nothing).
    - A decrease is credited for the rest of the period only when ``credit`` (negative prorating
      allowed on a prorating agreement); otherwise the removed seats stay charged to the end of
      the period and the line bills ``target`` from the next one.
    """
    if not invoiced:
        return PeriodChange(0, target, target)
    if target >= charged:
        charge = target - charged if prorate else 0
        return PeriodChange(charge, charged + charge, target)
    if prorate and credit:
        return PeriodChange(target - charged, target, target)
    return PeriodChange(0, charged, target)
