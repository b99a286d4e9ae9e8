"""A Pax8 reseller end to end, on Azurite and the emulators: the tenant's Pax8 company is found
through the Microsoft subscription ids it shows (or named in the configuration), its commitment
and partner cost come from Pax8, and a profile priced from cost plans its price change in the dry
run."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from local_runner.azurite import Azurite
from shared.adapters.tables import TableStore
from tests.integration.msp import running_msp
from tests.integration.test_partner_end_to_end import ANNUAL_MS, MONTHLY_MS, split_scenario

pytestmark = pytest.mark.integration

COMPANY = "9ba32659-d339-4539-be21-1f461dc1a415"
PRODUCT = "1810aea9-0c95-421d-a77a-7ebccdfa2f6c"


def pax8_scenario(linked_by_subscription: bool = True) -> tuple[dict[str, Any], str]:
    scenario, config_text = split_scenario()
    scenario = copy.deepcopy(scenario)
    del scenario["partnercenter"]
    subs = [
        {"id": "e8f372b6-e2aa-4f3c-9baa-00000000000a", "productId": PRODUCT,
         "productName": "Microsoft 365 Business Premium", "quantity": 20, "billingTerm": "Monthly",
         "commitment": {"term": "Annual", "endDate": "2027-06-21"}, "startDate": "2026-06-22", "price": "22.00",
         "partnerCost": "18.70", "currencyCode": "USD"},
        {"id": "e8f372b6-e2aa-4f3c-9baa-00000000000b", "productId": PRODUCT,
         "productName": "Microsoft 365 Business Premium", "quantity": 5, "billingTerm": "Monthly",
         "commitment": {"term": "Monthly", "endDate": "2026-12-21"}, "startDate": "2026-06-22", "price": "26.40",
         "partnerCost": "22.44", "currencyCode": "USD"},
    ]
    if linked_by_subscription:
        subs[0]["vendorSubscriptionId"] = ANNUAL_MS
        subs[1]["vendorSubscriptionId"] = MONTHLY_MS
    scenario["pax8"] = {"applications": [{"clientId": "seatsync", "clientSecret": "pax8-secret"}],
                        "companies": [{"id": COMPANY, "name": "Bellows College", "subscriptions": subs},
                                      {"id": "0d3f48ae-9764-4b3a-9554-d28fe345230c", "name": "Another customer"}]}
    config = yaml.safe_load(config_text)
    config["subscriptionSources"] = [{"name": "pax8", "type": "pax8", "clientId": {"setting": "PAX8_CLIENT_ID"},
                                      "clientSecret": {"setting": "PAX8_CLIENT_SECRET"}, "url": "${PAX8_URL}",
                                      "tokenUrl": "${PAX8_TOKEN_URL}"}]
    config["billingProfiles"][1]["price"] = {"mode": "cost-plus", "percent": "25", "manageAdoptedLines": True}
    if not linked_by_subscription:
        config["tenants"][0]["partnerCustomers"] = [{"source": "pax8", "customerId": COMPANY}]
    return scenario, yaml.safe_dump(config)


@pytest.mark.parametrize("linked_by_subscription", [True, False])
def test_a_pax8_reseller(azurite: Azurite, store: TableStore, tmp_path: Path, linked_by_subscription: bool) -> None:
    scenario, config_text = pax8_scenario(linked_by_subscription)
    with running_msp(azurite, store, tmp_path, scenario=scenario, config_text=config_text) as msp:
        report = msp.sync(dry_run=True)
        [source] = report["sources"]
        assert (source["kind"], source["error"], source["customers"], source["subscriptions"]) == ("pax8", None, 2, 2)
        [decrease] = [c for c in report["changes"] if c["additionId"] == "901" and c["kind"] == "set-quantity"]
        assert decrease["status"] == "dry-run"
        assert "[Pax8: Monthly term, billed monthly, ends 2026-12-21]" in decrease["reason"]
        [price] = [c for c in report["changes"] if c["kind"] == "set-details"]
        assert (price["additionId"], price["unitPrice"], price["status"]) == ("901", "28.05", "dry-run")
        assert price["reason"].startswith("update the unit price 26.40 -> 28.05 from cost (22.44 USD + 25 %)")
        assert msp.cw_writes() == 0, "a dry run writes nothing"
        [both] = report["reconciliation"]["licences"]
        assert both["purchasedFrom"] == "Pax8 (pax8)" and both["purchased"] == 25
        assert both["cost"] == {"amount": "486.20", "currency": "USD"}, "20 x 18.70 + 5 x 22.44"
        requests = msp.emulators.emulator("pax8").requests_log()
        assert [r["path"] for r in requests if r["path"].startswith("/v1")] == ["/v1/companies", "/v1/subscriptions"]
        assert all(r["query"].get("size") == "200" for r in requests if r["path"].startswith("/v1"))
