"""Which of Autotask's HTTP 500 answers are worth retrying: Autotask answers a query or a write it
refuses as it stands with 500 and ``{"errors": [...]}`` naming what is wrong, and a server fault
with 500 too."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from shared.adapters.autotask import _final, _refused_request


def answer(status: int, body: Any) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = (body if isinstance(body, str) else json.dumps(body)).encode()
    return response


@pytest.mark.parametrize("errors", [
    ["Unable to find projectID in the TimeEntry Entity."],
    ["When assigning a Resource, you must assign both a assignedResourceID and assignedResourceRoleID."],
    ["Value does not exist for the required field status."],
    ["The field unitPrice is read-only on update."],
    ["The value 'ten' is not valid for unitChange: it must be a whole number."],
    ["The Service 1 is already associated with Contract 100 (ContractService 500)."],
    ["Error converting value \"abc\" to type 'System.Int32'. Path 'serviceID'."],
    [{"message": "The invoiceDescription field cannot be longer than 1000 characters (got 1200)."}],
])
def test_a_500_naming_a_validation_problem_is_refused_and_final(errors: list[Any]) -> None:
    response = answer(500, {"errors": errors})
    assert _refused_request(response) and _final(response)


@pytest.mark.parametrize("body", [
    {"errors": ["An error has occurred."]},
    {"errors": ["An unexpected error occurred. Please try again."]},
    {"errors": ["Transaction was deadlocked on lock resources; rerun the transaction. Invalid state."]},
    {"errors": ["The operation has timed out: the value is not valid yet."]},
    {"Message": "An error has occurred."},
    {"errors": []},
    "<html>Service Unavailable</html>",
    "",
])
def test_a_500_that_may_be_a_server_fault_is_retried(body: Any) -> None:
    response = answer(500, body)
    assert not _refused_request(response) and not _final(response)


def test_only_a_500_is_read_this_way() -> None:
    assert not _refused_request(answer(503, {"errors": ["The field x is required."]}))
    assert not _refused_request(answer(400, {"errors": ["The field x is required."]}))
