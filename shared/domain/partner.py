"""Partner-side facts about a tenant's subscriptions, and where each licence came from. Pure code.

A customer tenant shows what it holds (``subscribedSkus``, ``directory/subscriptions``) but not
how it was bought: the term, the billing cycle, the commitment end, the cost, or whether the
MSP sold it at all. The subscription sources (Microsoft Partner Center for direct CSP partners,
Pax8 for indirect ones) know; their adapters turn what they read into ``PartnerSubscription``
values, stored with the tenant's snapshot as ``PartnerFacts``, and
``shared.domain.provenance`` matches them to the tenant's own subscriptions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal

from shared.domain.periods import add_months

SourceKind = Literal["partner-center", "pax8"]
SOURCE_LABELS: dict[str, str] = {"partner-center": "Partner Center", "pax8": "Pax8"}
NCE_REDUCTION_DAYS = 7

# Term and billing lengths in months, as the sources write them (ISO 8601 durations in Partner
# Center, words in Pax8). One-time and trial terms have no length.
TERM_MONTHS: dict[str, int] = {
    "p1m": 1, "p1y": 12, "p2y": 24, "p3y": 36, "p5y": 60,
    "monthly": 1, "annual": 12, "2-year": 24, "3-year": 36, "triennial": 36,
}


def months_of(label: str | None) -> int | None:
    """Months of a term or billing cycle (``P1Y`` -> 12, ``Annual`` -> 12, ``monthly`` -> 1), None
    when it has none (one-time, trial, none) or is unknown."""
    return TERM_MONTHS.get((label or "").strip().lower())


def last_day_before(moment: datetime) -> date:
    """The last whole day of a window that closes at ``moment`` (a window closing at midnight
    UTC ends the day before)."""
    day = moment.date()
    return day - timedelta(days=1) if moment.time() == time(0) else day


@dataclass(frozen=True)
class Refundable:
    """Seats of a subscription that can still be reduced with a refund, until when (Partner
    Center's ``refundableQuantity.details``)."""

    quantity: int
    until: datetime

    @property
    def last_day(self) -> date:
        return last_day_before(self.until)


@dataclass(frozen=True)
class PartnerSubscription:
    """A subscription as a source sells it. ``unit_cost`` is what the partner pays for one seat
    for one billing period (``billing_months`` long); ``commitment_end`` is the last day of the
    current term (inclusive, as new commerce dates are)."""

    source: str
    kind: SourceKind
    subscription_id: str
    customer_id: str
    product_id: str
    product_name: str
    quantity: int
    status: str
    active: bool
    trial: bool = False
    term: str | None = None
    billing: str | None = None
    start: date | None = None
    commitment_end: date | None = None
    auto_renew: bool | None = None
    refundable: tuple[Refundable, ...] | None = None
    unit_cost: Decimal | None = None
    unit_price: Decimal | None = None
    currency: str | None = None
    commerce_subscription_id: str | None = None
    sku_id: str | None = None

    @property
    def key(self) -> str:
        return f"{self.source}/{self.subscription_id}"

    @property
    def label(self) -> str:
        return SOURCE_LABELS.get(self.kind, self.kind)

    @property
    def term_months(self) -> int | None:
        return months_of(self.term)

    @property
    def billing_months(self) -> int | None:
        return months_of(self.billing)

    @property
    def renewal(self) -> date | None:
        """The day the next term begins (the day after the commitment end)."""
        return self.commitment_end + timedelta(days=1) if self.commitment_end else None

    @property
    def term_start(self) -> date | None:
        """The first day of the current term: its renewal (the commitment end less one term), or
        the purchase when that is later."""
        renewed = None
        if self.renewal is not None and self.term_months:
            renewed = add_months(self.renewal, -self.term_months)
        if renewed is None:
            return self.start
        return max(renewed, self.start) if self.start else renewed

    def monthly_cost(self) -> Decimal | None:
        """What one seat costs a month (exact, unrounded); None when the cost or the billing cycle
        is unknown. A trial costs nothing."""
        if self.trial:
            return Decimal(0)
        months = self.billing_months
        if self.unit_cost is None or not months:
            return None
        return self.unit_cost / months

    def describe_term(self) -> str:
        parts = [f"{self.term} term" if self.term else "term unknown"]
        if self.billing:
            parts.append(f"billed {self.billing.lower()}")
        if self.commitment_end:
            parts.append(f"ends {self.commitment_end}")
        return f"{self.label}: {', '.join(parts)}"


@dataclass(frozen=True)
class SourceCustomer:
    """A customer as a source lists it: a Partner Center customer (its id is the customer's
    tenant id) or a Pax8 company."""

    customer_id: str
    name: str
    tenant_id: str | None = None
    domain: str | None = None


@dataclass(frozen=True)
class SourceLink:
    """How one configured source knows the tenant: the customers it lists for it (none: the
    tenant is not its customer) and how they were linked."""

    source: str
    kind: SourceKind
    customer_ids: tuple[str, ...] = ()
    how: str = ""


@dataclass(frozen=True)
class PartnerFacts:
    """What the configured sources say about one tenant, read in the same run as its snapshot."""

    links: tuple[SourceLink, ...]
    subscriptions: tuple[PartnerSubscription, ...] = ()

    @property
    def known(self) -> bool:
        """Whether some configured source sells to this tenant."""
        return any(link.customer_ids for link in self.links)


def resolve_sku(sub: PartnerSubscription, sku_map: Mapping[str, str],
                by_name: Callable[[str], str | None]) -> str | None:
    """The Graph ``skuId`` of a source's product: the configured ``skuMap`` (by product id or
    offer id, case ignored), else the product's name in Microsoft's licence name table."""
    mapped = {k.lower(): v.lower() for k, v in sku_map.items()}
    for key in (sub.product_id, sub.product_id.split(":")[0]):
        if key.lower() in mapped:
            return mapped[key.lower()]
    return by_name(sub.product_name)


@dataclass(frozen=True)
class CustomerRecord:
    """One customer of a source with its subscriptions, or why they could not be read."""

    customer: SourceCustomer
    subscriptions: tuple[PartnerSubscription, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class SourceCatalogue:
    """What one source said at the start of a run: its customers and their subscriptions, or why
    it could not be read (``error``: every tenant it might sell to is left as it was). A failed
    cost read (``cost_error``) leaves costs unknown but the subscriptions usable."""

    source: str
    kind: SourceKind
    customers: tuple[CustomerRecord, ...] = ()
    error: str | None = None
    cost_error: str | None = None
    calls: int = 0

    @property
    def subscription_count(self) -> int:
        return sum(len(c.subscriptions) for c in self.customers)
