"""What the subscription sources said in a run, in Table Storage, and the JSON form of partner
facts (also stored with each tenant's snapshot).

Table ``<prefix>sources``, partition = run id:
- ``h~<source>``: the source's status in the run (read, or why not), its counts and the cost
  read's status;
- ``c~<source>~<customer id>``: one customer with its subscriptions (compressed JSON, or a
  document reference when large), or why they could not be read;
- ``s~<source>~<Microsoft subscription id>``: the customer that subscription belongs to, so a
  tenant finds its Pax8 company through the subscriptions Microsoft shows it.

The start of a run writes them once; each tenant's collection reads its own rows only.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.adapters.tables import (
    PART_BYTES,
    DocumentRef,
    TableStore,
    read_document,
    submit_batches,
    upsert,
    write_document,
)
from shared.domain.partner import (
    CustomerRecord,
    PartnerFacts,
    PartnerSubscription,
    Refundable,
    SourceCatalogue,
    SourceCustomer,
    SourceLink,
)

# --------------------------------------------------------------------------- JSON forms


def subscription_to_json(sub: PartnerSubscription) -> dict[str, Any]:
    return {
        "source": sub.source, "kind": sub.kind, "id": sub.subscription_id, "customerId": sub.customer_id,
        "productId": sub.product_id, "productName": sub.product_name, "quantity": sub.quantity,
        "status": sub.status, "active": sub.active, "trial": sub.trial, "term": sub.term, "billing": sub.billing,
        "start": _day(sub.start), "commitmentEnd": _day(sub.commitment_end), "autoRenew": sub.auto_renew,
        "refundable": None if sub.refundable is None else
        [{"quantity": r.quantity, "until": r.until.isoformat()} for r in sub.refundable],
        "unitCost": _money(sub.unit_cost), "unitPrice": _money(sub.unit_price), "currency": sub.currency,
        "commerceSubscriptionId": sub.commerce_subscription_id, "skuId": sub.sku_id,
    }


def subscription_from_json(raw: dict[str, Any]) -> PartnerSubscription:
    return PartnerSubscription(
        source=raw["source"], kind=raw["kind"], subscription_id=raw["id"], customer_id=raw["customerId"],
        product_id=raw["productId"], product_name=raw["productName"], quantity=int(raw["quantity"]),
        status=raw["status"], active=bool(raw["active"]), trial=bool(raw.get("trial")), term=raw.get("term"),
        billing=raw.get("billing"), start=_from_day(raw.get("start")),
        commitment_end=_from_day(raw.get("commitmentEnd")),
        auto_renew=raw.get("autoRenew"),
        refundable=None if raw.get("refundable") is None else tuple(
            Refundable(int(r["quantity"]), datetime.fromisoformat(r["until"])) for r in raw["refundable"]),
        unit_cost=_from_money(raw.get("unitCost")), unit_price=_from_money(raw.get("unitPrice")),
        currency=raw.get("currency"), commerce_subscription_id=raw.get("commerceSubscriptionId"),
        sku_id=raw.get("skuId"),
    )


def facts_to_json(facts: PartnerFacts) -> dict[str, Any]:
    return {
        "links": [{"source": link.source, "kind": link.kind, "customerIds": list(link.customer_ids), "how": link.how}
                  for link in facts.links],
        "subscriptions": [subscription_to_json(s) for s in facts.subscriptions],
    }


def facts_from_json(raw: dict[str, Any]) -> PartnerFacts:
    return PartnerFacts(
        links=tuple(SourceLink(link["source"], link["kind"], tuple(link["customerIds"]), link.get("how", ""))
                    for link in raw["links"]),
        subscriptions=tuple(subscription_from_json(s) for s in raw["subscriptions"]),
    )


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _from_day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _from_money(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


# --------------------------------------------------------------------------- the run's catalogues


@dataclass(frozen=True)
class SourceStatus:
    """A source's status in a run."""

    source: str
    kind: str
    error: str | None
    cost_error: str | None
    customers: int
    subscriptions: int
    calls: int

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "error": self.error, "costError": self.cost_error,
                "customers": self.customers, "subscriptions": self.subscriptions, "calls": self.calls}


