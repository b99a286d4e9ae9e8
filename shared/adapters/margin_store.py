"""The licence facts of each run (purchased, assigned, billed, cost, terms), in Table Storage:
the material of the reconciliation and margin report, its alerts and the renewal calendar.

Table ``<prefix>margins``, partition = run id, row = tenant id: a document with the tenant's
licences (``shared.domain.reconciliation.LicenceFacts``), replaced when the tenant is pushed
again in the run. The report joins them with the run's changes, so "billed" is what the PSA
holds once the run is over.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from shared.adapters.tables import LARGE_ROWS_PAGE, TableStore, committed_documents, write_committed_documents
from shared.domain.reconciliation import BilledMapping, LicenceFacts, SubscriptionFact


def facts_to_json(facts: LicenceFacts) -> dict[str, Any]:
    return {
        "tenantId": facts.tenant_id, "tenantName": facts.tenant_name, "skuId": facts.sku_id, "label": facts.label,
        "purchased": facts.purchased, "purchasedFrom": facts.purchased_from, "assigned": facts.assigned,
        "elsewhere": facts.elsewhere,
        "mappings": [{"mappingKey": m.mapping_key, "agreementId": m.agreement_id, "lineId": m.line_id,
                      "billedBefore": m.billed_before, "target": m.target, "unitPrice": _text(m.unit_price),
                      "periodMonths": m.period_months, "included": m.included, "psa": m.psa,
                      "subscriptions": list(m.subscriptions)} for m in facts.mappings],
        "subscriptions": [{"source": s.source, "id": s.subscription_id, "quantity": s.quantity, "active": s.active,
                           "term": s.term, "billing": s.billing, "renewal": _day(s.renewal),
                           "autoRenew": s.auto_renew, "monthlyCost": _text(s.monthly_cost), "currency": s.currency}
                          for s in facts.subscriptions],
        "monthlyCost": _text(facts.monthly_cost), "costCurrency": facts.cost_currency,
        "reducible": [[seats, day.isoformat()] for seats, day in facts.reducible],
        "renewal": _day(facts.renewal), "termBasis": facts.term_basis,
    }


def facts_from_json(raw: dict[str, Any]) -> LicenceFacts:
    return LicenceFacts(
        tenant_id=raw["tenantId"], tenant_name=raw["tenantName"], sku_id=raw["skuId"], label=raw["label"],
        purchased=int(raw["purchased"]), purchased_from=raw["purchasedFrom"], assigned=int(raw["assigned"]),
        elsewhere=int(raw["elsewhere"]),
        mappings=tuple(BilledMapping(m["mappingKey"], m["agreementId"], m.get("lineId"), m.get("billedBefore"),
                                     int(m["target"]), _decimal(m.get("unitPrice")), m.get("periodMonths"),
                                     int(m.get("included") or 0), m.get("psa", ""),
                                     tuple(m.get("subscriptions") or ())) for m in raw["mappings"]),
        subscriptions=tuple(SubscriptionFact(s["source"], s["id"], int(s["quantity"]), bool(s["active"]),
                                             s.get("term"), s.get("billing"), _from_day(s.get("renewal")),
                                             s.get("autoRenew"), _decimal(s.get("monthlyCost")), s.get("currency"))
                            for s in raw["subscriptions"]),
        monthly_cost=_decimal(raw.get("monthlyCost")), cost_currency=raw.get("costCurrency"),
        reducible=tuple((int(seats), date.fromisoformat(day)) for seats, day in raw["reducible"]),
        renewal=_from_day(raw.get("renewal")), term_basis=raw.get("termBasis", ""),
    )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _from_day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


class MarginRepository:
    def __init__(self, store: TableStore) -> None:
        self._table = store.table("margins")

    def record(self, run_id: str, tenant_id: str, facts: list[LicenceFacts]) -> None:
        self.record_many(run_id, [(tenant_id, facts)])

    def record_many(self, run_id: str, tenants: Sequence[tuple[str, list[LicenceFacts]]]) -> None:
        """Several tenants' facts of the run (tenant id, facts): their documents together, in one
        transaction when they fit in one (the run's partition)."""
        write_committed_documents(self._table, run_id, [
            (f"{tenant_id}~facts", [facts_to_json(f) for f in facts], {"PartitionKey": run_id, "RowKey": tenant_id})
            for tenant_id, facts in tenants])

    def facts(self, run_id: str) -> list[LicenceFacts]:
        """Every tenant's facts of the run."""
        return [f for _tenant, facts in self.iter_facts(run_id) for f in facts]

    def iter_facts(self, run_id: str, page_size: int | None = None) -> Iterator[tuple[str, list[LicenceFacts]]]:
        """Per tenant of the run, in the store's order (by tenant id): its facts, read a page at a
        time, one tenant's entities held at a time (a run of thousands of tenants is not held)."""
        for entity, document in committed_documents(self._table, run_id, page_size=page_size or LARGE_ROWS_PAGE):
            yield str(entity["RowKey"]), [facts_from_json(raw) for raw in document]
