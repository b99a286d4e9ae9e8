"""The ConnectWise client's mapping and paging guards, fed canned answers a real PSA could give
(odd values, broken Link headers) that the emulator itself never produces."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter

from shared.adapters.connectwise import ConnectWiseClient, billing_cycle_name, quote_condition
from shared.adapters.http import RetryingHttp
from shared.errors import PsaAuthError, PsaError

BASE = "https://cw.example.com/v2025_1/apis/3.0"

Answer = tuple[int, Any, dict[str, str]]


class Canned(BaseAdapter):
    """A transport answering from a function of the request; records what was sent."""

    def __init__(self, answer: Callable[[requests.PreparedRequest], Answer]) -> None:
        super().__init__()
        self.answer = answer
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        self.sent.append(request)
        status, body, headers = self.answer(request)
        response = requests.Response()
        response.status_code = status
        response._content = b"" if body is None else json.dumps(body).encode()
        response.headers.update(headers)
        response.url = request.url or ""
        response.request = request
        response.reason = "canned"
        return response

    def close(self) -> None:
        pass


def client_with(answer: Callable[[requests.PreparedRequest], Answer]) -> tuple[ConnectWiseClient, Canned]:
    adapter = Canned(answer)
    session = requests.Session()
    session.mount("https://", adapter)
    http = RetryingHttp("ConnectWise", session=session, sleep=lambda _: None)
    return ConnectWiseClient("connectwise", BASE, "msp", "pub", "priv", "guid", http=http), adapter


def query(request: requests.PreparedRequest) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url or "").query).items()}


AGREEMENT = {"id": 100, "name": "Fabrikam M365", "type": {"id": 1, "name": "Microsoft 365"},
             "company": {"id": 19}, "agreementStatus": "Active", "cancelledFlag": False,
             "billingCycle": {"id": 1, "name": "Monthly"}, "startDate": "2026-01-01T00:00:00Z", "endDate": None,
             "prorateFlag": True}
ADDITION = {"id": 500, "agreementId": 100, "product": {"id": 1, "identifier": "M365-BP"}, "quantity": 20.0,
            "unitPrice": 22.0, "unitCost": 19.8, "billCustomer": "Billable",
            "effectiveDate": "2026-01-01T00:00:00Z", "cancelledDate": None, "description": "BP",
            "invoiceDescription": "", "serialNumber": ""}


def answer_agreement(**changes: Any) -> Callable[[requests.PreparedRequest], Answer]:
    return lambda request: (200, dict(AGREEMENT, **changes), {})


def answer_lines(*additions: dict[str, Any]) -> Callable[[requests.PreparedRequest], Answer]:
    def answer(request: requests.PreparedRequest) -> Answer:
        if urlsplit(request.url or "").path.endswith("/finance/agreements"):
            return 200, [{"id": 100, "company": {"id": 19}}], {}
        return 200, list(additions), {}
    return answer


def test_an_agreement_with_an_unknown_billing_cycle_names_the_record_and_field() -> None:
    client, _ = client_with(answer_agreement(billingCycle={"id": 9, "name": "Every blue moon"}))
    with pytest.raises(PsaError) as caught:
        client.get_agreement("100")
    assert str(caught.value).startswith("ConnectWise agreement 100: field billingCycle: "
                                        "billing cycle 'Every blue moon' is not one SeatSync understands")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"agreementStatus": "Paused"}, "field agreementStatus: unexpected value 'Paused'"),
        ({"prorateFlag": "yes"}, "field prorateFlag: expected true or false, got 'yes'"),
        ({"company": None}, "field company: is missing"),
        ({"company": {"id": "nineteen"}}, "field company/id: expected a whole number, got 'nineteen'"),
        ({"startDate": "1st of January"}, "field startDate: expected an ISO-8601 datetime"),
    ],
)
def test_odd_agreement_values_are_errors_naming_the_field(changes: dict[str, Any], message: str) -> None:
    client, _ = client_with(answer_agreement(**changes))
    with pytest.raises(PsaError) as caught:
        client.get_agreement("100")
    assert "ConnectWise agreement 100: " in str(caught.value)
    assert message in str(caught.value)


def test_agreement_without_billing_cycle_or_status_is_read() -> None:
    client, _ = client_with(answer_agreement(billingCycle=None, agreementStatus=None, cancelledFlag=True,
                                             prorateFlag=None))
    agreement = client.get_agreement("100")
    assert agreement.billing_cycle == "none"
    assert agreement.active is False
    assert agreement.prorate is False


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"billCustomer": "Sometimes"}, "field billCustomer: unexpected value 'Sometimes'"),
        ({"billCustomer": None}, "field billCustomer: is missing"),
        ({"product": None}, "field product: is missing"),
        ({"quantity": None}, "field quantity: is missing"),
        ({"agreementId": 101}, "field agreementId: is 101, the addition was read from agreement 100"),
        ({"cancelledDate": 20260101}, "field cancelledDate: expected an ISO-8601 datetime"),
    ],
)
def test_odd_addition_values_are_errors_naming_the_addition(changes: dict[str, Any], message: str) -> None:
    client, _ = client_with(answer_lines(dict(ADDITION, **changes)))
    with pytest.raises(PsaError) as caught:
        client.list_lines(["100"])
    assert "ConnectWise agreement 100 addition 500: " in str(caught.value)
    assert message in str(caught.value)


@pytest.mark.parametrize(("changes", "unreadable"), [
    ({"quantity": "20"}, "quantity is '20', not a number"),
    ({"quantity": True}, "quantity is True, not a number"),
    ({"quantity": 1e300}, "quantity is 1E+300, beyond the 2,147,483,647 SeatSync accepts"),
    ({"quantity": float("nan")}, "quantity is NaN, not a finite number"),
    ({"unitPrice": -1e12, "unitCost": "cheap"},
     "unitPrice is -1000000000000.0, beyond the 1,000,000,000 SeatSync accepts; unitCost is 'cheap', not a number"),
])
def test_impossible_numbers_leave_the_addition_unreadable_not_the_read(changes: dict[str, Any],
                                                                       unreadable: str) -> None:
    second = dict(ADDITION, id=501)
    client, _ = client_with(answer_lines(dict(ADDITION, **changes), second))
    bad, good = client.list_lines(["100"])
    assert bad.unreadable == unreadable
    assert (bad.line_id, good.line_id, good.unreadable) == ("500", "501", None)
    assert bad.quantity == (0 if "quantity" in changes else ADDITION["quantity"])


def test_numbers_are_read_exactly_as_decimals() -> None:
    client, _ = client_with(answer_lines(dict(ADDITION, unitPrice=0.1, unitCost=19.99, quantity=3)))
    line = client.list_lines(["100"])[0]
    assert line.unit_price == Decimal("0.1")
    assert line.unit_cost == Decimal("19.99")
    assert line.quantity == 3
    assert line.tag is None  # an empty serialNumber is no tag


def link(page: int, last: int, host: str = "cw.example.com", path: str = "/v2025_1/apis/3.0/finance/agreements",
         following: int | None = None) -> dict[str, str]:
    parts = []
    if following is not None:
        parts.append(f'<https://{host}{path}?page={following}&pageSize=2>; rel="next"')
    parts.append(f'<https://cw.example.com{path}?page={last}&pageSize=2>; rel="last"')
    return {"Link": ", ".join(parts)}


def paged(pages: dict[int, Answer]) -> Callable[[requests.PreparedRequest], Answer]:
    return lambda request: pages[int(query(request)["page"])]


def agreements(*ids: int) -> list[dict[str, Any]]:
    return [dict(AGREEMENT, id=i) for i in ids]


def test_pages_are_requested_with_the_clients_own_url_and_conditions_whatever_the_link_says() -> None:
    client, adapter = client_with(paged({
        1: (200, agreements(1, 2), link(1, 2, host="elsewhere.example.com", following=2)),
        2: (200, agreements(3), link(2, 2)),
    }))
    client.page_size = 2
    assert [a.agreement_id for a in client.list_agreements("19")] == ["1", "2", "3"]
    assert [query(r)["conditions"] for r in adapter.sent] == ["company/id=19", "company/id=19"]
    assert [query(r)["page"] for r in adapter.sent] == ["1", "2"]
    assert all(urlsplit(r.url or "").netloc == "cw.example.com" for r in adapter.sent)


@pytest.mark.parametrize(
    ("pages", "message"),
    [
        ({1: (200, agreements(1, 2), link(1, 3, following=3))},
         "the next link goes to page 3, not 2 (a looping or skipping link)"),
        ({1: (200, agreements(1, 2), link(1, 3, path="/v2025_1/apis/3.0/company/companies", following=2))},
         "the next link points to another resource"),
        ({1: (200, agreements(1, 2), link(1, 3))}, "no next link although the last page is 3"),
        ({1: (200, agreements(1, 2), {})}, "a full page came without a Link header"),
        ({1: (200, agreements(1, 2), link(1, 2, following=2)), 2: (200, agreements(2), link(2, 2))},
         "record 2 came back twice"),
        ({1: (200, [], link(1, 2, following=2))}, "an empty page came with a next link"),
    ],
)
def test_broken_paging_raises_instead_of_returning_part_of_the_list(pages: dict[int, Answer], message: str) -> None:
    client, _ = client_with(paged(pages))
    client.page_size = 2
    with pytest.raises(PsaError) as caught:
        client.list_agreements("19")
    assert "ConnectWise agreements of company 19: " in str(caught.value)
    assert message in str(caught.value)


def test_a_page_that_is_not_a_list_is_an_error() -> None:
    client, _ = client_with(lambda request: (200, {"id": 1}, {}))
    with pytest.raises(PsaError, match="page 1 is not a list"):
        client.list_agreements("19")


def test_403_is_an_auth_error_about_the_security_role() -> None:
    client, _ = client_with(lambda request: (403, {"code": "Security", "message": "You do not have security "
                                                   "permission to perform this action.", "errors": None}, {}))
    with pytest.raises(PsaAuthError, match="security role does not allow this request"):
        client.list_agreements("19")


def test_discovery_adds_the_api_prefix_for_cloud_sites() -> None:
    adapter = Canned(lambda request: (200, {"CompanyName": "MSP", "Codebase": "v2025_1/", "VersionCode": "v2025.1",
                                            "CompanyID": "msp", "IsCloud": "True"}, {}))
    session = requests.Session()
    session.mount("https://", adapter)
    http = RetryingHttp("ConnectWise", session=session, sleep=lambda _: None)
    assert ConnectWiseClient.discover_api_url("na.myconnectwise.net", "msp", http=http) == \
        "https://api-na.myconnectwise.net/v2025_1/apis/3.0"
    assert adapter.sent[0].url == "https://na.myconnectwise.net/login/companyinfo/msp"
    assert ConnectWiseClient.discover_api_url("https://cw.mymsp.local", "msp", http=http) == \
        "https://cw.mymsp.local/v2025_1/apis/3.0"


def test_basic_auth_and_client_id_headers_are_sent() -> None:
    client, adapter = client_with(answer_agreement())
    client.get_agreement("100")
    sent = adapter.sent[0]
    assert sent.headers["Authorization"] == "Basic bXNwK3B1Yjpwcml2"  # base64("msp+pub:priv")
    assert sent.headers["clientId"] == "guid"
    assert query(sent)["fields"].startswith("id,name,type/id")


def test_ids_must_be_numeric() -> None:
    client, adapter = client_with(answer_agreement())
    with pytest.raises(ValueError, match="a ConnectWise agreement id is a whole number, got 'abc'"):
        client.get_agreement("abc")
    assert adapter.sent == []


def test_billing_cycle_names_and_condition_quoting() -> None:
    assert [billing_cycle_name(n) for n in ("Monthly", "ANNUAL", "Yearly", "Semi-Annual", "Bi-Weekly", "Hourly")] == [
        "monthly", "annual", "annual", "semi-annual", "bi-weekly", None]
    assert quote_condition('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
