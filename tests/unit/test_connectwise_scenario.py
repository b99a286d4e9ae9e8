"""Validation of the ``connectwise:`` scenario section and the state the emulator loads from it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import yaml

from emulators.connectwise import ConnectWiseEmulator, parse_scenario
from tests.psa_test_support import ScenarioSection

CLIENT_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"

SECTION: dict[str, Any] = {
    "codebase": "v2025_1",
    "companyId": "seatsyncmsp",
    "today": "2026-01-15",
    "credentials": [{"publicKey": "pub", "privateKey": "priv", "clientId": CLIENT_ID}],
    "companies": [{"id": 19, "identifier": "Fabrikam", "name": "Fabrikam Ltd", "website": "fabrikam.com"},
                  {"id": 20, "identifier": "Contoso", "name": "Contoso Ltd"}],
    "contacts": [{"id": 7, "companyId": 19, "firstName": "Ann", "lastName": "Lee", "email": "ann@fabrikam.com"}],
    "catalog": [{"id": 1, "identifier": "M365-BP", "description": "Microsoft 365 Business Premium",
                 "price": 22.00, "cost": 19.80}],
    "agreementTypes": [{"id": 1, "name": "Microsoft 365", "prorate": True}],
    "agreements": [{"id": 100, "name": "Fabrikam M365", "companyId": 19, "typeId": 1, "startDate": "2026-01-01"}],
    "additions": [{"id": 500, "agreementId": 100, "productIdentifier": "M365-BP", "quantity": 20,
                   "effectiveDate": "2026-01-01"}],
}


SECTIONS = ScenarioSection(SECTION, parse_scenario)
section, rejected = SECTIONS.changed, SECTIONS.rejected


def test_a_valid_section_is_read_with_its_defaults() -> None:
    scenario = parse_scenario(SECTION)
    assert scenario.codebase == "v2025_1"
    assert scenario.today == date(2026, 1, 15)
    assert scenario.require_client_id is True
    assert scenario.cloud is False
    assert scenario.catalog[0].price == Decimal("22.0")
    assert scenario.additions[0].bill_customer == "Billable"
    assert scenario.agreements[0].prorate is None  # follows the agreement type


def test_an_empty_section_is_an_empty_psa() -> None:
    scenario = parse_scenario(None)
    assert scenario.companies == ()
    assert scenario.codebase == "v4_6_release"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"colour": "blue"}, "connectwise.colour: unknown key"),
        ({"codebase": "release 4"}, "connectwise.codebase: must look like v4_6_release"),
        ({"credentials": [{"publicKey": "p"}]}, "connectwise.credentials[0].privateKey: is required"),
        ({"credentials": [{"publicKey": "p", "privateKey": "q", "clientId": "not-a-guid"}]},
         "connectwise.credentials[0].clientId: must be a GUID"),
        ({"rateLimit": {"requestsPerMinute": 0}}, "connectwise.rateLimit.requestsPerMinute: must be at least 1"),
        ({"faults": [{"kind": "meteor"}]}, "connectwise.faults[0]: fault kind must be one of"),
    ],
)
def test_top_level_problems_name_the_key(changes: dict[str, Any], message: str) -> None:
    assert message in rejected(section(**changes))


def test_entry_problems_name_the_entry_and_key() -> None:
    bad = section()
    bad["additions"] = bad["additions"] * 3 + [dict(bad["additions"][0], id=503, quantity="ten")]
    bad["additions"][1] = dict(bad["additions"][1], id=501)
    bad["additions"][2] = dict(bad["additions"][2], id=502)
    assert "connectwise.additions[3].quantity: must be a number, got 'ten'" in rejected(bad)


@pytest.mark.parametrize(
    ("key", "entry", "message"),
    [
        ("additions", {"agreementId": 100, "productIdentifier": "NOPE", "quantity": 1},
         "connectwise.additions[0].productIdentifier: no catalog item 'NOPE'"),
        ("additions", {"agreementId": 999, "productIdentifier": "M365-BP", "quantity": 1},
         "connectwise.additions[0].agreementId: no agreement with id 999"),
        ("additions", {"agreementId": 100, "quantity": 1},
         "connectwise.additions[0].productIdentifier: give exactly one of productId and productIdentifier"),
        ("additions", {"agreementId": 100, "productId": 1, "quantity": 1, "billCustomer": "Sometimes"},
         "connectwise.additions[0].billCustomer: must be one of Billable, DoNotBill, NoCharge"),
        ("additions", {"agreementId": 100, "productId": 1, "quantity": 1, "serialNumber": "x" * 51},
         "connectwise.additions[0].serialNumber: must be at most 50 characters"),
        ("additions", {"agreementId": 100, "productId": 1, "quantity": 1, "effectiveDate": "2026-02-01",
                       "cancelledDate": "2026-01-01"},
         "connectwise.additions[0].cancelledDate: 2026-01-01 is before effectiveDate 2026-02-01"),
        ("additions", {"agreementId": 100, "productId": 1, "quantity": True},
         "connectwise.additions[0].quantity: must be a number, got True"),
        ("agreements", {"name": "X", "companyId": 99, "typeId": 1, "startDate": "2026-01-01"},
         "connectwise.agreements[0].companyId: no company with id 99"),
        ("agreements", {"name": "X", "companyId": 19, "typeId": 1, "startDate": "someday"},
         "connectwise.agreements[0].startDate: must be a date like 2026-01-01"),
        ("agreements", {"name": "X", "companyId": 19, "typeId": 1, "startDate": "2026-01-01",
                        "periodType": "Later"},
         "connectwise.agreements[0].periodType: must be one of Current, Future, Both, Undefined"),
        ("contacts", {"companyId": 19, "firstName": "Ann", "email": "ann-at-fabrikam"},
         "connectwise.contacts[0].email: 'ann-at-fabrikam' is not an email address"),
    ],
)
def test_reference_and_value_problems_name_the_entry(key: str, entry: dict[str, Any], message: str) -> None:
    bad = section()
    if key == "agreements":
        bad["additions"] = []
    bad[key] = [entry]
    assert message in rejected(bad)


def test_duplicate_company_identifiers_are_rejected_whatever_their_case() -> None:
    bad = section(companies=[{"identifier": "Fabrikam", "name": "One"}, {"identifier": "fabrikam", "name": "Two"}],
                  contacts=[], agreements=[], additions=[])
    assert ("connectwise.companies[1].identifier: duplicate identifier 'fabrikam' (also connectwise.companies[0])"
            in rejected(bad))


def test_duplicate_ids_are_rejected() -> None:
    bad = section(catalog=[{"id": 1, "identifier": "A", "description": "A"},
                           {"id": 1, "identifier": "B", "description": "B"}], additions=[])
    assert "connectwise.catalog[1].id: duplicate id 1 (also connectwise.catalog[0])" in rejected(bad)


def test_missing_ids_follow_the_largest_given_in_file_order() -> None:
    scenario = parse_scenario(section(additions=[
        {"agreementId": 100, "productId": 1, "quantity": 1},
        {"id": 700, "agreementId": 100, "productId": 1, "quantity": 2},
        {"agreementId": 100, "productId": 1, "quantity": 3},
    ]))
    assert [a.id for a in scenario.additions] == [701, 700, 702]


def test_yaml_dates_and_numbers_are_accepted() -> None:
    document = yaml.safe_load("""
