"""What a run read once from each PSA connection for all its pushes, in Table Storage.

Table ``<prefix>psareads``, partition = run id: per PSA connection, a document (the agreements and
products the run's tenants need, what was asked, and the error if the PSA could not be read) whose
commit entity (row = the connection's name) is written with it. A push reads the run's partition
once per process and plans from it instead of reading the agreements and the catalogue again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from typing import Any

from shared.adapters.tables import TableStore, committed_documents, write_committed_document
from shared.domain.model import Agreement, BillingAttributes, Product, PsaCapabilities


@dataclass(frozen=True)
class ConnectionReads:
    """One PSA connection's agreements and products a run needs, read once for its pushes:
    ``asked_*`` what was asked (an agreement asked and absent does not exist), ``error`` why the
    connection could not be read (the pushes then read it themselves)."""

    psa: str
    asked_agreements: frozenset[str]
    asked_products: frozenset[str]
    agreements: tuple[Agreement, ...] = ()
    products: tuple[Product, ...] = ()
    capabilities: PsaCapabilities | None = None
    error: str | None = None


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _from_day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _from_money(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def agreement_to_json(a: Agreement) -> dict[str, Any]:
    return {**{f.name: getattr(a, f.name) for f in fields(a)}, "start_date": _day(a.start_date),
            "end_date": _day(a.end_date), "next_invoice_date": _day(a.next_invoice_date)}


def agreement_from_json(raw: dict[str, Any], days: dict[str | None, date | None] | None = None) -> Agreement:
    """``days``: the dates already made, by their text, so that thousands of agreements that start
    or are invoiced on the same day share one object."""
    days = {} if days is None else days

    def day(name: str) -> date | None:
        text = raw.get(name)
        if text not in days:
            days[text] = _from_day(text)
        return days[text]

    return Agreement(**{**raw, "start_date": day("start_date"), "end_date": day("end_date"),
                        "next_invoice_date": day("next_invoice_date")})


def product_to_json(p: Product) -> dict[str, Any]:
    return {**vars(p), "price": _money(p.price), "cost": _money(p.cost), "billing": dict(vars(p.billing))}


def product_from_json(raw: dict[str, Any]) -> Product:
    return Product(**{**raw, "price": _from_money(raw.get("price")), "cost": _from_money(raw.get("cost")),
                      "billing": BillingAttributes(**raw.get("billing", {}))})


def reads_to_json(reads: ConnectionReads) -> dict[str, Any]:
    return {"psa": reads.psa, "askedAgreements": sorted(reads.asked_agreements),
            "askedProducts": sorted(reads.asked_products),
            "agreements": [agreement_to_json(a) for a in reads.agreements],
            "products": [product_to_json(p) for p in reads.products],
            "capabilities": None if reads.capabilities is None else dict(vars(reads.capabilities)),
            "error": reads.error}


def reads_from_json(raw: dict[str, Any]) -> ConnectionReads:
    capabilities = raw.get("capabilities")
    days: dict[str | None, date | None] = {}
    agreements = tuple(agreement_from_json(a, days) for a in raw["agreements"])
    ids = {a.agreement_id: a.agreement_id for a in agreements}  # an id asked and found: one string
    return ConnectionReads(
        psa=str(raw["psa"]), asked_agreements=frozenset(ids.get(i, i) for i in raw["askedAgreements"]),
        asked_products=frozenset(raw["askedProducts"]), agreements=agreements,
        products=tuple(product_from_json(p) for p in raw["products"]),
        capabilities=None if capabilities is None else PsaCapabilities(**capabilities), error=raw.get("error"))


class SharedReadsRepository:
    """The run's shared PSA reads; the last run's are kept parsed in the process (they never
    change once its pushes began) until ``forget`` says its pushes are done."""

    def __init__(self, store: TableStore) -> None:
        self._table = store.table("psareads")
        self._lock = threading.Lock()
        self._loading = threading.Lock()  # one read of the run's document at a time
        self._cached: tuple[str, dict[str, ConnectionReads]] | None = None

    def save(self, run_id: str, reads: list[ConnectionReads]) -> None:
        for found in reads:
            write_committed_document(self._table, run_id, f"{found.psa}~doc", reads_to_json(found),
                                     {"PartitionKey": run_id, "RowKey": found.psa})

    def load(self, run_id: str) -> dict[str, ConnectionReads]:
        """Per PSA connection, what the run read for its pushes (empty: nothing was shared). Read
        once per process: the pushes that start together wait for the first one's read, rather
        than each parsing every agreement of the run at the same moment."""
        with self._lock:
            if self._cached is not None and self._cached[0] == run_id:
                return self._cached[1]
        with self._loading:
            with self._lock:
                if self._cached is not None and self._cached[0] == run_id:
                    return self._cached[1]
            found: dict[str, ConnectionReads] = {}
            for _entity, document in committed_documents(self._table, run_id):
                reads = reads_from_json(document)
                found[reads.psa] = reads
            with self._lock:
                self._cached = (run_id, found)
        return found

    def forget(self, run_id: str) -> None:
        """Let go of run ``run_id``'s reads once its pushes are done: a process keeps no run's
        agreements (thousands, for a large MSP) past the pushes that plan from them."""
        with self._lock:
            if self._cached is not None and self._cached[0] == run_id:
                self._cached = None
