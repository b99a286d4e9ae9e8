"""What a run read once from each PSA connection for all its pushes, in Table Storage.

Table ``<prefix>psareads``:

- partition = run id: per PSA connection, a document (the products the run's tenants need, what
  was asked of the catalogue, the connection's capabilities, and the error if the PSA could not be
  read) whose commit entity (row = the connection's name) is written with it. A process reads the
  run's partition once and keeps it: it is a few rows whatever the number of tenants.
- partition = run id + ``~agreements``: a row per agreement the run asked for, row
  ``<connection>~<agreement id>``, holding the agreement (or, for one asked and not found, that it
  does not exist). They are written before their connection's document, so a push that finds the
  document finds them all. A push reads only the rows of its own tenants' agreements, 14 to a
  query (a filter holds at most 15 comparisons): a process holds a batch's agreements, never the
  run's thousands.

A push plans from them instead of reading the agreements and the catalogue again. Runs shared
before agreements had rows of their own list them in the connection's document; they are read
as they were.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal
from typing import Any

from azure.core.exceptions import AzureError
from azure.data.tables import UpdateMode

from shared.adapters.tables import (
    StoreError,
    TableStore,
    committed_documents,
    submit_streamed,
    write_committed_document,
)
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
    in_rows: bool = False
    """Read back from a run that keeps its agreements a row each: ``asked_agreements`` and
    ``agreements`` are then empty, and ``RunReads.agreements`` reads those a push needs."""


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


def reads_to_json(reads: ConnectionReads, *, agreements_in_rows: bool = False) -> dict[str, Any]:
    """The connection's document; with ``agreements_in_rows``, without its agreements (written a
    row each, ``SharedReadsRepository.save``), saying how many were asked instead."""
    agreements: dict[str, Any] = {"agreementRows": len(reads.asked_agreements)} if agreements_in_rows else {
        "askedAgreements": sorted(reads.asked_agreements),
        "agreements": [agreement_to_json(a) for a in reads.agreements]}
    return {"psa": reads.psa, **agreements, "askedProducts": sorted(reads.asked_products),
            "products": [product_to_json(p) for p in reads.products],
            "capabilities": None if reads.capabilities is None else dict(vars(reads.capabilities)),
            "error": reads.error}


def reads_from_json(raw: dict[str, Any]) -> ConnectionReads:
    capabilities = raw.get("capabilities")
    in_rows = "agreementRows" in raw
    days: dict[str | None, date | None] = {}
    agreements = () if in_rows else tuple(agreement_from_json(a, days) for a in raw["agreements"])
    ids = {a.agreement_id: a.agreement_id for a in agreements}  # an id asked and found: one string
    return ConnectionReads(
        psa=str(raw["psa"]),
        asked_agreements=frozenset() if in_rows else frozenset(ids.get(i, i) for i in raw["askedAgreements"]),
        asked_products=frozenset(raw["askedProducts"]), agreements=agreements,
        products=tuple(product_from_json(p) for p in raw["products"]),
        capabilities=None if capabilities is None else PsaCapabilities(**capabilities), error=raw.get("error"),
        in_rows=in_rows)


_PLAIN_ID = re.compile(r"[0-9A-Za-z_.-]{1,200}")
_QUERY_KEYS = 14
"""Row keys a query asks for: a filter holds at most 15 comparisons, one is the partition's."""


def agreements_partition(run_id: str) -> str:
    return f"{run_id}~agreements"


def agreement_key(psa: str, agreement_id: str) -> str:
    """The row of an agreement the run asked for: its id as it is, or hashed when it holds a
    character a row key refuses (``/``, ``#``, ``?``, control characters)."""
    if _PLAIN_ID.fullmatch(agreement_id):
        return f"{psa}~{agreement_id}"
    return f"{psa}~~{hashlib.sha256(agreement_id.encode('utf-8')).hexdigest()}"  # "~" is in no plain id


def _agreement_rows(run_id: str, reads: ConnectionReads) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """One row per agreement asked, made one at a time: the agreement's JSON, or ``Exists``
    false for one asked and not found (it does not exist: a push need not ask again)."""
    found = {a.agreement_id: a for a in reads.agreements}
    for agreement_id in sorted(reads.asked_agreements):
        agreement = found.get(agreement_id)
        entity: dict[str, Any] = {"PartitionKey": agreements_partition(run_id),
                                  "RowKey": agreement_key(reads.psa, agreement_id),
                                  "AgreementId": agreement_id, "Exists": agreement is not None}
        if agreement is not None:
            entity["Agreement"] = json.dumps(agreement_to_json(agreement), separators=(",", ":"))
        yield "upsert", entity, {"mode": UpdateMode.REPLACE}


