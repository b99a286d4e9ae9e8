"""The ConnectWise query language of the emulator: conditions, childConditions, orderBy, fields."""

from __future__ import annotations

from typing import Any

import pytest

from emulators.connectwise.conditions import (
    ConditionError,
    compile_child_conditions,
    compile_conditions,
    compile_order_by,
    parse_fields,
    project,
    sort_records,
    tokenize,
)
from emulators.connectwise.emulator import ADDITION_SPEC, AGREEMENT_SPEC, CONTACT_SPEC


def agreement(ident: int, name: str, company: int, type_name: str, *, status: str = "Active",
              prorate: bool = True, end: str | None = None, updated: str = "2026-01-10T08:00:00Z") -> dict[str, Any]:
    return {
        "id": ident, "name": name, "type": {"id": 1, "name": type_name},
        "company": {"id": company, "identifier": f"C{company}", "name": f"Company {company}"},
        "agreementStatus": status, "prorateFlag": prorate, "billAmount": 0.0, "endDate": end,
        "startDate": "2026-01-01T00:00:00Z", "_info": {"lastUpdated": updated},
    }


AGREEMENTS = [
    agreement(100, "Fabrikam M365", 19, "Microsoft 365"),
    agreement(101, "Fabrikam Backup", 19, "Backup", prorate=False),
    agreement(102, "Contoso M365", 20, "Microsoft 365", status="Cancelled", end="2026-03-31T00:00:00Z"),
    agreement(103, "Contoso \"Legacy\" plan", 20, "M365 legacy", updated="2025-12-01T00:00:00Z"),
]


def ids(conditions: str) -> list[int]:
    predicate = compile_conditions(conditions, AGREEMENT_SPEC)
    return [record["id"] for record in AGREEMENTS if predicate(record)]


def test_equality_on_a_nested_reference_field_selects_the_company() -> None:
    assert ids("company/id = 19") == [100, 101]


def test_and_binds_tighter_than_or_and_parentheses_override_it() -> None:
    assert ids('company/id = 20 or company/id = 19 and prorateFlag = false') == [101, 102, 103]
    assert ids('(company/id = 20 or company/id = 19) and prorateFlag = false') == [101]


def test_in_and_not_in_lists() -> None:
    assert ids("id in (100, 102, 999)") == [100, 102]
    assert ids("id not in (100, 102)") == [101, 103]


def test_like_uses_star_and_percent_wildcards_case_insensitively() -> None:
    assert ids('type/name like "m365*"') == [103]
    assert ids('name like "%M365"') == [100, 102]
    assert ids('name not like "*M365"') == [101, 103]


def test_contains_is_a_case_insensitive_substring_match() -> None:
    assert ids('name contains "backup"') == [101]
    assert ids('name not contains "contoso"') == [100, 101]


def test_string_equality_ignores_case_and_escaped_quotes_work() -> None:
    assert ids('agreementStatus = "active"') == [100, 101, 103]
    assert ids('name = "contoso \\"legacy\\" plan"') == [103]


def test_null_and_not_null_comparisons() -> None:
    assert ids("endDate = null") == [100, 101, 103]
    assert ids("endDate != null") == [102]


def test_datetimes_in_square_brackets_compare_as_instants() -> None:
    assert ids("_info/lastUpdated < [2026-01-01T00:00:00Z]") == [103]
    assert ids("lastUpdated >= [2026-01-10T08:00:00Z]") == [100, 101, 102]
    assert ids("endDate > [2026-03-30]") == [102]


def test_booleans_and_keywords_are_case_insensitive() -> None:
    assert ids("ProrateFlag = False AND Company/Id = 19") == [101]


def test_numbers_compare_numerically_and_a_quoted_number_is_accepted_for_a_numeric_field() -> None:
    assert ids("id >= 102") == [102, 103]
    assert ids('company/id = "20"') == [102, 103]


def test_not_before_parentheses_negates_the_group() -> None:
    assert ids("not (company/id = 19)") == [102, 103]


