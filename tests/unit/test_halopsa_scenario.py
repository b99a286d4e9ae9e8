"""Validation of the ``halopsa:`` scenario section and the state the emulator loads from it."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from emulators.halopsa import HaloEmulator, parse_scenario
from emulators.halopsa.emulator import period_of
from tests.psa_test_support import ScenarioSection

SECTION: dict[str, Any] = {
    "today": "2026-01-15",
    "applications": [{"clientId": "app", "clientSecret": "s3cret"}],
    "clients": [{"id": 19, "name": "Fabrikam Ltd"}],
    "users": [{"clientId": 19, "firstName": "Ann", "email": "ann@fabrikam.com"}],
    "items": [{"id": 1, "name": "M365-BP", "price": 22, "cost": 19.8}],
    "contracts": [{"id": 7, "clientId": 19, "ref": "FAB-1", "startDate": "2026-01-01"}],
    "recurringInvoices": [{"clientId": 19, "reference": "Fabrikam M365", "startDate": "2026-01-01",
                           "contractId": 7}],
    "lines": [{"invoiceId": -1, "itemId": 1, "quantity": 20}],
}


SECTIONS = ScenarioSection(SECTION, parse_scenario)
section, rejected = SECTIONS.changed, SECTIONS.rejected


def test_a_valid_section_is_read_with_its_defaults() -> None:
    scenario = parse_scenario(SECTION)
    assert scenario.today == date(2026, 1, 15)
    assert scenario.tenant is None
    assert scenario.rate_limit is not None and scenario.rate_limit.requests_per_5_minutes == 300
    assert scenario.allow_negative_prorata is False
    assert scenario.recurring_invoices[0].id == -1  # recurring invoices have negative ids, as in Halo
    assert scenario.recurring_invoices[0].period == "Monthly"
    assert scenario.lines[0].id == 1
    assert scenario.users[0].id == 1


def test_negative_ids_are_assigned_below_the_smallest_one_given() -> None:
    invoices = [{"id": -5, "clientId": 19, "reference": "A", "startDate": "2026-01-01"},
                {"clientId": 19, "reference": "B", "startDate": "2026-01-01"}]
    scenario = parse_scenario(section(recurringInvoices=invoices, lines=[]))
    assert [i.id for i in scenario.recurring_invoices] == [-5, -6]


def test_a_rate_limit_of_null_switches_it_off() -> None:
    assert parse_scenario(section(rateLimit=None)).rate_limit is None
    limited = parse_scenario(section(rateLimit={"requestsPer5Minutes": 5, "retryAfter": False})).rate_limit
    assert limited is not None and (limited.requests_per_5_minutes, limited.retry_after) == (5, False)


@pytest.mark.parametrize(("changes", "message"), [
    ({"colour": "blue"}, "halopsa.colour: unknown key"),
    ({"applications": [{"clientId": "x"}]}, "halopsa.applications[0].clientSecret: is required"),
    ({"users": [{"clientId": 99, "firstName": "X"}]}, "halopsa.users[0].clientId: no client with id 99"),
    ({"items": [{"name": "A", "price": "cheap"}]}, "halopsa.items[0].price: must be a number, got 'cheap'"),
    ({"recurringInvoices": [{"id": 4, "clientId": 19, "reference": "A", "startDate": "2026-01-01"}]},
     "halopsa.recurringInvoices[0].id: must be at most -1"),
    ({"recurringInvoices": [{"clientId": 19, "reference": "A", "startDate": "2026-01-01", "period": "Daily"}]},
     "halopsa.recurringInvoices[0].period: must be one of Weekly, Monthly"),
    ({"recurringInvoices": [{"clientId": 19, "reference": "A", "startDate": "2026-01-01", "contractId": 8}]},
     "halopsa.recurringInvoices[0].contractId: no contract with id 8"),
    ({"lines": [{"invoiceId": -9, "itemId": 1, "quantity": 1}]}, "halopsa.lines[0].invoiceId: no recurring invoice"),
    ({"lines": [{"invoiceId": -1, "itemId": 9, "quantity": 1}]}, "halopsa.lines[0].itemId: no item with id 9"),
    ({"lines": [{"invoiceId": -1, "itemId": 1, "quantity": -1}]}, "halopsa.lines[0].quantity: must be at least 0"),
    ({"rateLimit": {"requestsPer5Minutes": 0}}, "halopsa.rateLimit.requestsPer5Minutes: must be at least 1"),
    ({"contracts": [{"clientId": 19, "ref": "X", "startDate": "2026-02-01", "endDate": "2026-01-01"}]},
     "halopsa.contracts[0].endDate: 2026-01-01 is before startDate"),
    ({"faults": [{"kind": "throttle", "colour": 1}]}, "halopsa.faults[0]: unknown fault rule fields"),
])
def test_problems_are_refused_naming_the_entry_and_key(changes: dict[str, Any], message: str) -> None:
    assert message in rejected(section(**changes))


@pytest.mark.parametrize(("day", "anchor", "period", "expected"), [
    (date(2026, 1, 15), date(2026, 1, 1), "Monthly", (date(2026, 1, 1), date(2026, 1, 31))),
    (date(2026, 2, 28), date(2025, 1, 31), "Monthly", (date(2026, 2, 28), date(2026, 3, 30))),
    (date(2026, 1, 15), date(2025, 11, 1), "Quarterly", (date(2025, 11, 1), date(2026, 1, 31))),
    (date(2026, 1, 15), date(2026, 1, 5), "Weekly", (date(2026, 1, 12), date(2026, 1, 18))),
    (date(2026, 1, 15), date(2024, 2, 29), "Yearly", (date(2025, 2, 28), date(2026, 2, 27))),
    (date(2025, 12, 1), date(2026, 1, 1), "Monthly", (date(2026, 1, 1), date(2026, 1, 31))),
])
def test_billing_periods_are_anchored_on_the_start_date(day: date, anchor: date, period: str,
                                                        expected: tuple[date, date]) -> None:
    assert period_of(day, anchor, period) == expected


def test_the_loaded_invoice_shows_its_schedule_and_lines() -> None:
    state = HaloEmulator(SECTION).state()
    invoice = state["recurringInvoices"][0]
    assert invoice["id"] == -1
    assert invoice["period"] == 2
    assert invoice["lastcreated"] == "2026-01-01T00:00:00"
    assert invoice["nextcreationdate"] == "2026-02-01T00:00:00"
    assert (invoice["period_start_date"], invoice["period_end_date"]) == ("2026-02-01T00:00:00", "2026-02-28T00:00:00")
    assert invoice["nextcreationperiod"] == "01/02/2026 0:00 - 28/02/2026 0:00"
    assert invoice["contract_ref"] == "FAB-1"
    line = invoice["lines"][0]
    assert (line["id"], line["ihid"], line["_itemid"], line["qty_order"], line["unit_price"]) == (1, -1, 1, 20.0, 22.0)
    assert line["net_amount"] == 440.0
    assert line["billed_quantity"] == 20.0
    assert state["contracts"][0]["contracttype_name"] == "Managed Services"


def test_500_clients_load() -> None:
    value = section(
        clients=[{"id": n, "name": f"Client {n}"} for n in range(1, 501)],
        users=[], contracts=[],
        recurringInvoices=[{"id": -n, "clientId": n, "reference": f"R{n}", "startDate": "2026-01-01"}
                           for n in range(1, 501)],
        lines=[{"invoiceId": -n, "itemId": 1, "quantity": n} for n in range(1, 501)],
    )
    state = HaloEmulator(value).state()
    assert len(state["recurringInvoices"]) == 500
