"""The HaloPSA emulator's HTTP surface, spoken to directly: the token endpoint, bearer tokens,
paged lists, recurring invoices and their lines, pro-rata entries, the 5-minute rate limit and
faults."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from emulators.base import RunningEmulator
from emulators.halopsa import HaloEmulator
from emulators.tls import TlsFiles, ensure_tls_files
from tests.psa_test_support import FakeClock, reset_emulator, serve_emulators

CLOCK = FakeClock(1000.0)


def scenario() -> dict[str, Any]:
    return {
        "today": "2026-01-15", "tenant": "seatsyncmsp", "tokenLifetimeSeconds": 600,
        "applications": [{"clientId": "app", "clientSecret": "s3cret"}],
        "clients": [{"id": n, "name": f"Client {n:03d}", "inactive": n == 3} for n in range(1, 131)],
        "users": [{"clientId": 1, "firstName": "Ann", "surname": "Lee", "emails": ["ann@one.com", "a.lee@one.com"]},
                  {"clientId": 2, "firstName": "Bo", "email": "bo@two.com", "inactive": True}],
        "items": [{"id": 1, "name": "M365-BP", "description": "Business Premium", "price": 22, "cost": 19.8},
                  {"id": 2, "name": "Setup", "price": 100, "recurring": False},
                  {"id": 3, "name": "Old", "inactive": True}],
        "contracts": [{"id": 7, "clientId": 1, "ref": "ONE-1", "type": "Managed", "startDate": "2025-01-01"}],
        "recurringInvoices": [{"id": -1, "clientId": 1, "reference": "One monthly", "startDate": "2026-01-01",
                               "contractId": 7},
                              {"id": -2, "clientId": 2, "reference": "Two quarterly", "startDate": "2025-11-01",
                               "period": "Quarterly"}],
        "lines": [{"id": 500, "invoiceId": -1, "itemId": 1, "quantity": 20},
                  {"id": 501, "invoiceId": -1, "itemId": 1, "quantity": 2, "internalReference": "seatsync:x"},
                  {"id": 600, "invoiceId": -2, "itemId": 1, "quantity": 5}],
    }


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls_files(tmp_path_factory.mktemp("halo-emulator-tls"))


@pytest.fixture(scope="module")
def shared_server(tls: TlsFiles) -> Iterator[RunningEmulator]:
    with RunningEmulator(HaloEmulator(scenario(), clock=CLOCK), tls) as server:
        yield server


class Api:
    def __init__(self, emulator: HaloEmulator, server: RunningEmulator, tls: TlsFiles) -> None:
        self.emulator = emulator
        self.server = server
        self.verify = str(tls.ca_certificate)
        self.token = ""

    def get_token(self, **form: str) -> requests.Response:
        body = {"grant_type": "client_credentials", "client_id": "app", "client_secret": "s3cret", "scope": "all"}
        body.update(form)
        return requests.post(f"{self.server.url}/auth/token", params={"tenant": "seatsyncmsp"}, data=body,
                             verify=self.verify, timeout=10)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        if not self.token:
            self.token = self.get_token().json()["access_token"]
        return requests.request(method, f"{self.server.url}/api{path}", verify=self.verify, timeout=10,
                                headers={"Authorization": f"Bearer {self.token}"}, **kwargs)

    def invoice(self, ident: int) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/RecurringInvoice/{ident}").json()
        return result


@pytest.fixture
def api(shared_server: RunningEmulator, tls: TlsFiles) -> Api:
    CLOCK.now += 1000  # a fresh 5-minute window for every test
    return Api(reset_emulator(shared_server, HaloEmulator), shared_server, tls)


@pytest.fixture
def serve(tls: TlsFiles) -> Iterator[Callable[..., Api]]:
    yield from serve_emulators(tls, HaloEmulator, scenario, Api)


def test_the_token_endpoint_follows_client_credentials(api: Api) -> None:
    token = api.get_token().json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 600
    assert api.get_token(client_secret="wrong").json() == {
        "error": "invalid_client", "error_description": "The client ID or client secret is not valid."}
    assert api.get_token(client_secret="wrong").status_code == 401
    assert api.get_token(grant_type="password").json() == {"error": "unsupported_grant_type"}
    assert api.get_token(scope="read").json() == {"error": "invalid_scope"}
    no_tenant = requests.post(f"{api.server.url}/auth/token", verify=api.verify, timeout=10, data={
        "grant_type": "client_credentials", "client_id": "app", "client_secret": "s3cret", "scope": "all"})
    assert no_tenant.status_code == 400
    assert api.emulator.state()["tokensIssued"] == 1


def test_the_api_needs_a_valid_unexpired_bearer_token(api: Api) -> None:
    assert api.call("GET", "/Client/1").status_code == 200
    CLOCK.now += 601
    expired = api.call("GET", "/Client/1")
    assert expired.status_code == 401
    assert expired.content == b""
    assert expired.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    anonymous = requests.get(f"{api.server.url}/api/Client", verify=api.verify, timeout=10)
    assert anonymous.status_code == 401


def test_lists_are_paged_with_record_count(api: Api) -> None:
    first = api.call("GET", "/Client", params={"pageinate": "true", "page_size": 50, "page_no": 1}).json()
    assert first["record_count"] == 129  # the inactive client is left out
    assert [c["id"] for c in first["clients"][:3]] == [1, 2, 4]
    last = api.call("GET", "/Client", params={"pageinate": "true", "page_size": 50, "page_no": 3}).json()
    assert len(last["clients"]) == 29
    everyone = api.call("GET", "/Client", params={"includeinactive": "true"}).json()
    assert (everyone["record_count"], len(everyone["clients"])) == (130, 130)
    counted = api.call("GET", "/Client", params={"count": 20}).json()  # without paging, count limits the list
    assert (counted["record_count"], [c["id"] for c in counted["clients"]][:3], len(counted["clients"])) == (
        129, [1, 2, 4], 20)
    users = api.call("GET", "/Users", params={"client_id": 1}).json()["users"]
    assert [(u["name"], u["emailaddress"], u["email2"], u["client_name"]) for u in users] == [
        ("Ann Lee", "ann@one.com", "a.lee@one.com", "Client 001")]
    assert api.call("GET", "/Users", params={"includeinactive": "true"}).json()["record_count"] == 2
    items = api.call("GET", "/Item").json()["items"]
    assert [(i["name"], i["isrecurringitem"], i["recurringprice"], i["baseprice"]) for i in items] == [
        ("M365-BP", True, 22.0, 22.0), ("Setup", False, 0.0, 100.0)]
    contracts = api.call("GET", "/ClientContract", params={"client_id": 1}).json()["contracts"]
    assert [(c["ref"], c["contracttype_name"], c["active"]) for c in contracts] == [("ONE-1", "Managed", True)]
    bad = api.call("GET", "/Client", params={"pageinate": "true", "page_size": "many"})
    assert (bad.status_code, bad.json()) == (400, "page_size must be a whole number, got 'many'")


def test_recurring_invoices_with_and_without_their_lines(api: Api) -> None:
    listed = api.call("GET", "/RecurringInvoice", params={"client_id": 1}).json()
    assert listed["record_count"] == 1
    assert "lines" not in listed["invoices"][0]
    with_lines = api.call("GET", "/RecurringInvoice", params={"client_id": 1, "includelines": "true"}).json()
    assert [line["id"] for line in with_lines["invoices"][0]["lines"]] == [500, 501]
    invoice = api.invoice(-2)
    assert (invoice["period"], invoice["lastcreated"], invoice["nextcreationdate"]) == (
        3, "2025-11-01T00:00:00", "2026-02-01T00:00:00")
    missing = api.call("GET", "/RecurringInvoice/-99")
    assert (missing.status_code, missing.json()) == (404, "Recurring invoice -99 not found")


def test_posted_lines_replace_the_invoice_lines(api: Api) -> None:
    lines = api.invoice(-1)["lines"]
    lines[0]["qty_order"] = 25
    saved = api.call("POST", "/RecurringInvoice", json=[{"id": -1, "lines": [lines[0], {"_itemid": 1,
                                                                                      "qty_order": 3}]}])
    assert saved.status_code == 201
    body = saved.json()
    assert [(line["id"], line["qty_order"]) for line in body["lines"]] == [(500, 25.0), (601, 3.0)]  # 501 removed
    assert body["lines"][1]["unit_price"] == 22.0  # from the item
    assert body["lines"][0]["net_amount"] == 550.0


def test_keys_halo_does_not_let_a_client_write_are_ignored_and_unknown_ones_noted(api: Api) -> None:
    """Halo ignores what a client may not write (no error): a line read and posted back whole
    passes, and so does a misspelt key, without its change. The emulator notes the misspelt one."""
    line = api.invoice(-1)["lines"][0]
    posted = [{**line, "net_amount": 1.0, "item_code": "X", "qty_ordr": 99},
              {"_itemid": 1, "qty_order": 2, "unitprice": 5}]
    saved = api.call("POST", "/RecurringInvoice", json=[{"id": -1, "lines": posted}])
    assert saved.status_code == 201
    lines = saved.json()["lines"]
    assert [(row["id"], row["qty_order"], row["unit_price"], row["net_amount"]) for row in lines] == [
        (500, line["qty_order"], line["unit_price"], line["net_amount"]), (601, 2.0, 22.0, 44.0)]
    assert api.emulator.state()["ignoredKeys"] == [{"invoice": -1, "line": 500, "key": "qty_ordr"},
                                                   {"invoice": -1, "line": 601, "key": "unitprice"}]
    refused = api.call("POST", "/RecurringInvoice", json=[{"id": -1, "lines": [{"id": 999, "qty_ordr": 1}]}])
    assert refused.status_code == 400 and len(api.emulator.state()["ignoredKeys"]) == 2  # nothing saved, nothing noted


@pytest.mark.parametrize(("lines", "message"), [
    ([{"id": 999, "qty_order": 1}], "Recurring invoice -1: line 999 was not found on this invoice"),
    ([{"qty_order": 1}], "new line 0 needs the _itemid of an existing item, got None"),
    ([{"_itemid": 3, "qty_order": 1}], "item 3 is inactive"),
    ([{"id": 500, "qty_order": "lots"}], "qty_order must be a number, got 'lots'"),
    ([{"id": 500, "qty_order": -1}], "qty_order cannot be negative"),
])
def test_refused_writes_answer_400_with_a_message_and_change_nothing(api: Api, lines: list[Any], message: str) -> None:
    before = api.emulator.state()["recurringInvoices"]
    response = api.call("POST", "/RecurringInvoice", json=[{"id": -2, "lines": [{"id": 600}]}, {"id": -1,
                                                                                              "lines": lines}])
    assert response.status_code == 400
    assert message in response.text
    assert api.emulator.state()["recurringInvoices"] == before  # all or nothing
    unknown = api.call("POST", "/RecurringInvoice", json=[{"id": -50, "lines": []}])
    assert "Recurring invoice -50 not found" in unknown.text


def test_pro_rata_entries_are_priced_for_the_rest_of_the_period(api: Api) -> None:
    line = api.invoice(-1)["lines"][0]
    line["prorata_data"] = [{"date": "2026-01-15T00:00:00", "quantity": 2}]
    saved = api.call("POST", "/RecurringInvoice", json=[{"id": -1, "lines": [line, api.invoice(-1)["lines"][1]]}])
    entry = saved.json()["lines"][0]["prorata_data"][0]
    assert (entry["quantity"], entry["unitprice"], entry["isinvoiced"], entry["invoicedetailid"]) == (
        2.0, 12.06, False, 500)  # 22.00 x 17 / 31
    state_line = api.emulator.state()["recurringInvoices"][0]["lines"][0]
    assert (state_line["qty_order"], state_line["billed_quantity"]) == (20.0, 22.0)
    # posted again as read, the entry is kept
    again = api.call("POST", "/RecurringInvoice", json=[{"id": -1, "lines": api.invoice(-1)["lines"]}]).json()
    assert len(again["lines"][0]["prorata_data"]) == 1


@pytest.mark.parametrize(("entry", "message"), [
    ({"date": "2026-02-03T00:00:00", "quantity": 2}, "is outside the current period (2026-01-01 to 2026-01-31)"),
    ({"date": "2026-01-20T00:00:00", "quantity": -2}, "negative pro-rata is not allowed"),
    ({"quantity": 2}, "a pro-rata entry needs a date"),
    ({"date": "2026-01-20T00:00:00", "quantity": 0}, "needs a non-zero quantity"),
    ({"date": "2026-01-20T00:00:00", "quantity": 1, "dont_auto_calculate": True}, "needs a unitprice"),
])
def test_refused_pro_rata_entries(api: Api, entry: dict[str, Any], message: str) -> None:
    line = api.invoice(-1)["lines"][0]
    line["prorata_data"] = [entry]
    response = api.call("POST", "/RecurringInvoice", json=[{"id": -1, "lines": [line]}])
    assert response.status_code == 400
    assert message in response.text


def test_negative_pro_rata_when_halo_allows_it(serve: Callable[..., Api]) -> None:
    section = scenario()
    section["allowNegativeProRata"] = True
    api = serve(section, clock=CLOCK)
    line = api.invoice(-1)["lines"][0]
    line["prorata_data"] = [{"date": "2026-01-20T00:00:00", "quantity": -2}]
    entry = api.call("POST", "/RecurringInvoice", json=[{"id": -1, "lines": [line]}]).json()["lines"][0][
        "prorata_data"][0]
    assert (entry["quantity"], entry["unitprice"]) == (-2.0, 8.52)  # 22.00 x 12 / 31


def test_the_5_minute_window_answers_429(serve: Callable[..., Api]) -> None:
    clock = FakeClock(1000.0)
    section = scenario()
    section["rateLimit"] = {"requestsPer5Minutes": 3}
    api = serve(section, clock=clock)
    assert api.call("GET", "/Client/1").status_code == 200  # the token was the first request
    clock.now += 100
    assert api.call("GET", "/Client/1").status_code == 200
    refused = api.call("GET", "/Client/1")
    assert refused.status_code == 429
    assert refused.text == "Too many requests: 3 requests per rolling 5 minute window"
    assert refused.headers["Retry-After"] == "200"  # the token request leaves the window at 300 s
    clock.now += 200
    assert api.call("GET", "/Client/1").status_code == 200
    assert api.emulator.state()["rateLimit"] == {"requestsInWindow": 2, "refused": 1, "limit": 3}


def test_faults_answer_in_halo_shapes(api: Api) -> None:
    api.emulator.faults.add([{"kind": "throttle", "path": "Client", "times": 1, "retryAfter": 7},
                             {"kind": "error", "path": "Item", "status": 502, "times": 1},
                             {"kind": "auth", "path": "Users", "times": 1},
                             {"kind": "broken-paging", "path": "Client", "times": 1}])
    throttled = api.call("GET", "/Client")
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "7")
    assert "requests per rolling 5 minute window" in throttled.text
    assert api.call("GET", "/Item").status_code == 502
    assert api.call("GET", "/Users").status_code == 401
    page_two = api.call("GET", "/Client", params={"pageinate": "true", "page_size": 10, "page_no": 2}).json()
    assert page_two["clients"][0]["id"] == 1  # the first page again


def test_tickets_and_actions_are_refused_as_halo_refuses_them(api: Api) -> None:
    assert api.call("POST", "/Tickets", json=[{"summary": "Disk full", "client_id": 999}]).status_code == 400
    assert api.call("POST", "/Tickets", json=[{"client_id": 1}]).json() == "Ticket 0: a ticket needs a summary"
    created = api.call("POST", "/Tickets", json=[{"summary": "Disk full", "client_id": 1, "tickettype_id": 3,
                                                  "details": "C: is full", "hasbeenclosed": True}])
    assert created.status_code == 201
    ticket = created.json()
    assert (ticket["status_id"], ticket["hasbeenclosed"], ticket["site_id"]) == (1, False, 10)
    assert api.call("POST", "/Actions", json=[{"ticket_id": ticket["id"]}]).status_code == 400
    api.call("POST", "/Actions", json=[{"ticket_id": ticket["id"], "note": "Cleared", "hiddenfromuser": True}])
    closed = api.call("POST", "/Tickets", json=[{"id": ticket["id"], "status_id": 9}]).json()
    assert (closed["status_name"], closed["hasbeenclosed"]) == ("Closed", True)
    assert closed["dateclosed"] is not None
    assert api.call("GET", "/Tickets", params={"open_only": "true"}).json() == {"record_count": 0, "tickets": []}
    actions = api.call("GET", "/Actions", params={"ticket_id": ticket["id"]}).json()["actions"]
    assert [a["note"] for a in actions] == ["Cleared"]