def test_a_comparison_with_a_null_field_is_never_true() -> None:
    assert ids('endDate < [2030-01-01T00:00:00Z]') == [102]


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ("company/id = 19 and (foo = 1", "unknown field 'foo' at position 22"),
        ("company/id = 19 and (id = 1", "expected ')' at the end"),
        ("company/id 19", "expected an operator after 'company/id' at position 12"),
        ("company/id =", "expected a value, found 'nothing' at the end"),
        ('name = "unterminated', "unexpected character '\"' at position 8"),
        ("company = 19", "'company' is an object: compare one of its fields"),
        ('startDate > "2026-01-01"', "'startDate' is a datetime: write the value in square brackets"),
        ("endDate > [yesterday]", "[yesterday] at position 11 is not a datetime"),
        ('prorateFlag = "yes"', "'prorateFlag' is a boolean"),
        ('company/id = "nineteen"', "'company/id' is a number, 'nineteen' is not"),
        ("name like 5", "like needs a string value"),
        ("id < null", "null can only be compared with = or !="),
        ("", "is empty"),
        ("id = 1 id = 2", "unexpected 'id' at position 8"),
        ("id not = 1", "expected like, contains or in after not"),
    ],
)
def test_malformed_conditions_are_rejected_with_the_position(conditions: str, message: str) -> None:
    with pytest.raises(ConditionError) as caught:
        compile_conditions(conditions, AGREEMENT_SPEC)
    assert message in str(caught.value)
    assert caught.value.parameter == "conditions"


def test_tokenizer_reads_paths_dates_and_negative_numbers() -> None:
    kinds = [(t.kind, t.text) for t in tokenize("quantity>-1 and _info/lastUpdated<[2026-01-01]")]
    assert kinds == [("word", "quantity"), ("op", ">"), ("num", "-1"), ("kw", "and"),
                     ("word", "_info/lastUpdated"), ("op", "<"), ("date", "[2026-01-01]"), ("end", "")]


def test_child_conditions_match_when_one_array_element_satisfies_every_clause() -> None:
    contacts = [
        {"id": 1, "communicationItems": [
            {"value": "ann@fabrikam.com", "communicationType": "Email"},
            {"value": "+1 555 0100", "communicationType": "Phone"}]},
        {"id": 2, "communicationItems": [
            {"value": "bob@contoso.com", "communicationType": "Phone"}]},
        {"id": 3, "communicationItems": []},
    ]
    predicate = compile_child_conditions(
        'communicationItems/value like "*@*.com" and communicationItems/communicationType = "Email"', CONTACT_SPEC)
    assert [c["id"] for c in contacts if predicate(c)] == [1]


def test_child_conditions_must_stay_on_one_array_field() -> None:
    with pytest.raises(ConditionError, match="one array field"):
        compile_child_conditions('communicationItems/value = "x" and firstName = "Ann"', CONTACT_SPEC)


def test_order_by_sorts_on_several_keys_with_nulls_first() -> None:
    records = [dict(r) for r in AGREEMENTS]
    sort_records(records, compile_order_by("company/id desc, endDate asc", AGREEMENT_SPEC))
    assert [r["id"] for r in records] == [103, 102, 100, 101]


def test_order_by_rejects_unknown_fields_and_directions() -> None:
    with pytest.raises(ConditionError, match="unknown or unsortable field 'nope'"):
        compile_order_by("nope asc", AGREEMENT_SPEC)
    with pytest.raises(ConditionError, match=r"is not 'field asc\|desc'"):
        compile_order_by("id sideways", AGREEMENT_SPEC)


def test_fields_projection_keeps_nested_fields_only() -> None:
    record = {"id": 500, "product": {"id": 1, "identifier": "M365-BP"}, "quantity": 20.0, "unitPrice": 22.0}
    assert project(record, parse_fields("id, product/identifier,Quantity,missing")) == {
        "id": 500, "product": {"identifier": "M365-BP"}, "quantity": 20.0}


def test_addition_schema_knows_the_documented_fields() -> None:
    predicate = compile_conditions(
        'billCustomer = "Billable" and cancelledDate = null and serialNumber contains "seat"', ADDITION_SPEC)
    assert predicate({"billCustomer": "Billable", "cancelledDate": None, "serialNumber": "seatsync:sku"})
    assert not predicate({"billCustomer": "NoCharge", "cancelledDate": None, "serialNumber": "seatsync:sku"})
