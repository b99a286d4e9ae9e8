"""The Autotask emulator's HTTP surface, spoken to directly: zone discovery, authentication,
queries and ``nextPageUrl`` paging, picklists, contract services and adjustments, the hourly
threshold, the thread limit, faults and the admin API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from emulators.autotask import AutotaskEmulator
from emulators.base import RunningEmulator
from emulators.tls import TlsFiles, ensure_tls_files

HEADERS = {"ApiIntegrationcode": "CODE1", "UserName": "api@msp.example", "Secret": "s3cret"}


def scenario() -> dict[str, Any]:
    return {
        "today": "2026-01-15",
        "users": [{"username": "api@msp.example", "secret": "s3cret", "integrationCode": "CODE1"}],
        "contractCategories": ["Standard", {"name": "Retired", "active": False}],
        "companies": [{"id": n, "name": f"Company {n:04d}"} for n in range(1, 1206)],
        "services": [{"id": 1, "name": "M365-BP", "unitPrice": 22, "unitCost": 19.8},
                     {"id": 2, "name": "M365-E3", "unitPrice": 36, "unitCost": 32.4},
                     {"id": 3, "name": "Old", "active": False}, {"id": 4, "name": "Backup", "unitPrice": 5}],
        "contracts": [{"id": 100, "name": "Fabrikam M365", "companyId": 1, "startDate": "2026-01-01",
                       "endDate": "2026-12-31"},
                      {"id": 101, "name": "Hours", "companyId": 1, "startDate": "2026-01-01",
                       "endDate": "2026-12-31", "type": "BlockHours"}],
        "contractServices": [{"id": 500, "contractId": 100, "serviceId": 1, "units": 20}],
    }


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls_files(tmp_path_factory.mktemp("autotask-emulator-tls"))


@pytest.fixture(scope="module")
def shared_server(tls: TlsFiles) -> Iterator[RunningEmulator]:
    with RunningEmulator(AutotaskEmulator(scenario()), tls) as server:
        yield server


class Api:
    def __init__(self, server: RunningEmulator, tls: TlsFiles) -> None:
        self.server = server
        self.root = f"{server.url}/ATServicesRest/V1.0"
        self.verify = str(tls.ca_certificate)

    @property
    def emulator(self) -> AutotaskEmulator:
        assert isinstance(self.server.emulator, AutotaskEmulator)
        return self.server.emulator

    def call(self, method: str, path: str, *, headers: dict[str, str] | None = None,
             **kwargs: Any) -> requests.Response:
        url = path if path.startswith("https://") else self.root + path
        return requests.request(method, url, headers=HEADERS if headers is None else headers, verify=self.verify,
                                timeout=10, **kwargs)

    def query(self, entity: str, *filters: dict[str, Any], **extra: Any) -> requests.Response:
        return self.call("POST", f"/{entity}/query", json={"filter": list(filters), **extra})


@pytest.fixture
def api(shared_server: RunningEmulator, tls: TlsFiles) -> Api:
    shared_server.emulator.reset()
    return Api(shared_server, tls)


ALL = {"op": "gte", "field": "id", "value": 0}


def test_zone_information_names_this_zone_for_a_known_user(api: Api) -> None:
    response = api.call("GET", "/zoneInformation", headers={}, params={"user": "API@msp.example"})
    assert response.status_code == 200
    assert response.json() == {"zoneName": "America East", "url": f"{api.server.url}/ATServicesRest/",
                               "webUrl": "https://ww1.autotask.net/", "ci": 1}
    missing = api.call("GET", "/zoneInformation", headers={}, params={"user": "nobody@x.com"})
    assert missing.status_code == 500
    assert missing.json() == {"errors": ["Zone information could not be determined"]}


def test_a_wrong_secret_of_a_known_user_is_refused_with_401(api: Api) -> None:
    response = api.call("GET", "/ThresholdInformation", headers={**HEADERS, "Secret": "wrong"})
    assert response.status_code == 401
    assert response.json() == {"Message": "Authorization has been denied for this request."}


@pytest.mark.parametrize("headers", [{}, {**HEADERS, "ApiIntegrationcode": "OTHER"}, {**HEADERS, "UserName": "x@y.z"}])
def test_an_unknown_user_or_integration_code_is_refused_with_500_as_the_live_api_does(
        api: Api, headers: dict[str, str]) -> None:
    response = api.call("GET", "/ThresholdInformation", headers=headers)
    assert response.status_code == 500
    assert list(response.json()) == ["errors"]
    assert "Login failed" in response.json()["errors"][0]


def test_queries_page_500_records_at_a_time_through_next_page_urls(api: Api) -> None:
    body = {"filter": [ALL], "IncludeFields": ["companyName"]}
    first = api.call("POST", "/Companies/query", json=body).json()
    assert first["pageDetails"]["count"] == 500
    assert first["pageDetails"]["requestCount"] == 500
    assert first["pageDetails"]["prevPageUrl"] is None
    assert first["items"][0] == {"id": 1, "companyName": "Company 0001"}
    following = first["pageDetails"]["nextPageUrl"]
    parts = urlsplit(following)
    assert parts.netloc == f"127.0.0.1:{api.server.port}"
    assert parts.path == "/ATServicesRest/V1.0/Companies/query/next"
    assert json.loads(parse_qs(parts.query)["search"][0])["filter"] == [ALL]
    second = api.call("POST", following, json=body).json()
    assert [c["id"] for c in second["items"]][:2] == [501, 502]
    assert second["pageDetails"]["prevPageUrl"] is not None
    third = api.call("GET", second["pageDetails"]["nextPageUrl"]).json()  # GET works too, with ?search=
    assert len(third["items"]) == 205
    assert third["pageDetails"]["nextPageUrl"] is None
    assert api.query("Companies", ALL, MaxRecords=10).json()["pageDetails"]["count"] == 10
    assert api.call("POST", "/Companies/query/count", json={"filter": [{"op": "lt", "field": "id", "value": 11}]}
                    ).json() == {"queryCount": 10}


def test_query_errors_answer_500_with_an_errors_list(api: Api) -> None:
    unknown = api.query("Companies", {"op": "eq", "field": "colour", "value": "blue"})
    assert unknown.status_code == 500
    assert unknown.json() == {"errors": ["Unable to find colour in the Companies entity."]}
    assert api.call("POST", "/Companies/query", json={"filter": []}).status_code == 500
    adjustments = api.query("ContractServiceAdjustments", ALL)
    assert adjustments.status_code == 405
    assert "cannot be queried" in adjustments.json()["errors"][0]
    assert api.query("Projects", ALL).status_code == 404


def test_a_record_by_id_and_a_missing_one(api: Api) -> None:
    assert api.call("GET", "/Contracts/100").json()["item"]["contractName"] == "Fabrikam M365"
    assert api.call("GET", "/Contracts/999").json() == {"item": None}
    unit = api.call("GET", "/ContractServiceUnits/5000001").json()["item"]
    assert (unit["contractServiceID"], unit["units"], unit["startDate"]) == (500, 20, "2026-01-01T00:00:00Z")


def test_picklists_come_with_their_labels(api: Api) -> None:
    fields = {f["name"]: f for f in api.call("GET", "/Contracts/entityInformation/fields").json()["fields"]}
    periods = {p["value"]: p["label"] for p in fields["contractPeriodType"]["picklistValues"]}
    assert periods == {"1": "Monthly", "2": "Quarterly", "3": "Semi-Annual", "4": "Yearly"}
    categories = fields["contractCategory"]["picklistValues"]
    assert [(c["label"], c["isActive"]) for c in categories] == [("Standard", True), ("Retired", False)]
    assert fields["contractType"]["isPickList"] is True
    services = {f["name"]: f for f in api.call("GET", "/ContractServices/entityInformation/fields").json()["fields"]}
    assert services["internalDescription"]["length"] == 100
    assert api.call("GET", "/ContractServices/entityInformation").json()["info"]["canUpdate"] is True


def test_units_change_only_through_adjustments_with_an_effective_date(api: Api) -> None:
    created = api.call("POST", "/ContractServiceAdjustments", json={
        "contractID": 100, "serviceID": 1, "effectiveDate": "2026-01-15T00:00:00Z", "unitChange": 5})
    assert created.status_code == 200
    assert created.json() == {"itemId": 2}
    units = api.query("ContractServiceUnits", {"op": "eq", "field": "contractServiceID", "value": 500},
                      {"op": "lte", "field": "startDate", "value": "2026-02-01"}).json()["items"]
    assert [(u["startDate"][:10], u["endDate"][:10], u["units"]) for u in units] == [
        ("2026-01-01", "2026-01-14", 20), ("2026-01-15", "2026-01-31", 25), ("2026-02-01", "2026-02-28", 25)]
    line = api.emulator.state()["contracts"][0]["services"][0]
    assert line["units"] == 25
    assert [a["unitChange"] for a in line["adjustments"]] == [20, 5]


@pytest.mark.parametrize(("body", "message"), [
    ({"contractID": 100, "serviceID": 1, "effectiveDate": "2027-01-01", "unitChange": 1},
     "must be within the contract's dates"),
    ({"contractID": 100, "serviceID": 1, "effectiveDate": "2026-02-01", "unitChange": -21},
     "fewer than 0 units (it has 20 on 2026-02-01)"),
    ({"contractID": 100, "serviceID": 1, "effectiveDate": "2026-02-01", "unitChange": 1.5}, "must be a whole number"),
    ({"contractID": 101, "serviceID": 1, "effectiveDate": "2026-02-01", "unitChange": 1},
     "is not a Recurring Service contract"),
    ({"contractID": 999, "serviceID": 1, "effectiveDate": "2026-02-01", "unitChange": 1},
     "Unable to find the Contract with id 999"),
    ({"contractID": 100, "serviceID": 3, "effectiveDate": "2026-02-01", "unitChange": 1}, "Service 3 is inactive"),
    ({"contractID": 100, "serviceID": 1, "unitChange": 1}, "The effectiveDate None is required"),
    ({"contractID": 100, "serviceID": 1, "effectiveDate": "2026-02-01", "unitChange": 1, "units": 21},
     "The field units does not exist on ContractServiceAdjustments."),
])
def test_refused_adjustments_answer_500_with_the_reason(api: Api, body: dict[str, Any], message: str) -> None:
    response = api.call("POST", "/ContractServiceAdjustments", json=body)
    assert response.status_code == 500
    assert message in response.json()["errors"][0]
    assert len(api.emulator.adjustments) == 1


def test_an_adjustment_creates_a_missing_contract_service(api: Api) -> None:
    response = api.call("POST", "/Contracts/100/ServiceAdjustments", json={
        "serviceID": 2, "effectiveDate": "2026-01-15", "unitChange": 3, "adjustedUnitPrice": 34.0})
    assert response.status_code == 200
    services = api.emulator.state()["contracts"][0]["services"]
    assert [(s["id"], s["serviceID"], s["units"], s["unitPrice"]) for s in services] == [
        (500, 1, 20, 22.0), (501, 2, 3, 34.0)]


def test_contract_services_are_created_once_per_service_and_updated_in_two_fields(api: Api) -> None:
    created = api.call("POST", "/Contracts/100/Services", json={
        "contractID": 100, "serviceID": 2, "internalDescription": "seatsync:e3", "invoiceDescription": "E3"})
    assert created.json() == {"itemId": 501}
    again = api.call("POST", "/Contracts/100/Services", json={"serviceID": 2})
    assert again.status_code == 500
    assert "already associated with Contract 100 (ContractService 501)" in again.json()["errors"][0]
    too_long = api.call("POST", "/Contracts/100/Services", json={"serviceID": 4, "internalDescription": "x" * 101})
    assert "cannot be longer than 100 characters" in too_long.json()["errors"][0]
    updated = api.call("PATCH", "/Contracts/100/Services", json={"id": 501, "invoiceDescription": "E3 seats",
                                                                "adjustedPrice": 30.5})
    assert updated.json() == {"itemId": 501}
    read_only = api.call("PATCH", "/Contracts/100/Services", json={"id": 501, "internalDescription": "mine"})
    assert read_only.status_code == 500
    assert read_only.json()["errors"] == [
        "The field internalDescription is read-only on update: only adjustedPrice and invoiceDescription can be "
        "updated."]
    unit_price = api.call("PATCH", "/Contracts/100/Services", json={"id": 501, "unitPrice": 30.0})
    assert unit_price.status_code == 500
    assert unit_price.json()["errors"][0].startswith("The field unitPrice is read-only on update")
    as_read = api.call("POST", "/ContractServices/query", json={"filter": [{"op": "eq", "field": "id", "value": 501}]})
    record = as_read.json()["items"][0]
    sent_back = api.call("PATCH", "/ContractServices", json={**record, "invoiceDescription": "E3 seats"})
    assert sent_back.json() == {"itemId": 501}  # a record read and sent back whole passes
    missing = api.call("PATCH", "/Contracts/100/Services", json={"id": 999, "invoiceDescription": "x"})
    assert "Unable to find the ContractService with id 999 on Contract 100." in missing.json()["errors"][0]
    service = api.emulator.state()["contracts"][0]["services"][1]
    assert (service["invoiceDescription"], service["unitPrice"], service["adjustedPrice"],
            service["internalDescription"], service["units"]) == ("E3 seats", 36.0, 30.5, "seatsync:e3", 0)


def test_threshold_information_counts_every_request_and_blocks_at_the_limit(tls: TlsFiles) -> None:
    section = scenario()
    section["threshold"] = {"limit": 6, "otherUsage": 2}
    with RunningEmulator(AutotaskEmulator(section), tls) as server:
        api = Api(server, tls)
        info = api.call("GET", "/ThresholdInformation").json()
        assert info == {"externalRequestThreshold": 6, "requestThresholdTimeframe": 60,
                        "currentTimeframeRequestCount": 3}
        for _ in range(3):
            assert api.query("Companies", ALL, MaxRecords=1).status_code == 200
        blocked = api.call("GET", "/ThresholdInformation")
        assert blocked.status_code == 429
        assert "API access is blocked" in blocked.json()["errors"][0]
        assert int(blocked.headers["Retry-After"]) > 0
        usage = requests.post(f"{server.url}/_admin/usage", json={"otherIntegrations": 0}, verify=api.verify,
                              timeout=10)
        assert usage.json()["currentTimeframeRequestCount"] == 4
        assert api.call("GET", "/ThresholdInformation").status_code == 200
        assert api.emulator.state()["refused"]["threshold"] == 1


def test_more_than_three_concurrent_requests_on_one_endpoint_are_refused(tls: TlsFiles) -> None:
    section = scenario()
    # Each answer is held long enough that the five requests, released together, all arrive
    # while the first three are still held, even on a loaded machine.
    section["latencySeconds"] = 1.5
    with RunningEmulator(AutotaskEmulator(section), tls) as server:
        api = Api(server, tls)
        statuses: list[int] = []
        lock = threading.Lock()
        together = threading.Barrier(5)

        def read() -> None:
            together.wait(timeout=30)
            status = api.query("Contracts", ALL).status_code
            with lock:
                statuses.append(status)

        threads = [threading.Thread(target=read) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [200, 200, 200, 429, 429]
        state = api.emulator.state()
        assert state["peakConcurrency"]["Contracts"] == 3
        assert state["refused"]["threads"] == 2


def test_faults_answer_in_autotask_shapes(api: Api) -> None:
    api.emulator.faults.add([{"kind": "throttle", "path": "Companies", "times": 1, "retryAfter": 2},
                             {"kind": "error", "path": "Contracts", "status": 500, "times": 1},
                             {"kind": "auth", "path": "Services", "times": 1}])
    throttled = api.query("Companies", ALL)
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "2")
    assert throttled.json() == {"errors": ["Too many requests"]}
    assert api.query("Contracts", ALL).json() == {"errors": ["Injected service error"]}
    assert api.query("Services", ALL).json() == {"Message": "Authorization has been denied for this request."}


def test_broken_paging_leads_back_to_the_same_page(api: Api) -> None:
    api.emulator.faults.add({"kind": "broken-paging", "times": 1})
    first = api.query("Companies", ALL).json()
    again = api.call("POST", first["pageDetails"]["nextPageUrl"], json={"filter": [ALL]}).json()
    assert again["items"][0]["id"] == 1


def test_tickets_need_autotasks_required_fields_and_refuse_read_only_ones(api: Api) -> None:
    missing = api.call("POST", "/Tickets", json={"title": "Disk full", "companyID": 1, "ticketNumber": "T1"})
    assert missing.status_code == 500
    assert missing.json()["errors"] == [
        "The field ticketNumber is read-only.", "The status field is required.", "The priority field is required.",
        "The dueDateTime field is required.",
        "A ticket needs a queueID, or an assignedResourceID and assignedResourceRoleID."]
    created = api.call("POST", "/Tickets", json={"title": "Disk full", "companyID": 1, "queueID": 29683354,
                                                 "status": 1, "priority": 2, "dueDateTime": "2026-01-16T00:00:00Z",
                                                 "description": "C: is full"})
    ident = created.json()["itemId"]
    ticket = api.call("GET", f"/Tickets/{ident}").json()["item"]
    assert (ticket["status"], ticket["completedDate"], ticket["ticketNumber"]) == (1, None, f"T20260115.{ident:04d}")
    assert api.call("PATCH", "/Tickets", json={"id": ident, "status": 99}).json()["errors"] == [
        "The value 99 is not a valid status picklist value."]
    assert api.call("POST", f"/Tickets/{ident}/Notes", json={"description": "x"}).status_code == 500
    note = api.call("POST", f"/Tickets/{ident}/Notes", json={"title": "SeatSync", "description": "Cleared",
                                                             "noteType": 1, "publish": 1})
    assert note.status_code == 200
    api.call("PATCH", "/Tickets", json={"id": ident, "status": 5})
    closed = api.query("Tickets", {"op": "eq", "field": "status", "value": 5}).json()["items"]
    assert [(t["id"], t["completedDate"]) for t in closed] == [(ident, "2026-01-15T00:00:00Z")]
    assert [n["description"] for n in api.emulator.state()["tickets"][0]["notes"]] == ["Cleared"]