connectwise:
  today: 2026-01-15
  companies: [{id: 19, identifier: Fabrikam, name: Fabrikam Ltd}]
  catalog: [{id: 1, identifier: M365-BP, description: Business Premium, price: 22.00, cost: 19.80}]
  agreementTypes: [{id: 1, name: Microsoft 365}]
  agreements: [{id: 100, name: Fabrikam M365, companyId: 19, typeId: 1, prorate: true, startDate: 2026-01-01}]
  additions: [{id: 500, agreementId: 100, productIdentifier: M365-BP, quantity: 20, effectiveDate: 2026-01-01}]
""")
    emulator = ConnectWiseEmulator.from_document(document)
    agreement = emulator.state()["agreements"][0]
    assert agreement["startDate"] == "2026-01-01T00:00:00Z"
    assert agreement["prorateFlag"] is True
    assert agreement["additions"][0]["quantity"] == 20.0


def test_state_shows_records_as_the_api_does() -> None:
    state = ConnectWiseEmulator(SECTION).state()
    assert state["codebase"] == "v2025_1"
    assert [c["identifier"] for c in state["companies"]] == ["Fabrikam", "Contoso"]
    agreement = state["agreements"][0]
    assert agreement["company"] == {"id": 19, "identifier": "Fabrikam", "name": "Fabrikam Ltd"}
    assert agreement["type"] == {"id": 1, "name": "Microsoft 365"}
    assert agreement["billingCycle"] == {"id": 1, "name": "Monthly"}
    assert agreement["agreementStatus"] == "Active"
    assert agreement["prorateFlag"] is True
    addition = agreement["additions"][0]
    assert addition["product"] == {"id": 1, "identifier": "M365-BP"}
    assert addition["unitPrice"] == 22.0
    assert addition["unitCost"] == 19.8
    assert addition["extPrice"] == 440.0
    assert addition["billedQuantity"] == 20.0
    assert addition["description"] == "Microsoft 365 Business Premium"
    assert addition["_info"]["lastUpdated"] == "2026-01-15T00:00:00Z"
    assert state["contacts"][0]["communicationItems"][0]["value"] == "ann@fabrikam.com"


def test_agreement_status_follows_dates_and_cancellation() -> None:
    state = ConnectWiseEmulator(section(additions=[], agreements=[
        {"id": 1, "name": "Now", "companyId": 19, "typeId": 1, "startDate": "2026-01-01"},
        {"id": 2, "name": "Later", "companyId": 19, "typeId": 1, "startDate": "2026-02-01"},
        {"id": 3, "name": "Over", "companyId": 19, "typeId": 1, "startDate": "2025-01-01", "endDate": "2025-12-31"},
        {"id": 4, "name": "Off", "companyId": 19, "typeId": 1, "startDate": "2025-01-01", "cancelled": True},
    ])).state()
    assert [a["agreementStatus"] for a in state["agreements"]] == ["Active", "Inactive", "Expired", "Cancelled"]


def test_a_prorated_monthly_addition_gets_a_prorate_price_for_its_first_month() -> None:
    state = ConnectWiseEmulator(section(additions=[
        {"id": 500, "agreementId": 100, "productId": 1, "quantity": 2, "effectiveDate": "2026-01-17"}])).state()
    addition = state["agreements"][0]["additions"][0]
    assert addition["proratePrice"] == 10.65  # 22.00 x 15/31
    assert addition["extendedProratePrice"] == 21.29


def test_a_large_scenario_loads() -> None:
    big = section(additions=[], agreements=[], companies=[], contacts=[])
    big["companies"] = [{"id": c, "identifier": f"C{c}", "name": f"Company {c}"} for c in range(1, 501)]
    big["agreements"] = [{"id": c * 10 + k, "name": f"A{c}-{k}", "companyId": c, "typeId": 1,
                          "startDate": "2026-01-01"} for c in range(1, 501) for k in range(2)]
    big["additions"] = [{"agreementId": a["id"], "productId": 1, "quantity": n + 1}
                        for a in big["agreements"] for n in range(5)]
    emulator = ConnectWiseEmulator(big)
    assert sum(len(a) for a in emulator.additions.values()) == 5000