class SharedReadsRepository:
    """The run's shared PSA reads; the last run's are kept parsed in the process (they never
    change once its pushes began) until ``forget`` says its pushes are done."""

    def __init__(self, store: TableStore) -> None:
        self._table = store.table("psareads")
        self._lock = threading.Lock()
        self._loading = threading.Lock()  # one read of the run's document at a time
        self._cached: tuple[str, RunReads] | None = None

    def save(self, run_id: str, reads: Iterable[ConnectionReads]) -> None:
        """Each connection's agreements a row each (transactions of 100, one held at a time), then
        its document: a push that finds the document finds every agreement the run asked for."""
        for found in reads:
            if found.error is None:
                submit_streamed(self._table, _agreement_rows(run_id, found))
            write_committed_document(self._table, run_id, f"{found.psa}~doc",
                                     reads_to_json(found, agreements_in_rows=found.error is None),
                                     {"PartitionKey": run_id, "RowKey": found.psa})

    def agreements(self, run_id: str, psa: str, agreement_ids: Iterable[str]) -> dict[str, Agreement | None]:
        """Of ``agreement_ids``, those the run asked connection ``psa`` for: each one's agreement,
        or None when it does not exist. An id the run did not ask for is left out. Raises
        ``StoreError`` when the rows cannot be read."""
        wanted = {agreement_key(psa, i): i for i in sorted(set(agreement_ids))}
        keys = list(wanted)
        answer: dict[str, Agreement | None] = {}
        days: dict[str | None, date | None] = {}
        try:
            for start in range(0, len(keys), _QUERY_KEYS):
                batch = keys[start:start + _QUERY_KEYS]
                # spaced: the client takes a parameter's name up to the next space ("@k0)" is none)
                either = " or ".join(f"RowKey eq @k{index}" for index in range(len(batch)))
                parameters = {"pk": agreements_partition(run_id), **{f"k{i}": key for i, key in enumerate(batch)}}
                for entity in self._table.query_entities(f"PartitionKey eq @pk and ( {either} )",
                                                         parameters=parameters):
                    agreement_id = wanted.get(str(entity["RowKey"]))
                    if agreement_id is None or entity.get("AgreementId") != agreement_id:
                        continue  # not a row asked for (a hashed key's other id): as if not asked
                    answer[agreement_id] = (agreement_from_json(json.loads(str(entity["Agreement"])), days)
                                            if entity.get("Exists") else None)
        except AzureError as exc:
            raise StoreError(f"the shared agreements of run {run_id} ({psa}) cannot be read: {exc}") from exc
        except (KeyError, ValueError, TypeError) as exc:
            raise StoreError(f"a shared agreement of run {run_id} ({psa}) is damaged ({type(exc).__name__}: "
                             f"{exc})") from exc
        return answer

    def load(self, run_id: str) -> RunReads:
        """Per PSA connection, what the run read for its pushes (empty: nothing was shared), its
        agreements left in their rows. Read once per process: the pushes that start together
        wait for the first one's read."""
        with self._lock:
            if self._cached is not None and self._cached[0] == run_id:
                return self._cached[1]
        with self._loading:
            with self._lock:
                if self._cached is not None and self._cached[0] == run_id:
                    return self._cached[1]
            connections: dict[str, ConnectionReads] = {}
            for _entity, document in committed_documents(self._table, run_id):
                reads = reads_from_json(document)
                connections[reads.psa] = reads
            found = RunReads(run_id, connections, self)
            with self._lock:
                self._cached = (run_id, found)
        return found

    def forget(self, run_id: str) -> None:
        """Let go of run ``run_id``'s reads once its pushes are done: a process keeps no run's
        agreements (thousands, for a large MSP) past the pushes that plan from them."""
        with self._lock:
            if self._cached is not None and self._cached[0] == run_id:
                self._cached = None


@dataclass(frozen=True)
class RunReads:
    """What a run shared with its pushes, as a push uses it: each connection's document, kept by
    the process, and the agreements, read for the ids a push needs."""

    run_id: str
    connections: dict[str, ConnectionReads]
    repository: SharedReadsRepository | None = field(default=None, compare=False)

    def agreements(self, reads: ConnectionReads, agreement_ids: Iterable[str]) -> dict[str, Agreement | None]:
        """Of ``agreement_ids``, those the run asked connection ``reads`` for: each one's agreement,
        or None when it does not exist; an id it did not ask for is left out. Raises
        ``StoreError`` when they cannot be read."""
        if not reads.in_rows:  # a run shared before agreements had rows: they are in its document
            found = {a.agreement_id: a for a in reads.agreements}
            return {i: found.get(i) for i in agreement_ids if i in reads.asked_agreements}
        if self.repository is None:
            return {}
        return self.repository.agreements(self.run_id, reads.psa, agreement_ids)
