"""What the pushes read from each PSA connection besides the tenants' own lines: the agreements
the mappings name and the billing profiles' products.

A run reads them once per connection (``share_reads``, the ``share_psa_reads`` activity, beside
the collection) and stores them for its pushes (``shared.adapters.shared_reads_store``), instead of
each batch of tenants reading every agreement and product again. A push plans from what was shared
and reads itself only what was not (an agreement a configuration saved during the run added, a
connection the shared read could not reach): the same reads, in the same error cases, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import requests

from shared.adapters.shared_reads_store import ConnectionReads
from shared.config.schema import SeatSyncConfig, TenantConfig
from shared.contracts import TenantWork
from shared.deadline import DeadlineReached
from shared.domain.model import Agreement, Product, PsaCapabilities
from shared.domain.planning import AgreementKey, required_reads
from shared.errors import PsaError, SeatSyncError
from shared.services.bookkeeping import PsaLookup

READ_FAILURES = (PsaError, SeatSyncError, requests.RequestException)


@dataclass
class SharedReads:
    """What a batch of tenants shares: their agreements, the billing profiles' products and each
    PSA's capabilities, read once per run (or per push, when the run shared none)."""

    agreements: dict[AgreementKey, Agreement]
    products: dict[AgreementKey, Product]
    capabilities: dict[str, PsaCapabilities]
    error: str | None = None


def needed(config: SeatSyncConfig, tenants: Iterable[TenantConfig]) -> dict[str, tuple[set[str], set[str]]]:
    """Per PSA connection, the agreements and products the tenants' mappings need."""
    found: dict[str, tuple[set[str], set[str]]] = {}
    for tenant in tenants:
        agreements, products = required_reads(config, tenant)
        for psa, agreement_id in agreements:
            found.setdefault(psa, (set(), set()))[0].add(agreement_id)
        for psa, product_id in products:
            found.setdefault(psa, (set(), set()))[1].add(product_id)
    return found


def read_connection(psa: str, agreement_ids: set[str], product_ids: set[str], psa_for: PsaLookup) -> ConnectionReads:
    """The agreements and products of one connection: one read per 100 agreements (per id where
    the PSA has no filter) and one of the catalogue; what cannot be read is said in ``error``."""
    try:
        client = psa_for(psa)
        agreements = tuple(client.get_agreements(sorted(agreement_ids))) if agreement_ids else ()
        products = tuple(client.get_products(sorted(product_ids))) if product_ids else ()
        missing = sorted(product_ids - {p.product_id for p in products})
        if missing:
            raise PsaError(psa, "not found (no such product, or SeatSync's account cannot see it)",
                           f"product {', '.join(missing)}", 404)
        return ConnectionReads(psa, frozenset(agreement_ids), frozenset(product_ids), agreements, products,
                               client.capabilities)
    except DeadlineReached:
        raise
    except READ_FAILURES as exc:
        return ConnectionReads(psa, frozenset(agreement_ids), frozenset(product_ids), error=str(exc))


def share_reads(config: SeatSyncConfig, works: Iterable[TenantWork], psa_for: PsaLookup) -> list[ConnectionReads]:
    """What the pushes of a run (``works``: the tenants it set out to do, read a page at a time)
    need from every PSA connection, read once."""
    return [read_connection(psa, agreements, products, psa_for)
            for psa, (agreements, products) in sorted(needed(config, run_tenants(config, works)).items())]


def run_tenants(config: SeatSyncConfig, works: Iterable[TenantWork]) -> Iterator[TenantConfig]:
    """The configured tenants a run set out to do, one at a time: a tenant of a stored
    configuration is parsed when it is read, so a pass over thousands never holds them all."""
    for work in works:
        tenant = config.tenant(work.tenant_id)
        if tenant is not None:
            yield tenant


def read_shared(config: SeatSyncConfig, tenants: list[TenantConfig], psa_for: PsaLookup,
                prepared: Mapping[str, ConnectionReads] | None = None) -> SharedReads:
    """The agreements, products and capabilities a batch of tenants needs: from what the run
    read for its pushes (``prepared``) where it covers them, read now otherwise."""
    shared = SharedReads({}, {}, {})
    for psa, (agreements, products) in sorted(needed(config, tenants).items()):
        found = (prepared or {}).get(psa)
        if found is None or found.error is not None or not (agreements <= found.asked_agreements
                                                             and products <= found.asked_products):
            found = read_connection(psa, agreements, products, psa_for)
        if found.error is not None:
            shared.error = f"PSA agreements and products could not be read, nothing planned: {found.error}"
            return shared
        shared.capabilities[psa] = psa_for(psa).capabilities  # the connection as configured now
        shared.agreements.update({(psa, a.agreement_id): a for a in found.agreements
                                  if a.agreement_id in agreements})
        shared.products.update({(psa, p.product_id): p for p in found.products if p.product_id in products})
    return shared
