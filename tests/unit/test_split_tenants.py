"""Every licensed seat of a tenant split between companies is billed exactly once, or named: the
catch-all company, users no filter matches (blank fields included), and the configuration rules
that keep one catch-all per tenant."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.billing import billable_items, unmatched_users
from shared.domain.model import DirectoryUser
from shared.domain.problems import ProblemKind
from shared.errors import ConfigError
from tests.unit.builders import E3, SPB, config, licence, snapshot, user

SALES: dict[str, Any] = {"psa": "cw", "companyId": "19", "userFilter": {"department": ["Sales"]}}
LEEDS: dict[str, Any] = {"psa": "cw", "companyId": "20", "userFilter": {"city": ["Leeds"]}}
REST: dict[str, Any] = {"psa": "cw", "companyId": "21", "catchAll": True}


def mapping(agreement: str, line: str, sku: str = SPB, **options: Any) -> dict[str, Any]:
    return {**licence(sku, **options), "agreementId": agreement, "lineId": line}


def split(*, catch_all: bool, rest_skus: tuple[str, ...] = (SPB,)) -> Any:
    companies = [{**SALES, "licences": [mapping("100", "500")]}, {**LEEDS, "licences": [mapping("200", "600")]}]
    if catch_all:
        companies.append({**REST, "licences": [mapping("300", f"70{i}", sku) for i, sku in enumerate(rest_skus)]})
    return config(companies=companies)


# Users with blank filter fields, as Entra returns them: absent, empty, spaces only.
BLANK = [user("none", SPB), user("empty", SPB, department="", city=""), user("spaces", SPB, department="  ",
                                                                                 city=" \t")]
PEOPLE = [user("ana", SPB, department="Sales"), user("ben", SPB, city="leeds "), *BLANK,
          user("di", department="Sales")]  # di holds no licence


def quantities(cfg: Any, users: list[DirectoryUser], skus: list[tuple[str, int, int]] | None = None
               ) -> tuple[dict[str, int], list[Any]]:
    items, problems = billable_items(cfg, cfg.tenants[0], snapshot(skus or [(SPB, 9, 5)], users))
    return {i.company.company_id: i.quantity for i in items if i.licence.sku_id == SPB}, problems


@pytest.mark.parametrize(("catch_all", "billed", "unmatched"), [
    (False, {"19": 1, "20": 1}, ("empty@fabrikam.example", "none@fabrikam.example", "spaces@fabrikam.example")),
    (True, {"19": 1, "20": 1, "21": 3}, ()),
], ids=["no-catch-all", "catch-all"])
def test_each_seat_is_billed_once_or_named(catch_all: bool, billed: dict[str, int],
                                           unmatched: tuple[str, ...]) -> None:
    counts, problems = quantities(split(catch_all=catch_all), PEOPLE)
    assert counts == billed
    assert sum(counts.values()) + len(unmatched) == 5, "5 users hold a seat"
    assert tuple(u for p in problems for u in p.users) == unmatched
    if unmatched:
        [problem] = problems
        assert (problem.kind, problem.blocks, problem.source, problem.label) == (
            ProblemKind.USERS_UNMATCHED, False, f"sku:{SPB}", "Microsoft 365 Business Premium")
        assert "match no company's user filter and the tenant has no catch-all company" in problem.message
        assert ("Seats nobody bills", "3") in problem.facts
        assert "none@fabrikam.example: office -, department -, city -, state -, country -" in problem.facts[1][1]


@pytest.mark.parametrize(("people", "billed"), [
    ([user("ana", SPB, department="Sales", city="York")], {"19": 1, "20": 0, "21": 0}),
    ([user("ana", SPB, department=" sales ")], {"19": 1, "20": 0, "21": 0}),
    ([user("ana", SPB, department="Salesforce")], {"19": 0, "20": 0, "21": 1}),
    ([user("ana", SPB, department=None, city="LEEDS")], {"19": 0, "20": 1, "21": 0}),
    ([user("ana", SPB, account_enabled=False)], {"19": 0, "20": 0, "21": 1}),
    ([user("ana", department="Nobody")], {"19": 0, "20": 0, "21": 0}),
], ids=["filter-wins", "case-and-spaces", "near-miss-goes-to-catch-all", "blank-then-city", "disabled-counted",
        "no-seat-no-bill"])
def test_the_catch_all_bills_the_users_no_filter_matches(people: list[DirectoryUser], billed: dict[str, int]) -> None:
    counts, problems = quantities(split(catch_all=True), people)
    assert counts == billed
    assert [p.kind for p in problems if p.kind == ProblemKind.USERS_UNMATCHED] == []


def test_a_catch_all_that_does_not_bill_a_licence_leaves_its_users_named() -> None:
    cfg = config(companies=[{**SALES, "licences": [mapping("100", "500"), mapping("100", "501", E3)]},
                            {**REST, "licences": [mapping("300", "700")]}])
    users = [user("ana", SPB, E3, department="Sales"), user("ed", SPB, E3)]
    problems = unmatched_users(cfg, cfg.tenants[0], snapshot([(SPB, 9, 2), (E3, 9, 2)], users))
    [problem] = problems
    assert (problem.sku_id, problem.users) == (E3, ("ed@fabrikam.example",))
    assert "the catch-all company cw 21 does not bill it" in problem.message


def test_users_whose_company_does_not_bill_a_licence_are_named() -> None:
    cfg = config(companies=[{**SALES, "licences": [mapping("100", "500")]},
                            {**LEEDS, "licences": [mapping("200", "600", E3)]},
                            {**REST, "licences": [mapping("300", "700"), mapping("300", "701", E3)]}])
    users = [user("ben", SPB, city="Leeds")]  # Leeds belongs to company 20, which bills only E3
    [problem] = unmatched_users(cfg, cfg.tenants[0], snapshot([(SPB, 9, 1)], users))
    assert problem.users == ("ben@fabrikam.example",)
    assert "the companies whose filters they match do not bill it" in problem.message


@pytest.mark.parametrize("cfg", [
    config(licence()),
    config(companies=[{**SALES, "licences": [licence(ignoreFilter=True)]}]),
], ids=["one-company-no-filter", "ignore-filter"])
def test_a_licence_counted_whole_has_no_unmatched_users(cfg: Any) -> None:
    assert unmatched_users(cfg, cfg.tenants[0], snapshot([(SPB, 9, 5)], PEOPLE)) == []


def test_a_single_filtered_company_names_the_seats_it_leaves_out() -> None:
    cfg = config(companies=[{**SALES, "licences": [licence()]}])
    counts, problems = quantities(cfg, PEOPLE)
    assert counts == {"19": 1}
    assert len(problems[0].users) == 4


def test_the_catch_all_counts_custom_licences_of_the_users_no_filter_matches() -> None:
    cfg = config(companies=[{**SALES, "licences": [{"custom": "people", "agreementId": "100", "lineId": "500"}]},
                            {**REST, "licences": [{"custom": "people", "agreementId": "300", "lineId": "700"}]}],
                 customLicences=[{"name": "people", "kind": "entra-users", "scope": "all"}])
    items, _ = billable_items(cfg, cfg.tenants[0], snapshot([], PEOPLE))
    assert [(i.company.company_id, i.quantity) for i in items] == [("19", 2), ("21", 4)]


# --------------------------------------------------------------------------- configuration rules


def refused(companies: list[dict[str, Any]]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config(companies=companies)
    return caught.value.problems


@pytest.mark.parametrize(("companies", "expected"), [
    ([{**SALES, "licences": [licence()]}, {**REST, "licences": [mapping("300", "700")]},
      {**REST, "companyId": "22", "licences": [mapping("400", "800")]}],
     "companies[2].catchAll: companies[1] is already the tenant's catch-all; a tenant has at most one"),
    ([{**REST, "licences": [licence()]}],
     "companies[0].catchAll: a catch-all bills the users no other company's filter matches, but no company of this "
     "tenant has a user filter"),
    ([{**SALES, "licences": [licence()]}, {**REST, "userFilter": {"city": ["York"]}, "licences": []}],
     "a catch-all company bills the users no other company's filter matches: give it no userFilter"),
    ([{**SALES, "licences": [licence()]}, {**LEEDS, "userFilter": {"city": ["Leeds", " "]}, "licences": []}],
     "a blank value matches nobody's field reliably"),
    ([{**SALES, "licences": [licence()]}, {"psa": "cw", "companyId": "21", "licences": [mapping("300", "700")]}],
     "is billed by several companies of the tenant, so each needs a user filter (or is the tenant's catch-all "
     "company)"),
], ids=["two-catch-alls", "catch-all-alone", "catch-all-with-filter", "blank-filter-value", "no-filter-no-catch-all"])
def test_catch_all_rules(companies: list[dict[str, Any]], expected: str) -> None:
    problems = refused(companies)
    assert any(expected in p for p in problems), problems


def test_a_catch_all_beside_filtered_companies_is_valid() -> None:
    cfg = split(catch_all=True)
    assert [c.catch_all for c in cfg.tenants[0].companies] == [False, False, True]


CUSTOM = {"name": "licensed-users", "kind": "entra-users", "scope": "licensed"}


def custom_mapping(agreement: str, line: str) -> dict[str, Any]:
    return {"custom": "licensed-users", "agreementId": agreement, "lineId": line}


@pytest.mark.parametrize(("definition", "users", "named"), [
    (CUSTOM, PEOPLE, ("empty@fabrikam.example", "none@fabrikam.example", "spaces@fabrikam.example")),
    ({"name": "licensed-users", "kind": "licences", "skuIds": [E3]},
     [user("ana", E3, department="Sales"), user("ed", E3), user("fay", SPB)], ("ed@fabrikam.example",)),
], ids=["entra-users", "licences"])
def test_a_custom_licence_in_a_split_tenant_names_the_users_no_mapping_counts(
        definition: dict[str, Any], users: list[DirectoryUser], named: tuple[str, ...]) -> None:
    cfg = config(companies=[{**SALES, "licences": [custom_mapping("100", "500")]},
                            {**LEEDS, "licences": [custom_mapping("200", "600")]}], customLicences=[definition])
    [problem] = unmatched_users(cfg, cfg.tenants[0], snapshot([(SPB, 9, 5), (E3, 9, 2)], users))
    assert (problem.kind, problem.source, problem.label, problem.users) == (
        ProblemKind.USERS_UNMATCHED, "custom:licensed-users", "licensed-users", named)
    assert "counted by custom licence 'licensed-users'" in problem.message
    assert "match no company's user filter and the tenant has no catch-all company" in problem.message


def test_a_custom_licence_billed_by_the_catch_all_or_counted_whole_names_nobody() -> None:
    companies = [{**SALES, "licences": [custom_mapping("100", "500")]},
                 {**LEEDS, "licences": [custom_mapping("200", "600")]},
                 {**REST, "licences": [custom_mapping("300", "700")]}]
    cfg = config(companies=companies, customLicences=[CUSTOM])
    assert unmatched_users(cfg, cfg.tenants[0], snapshot([(SPB, 9, 5)], PEOPLE)) == []
    whole = config(companies=[{**SALES, "licences": [{**custom_mapping("100", "500"), "ignoreFilter": True}]}],
                   customLicences=[CUSTOM])
    assert unmatched_users(whole, whole.tenants[0], snapshot([(SPB, 9, 5)], PEOPLE)) == []
    without_catch_all = config(companies=[{**SALES, "licences": [custom_mapping("100", "500")]},
                                          {**REST, "licences": [mapping("300", "700")]}], customLicences=[CUSTOM])
    problems = unmatched_users(without_catch_all, without_catch_all.tenants[0], snapshot([(SPB, 9, 5)], PEOPLE))
    [problem] = [p for p in problems if p.source == "custom:licensed-users"]
    assert "the catch-all company cw 21 does not bill it" in problem.message
    assert problem.users == ("ben@fabrikam.example", "empty@fabrikam.example", "none@fabrikam.example",
                             "spaces@fabrikam.example")