class SourceRepository:
    def __init__(self, store: TableStore) -> None:
        self._table = store.table("sources")

    def save(self, run_id: str, catalogue: SourceCatalogue) -> None:
        """Store a source's catalogue; the header, written last, commits it."""
        rows: list[tuple[Any, ...]] = []
        for record in catalogue.customers:
            row: dict[str, Any] = {
                "PartitionKey": run_id, "RowKey": _customer_key(catalogue.source, record.customer.customer_id),
                "Name": record.customer.name, "TenantId": record.customer.tenant_id or "",
                "Domain": record.customer.domain or "", "Error": record.error or "",
            }
            packed = zlib.compress(json.dumps([subscription_to_json(s) for s in record.subscriptions]).encode("utf-8"))
            if len(packed) <= PART_BYTES:
                row["Data"] = packed
            else:
                row.update(write_document(self._table, run_id, f"d~{row['RowKey']}",
                                          [subscription_to_json(s) for s in record.subscriptions]).to_entity_fields())
            rows.append(("upsert", row))
            for sub in record.subscriptions:
                if sub.commerce_subscription_id:
                    rows.append(("upsert", {"PartitionKey": run_id,
                                            "RowKey": _index_key(catalogue.source, sub.commerce_subscription_id),
                                            "CustomerId": record.customer.customer_id}))
        submit_batches(self._table, rows)
        upsert(self._table, {
            "PartitionKey": run_id, "RowKey": f"h~{catalogue.source}", "Kind": catalogue.kind,
            "Error": catalogue.error or "", "CostError": catalogue.cost_error or "",
            "Customers": len(catalogue.customers), "Subscriptions": catalogue.subscription_count,
            "Calls": catalogue.calls,
        })

    def status(self, run_id: str, source: str) -> SourceStatus | None:
        entity = self._get(run_id, f"h~{source}")
        if entity is None:
            return None
        return SourceStatus(source, str(entity["Kind"]), str(entity.get("Error") or "") or None,
                            str(entity.get("CostError") or "") or None, int(entity.get("Customers") or 0),
                            int(entity.get("Subscriptions") or 0), int(entity.get("Calls") or 0))

    def statuses(self, run_id: str, sources: list[str]) -> list[SourceStatus]:
        return [found for name in sources if (found := self.status(run_id, name)) is not None]

    def customer(self, run_id: str, source: str, customer_id: str) -> CustomerRecord | None:
        entity = self._get(run_id, _customer_key(source, customer_id))
        if entity is None:
            return None
        if entity.get("Data") is not None:
            raw = json.loads(zlib.decompress(_bytes(entity["Data"])).decode("utf-8"))
        else:
            raw = read_document(self._table, DocumentRef.from_entity(entity))
        customer = SourceCustomer(customer_id.lower(), str(entity.get("Name") or customer_id),
                                  str(entity.get("TenantId") or "") or None, str(entity.get("Domain") or "") or None)
        return CustomerRecord(customer, tuple(subscription_from_json(s) for s in raw),
                              str(entity.get("Error") or "") or None)

    def customer_of_subscription(self, run_id: str, source: str, commerce_subscription_id: str) -> str | None:
        entity = self._get(run_id, _index_key(source, commerce_subscription_id))
        return str(entity["CustomerId"]) if entity else None

    def _get(self, run_id: str, row_key: str) -> dict[str, Any] | None:
        try:
            return dict(self._table.get_entity(run_id, row_key))
        except ResourceNotFoundError:
            return None


def _customer_key(source: str, customer_id: str) -> str:
    return f"c~{source}~{customer_id.lower()}"


def _index_key(source: str, subscription_id: str) -> str:
    return f"s~{source}~{subscription_id.lower()}"


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    raw = getattr(value, "value", None)
    if isinstance(raw, bytes | bytearray):
        return bytes(raw)
    raise TypeError(f"expected binary data, got {type(value).__name__}")
