"""Where each licence of a tenant came from: the partner subscriptions of the configured
sources matched to the tenant's own subscriptions. Pure code.

Matching:
1. by Microsoft's subscription id: a Partner Center subscription's id (and a Pax8
   subscription's ``vendorSubscriptionId``) is the ``commerceSubscriptionId`` Graph shows;
2. otherwise by tenant and licence: the source's product resolved to a Graph ``skuId`` (the
   source's ``skuMap``, else the product's name in Microsoft's licence name table); such a
   subscription is also paired with the tenant's one subscription of the same licence and size
   when that pair is unambiguous (no other subscription of that size on either side), so that a
   mapping split by subscription finds its terms and cost.

Seats Microsoft shows that no configured source sold (bought from Microsoft directly, through
another partner, or paid by the customer) are "bought elsewhere": SeatSync never bills them unless
a mapping says so explicitly. A free or self-service licence (Power Automate Free, Power BI
(free), Teams Exploratory, one the sources sell only at a price of 0: ``shared.domain.free_skus``)
has no seats bought anywhere, so none bought elsewhere. A tenant no configured source knows has no provenance (``known``
false): it is billed exactly as without sources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from shared.domain.free_skus import is_free_sku, sold_free
from shared.domain.model import Subscription, TenantSnapshot
from shared.domain.partner import PartnerSubscription


@dataclass(frozen=True)
class LicenceSource:
    """Where one licence of a tenant came from."""

    sku_id: str
    purchased: int
    ours: tuple[PartnerSubscription, ...] = ()
    elsewhere_subscriptions: tuple[str, ...] = ()
    free: bool = False
    """A free or self-service licence (``shared.domain.free_skus``): no seat of it was bought."""

    @property
    def ours_quantity(self) -> int:
        """Seats the configured sources sold (active subscriptions, trials included)."""
        return sum(s.quantity for s in self.ours if s.active)

    @property
    def elsewhere(self) -> int:
        """Seats Microsoft shows that no configured source sold; none of a free licence."""
        return 0 if self.free else max(self.purchased - self.ours_quantity, 0)


@dataclass(frozen=True)
class Provenance:
    """Per licence of a tenant, what the sources sold and what came from elsewhere. ``known``
    false: no configured source sells to the tenant, and nothing is known."""

    known: bool
    licences: Mapping[str, LicenceSource] = field(default_factory=dict)
    unmatched: tuple[PartnerSubscription, ...] = ()
    paired: Mapping[str, str] = field(default_factory=dict)
    """Graph subscription id (lower case) -> partner subscription key, for pairs matched by id."""

    def licence(self, sku_id: str) -> LicenceSource | None:
        return self.licences.get(sku_id.lower()) if self.known else None

    def elsewhere(self, sku_id: str) -> int:
        found = self.licence(sku_id)
        return found.elsewhere if found else 0

    def partner_subscriptions(self, sku_id: str,
                              graph_subscription_ids: Iterable[str] = ()) -> list[PartnerSubscription]:
        """The partner subscriptions of a licence, or only those paired with the given Graph
        subscriptions (a mapping split by subscription)."""
        found = self.licence(sku_id)
        if found is None:
            return []
        named = tuple(g.lower() for g in graph_subscription_ids)
        wanted = {self.paired[g] for g in named if g in self.paired}
        if named and not wanted:
            return []
        return [s for s in found.ours if not wanted or s.key in wanted]


NO_PROVENANCE = Provenance(known=False)


def provenance(snapshot: TenantSnapshot) -> Provenance:
    """Match the tenant's partner subscriptions to its licences (see the module doc)."""
    facts = snapshot.partner
    if facts is None or not facts.known:
        return NO_PROVENANCE
    by_commerce: dict[str, Subscription] = {
        s.commerce_subscription_id.lower(): s for s in snapshot.subscriptions if s.commerce_subscription_id}
    skus = {s.sku_id.lower(): s for s in snapshot.skus}
    ours: dict[str, list[PartnerSubscription]] = {}
    paired: dict[str, str] = {}
    by_sku_only: dict[str, list[PartnerSubscription]] = {}
    unmatched: list[PartnerSubscription] = []
    for sub in facts.subscriptions:
        graph = by_commerce.get(sub.commerce_subscription_id.lower()) if sub.commerce_subscription_id else None
        if graph is not None:
            ours.setdefault(graph.sku_id.lower(), []).append(sub)
            paired[graph.id.lower()] = sub.key
        elif sub.sku_id and sub.sku_id.lower() in skus:
            ours.setdefault(sub.sku_id.lower(), []).append(sub)
            by_sku_only.setdefault(sub.sku_id.lower(), []).append(sub)
        elif sub.active:
            unmatched.append(sub)
    licences: dict[str, LicenceSource] = {}
    for sku_id, sku in skus.items():
        unpaired = [g for g in snapshot.subscriptions if g.sku_id.lower() == sku_id and g.id.lower() not in paired
                    and g.status.casefold() in ("enabled", "warning")]
        candidates = by_sku_only.get(sku_id, [])
        for sub in candidates:
            # the one subscription of that size in the tenant is the same one, when neither side
            # has another of that size (otherwise no pair is guessed)
            twins = [g for g in unpaired if g.total_licenses == sub.quantity]
            if len(twins) == 1 and sum(1 for s in candidates if s.quantity == sub.quantity) == 1:
                unpaired.remove(twins[0])
                paired[twins[0].id.lower()] = sub.key
        sold = tuple(ours.get(sku_id, ()))
        licence = LicenceSource(sku_id, sku.purchased, sold, tuple(g.id for g in unpaired) if sku.purchased else (),
                                free=is_free_sku(sku.sku_part_number) or sold_free(sold))
        if licence.elsewhere == 0:
            licence = replace(licence, elsewhere_subscriptions=())
        licences[sku_id] = licence
    return Provenance(True, licences, tuple(unmatched), paired)
