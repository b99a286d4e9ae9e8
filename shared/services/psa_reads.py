"""What the pushes read from each PSA connection besides the tenants' own lines: the agreements
the mappings name and the billing profiles' products.

A run reads them once per connection (``share_reads``, the ``share_psa_reads`` activity, beside
the collection) and stores them for its pushes (``shared.adapters.shared_reads_store``), instead of
each batch of tenants reading every agreement and product again. A push plans from what was shared
and reads itself only what was not (an agreement a configuration saved during the run added, a
connection the shared read could not reach): the same reads, in the same error cases, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import requests

from shared.adapters.shared_reads_store import ConnectionReads, RunReads
from shared.adapters.tables import StoreError
from shared.config.schema import SeatSyncConfig, TenantConfig
from shared.contracts import TenantWork
from shared.deadline import DeadlineReached
from shared.domain.model import Agreement, Product, PsaCapabilities
from shared.domain.planning import AgreementKey, required_reads
from shared.errors import PsaError, SeatSyncError
from shared.services.bookkeeping import PsaLookup

READ_FAILURES = (PsaError, SeatSyncError, requests.RequestException)
log = logging.getLogger(__name__)


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


def share_reads(config: SeatSyncConfig, works: Iterable[TenantWork], psa_for: PsaLookup) -> Iterator[ConnectionReads]:
    """What the pushes of a run (``works``: the tenants it set out to do, read a page at a time)
    need from every PSA connection, read once, a connection at a time (each is stored before the
    next is read)."""
    for psa, (agreements, products) in sorted(needed(config, run_tenants(config, works)).items()):
        yield read_connection(psa, agreements, products, psa_for)


def run_tenants(config: SeatSyncConfig, works: Iterable[TenantWork]) -> Iterator[TenantConfig]:
    """The configured tenants a run set out to do, one at a time: a tenant of a stored
    configuration is parsed when it is read, so a pass over thousands never holds them all."""
    for work in works:
        tenant = config.tenant(work.tenant_id)
        if tenant is not None:
            yield tenant


def from_prepared(prepared: RunReads | None, psa: str, agreement_ids: set[str],
                  product_ids: set[str]) -> ConnectionReads | None:
    """What the run shared of connection ``psa`` for these agreements and products (the
    agreements read from their rows, only these), or None where it does not cover them all: it
    could not read the connection, a configuration saved during the run asks for more, or the
    shared rows cannot be read now. The push then reads them from the PSA itself."""
    header = prepared.connections.get(psa) if prepared is not None else None
    if prepared is None or header is None or header.error is not None or not product_ids <= header.asked_products:
        return None
    try:
        rows = prepared.agreements(header, agreement_ids)
    except StoreError as exc:
        log.warning("run %s: the shared agreements of %s cannot be read (%s); this push reads them from the PSA",
                    prepared.run_id, psa, exc)
        return None
    if set(rows) != agreement_ids:
        return None
    return replace(header, asked_agreements=frozenset(agreement_ids), in_rows=False,
                   agreements=tuple(agreement for agreement in rows.values() if agreement is not None))


def read_shared(config: SeatSyncConfig, tenants: list[TenantConfig], psa_for: PsaLookup,
                prepared: RunReads | None = None) -> SharedReads:
    """The agreements, products and capabilities a batch of tenants needs: from what the run
    read for its pushes (``prepared``) where it covers them, read now otherwise."""
    shared = SharedReads({}, {}, {})
    for psa, (agreements, products) in sorted(needed(config, tenants).items()):
        found = from_prepared(prepared, psa, agreements, products)
        if found is None:
            found = read_connection(psa, agreements, products, psa_for)
        if found.error is not None:
            shared.error = f"PSA agreements and products could not be read, nothing planned: {found.error}"
            return shared
        shared.capabilities[psa] = psa_for(psa).capabilities  # the connection as configured now
        shared.agreements.update({(psa, a.agreement_id): a for a in found.agreements
                                  if a.agreement_id in agreements})
        shared.products.update({(psa, p.product_id): p for p in found.products if p.product_id in products})
    return shared
