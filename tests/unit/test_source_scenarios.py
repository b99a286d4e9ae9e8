"""The ``partnercenter:`` and ``pax8:`` scenario sections are read strictly: every refusal names
the key and what is wrong."""

from __future__ import annotations

from decimal import Decimal

from emulators.partnercenter import parse_scenario as parse_partner_center
from emulators.pax8 import parse_scenario as parse_pax8
from tests.psa_test_support import ScenarioSection

GUID = "1f0a5b2c-0001-4a1b-8c2d-000000000001"
SUB = "1f0a5b2c-5c00-4000-8000-000000000001"

PARTNER_CENTER = ScenarioSection({
    "partnerTenantId": "0a0a0a0a-0000-4000-8000-000000000001",
    "applications": [{"clientId": "6d2b9f4e-8a1c-4b3d-9e5f-7a6b5c4d3e2f", "clientSecret": "s"}],
    "customers": [{"id": GUID, "companyName": "Fabrikam", "subscriptions": [
        {"id": SUB, "offerId": "CFQ7TTC0LCHC:0002", "quantity": 5, "termDuration": "P1Y",
         "effectiveStartDate": "2026-01-01", "commitmentEndDate": "2026-12-31", "unitPrice": "19.80",
         "refundableQuantity": [{"quantity": 2, "until": "2026-01-07T10:00:00Z"}]}]}],
}, parse_partner_center)

PAX8 = ScenarioSection({
    "applications": [{"clientId": "c", "clientSecret": "s"}],
    "companies": [{"id": GUID, "name": "Fabrikam", "subscriptions": [
        {"id": SUB, "productId": "1810aea9-0c95-421d-a77a-7ebccdfa2f6c", "quantity": 5, "billingTerm": "Annual",
         "commitment": {"term": "Annual", "endDate": "2027-02-28"}, "partnerCost": "18.70"}]}],
}, parse_pax8)


def _customer(**changes: object) -> dict[str, object]:
    sub = {**PARTNER_CENTER.valid["customers"][0]["subscriptions"][0], **changes}
    return PARTNER_CENTER.changed(customers=[{**PARTNER_CENTER.valid["customers"][0], "subscriptions": [sub]}])


def test_a_valid_partner_center_section() -> None:
    scenario = parse_partner_center(PARTNER_CENTER.valid)
    [customer] = scenario.customers
    [sub] = customer.subscriptions
    assert (sub.term, sub.billing_cycle, sub.unit_price, sub.currency) == ("P1Y", "monthly", Decimal("19.80"), "USD")
    assert sub.refundable is not None and sub.refundable[0].quantity == 2


def test_partner_center_refusals_name_the_key() -> None:
    assert PARTNER_CENTER.rejected(PARTNER_CENTER.changed(partnerTenantId="nope")) == \
        "partnercenter.partnerTenantId: must be a GUID, got 'nope'"
    assert "partnercenter.customers[0].subscriptions[0].termDuration: must be one of P1M, P1Y, P3Y" in \
        PARTNER_CENTER.rejected(_customer(termDuration="P2W"))
    assert "commitmentEndDate: 2025-01-01 is before effectiveStartDate 2026-01-01" in \
        PARTNER_CENTER.rejected(_customer(commitmentEndDate="2025-01-01"))
    assert "refundableQuantity[0].until: must carry a time zone" in \
        PARTNER_CENTER.rejected(_customer(refundableQuantity=[{"quantity": 1, "until": "2026-01-07T10:00:00"}]))
    assert "partnercenter.customers[0].subscriptions[0].colour: unknown key" in \
        PARTNER_CENTER.rejected(_customer(colour="blue"))
    twice = PARTNER_CENTER.changed(customers=PARTNER_CENTER.valid["customers"] * 2)
    assert "duplicate customer id" in PARTNER_CENTER.rejected(twice)


def test_pax8_refusals_name_the_key() -> None:
    scenario = parse_pax8(PAX8.valid)
    [sub] = scenario.subscriptions
    assert (sub.commitment_term, sub.partner_cost, sub.status) == ("Annual", Decimal("18.70"), "Active")
    company = PAX8.valid["companies"][0]

    def with_sub(**changes: object) -> dict[str, object]:
        return PAX8.changed(companies=[{**company, "subscriptions": [{**company["subscriptions"][0], **changes}]}])

    assert "pax8.companies[0].subscriptions[0].billingTerm: must be one of Monthly, Annual" in \
        PAX8.rejected(with_sub(billingTerm="Weekly"))
    assert "pax8.companies[0].subscriptions[0].quantity: must be at least 0, got -1" in \
        PAX8.rejected(with_sub(quantity=-1))
    assert "pax8.companies[0].subscriptions[0].vendorSubscriptionId: must be a GUID" in \
        PAX8.rejected(with_sub(vendorSubscriptionId="x"))
    assert "pax8.rateLimit.requestsPerMinute: is required" in PAX8.rejected(PAX8.changed(rateLimit={}))
