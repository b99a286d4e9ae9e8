"""Billing problems as data: every kind says what to do, the stored form round-trips, rows
recorded before problems had kinds are still read, and a problem's key is stable."""

from __future__ import annotations

import pytest

from shared.domain.problems import (
    DEFAULT_ACTIONS,
    Problem,
    ProblemKind,
    count_by_kind,
    problem_from_json,
    problem_to_json,
)

TENANT = "aaaaaaaa-0000-0000-0000-000000000001"
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"


def test_every_kind_has_a_default_action() -> None:
    assert set(DEFAULT_ACTIONS) == set(ProblemKind)
    assert all(text.strip().endswith(".") for text in DEFAULT_ACTIONS.values())


@pytest.mark.parametrize("kind", list(ProblemKind))
def test_the_stored_form_round_trips(kind: ProblemKind) -> None:
    problem = Problem(kind, TENANT, "something is wrong", source=f"sku:{SPB}/sub:1,2", label="Business Premium",
                      psa="cw", company_id="19", agreement_id="100", line_id="500",
                      users=("ana@fabrikam.example", "ben@fabrikam.example"), facts=(("State", "Suspended"),),
                      blocks=kind != ProblemKind.PRICE_DIFFERS)
    stored = problem_to_json(problem)
    assert stored["kind"] == kind.value
    assert stored["skuId"] == SPB, "the Microsoft licence is named for exclusions"
    assert problem_from_json(stored, TENANT) == problem


def test_a_specific_action_replaces_the_default() -> None:
    problem = Problem(ProblemKind.LINE_MISSING, TENANT, "x", action="Ask the billing team.")
    assert problem.action == "Ask the billing team."
    assert Problem(ProblemKind.LINE_MISSING, TENANT, "x").action == DEFAULT_ACTIONS[ProblemKind.LINE_MISSING]


def test_rows_recorded_before_problems_had_kinds_are_read_as_unclassified() -> None:
    old = {"message": "Business Premium: agreement 100 was not found", "skuId": f"sku:{SPB}",
           "agreementId": "100", "lineId": None}
    problem = problem_from_json(old, TENANT)
    assert (problem.kind, problem.tenant_id, problem.source, problem.sku_id) == (
        ProblemKind.UNCLASSIFIED, TENANT, f"sku:{SPB}", SPB)
    assert problem.action == DEFAULT_ACTIONS[ProblemKind.UNCLASSIFIED]
    unknown = problem_from_json({"kind": "a-kind-from-the-future", "message": "m"}, TENANT)
    assert unknown.kind == ProblemKind.UNCLASSIFIED


def test_the_key_names_what_the_problem_is_about_not_its_wording() -> None:
    one = Problem(ProblemKind.USERS_UNMATCHED, TENANT, "1 user", source=f"sku:{SPB}", users=("a@x",))
    two = Problem(ProblemKind.USERS_UNMATCHED, TENANT.upper(), "2 users", source=f"sku:{SPB}", users=("a@x", "b@x"))
    other = Problem(ProblemKind.PRICE_DIFFERS, TENANT, "1 user", source=f"sku:{SPB}")
    assert one.key == two.key
    assert one.key != other.key


def test_counts_by_kind() -> None:
    problems = [Problem(ProblemKind.PRICE_DIFFERS, TENANT, "a"), Problem(ProblemKind.LINE_MISSING, TENANT, "b"),
                Problem(ProblemKind.PRICE_DIFFERS, TENANT, "c")]
    assert count_by_kind(problems) == {"line-missing": 1, "price-differs": 2}
