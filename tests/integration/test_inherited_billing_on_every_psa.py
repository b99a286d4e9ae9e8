"""A sync of the sample MSP on each PSA, with taxable products and base lines that bill with
attributes of their own: every line the push creates bills as its base line (a ConnectWise prorate
addition) or, with none, as its product (a licence's new line), read back from the PSA."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from local_runner.azurite import Azurite
from shared.adapters.tables import TableStore
from tests.integration.msp import NOW, Msp, running_msp, sample_scenario

pytestmark = pytest.mark.integration

CREATED = "seatsync:l:"
PRORATE = "seatsync:c:"
MANAGED_USER, MONTHLY_BP = 7, 6  # the products of the sample's two new lines


def taxable_sample(psa: str) -> tuple[dict[str, Any], str]:
    """The PSA's sample with taxable products and, on ConnectWise, base additions taxed, grouped,
    costed and measured apart from their product."""
    scenario, config_text = sample_scenario(psa)
    scenario = copy.deepcopy(scenario)
    section = scenario[psa]
    section["today"] = NOW.date().isoformat()  # the emulator's day is the run's
    if psa == "connectwise":
        for item in section["catalog"]:
            if item["id"] in (MANAGED_USER, MONTHLY_BP):
                item.update(taxable=True, uom="User")
        for addition in section["additions"]:
            addition.update(taxable=True, invoiceGrouping="Microsoft 365", uom="Seat", unitCost=18.25,
                            specialOrder=True)
    elif psa == "autotask":
        for service in section["services"]:
            service["billingCodeId"] = 7100 + service["id"]
    else:
        for item in section["items"]:
            item.update(taxCode=2 if item["id"] in (MANAGED_USER, MONTHLY_BP) else 1, nominalCode=f"4{item['id']:03d}")
    return scenario, config_text


def created_lines(msp: Msp, psa: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(line SeatSync created, what it must bill like: its base line or its product), from the
    emulator's own state."""
    state = msp.emulators.emulator(psa).state()
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    if psa == "connectwise":
        additions = {a["id"]: a for g in state["agreements"] for a in g["additions"]}
        catalog = {c["id"]: c for c in state["catalog"]}
        for addition in additions.values():
            tag = str(addition.get("serialNumber") or "")
            if tag.startswith(PRORATE):
                pairs.append((addition, additions[int(tag.removeprefix(PRORATE).split(".")[0])]))
            elif tag.startswith(CREATED):
                pairs.append((addition, catalog[addition["product"]["id"]]))
    elif psa == "autotask":
        services = {s["id"]: s for s in state["services"]}
        pairs += [(line, services[line["serviceID"]]) for contract in state["contracts"]
                  for line in contract["services"] if str(line.get("internalDescription") or "").startswith(CREATED)]
    else:
        items = {i["id"]: i for i in state["items"]}
        pairs += [(line, items[line["_itemid"]]) for invoice in state["recurringInvoices"] for line in invoice["lines"]
                  if str(line.get("item_internal_reference") or "").startswith(CREATED)]
    return pairs


@pytest.mark.parametrize("psa", ["connectwise", "autotask", "halopsa"])
def test_lines_the_push_creates_bill_like_their_base_line_or_product(psa: str, azurite: Azurite, store: TableStore,
                                                                    tmp_path: Path) -> None:
    scenario, config_text = taxable_sample(psa)
    with running_msp(azurite, store, tmp_path, scenario=scenario, config_text=config_text) as msp:
        report = msp.sync()
        assert {c["kind"] for c in report["changes"] if c["status"] == "applied"} >= {"create-line"}
        pairs = created_lines(msp, psa)
        products = {line["product"]["id"] if psa == "connectwise" else line.get("serviceID", line.get("_itemid"))
                    for line, _ in pairs}
        assert {MANAGED_USER, MONTHLY_BP} <= products, "both new licence lines were created"
        for line, model in pairs:
            if psa == "connectwise" and "taxableFlag" in model and "product" in model:  # a prorate line and its base
                same = ("taxableFlag", "invoiceGrouping", "uom", "unitCost", "purchaseItemFlag", "specialOrderFlag",
                        "billCustomer")
                assert {k: line[k] for k in same} == {k: model[k] for k in same}
                assert (line["taxableFlag"], line["invoiceGrouping"]["name"], line["unitCost"]) == (
                    True, "Microsoft 365", 18.25)
            elif psa == "connectwise":  # a new line and its catalog item
                assert (line["taxableFlag"], line["uom"], Decimal(str(line["unitCost"]))) == (
                    True, "User", Decimal(str(model["cost"])))
            elif psa == "autotask":  # a new contract service bills with its service's billing code and cost
                assert line["unitCost"] == model["unitCost"]
                assert model["billingCodeID"] == 7100 + model["id"]
            else:
                assert (line["tax_code"], line["nominal_code"], line["unit_cost"]) == (
                    2, model["nominalcode"], model["recurringcost"])
        if psa == "connectwise":
            assert any(str(line.get("serialNumber")).startswith(PRORATE) for line, _ in pairs), "a prorate was made"
