"""Lines SeatSync creates bill as the MSP set up the original: a prorate or credit line takes over
its base line's unit cost and billing attributes (taxable, invoice grouping, unit of measure ...),
a licence's new line its product's; the attributes survive storage of the change."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from shared.adapters.serialization import change_from_json, change_to_json
from shared.domain.model import BillingAttributes, ChangeKind
from shared.domain.planning import PsaView, TenantPlan, plan_tenant
from tests.unit.builders import SPB, TODAY, config, licence, line, snapshot, view

BASE_BILLING = BillingAttributes(taxable=True, invoice_grouping="3", unit_of_measure="User", purchase_item=True,
                                 special_order=False)
PRODUCT_BILLING = BillingAttributes(taxable=False, unit_of_measure="Each")


def plan(cfg: Any, count: int, psa: PsaView) -> TenantPlan:
    return plan_tenant(cfg, cfg.tenants[0], snapshot([(SPB, count, count)]), psa, TODAY, None)


def with_product_billing(psa: PsaView) -> PsaView:
    product = replace(psa.products[("cw", "1")], cost=Decimal("19.80"), billing=PRODUCT_BILLING)
    return replace(psa, products={("cw", "1"): product})


def test_a_prorate_line_takes_over_its_base_lines_unit_cost_and_billing_attributes() -> None:
    base = replace(line(quantity=20), unit_cost=Decimal("18.50"), billing=BASE_BILLING)
    result = plan(config(licence()), 23, with_product_billing(view(base)))
    prorate = next(c for c in result.changes if c.kind == ChangeKind.PRORATE)
    assert (prorate.unit_cost, prorate.billing) == (Decimal("18.50"), BASE_BILLING)


def test_a_credit_line_takes_over_its_base_lines_billing_attributes() -> None:
    base = replace(line(quantity=20), unit_cost=Decimal("18.50"), billing=BASE_BILLING)
    cfg = config(licence(allowNegativeProrate=True, decreasePolicy="apply"))
    result = plan(cfg, 18, with_product_billing(view(base)))
    credit = next(c for c in result.changes if c.kind == ChangeKind.CREDIT)
    assert credit.new_quantity == -2
    assert (credit.unit_cost, credit.billing) == (Decimal("18.50"), BASE_BILLING)


def test_a_new_line_takes_over_its_products_unit_cost_and_billing_attributes() -> None:
    cfg = config({"skuId": SPB, "agreementId": "100", "profile": "m365-bp"})
    result = plan(cfg, 4, with_product_billing(view()))
    (created,) = result.changes
    assert created.kind == ChangeKind.CREATE_LINE
    assert (created.unit_cost, created.billing) == (Decimal("19.80"), PRODUCT_BILLING)


def test_the_inherited_attributes_survive_storage_of_the_change() -> None:
    base = replace(line(quantity=20), unit_cost=Decimal("18.50"), billing=BASE_BILLING)
    prorate = next(c for c in plan(config(licence()), 23, view(base)).changes if c.kind == ChangeKind.PRORATE)
    assert change_from_json(change_to_json(prorate)) == prorate
    # a change stored before lines carried billing attributes reads back without them
    stored = json.loads(change_to_json(prorate))
    del stored["unit_cost"], stored["billing"]
    assert change_from_json(json.dumps(stored)) == replace(prorate, billing=None, unit_cost=None)
    assert prorate.effective_date == date(2026, 11, 25)
