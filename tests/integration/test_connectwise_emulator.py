"""The ConnectWise emulator's HTTP surface, spoken to directly: paging and Link headers, the
query parameters, additions CRUD and its validation, authentication, faults and the admin API."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from emulators.base import RunningEmulator
from emulators.connectwise import ConnectWiseEmulator
from emulators.tls import TlsFiles, ensure_tls_files

CLIENT_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


def scenario() -> dict[str, Any]:
    return {
        "companyId": "seatsyncmsp",
        "today": "2026-01-15",
        "credentials": [{"publicKey": "pubkey", "privateKey": "privkey", "clientId": CLIENT_ID}],
        "companies": [{"id": n, "identifier": f"C{n:03d}", "name": f"Company {n:03d}"} for n in range(1, 61)],
        "catalog": [{"id": 1, "identifier": "M365-BP", "description": "Microsoft 365 Business Premium",
                     "price": 22.00, "cost": 19.80},
                    {"id": 2, "identifier": "M365-E3", "description": "Microsoft 365 E3", "price": 36, "cost": 32}],
        "agreementTypes": [{"id": 1, "name": "Microsoft 365", "prorate": True}],
        "agreements": [{"id": 100, "name": "M365", "companyId": 1, "typeId": 1, "startDate": "2026-01-01"}],
        "additions": [{"id": 500, "agreementId": 100, "productId": 1, "quantity": 20, "effectiveDate": "2026-01-01"}],
    }


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls_files(tmp_path_factory.mktemp("connectwise-emulator-tls"))


@pytest.fixture(scope="module")
def shared_server(tls: TlsFiles) -> Iterator[RunningEmulator]:
    with RunningEmulator(ConnectWiseEmulator(scenario()), tls) as server:
        yield server


@pytest.fixture
def running(shared_server: RunningEmulator) -> RunningEmulator:
    """The default scenario, reset to its start for each test."""
    shared_server.emulator.reset()
    return shared_server


class Api:
    def __init__(self, server: RunningEmulator, tls: TlsFiles) -> None:
        self.server = server
        self.root = f"{server.url}/v4_6_release/apis/3.0"
        self.verify = str(tls.ca_certificate)
        token = base64.b64encode(b"seatsyncmsp+pubkey:privkey").decode()
        self.headers = {"Authorization": f"Basic {token}", "clientId": CLIENT_ID}

    def call(self, method: str, path: str, *, headers: dict[str, str] | None = None,
             **kwargs: Any) -> requests.Response:
        return requests.request(method, self.root + path, headers=headers or self.headers, verify=self.verify,
                                timeout=10, **kwargs)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.call("GET", path, params=params)


@pytest.fixture
def api(running: RunningEmulator, tls: TlsFiles) -> Api:
    return Api(running, tls)


def links(response: requests.Response) -> dict[str, dict[str, str]]:
    return {rel: {k: v[0] for k, v in parse_qs(urlsplit(item["url"]).query).items()}
            for rel, item in response.links.items()}


def test_default_page_is_25_and_links_keep_every_other_parameter(api: Api) -> None:
    first = api.get("/company/companies", conditions='identifier like "C0*"', fields="id,name", orderBy="name desc")
    assert first.status_code == 200
    assert len(first.json()) == 25
    assert first.json()[0] == {"id": 60, "name": "Company 060"}
    rels = links(first)
    assert set(rels) == {"next", "last"}
    assert rels["next"] == {"conditions": 'identifier like "C0*"', "fields": "id,name", "orderBy": "name desc",
                            "page": "2"}
    assert rels["last"]["page"] == "3"
    middle = api.get("/company/companies", page=2, pageSize=25)
    assert set(links(middle)) == {"first", "prev", "next", "last"}
    assert links(middle)["prev"]["page"] == "1"
    assert links(middle)["next"]["page"] == "3"
    last = api.get("/company/companies", page=3)
    assert [c["id"] for c in last.json()] == list(range(51, 61))
    # the page number ends each link, wherever the caller put it, as ConnectWise writes its links
    leading = api.call("GET", "/company/companies?page=2&pageSize=25&orderBy=id%20asc")
    assert re.findall(r'[?&]page=(\d+)>; rel="(\w+)"', leading.headers["Link"]) == [
        ("1", "first"), ("1", "prev"), ("3", "next"), ("3", "last")]
    assert urlsplit(leading.links["next"]["url"]).query == "pageSize=25&orderBy=id%20asc&page=3"
    assert set(links(last)) == {"first", "prev", "last"}
    assert urlsplit(first.links["next"]["url"]).netloc == f"127.0.0.1:{api.server.port}"


def test_page_size_above_the_maximum_is_capped_at_1000(running: RunningEmulator, tls: TlsFiles) -> None:
    section = scenario()
    section["companies"] = [{"id": n, "identifier": f"C{n}", "name": f"Company {n}"} for n in range(1, 1206)]
    section["agreements"], section["additions"] = [], []
    with RunningEmulator(ConnectWiseEmulator(section), tls) as server:
        api = Api(server, tls)
        page = api.get("/company/companies", pageSize=5000)
        assert len(page.json()) == 1000
        assert links(page)["next"] == {"pageSize": "5000", "page": "2"}
        assert len(api.get("/company/companies", pageSize=5000, page=2).json()) == 205
        assert api.get("/company/companies/count", conditions="id > 1000").json() == {"count": 205}


def test_page_parameters_must_be_whole_numbers(api: Api) -> None:
    response = api.get("/company/companies", pageSize="ten")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "pageSize"
    assert api.get("/company/companies", page=0).status_code == 400


def test_forward_only_paging_follows_page_ids(api: Api) -> None:
    response = api.call("GET", "/company/companies", headers={**api.headers, "pagination-type": "forward-only"},
                        params={"pageSize": 40})
    assert [c["id"] for c in response.json()] == list(range(1, 41))
    assert links(response)["next"] == {"pageSize": "40", "pageId": "40"}
    response = api.call("GET", "/company/companies", headers={**api.headers, "pagination-type": "forward-only"},
                        params={"pageSize": 40, "pageId": 40})
    assert [c["id"] for c in response.json()] == list(range(41, 61))


def test_get_by_id_count_and_fields(api: Api) -> None:
    assert api.get("/company/companies/7", fields="identifier").json() == {"identifier": "C007"}
    missing = api.get("/company/companies/999")
    assert missing.status_code == 404
    assert missing.json() == {"code": "NotFound", "message": "Company with id 999 was not found.", "errors": None}
    assert api.get("/finance/agreements/count", conditions="company/id=1").json() == {"count": 1}
    assert api.get("/finance/agreements/types").json()[0]["name"] == "Microsoft 365"
    assert api.get("/procurement/catalog", conditions="price > 30").json()[0]["identifier"] == "M365-E3"
    assert api.get("/finance/agreements/100/additions/count").json() == {"count": 1}


def test_additions_create_read_patch_put_delete(api: Api) -> None:
    created = api.call("POST", "/finance/agreements/100/additions", json={
        "product": {"identifier": "m365-e3"}, "quantity": 5, "billCustomer": "DoNotBill",
        "effectiveDate": "2026-01-20T00:00:00Z", "serialNumber": "seatsync:1"})
    assert created.status_code == 201
    record = created.json()
    assert record["id"] == 501
    assert record["product"] == {"id": 2, "identifier": "M365-E3"}
    assert record["quantity"] == 5.0
    assert record["unitPrice"] == 36.0
    assert record["agreementId"] == 100
    assert record["effectiveDate"] == "2026-01-20T00:00:00Z"
    assert record["cancelledDate"] is None

    patched = api.call("PATCH", "/finance/agreements/100/additions/501", json=[
        {"op": "replace", "path": "/quantity", "value": 7},
        {"op": "add", "path": "invoiceDescription", "value": "Ann, Bob"},
        {"op": "remove", "path": "serialNumber"}])
    assert patched.status_code == 200
    assert (patched.json()["quantity"], patched.json()["invoiceDescription"], patched.json()["serialNumber"]) == (
        7.0, "Ann, Bob", None)
    assert api.get("/finance/agreements/100/additions/501").json()["extPrice"] == 252.0

    replaced = api.call("PUT", "/finance/agreements/100/additions/501", json={
        "product": {"id": 1}, "quantity": 2, "billCustomer": "Billable", "effectiveDate": "2026-01-01T00:00:00Z"})
    assert replaced.status_code == 200
    assert replaced.json()["invoiceDescription"] == "Microsoft 365 Business Premium"
    assert replaced.json()["unitPrice"] == 22.0

    assert api.call("DELETE", "/finance/agreements/100/additions/501").status_code == 204
    assert api.get("/finance/agreements/100/additions/501").status_code == 404


def test_addition_validation_lists_every_field_error(api: Api) -> None:
    response = api.call("POST", "/finance/agreements/100/additions", json={
        "quantity": "many", "billCustomer": "Maybe", "invoiceDescription": "i" * 6001,
        "effectiveDate": "soon"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "InvalidObject"
    assert body["message"] == "addition object is invalid"
    fields = {e["field"]: e["code"] for e in body["errors"]}
    assert fields == {"quantity": "InvalidField", "invoiceDescription": "MaxLengthField",
                      "effectiveDate": "InvalidField", "product": "NullValue", "billCustomer": "InvalidField"}
    assert all(e["resource"] == "addition" for e in body["errors"])


def test_patch_errors_answer_as_connectwise_and_change_nothing(api: Api) -> None:
    bad = api.call("PATCH", "/finance/agreements/100/additions/500", json=[
        {"op": "move", "path": "quantity", "value": 1},
        {"op": "replace", "path": "extPrice", "value": 1},
        {"op": "replace", "path": "Quantity", "value": 1},
        {"op": "replace", "path": "quantity"}])
    assert bad.status_code == 400
    assert [(e["code"], e["field"]) for e in bad.json()["errors"]] == [
        ("InvalidField", "quantity"), ("ReadOnlyField", "extPrice"), ("InvalidField", "Quantity"),
        ("InvalidField", "quantity")]
    assert api.call("PATCH", "/finance/agreements/100/additions/500", json={"op": "replace"}).status_code == 400
    removed = api.call("PATCH", "/finance/agreements/100/additions/500",
                       json=[{"op": "remove", "path": "billCustomer"}])
    assert removed.json()["errors"][0] == {"code": "NullValue", "message": "The billCustomer field is required.",
                                           "resource": "addition", "field": "billCustomer"}
    assert api.get("/finance/agreements/100/additions/500").json()["quantity"] == 20.0


def test_patch_inside_an_object_is_ignored_with_200_as_documented(api: Api) -> None:
    response = api.call("PATCH", "/finance/agreements/100/additions/500",
                        json=[{"op": "replace", "path": "product/id", "value": 2}])
    assert response.status_code == 200
    assert response.json()["product"]["id"] == 1


def test_authentication_failures(api: Api) -> None:
    wrong = base64.b64encode(b"seatsyncmsp+pubkey:nope").decode()
    response = api.call("GET", "/company/companies", headers={"Authorization": f"Basic {wrong}",
                                                              "clientId": CLIENT_ID})
    assert response.status_code == 401
    assert response.json() == {"code": "Unauthorized", "message": "The supplied authentication is incorrect.",
                               "errors": None}
    for header in ("Bearer abc", "Basic !!!", "Basic " + base64.b64encode(b"no-plus:x").decode()):
        assert api.call("GET", "/company/companies",
                        headers={"Authorization": header, "clientId": CLIENT_ID}).status_code == 401
    missing = api.call("GET", "/company/companies", headers={"Authorization": api.headers["Authorization"]})
    assert missing.status_code == 400
    assert missing.json()["code"] == "InvalidClientId"


def test_unknown_codebase_and_resource_are_404(api: Api) -> None:
    other = requests.get(f"{api.server.url}/v2019_1/apis/3.0/company/companies", headers=api.headers,
                         verify=api.verify, timeout=10)
    assert other.status_code == 404
    assert api.get("/project/projects").status_code == 404
    assert api.call("DELETE", "/company/companies/1").status_code == 405


def test_company_info_needs_no_login(api: Api) -> None:
    info = requests.get(f"{api.server.url}/login/companyinfo/SEATSYNCMSP", verify=api.verify, timeout=10).json()
    assert info["Codebase"] == "v4_6_release/"
    assert info["IsCloud"] == "False"
    assert info["CompanyID"] == "seatsyncmsp"


def test_faults_and_reset_through_the_admin_api(api: Api) -> None:
    admin = f"{api.server.url}/_admin"
    requests.post(f"{admin}/faults", json={"kind": "throttle", "path": "/company/companies$", "times": 1,
                                           "retryAfter": 3}, verify=api.verify, timeout=10)
    throttled = api.get("/company/companies")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "3"
    assert throttled.json()["error"] == "ConnectWiseAPI"
    assert api.get("/company/companies").status_code == 200
    api.call("DELETE", "/finance/agreements/100/additions/500")
    requests.post(f"{admin}/reset", verify=api.verify, timeout=10)
    assert api.get("/finance/agreements/100/additions/500").status_code == 200
    state = requests.get(f"{admin}/state", verify=api.verify, timeout=10).json()
    assert state["agreements"][0]["additions"][0]["id"] == 500


def test_contacts_child_conditions(running: RunningEmulator, tls: TlsFiles) -> None:
    section = scenario()
    section["contacts"] = [{"id": 1, "companyId": 1, "firstName": "Ann", "email": "ann@fabrikam.com"},
                           {"id": 2, "companyId": 2, "firstName": "Bob", "emails": ["bob@contoso.com"],
                            "phone": "+1 555 0100"}]
    with RunningEmulator(ConnectWiseEmulator(section), tls) as server:
        api = Api(server, tls)
        found = api.get("/company/contacts", conditions="company/id=2",
                        childConditions='communicationItems/value = "BOB@contoso.com" and '
                                        'communicationItems/communicationType="Email"')
        assert [c["id"] for c in found.json()] == [2]
        assert api.get("/company/contacts", childConditions='communicationItems/value like "*555*" and '
                       'communicationItems/communicationType="Email"').json() == []


def test_service_tickets_are_refused_as_connectwise_refuses_them(api: Api) -> None:
    bad = api.call("POST", "/service/tickets", json={"summary": "s" * 101, "board": {"id": 9},
                                                      "closedFlag": True, "status": {"id": 21}})
    assert bad.status_code == 400
    fields = {e["field"]: e["code"] for e in bad.json()["errors"]}
    assert fields == {"summary": "MaxLengthField", "closedFlag": "ReadOnlyField", "board": "NotFound",
                      "company": "NullValue"}
    created = api.call("POST", "/service/tickets", json={"summary": "Disk full", "board": {"id": 1},
                                                          "company": {"id": 1}, "initialDescription": "C: is full"})
    assert created.status_code == 201
    ticket = created.json()
    assert (ticket["status"], ticket["closedFlag"], ticket["closedDate"]) == ({"id": 11, "name": "New"}, False, None)
    assert "initialDescription" not in ticket  # only available for POST, not returned
    other_board = api.call("PATCH", f"/service/tickets/{ticket['id']}",
                           json=[{"op": "replace", "path": "status", "value": {"id": 23}}])
    assert [e["code"] for e in other_board.json()["errors"]] == ["InvalidField"]
    read_only = api.call("PATCH", f"/service/tickets/{ticket['id']}",
                         json=[{"op": "replace", "path": "closedFlag", "value": True}])
    assert [e["code"] for e in read_only.json()["errors"]] == ["ReadOnlyField"]
    unflagged = api.call("POST", f"/service/tickets/{ticket['id']}/notes", json={"text": "hello"})
    assert unflagged.status_code == 400
    closed = api.call("PATCH", f"/service/tickets/{ticket['id']}",
                      json=[{"op": "replace", "path": "status", "value": {"id": 13}}]).json()
    assert (closed["closedFlag"], closed["closedBy"]) == (True, "SeatSyncAPI")
    assert closed["closedDate"] is not None
    found = api.get("/service/tickets", conditions='closedFlag=false and summary contains "Disk"')
    assert found.json() == []
    notes = api.get(f"/service/tickets/{ticket['id']}/notes").json()
    assert [(n["text"], n["detailDescriptionFlag"]) for n in notes] == [("C: is full", True)]
