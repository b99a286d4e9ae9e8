"""Reading the subscription sources once per run, and finding each tenant's partner facts.

At the start of a run every configured source is read whole (its customers, their
subscriptions and, for Partner Center, this month's costs) and stored for the run
(``SourceRepository``). Collecting a tenant then looks up the customers that are that tenant:

- a Partner Center customer whose id is the tenant id;
- the customer the tenant's configuration names for the source (``partnerCustomers``);
- the customer owning a subscription Microsoft shows in the tenant (a Pax8 subscription's
  ``vendorSubscriptionId`` is the tenant's ``commerceSubscriptionId``).

Any failure that could change what is billed raises ``SourceError`` for the tenant: a source that
could not be read, or a linked customer whose subscriptions could not be. The tenant is then
reported as not collected and its billing is left exactly as it was, like a failed Graph read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from decimal import Decimal

import requests

from shared.adapters.source_store import SourceRepository, SourceStatus
from shared.config.schema import SeatSyncConfig
from shared.domain.model import Subscription
from shared.domain.partner import (
    CustomerRecord,
    PartnerFacts,
    PartnerSubscription,
    SourceCatalogue,
    SourceCustomer,
    SourceLink,
    resolve_sku,
)
from shared.domain.sku_names import sku_id_for_name
from shared.errors import SeatSyncError, SourceError
from shared.ports import SubscriptionSourcePort
from shared.telemetry import ContextThreadPool

log = logging.getLogger(__name__)
SourceLookup = Callable[[str], SubscriptionSourcePort]
READ_WORKERS = 4


def _priced(sub: PartnerSubscription, costs: Mapping[str, tuple[Decimal, str]], sku_map: Mapping[str, str]
            ) -> PartnerSubscription:
    """The subscription with its cost (when the source gives costs apart) and its Graph SKU."""
    cost = costs.get(sub.subscription_id)
    updated = sub
    if cost is not None and sub.unit_cost is None:
        amount, currency = cost
        updated = replace(updated, unit_cost=amount, currency=currency)
    if updated.sku_id is None:
        updated = replace(updated, sku_id=resolve_sku(updated, sku_map, sku_id_for_name))
    return updated


def read_catalogue(port: SubscriptionSourcePort, sku_map: Mapping[str, str],
                   workers: int = READ_WORKERS) -> SourceCatalogue:
    """Everything a source says, or the reason it could not be read. One customer's failed read
    is kept with that customer (only its tenant is affected); a failed cost read leaves costs
    unknown."""
    calls_before = port.calls
    try:
        customers = port.list_customers()
        everything = port.list_all_subscriptions()
    except (SourceError, requests.RequestException) as exc:
        return SourceCatalogue(port.name, port.kind, error=str(exc), calls=port.calls - calls_before)
    cost_error = None
    try:
        costs = port.subscription_costs()
    except (SourceError, requests.RequestException) as exc:
        log.warning("subscription source %s: costs could not be read: %s", port.name, exc)
        costs, cost_error = {}, str(exc)

    def record(customer: SourceCustomer) -> CustomerRecord:
        try:
            subs = (port.list_subscriptions(customer.customer_id) if everything is None
                    else [s for s in everything if s.customer_id == customer.customer_id])
        except (SourceError, requests.RequestException) as exc:
            return CustomerRecord(customer, error=str(exc))
        return CustomerRecord(customer, tuple(_priced(s, costs, sku_map) for s in subs))

    if everything is None:
        with ContextThreadPool(max_workers=max(1, workers), thread_name_prefix=f"source-{port.name}") as pool:
            records = list(pool.map(record, customers))
    else:
        records = [record(c) for c in customers]
        known = {c.customer_id for c in customers}
        orphans = {s.customer_id for s in everything} - known
        if orphans:
            log.warning("subscription source %s: subscriptions of %d companies it does not list", port.name,
                        len(orphans))
    return SourceCatalogue(port.name, port.kind, tuple(records), cost_error=cost_error,
                           calls=port.calls - calls_before)


def prepare_sources(config: SeatSyncConfig, ports: SourceLookup, repository: SourceRepository,
                    run_id: str) -> list[SourceStatus]:
    """Read every configured source for the run and store what it said."""
    statuses = []
    for source in config.subscription_sources:
        sku_map = {link.product_id: link.sku_id for link in source.sku_map}
        try:
            catalogue = read_catalogue(ports(source.name), sku_map)
        except SeatSyncError as exc:  # the source's settings or secrets are wrong
            catalogue = SourceCatalogue(source.name, source.type, error=str(exc))
        if catalogue.error:
            log.warning("subscription source %s could not be read: %s", source.name, catalogue.error)
        repository.save(run_id, catalogue)
        status = repository.status(run_id, source.name)
        if status is not None:
            statuses.append(status)
    return statuses


def partner_facts(config: SeatSyncConfig, repository: SourceRepository, run_id: str, tenant_id: str,
                  subscriptions: Iterable[Subscription]) -> PartnerFacts | None:
    """The tenant's partner facts from what the sources said in the run (None: no source is
    configured); ``SourceError`` when something that could change its bill is unknown."""
    if not config.subscription_sources:
        return None
    tenant = config.tenant(tenant_id)
    commerce_ids = [s.commerce_subscription_id for s in subscriptions if s.commerce_subscription_id]
    links: list[SourceLink] = []
    found: list[PartnerSubscription] = []
    for source in config.subscription_sources:
        status = repository.status(run_id, source.name)
        if status is None:
            raise SourceError(source.name, "was not read at the start of this run; billing left as it was")
        if status.error:
            raise SourceError(source.name, f"could not be read ({status.error}); billing left as it was")
        linked: dict[str, str] = {}
        configured = tenant.partner_customer(source.name) if tenant else None
        if configured:
            linked[configured.lower()] = "configured"
        if source.type == "partner-center":
            linked.setdefault(tenant_id.lower(), "tenant id")
        for commerce_id in commerce_ids:
            owner = repository.customer_of_subscription(run_id, source.name, commerce_id)
            if owner:
                linked.setdefault(owner.lower(), "subscription id")
        customers: list[str] = []
        hows: list[str] = []
        for customer_id, how in linked.items():
            record = repository.customer(run_id, source.name, customer_id)
            if record is None:
                if how == "configured":
                    raise SourceError(source.name, f"has no customer {customer_id}, which the tenant's "
                                                   "partnerCustomers names; billing left as it was")
                continue
            if record.error:
                raise SourceError(source.name, f"the subscriptions of customer {record.customer.name} could not be "
                                               f"read ({record.error}); billing left as it was")
            customers.append(customer_id)
            hows.append(how)
            found += record.subscriptions
        links.append(SourceLink(source.name, source.type, tuple(customers), ", ".join(dict.fromkeys(hows))))
    return PartnerFacts(tuple(links), tuple(found))
