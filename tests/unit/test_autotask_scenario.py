"""Validation of the ``autotask:`` scenario section, the state the emulator loads from it, and the
emulator's query language."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from emulators.autotask import AutotaskEmulator, parse_scenario
from emulators.autotask.query import Query, QueryError
from emulators.base import EmulatorError
from tests.psa_test_support import ScenarioSection

SECTION: dict[str, Any] = {
    "today": "2026-01-15",
    "users": [{"username": "api@msp.example", "secret": "s3cret", "integrationCode": "CODE1"}],
    "contractCategories": ["Standard", "Microsoft 365"],
    "companies": [{"id": 19, "name": "Fabrikam Ltd"}, {"id": 20, "name": "Contoso Ltd", "active": False}],
    "contacts": [{"companyId": 19, "firstName": "Ann", "email": "ann@fabrikam.com"}],
    "services": [{"id": 1, "name": "M365-BP", "unitPrice": 22, "unitCost": 19.8}],
    "contracts": [{"id": 100, "name": "Fabrikam M365", "companyId": 19, "startDate": "2026-01-01",
                   "endDate": "2026-12-31", "category": "Microsoft 365"}],
    "contractServices": [{"id": 500, "contractId": 100, "serviceId": 1, "units": 20}],
}


SECTIONS = ScenarioSection(SECTION, parse_scenario)
section, rejected = SECTIONS.changed, SECTIONS.rejected


def test_a_valid_section_is_read_with_its_defaults() -> None:
    scenario = parse_scenario(SECTION)
    assert scenario.today == date(2026, 1, 15)
    assert scenario.threshold.limit == 10000
    assert scenario.thread_limit == 3
    assert [c.name for c in scenario.categories] == ["Standard", "Microsoft 365"]
    assert scenario.contracts[0].period_type == 1  # Monthly
    assert scenario.contracts[0].category_id == 2
    assert scenario.contracts[0].contract_type == 7  # Recurring Service
    assert scenario.contacts[0].id == 1
    assert scenario.services[0].unit_price == Decimal("22")


def test_an_empty_section_is_an_empty_database() -> None:
    scenario = parse_scenario(None)
    assert scenario.companies == ()
    assert [c.name for c in scenario.categories] == ["Standard"]


@pytest.mark.parametrize(("changes", "message"), [
    ({"colour": "blue"}, "autotask.colour: unknown key"),
    ({"users": [{"username": "api", "secret": "x", "integrationCode": "C"}]},
     "autotask.users[0].username: an API user's username is an email address"),
    ({"companies": [{"id": 1, "name": "A"}, {"id": 1, "name": "B"}]}, "autotask.companies[1].id: duplicate id 1"),
    ({"contacts": [{"companyId": 99, "firstName": "X"}]}, "autotask.contacts[0].companyId: no company with id 99"),
    ({"contacts": [{"companyId": 19, "firstName": "X", "email": "nope"}]},
     "autotask.contacts[0].email: 'nope' is not an email address"),
    ({"contracts": [{"name": "C", "companyId": 19, "startDate": "2026-01-01", "endDate": "2025-01-01"}],
      "contractServices": []}, "autotask.contracts[0].endDate: 2025-01-01 is before startDate"),
    ({"contracts": [{"name": "C", "companyId": 19, "startDate": "2026-01-01", "endDate": "2026-12-31",
                     "periodType": "Daily"}], "contractServices": []},
     "autotask.contracts[0].periodType: must be one of Monthly, Quarterly, Semi-Annual, Yearly"),
    ({"contracts": [{"name": "C", "companyId": 19, "startDate": "2026-01-01", "endDate": "2026-12-31",
                     "category": "Nope"}], "contractServices": []}, "autotask.contracts[0].category: no contract"),
    ({"contractServices": [{"contractId": 100, "serviceId": 1, "units": "ten"}]},
     "autotask.contractServices[0].units: must be an integer, got 'ten'"),
    ({"contractServices": [{"contractId": 100, "serviceId": 1}, {"contractId": 100, "serviceId": 1}]},
     "autotask.contractServices[1].serviceId: service 1 is already on contract 100"),
    ({"contractServices": [{"contractId": 100, "serviceId": 1, "internalDescription": "x" * 101}]},
     "autotask.contractServices[0].internalDescription: must be at most 100 characters"),
    ({"adjustments": [{"contractServiceId": 500, "effectiveDate": "2027-02-01", "unitChange": 1}]},
     "autotask.adjustments[0].effectiveDate: 2027-02-01 is outside contract 100"),
    ({"adjustments": [{"contractServiceId": 500, "effectiveDate": "2026-02-01", "unitChange": 0}]},
     "autotask.adjustments[0].unitChange: must not be 0"),
    ({"threshold": {"limit": 0}}, "autotask.threshold.limit: must be at least 1"),
    ({"faults": [{"kind": "meteor"}]}, "autotask.faults[0]: fault kind must be one of"),
])
def test_problems_are_refused_naming_the_entry_and_key(changes: dict[str, Any], message: str) -> None:
    assert message in rejected(section(**changes))


def test_a_non_recurring_contract_holds_no_services() -> None:
    changes = {"contracts": [{"id": 100, "name": "T&M", "companyId": 19, "startDate": "2026-01-01",
                              "endDate": "2026-12-31", "type": "TimeAndMaterials"}]}
    assert "autotask.contractServices[0].contractId: contract 100 is not a Recurring Service contract" in rejected(
        section(**changes))


def test_units_cannot_go_below_zero() -> None:
    value = section(adjustments=[{"contractServiceId": 500, "effectiveDate": "2026-03-01", "unitChange": -21}])
    with pytest.raises(EmulatorError, match="contract service 500 would have fewer than 0 units"):
        AutotaskEmulator(value)


def test_unit_records_follow_billing_periods_and_split_at_adjustments() -> None:
    value = section(adjustments=[{"contractServiceId": 500, "effectiveDate": "2026-01-15", "unitChange": 5},
                                 {"contractServiceId": 500, "effectiveDate": "2026-03-01", "unitChange": -3}])
    emulator = AutotaskEmulator(value)
    records = emulator.unit_records(500)
    assert [(r["startDate"][:10], r["endDate"][:10], r["units"]) for r in records[:4]] == [
        ("2026-01-01", "2026-01-14", 20), ("2026-01-15", "2026-01-31", 25), ("2026-02-01", "2026-02-28", 25),
        ("2026-03-01", "2026-03-31", 22)]
    assert len(records) == 13  # twelve monthly periods, January split in two
    assert records[-1]["endDate"] == "2026-12-31T00:00:00Z"
    assert emulator.units_on(500, date(2026, 1, 14)) == 20
    assert emulator.units_on(500, date(2026, 6, 1)) == 22
    assert emulator.state()["contracts"][0]["services"][0]["units"] == 25


def test_yearly_periods_clamp_a_month_end_anchor() -> None:
    value = section(contracts=[{"id": 100, "name": "C", "companyId": 19, "startDate": "2024-02-29",
                                "endDate": "2027-02-27", "periodType": "Yearly"}])
    records = AutotaskEmulator(value).unit_records(500)
    assert [r["startDate"][:10] for r in records] == ["2024-02-29", "2025-02-28", "2026-02-28"]


def test_the_hourly_counter_uses_the_clock_and_other_integrations() -> None:
    now = [1000.0]
    emulator = AutotaskEmulator(section(threshold={"limit": 3, "otherUsage": 1}), clock=lambda: now[0])
    assert emulator._count_request() is None
    assert emulator._count_request() is None
    blocked = emulator._count_request()
    assert blocked is not None and blocked.status == 429
    assert "The request limit of 3 requests per 60 minutes" in blocked.body["errors"][0]
    now[0] += 3601
    assert emulator.threshold_information()["currentTimeframeRequestCount"] == 1
    emulator.set_other_usage(0)
    assert emulator.threshold_information()["currentTimeframeRequestCount"] == 0


def test_500_companies_load() -> None:
    value = section(
        companies=[{"id": n, "name": f"Company {n}"} for n in range(1, 501)],
        contracts=[{"id": 1000 + n, "name": f"C{n}", "companyId": n, "startDate": "2026-01-01",
                    "endDate": "2026-12-31"} for n in range(1, 501)],
        contractServices=[{"contractId": 1000 + n, "serviceId": 1, "units": n} for n in range(1, 501)],
        contacts=[],
    )
    emulator = AutotaskEmulator(value)
    state = emulator.state()
    assert len(state["contracts"]) == 500
    assert state["contracts"][-1]["services"][0]["units"] == 500


# --------------------------------------------------------------------------- the query language

FIELDS = {"id": "integer", "name": "string", "isActive": "boolean", "startDate": "datetime", "price": "decimal"}
RECORDS: list[dict[str, Any]] = [
    {"id": 1, "name": "Microsoft 365 E3", "isActive": True, "startDate": "2026-01-01T00:00:00Z", "price": 36.0},
    {"id": 2, "name": "Backup", "isActive": False, "startDate": "2025-06-01T00:00:00Z", "price": 5.0},
    {"id": 3, "name": None, "isActive": True, "startDate": None, "price": None},
]


def matching(*items: Any) -> list[int]:
    query = Query({"filter": list(items)}, "Services", FIELDS)
    return [r["id"] for r in RECORDS if query.predicate(r)]


def test_conditions_compare_by_field_type_and_ignore_case() -> None:
    assert matching({"op": "eq", "field": "NAME", "value": "backup"}) == [2]
    assert matching({"op": "gte", "field": "price", "value": "10"}) == [1]
    assert matching({"op": "lt", "field": "startDate", "value": "2026-01-01"}) == [2]
    assert matching({"op": "eq", "field": "isActive", "value": True}) == [1, 3]
    assert matching({"op": "contains", "field": "name", "value": "365"}) == [1]
    assert matching({"op": "beginsWith", "field": "name", "value": "micro"}) == [1]
    assert matching({"op": "endsWith", "field": "name", "value": "UP"}) == [2]
    assert matching({"op": "in", "field": "id", "value": [1, 3, 9]}) == [1, 3]
    assert matching({"op": "notIn", "field": "id", "value": [1]}) == [2, 3]
    assert matching({"op": "exist", "field": "name"}) == [1, 2]
    assert matching({"op": "notExist", "field": "name"}) == [3]
    assert matching({"op": "noteq", "field": "name", "value": "Backup"}) == [1, 3]


def test_items_are_anded_and_groups_nest() -> None:
    active = {"op": "eq", "field": "isActive", "value": True}
    assert matching({"op": "gte", "field": "id", "value": 1}, active) == [1, 3]
    group = {"op": "or", "items": [{"op": "eq", "field": "id", "value": 2},
                                   {"op": "and", "items": [{"op": "eq", "field": "isActive", "value": True},
                                                           {"op": "notExist", "field": "price"}]}]}
    assert matching(group) == [2, 3]


@pytest.mark.parametrize(("body", "message"), [
    ({"filter": []}, "A query must have a filter"),
    ({}, "A query must have a filter"),
    ({"filter": [{"op": "like", "field": "id", "value": 1}]}, "The filter operator 'like' is not valid"),
    ({"filter": [{"op": "eq", "field": "colour", "value": 1}]}, "Unable to find colour in the Services entity"),
    ({"filter": [{"op": "eq", "field": "id", "value": "one"}]}, "The value 'one' is not valid for id"),
    ({"filter": [{"op": "in", "field": "id", "value": 1}]}, "must be a list"),
    ({"filter": [{"op": "contains", "field": "id", "value": 1}]}, "applies to text fields"),
    ({"filter": [{"op": "or", "items": []}]}, "needs a non-empty items list"),
    ({"filter": [{"op": "gte", "field": "id", "value": 0}], "MaxRecords": 501}, "MaxRecords must be"),
    ({"filter": [{"op": "gte", "field": "id", "value": 0}], "IncludeFields": ["nope"]}, "Unable to find nope"),
])
def test_invalid_queries_are_refused_with_autotask_messages(body: dict[str, Any], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        Query(body, "Services", FIELDS)


def test_include_fields_keep_the_id_and_the_index_hint_reads_eq_and_in() -> None:
    query = Query({"filter": [{"op": "in", "field": "id", "value": [1, 2]}, {"op": "eq", "field": "ID", "value": 2}],
                   "IncludeFields": ["name"]}, "Services", FIELDS)
    assert query.shape(RECORDS[0]) == {"id": 1, "name": "Microsoft 365 E3"}
    assert query.wanted_ids("id") == {2}
    assert query.wanted_ids("name") is None
