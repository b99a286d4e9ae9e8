"""The emulators read and written through the third-party clients from PyPI: pyconnectwise
(ConnectWise), autotask-client (Autotask) and HaloPSA (HaloPSA), each in its own Python 3.12
environment (``.venv-clients``, made by ``make``) as a subprocess printing JSON (see
``tests/third_party_clients``). Each client pages as it does against the real service (the
``Link`` header's ``page=N>; rel="next"``, ``id`` greater than the last one, ``page_no`` up to
``record_count``), writes as it does, and sees the refusals the vendors document."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from emulators.autotask import AutotaskEmulator
from emulators.base import RunningEmulator
from emulators.connectwise import ConnectWiseEmulator
from emulators.halopsa import HaloEmulator
from emulators.tls import TlsFiles, ensure_tls_files
from shared.adapters.autotask import AutotaskClient, AutotaskLimits
from shared.adapters.connectwise import ConnectWiseClient
from shared.adapters.halopsa import HaloClient, HaloLimits
from shared.domain.model import ContactDetails, TicketSpec
from shared.ports import PsaPort, TicketPort
from tests.psa_test_support import recording_http

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = ROOT / "tests" / "third_party_clients"
CW_CLIENT_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
AT_USER = {"username": "api@msp.example", "secret": "s3cret", "integrationCode": "SEATSYNC1"}
# What SeatSync writes to a contact on every PSA, and what it changes afterwards.
NEW_CONTACT = ContactDetails(first_name="Dee", last_name="Ray", email="dee.ray@fabrikam.example", title="Accountant",
                             phone="+44 20 7946 0011", mobile="+44 7700 900011")
CHANGED = ContactDetails(title="Finance lead", email="dee@fabrikam.example")


def write_contacts(client: PsaPort, company_id: str, existing_id: str) -> tuple[str, str]:
    """Through SeatSync's client: create Dee's contact, change its title and address, and
    deactivate the existing contact ``existing_id``. The ids of the two contacts."""
    created = client.create_contact(company_id, NEW_CONTACT)
    client.update_contact(created, CHANGED)
    existing = next(c for c in client.list_contacts(company_id) if c.contact_id == existing_id)
    client.update_contact(existing, ContactDetails(), active=False)
    return created.contact_id, existing_id


def write_tickets(client: PsaPort, spec: TicketSpec, company_id: str) -> tuple[str, str]:
    """Through SeatSync's client (its ``TicketPort``): open two tickets, note the first, close the
    second. The ids of the two tickets."""
    assert isinstance(client, TicketPort)
    kept = client.open_ticket(spec, company_id, "SeatSync: Billing problems - Fabrikam", "Line 500 differs",
                              "[SeatSync 0123456789ab]")
    client.note_ticket(spec, kept, "Still open.")
    cleared = client.open_ticket(spec, company_id, "SeatSync: Unused licences - Fabrikam", "3 unused",
                                 "[SeatSync ba9876543210]")
    client.close_ticket(spec, cleared, "Cleared.")
    return kept.ticket_id, cleared.ticket_id


def seatsync_connectwise(server: RunningEmulator, tls: TlsFiles) -> ConnectWiseClient:
    return ConnectWiseClient("connectwise", f"{server.url}/v2025_1/apis/3.0", "seatsyncmsp", "pubkey", "privkey",
                             CW_CLIENT_ID, http=recording_http("cw", tls, lambda s: None))


def seatsync_autotask(server: RunningEmulator, tls: TlsFiles) -> AutotaskClient:
    return AutotaskClient(name="autotask", username=AT_USER["username"], secret=AT_USER["secret"],
                          integration_code=AT_USER["integrationCode"], zone_url=None,
                          discovery_url=f"{server.url}/ATServicesRest", hourly_request_share=Decimal("0.25"),
                          max_concurrent_requests=3, http=recording_http("at", tls, lambda s: None),
                          limits=AutotaskLimits(Decimal("0.25"), 3))


def seatsync_halo(server: RunningEmulator, tls: TlsFiles) -> HaloClient:
    return HaloClient(name="halopsa", base_url=server.url, tenant="seatsyncmsp", client_id="seatsync-app",
                      client_secret="s3cret", lines="recurring-invoice", requests_per_5_minutes=250,
                      http=recording_http("halo", tls, lambda s: None), limits=HaloLimits.create(250))


def clients_python() -> Path:
    """The Python of the third-party clients' environment; its absence fails the test, saying
    how to make it (it is part of ``make setup``)."""
    configured = os.environ.get("SEATSYNC_CLIENTS_PYTHON")
    python = Path(configured) if configured else ROOT / ".venv-clients" / "bin" / "python"
    if not python.exists():
        pytest.fail(f"the third-party PSA clients' environment is missing ({python}): run `make setup`, which "
                    "makes it with Python 3.12 or later from requirements-clients.txt")
    return python


def drive(client: str, tls: TlsFiles, connection: dict[str, Any], steps: list[dict[str, Any]]) -> list[Any]:
    """Run ``tests/third_party_clients/<client>_driver.py`` with ``steps``; their results."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "PYTHONPATH": str(ROOT),
           "REQUESTS_CA_BUNDLE": str(tls.ca_certificate), "SSL_CERT_FILE": str(tls.ca_certificate),
           "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([str(clients_python()), str(DRIVERS / f"{client}_driver.py")], cwd=ROOT, env=env,
                          input=json.dumps({"connection": connection, "steps": steps}), capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{client} driver failed:\n{done.stderr[-3000:]}"
    results: list[Any] = json.loads(done.stdout)["results"]
    return results


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls_files(tmp_path_factory.mktemp("third-party-tls"))


# --------------------------------------------------------------------------- ConnectWise


def connectwise_scenario() -> dict[str, Any]:
    return {
        "codebase": "v2025_1", "companyId": "seatsyncmsp", "today": "2026-01-15",
        "credentials": [{"publicKey": "pubkey", "privateKey": "privkey", "clientId": CW_CLIENT_ID}],
        "companies": [{"id": n, "identifier": f"C{n:03d}", "name": f"Company {n:03d}"} for n in range(1, 24)],
        "contacts": [{"id": n, "companyId": 1 + n % 3, "firstName": f"User{n}", "lastName": "Lee",
                      "emails": [f"user{n}@c{1 + n % 3}.example"], "phone": "+44 20 7946 0000"} for n in range(1, 8)],
        "catalog": [{"id": n, "identifier": f"SKU-{n}", "description": f"Licence {n}", "price": 10 + n, "cost": n,
                     "taxable": n % 2 == 0} for n in range(1, 8)],
        "agreementTypes": [{"id": 1, "name": "Microsoft 365", "prorate": True}],
        "agreements": [{"id": 100 + n, "name": f"M365 {n}", "companyId": n, "typeId": 1, "startDate": "2026-01-01"}
                       for n in range(1, 12)],
        "additions": [{"id": 500 + n, "agreementId": 101, "productId": 1 + n % 7, "quantity": 10 + n,
                       "effectiveDate": "2026-01-01", "taxable": True, "invoiceGrouping": "Licences"}
                      for n in range(1, 13)],
    }


@pytest.fixture(scope="module")
def connectwise(tls: TlsFiles) -> Iterator[RunningEmulator]:
    with RunningEmulator(ConnectWiseEmulator(connectwise_scenario()), tls) as server:
        yield server


def cw_connection(server: RunningEmulator) -> dict[str, Any]:
    return {"companyId": "seatsyncmsp", "host": f"127.0.0.1:{server.port}", "clientId": CW_CLIENT_ID,
            "publicKey": "pubkey", "privateKey": "privkey"}


def pages_read(server: RunningEmulator, path: str) -> list[str]:
    return [str(e["query"].get("page")) for e in server.emulator.requests_log()
            if e["method"] == "GET" and e["path"].endswith(path)]


def test_pyconnectwise_reads_every_page_of_companies_agreements_additions_and_the_catalogue(
        connectwise: RunningEmulator, tls: TlsFiles) -> None:
    connectwise.emulator.reset()
    companies, agreements, additions, catalog, contacts, types = drive("connectwise", tls, cw_connection(connectwise), [
        {"op": "companies", "pageSize": 5, "conditions": "deletedFlag=false"},
        {"op": "agreements", "pageSize": 4},
        {"op": "additions", "agreementId": 101, "pageSize": 5},
        {"op": "catalog", "pageSize": 3},
        {"op": "contacts", "pageSize": 3, "conditions": "company/id=2"},
        {"op": "agreement_types", "pageSize": 10},
    ])
    state = connectwise.emulator.state()
    assert [c["id"] for c in companies] == list(range(1, 24))
    assert pages_read(connectwise, "/company/companies") == ["1", "2", "3", "4", "5"]
    assert all(e["query"]["conditions"] == "deletedFlag=false" for e in connectwise.emulator.requests_log()
               if e["path"].endswith("/company/companies"))
    assert [a["id"] for a in agreements] == [a["id"] for a in state["agreements"]]
    assert pages_read(connectwise, "/finance/agreements") == ["1", "2", "3"]
    held = {a["id"]: a for a in next(g for g in state["agreements"] if g["id"] == 101)["additions"]}
    assert [a["id"] for a in additions] == sorted(held)
    assert pages_read(connectwise, "/agreements/101/additions") == ["1", "2", "3"]
    for addition in additions:  # what the client parsed is what the PSA holds, field by field
        mine = held[addition["id"]]
        assert (addition["quantity"], addition["unitPrice"], addition["billCustomer"], addition["taxableFlag"]) == (
            mine["quantity"], mine["unitPrice"], mine["billCustomer"], True)
        assert addition["invoiceGrouping"]["name"] == "Licences"
        assert addition["product"]["identifier"] == mine["product"]["identifier"]
    assert [(c["identifier"], c["price"], c["taxableFlag"]) for c in catalog] == [
        (f"SKU-{n}", 10.0 + n, n % 2 == 0) for n in range(1, 8)]
    assert [(c["id"], c["communicationItems"][0]["value"]) for c in contacts] == [
        (1, "user1@c2.example"), (4, "user4@c2.example"), (7, "user7@c2.example")]
    assert [(t["name"], t["prorateFlag"]) for t in types] == [("Microsoft 365", True)]


def test_pyconnectwise_creates_and_patches_additions_and_meets_the_documented_refusals(
        connectwise: RunningEmulator, tls: TlsFiles) -> None:
    connectwise.emulator.reset()
    body = {"product": {"id": 2}, "quantity": 3, "billCustomer": "Billable", "effectiveDate": "2026-01-15T00:00:00Z",
            "taxableFlag": True, "unitCost": 1.5, "serialNumber": "seatsync:e3", "invoiceGrouping": {"id": 1}}
    created, patched, read_only, too_long, bad_type, long_description = drive(
        "connectwise", tls, cw_connection(connectwise), [
            {"op": "create_addition", "agreementId": 102, "body": body},
            {"op": "patch_addition", "agreementId": 101, "additionId": 501,
             "operations": [{"op": "replace", "path": "quantity", "value": 15},
                            {"op": "replace", "path": "unitPrice", "value": 21.5}]},
            {"op": "patch_addition", "agreementId": 101, "additionId": 501,
             "operations": [{"op": "replace", "path": "extPrice", "value": 1}]},
            {"op": "create_addition", "agreementId": 102, "body": {**body, "serialNumber": "x" * 51}},
            {"op": "patch_addition", "agreementId": 101, "additionId": 501,
             "operations": [{"op": "replace", "path": "quantity", "value": "fifteen"}]},
            {"op": "patch_addition", "agreementId": 101, "additionId": 501,
             "operations": [{"op": "replace", "path": "invoiceDescription", "value": "x" * 6001}]},
        ])
    assert (created["agreementId"], created["quantity"], created["taxableFlag"], created["unitCost"],
            created["invoiceGrouping"]["name"], created["serialNumber"]) == (102, 3.0, True, 1.5, "Licences",
                                                                             "seatsync:e3")
    assert (patched["quantity"], patched["unitPrice"], patched["extPrice"]) == (15.0, 21.5, 322.5)
    assert read_only["error"] == "MalformedRequestException"
    assert read_only["status"] == 400
    assert read_only["body"]["code"] == "InvalidObject"
    assert read_only["body"]["errors"] == [{"code": "ReadOnlyField", "message": "The field extPrice is read only.",
                                            "resource": "addition", "field": "extPrice"}]
    assert (too_long["status"], too_long["body"]["errors"][0]["field"], too_long["body"]["errors"][0]["code"]) == (
        400, "serialNumber", "MaxLengthField")
    assert (bad_type["status"], bad_type["body"]["errors"][0]["field"]) == (400, "quantity")
    assert (long_description["status"], long_description["body"]["errors"][0]["field"]) == (
        400, "invoiceDescription")
    held = {a["id"]: a for g in connectwise.emulator.state()["agreements"] for a in g["additions"]}
    assert held[501]["quantity"] == 15.0  # the refused patches changed nothing


def test_pyconnectwise_reads_back_the_contacts_seatsync_wrote(connectwise: RunningEmulator, tls: TlsFiles) -> None:
    connectwise.emulator.reset()
    seatsync = seatsync_connectwise(connectwise, tls)
    created, deactivated = write_contacts(seatsync, "2", "1")
    (contacts,) = drive("connectwise", tls, cw_connection(connectwise),
                        [{"op": "contacts", "pageSize": 2, "conditions": "company/id=2"}])
    found = {str(c["id"]): c for c in contacts}
    assert set(found) == {"1", "4", "7", created}
    dee = found[created]
    assert (dee["firstName"], dee["lastName"], dee["title"], dee["inactiveFlag"], dee["company"]["id"]) == (
        "Dee", "Ray", "Finance lead", False, 2)
    items = {(i["type"]["name"], i["communicationType"], i["value"], i["defaultFlag"])
             for i in dee["communicationItems"]}
    assert items == {("Email", "Email", "dee@fabrikam.example", True), ("Direct", "Phone", "+44 20 7946 0011", True),
                     ("Mobile", "Phone", "+44 7700 900011", False)}
    assert found[deactivated]["inactiveFlag"] is True
    assert found[deactivated]["communicationItems"][0]["value"] == "user1@c2.example", "nothing else changed"


def test_pyconnectwise_reads_back_the_tickets_seatsync_wrote(connectwise: RunningEmulator, tls: TlsFiles) -> None:
    connectwise.emulator.reset()
    seatsync = seatsync_connectwise(connectwise, tls)
    kept, cleared = write_tickets(seatsync, TicketSpec(queue="1"), "2")
    tickets, notes = drive("connectwise", tls, cw_connection(connectwise), [
        {"op": "tickets", "pageSize": 1, "conditions": "board/id=1"},
        {"op": "ticket_notes", "pageSize": 5, "ticketId": int(kept)}])
    found = {str(t["id"]): t for t in tickets}
    assert set(found) == {kept, cleared}
    assert (found[kept]["summary"], found[kept]["closedFlag"], found[kept]["company"]["id"]) == (
        "SeatSync: Billing problems - Fabrikam [SeatSync 0123456789ab]", False, 2)
    assert (found[cleared]["closedFlag"], found[cleared]["status"]["name"]) == (True, ">Closed")
    assert [(n["text"], n["detailDescriptionFlag"], n["internalAnalysisFlag"]) for n in notes] == [
        ("Line 500 differs", True, False), ("Still open.", False, True)]


def test_pyconnectwise_sees_a_refused_login_as_the_vendor_answers_it(
        connectwise: RunningEmulator, tls: TlsFiles) -> None:
    connectwise.emulator.reset()
    (refused,) = drive("connectwise", tls, {**cw_connection(connectwise), "privateKey": "wrong"},
                       [{"op": "companies", "pageSize": 5}])
    assert (refused["error"], refused["status"]) == ("AuthenticationFailedException", 401)
    assert refused["body"]["code"] == "Unauthorized"


# --------------------------------------------------------------------------- Autotask


def autotask_scenario() -> dict[str, Any]:
    return {
        "today": "2026-01-15", "users": [AT_USER],
        "companies": [{"id": n, "name": f"Company {n:04d}"} for n in range(1, 523)],
        "contacts": [{"id": 7, "companyId": 19, "firstName": "Ann", "lastName": "Lee",
                      "emails": ["ann@fabrikam.com", "ann.lee@fabrikam.com"]}],
        "services": [{"id": 1, "name": "M365-BP", "unitPrice": 22, "unitCost": 19.8, "billingCodeId": 7001},
                     {"id": 2, "name": "M365-E3", "unitPrice": 36, "unitCost": 32.4, "billingCodeId": 7002}],
        "contracts": [{"id": 100, "name": "Fabrikam M365", "companyId": 19, "startDate": "2026-01-01",
                       "endDate": "2026-12-31"}],
        "contractServices": [{"id": 500, "contractId": 100, "serviceId": 1, "units": 20}],
    }


@pytest.fixture(scope="module")
def autotask(tls: TlsFiles) -> Iterator[RunningEmulator]:
    with RunningEmulator(AutotaskEmulator(autotask_scenario()), tls) as server:
        yield server


def at_connection(server: RunningEmulator, **changes: str) -> dict[str, Any]:
    return {**AT_USER, **changes, "apiUrl": server.url}


def test_autotask_client_reads_every_page_of_companies_and_the_contract_services(
        autotask: RunningEmulator, tls: TlsFiles) -> None:
    autotask.emulator.reset()
    companies, contracts, services, catalogue, contacts, units = drive("autotask", tls, at_connection(autotask), [
        {"op": "query", "entity": "Companies", "filter": [{"op": "gte", "field": "id", "value": 0}]},
        {"op": "query", "entity": "Contracts", "filter": [{"op": "eq", "field": "companyID", "value": 19}]},
        {"op": "query", "entity": "ContractServices", "filter": [{"op": "eq", "field": "contractID", "value": 100}]},
        {"op": "query", "entity": "Services", "filter": [{"op": "eq", "field": "isActive", "value": True}]},
        {"op": "query", "entity": "Contacts", "filter": [{"op": "eq", "field": "companyID", "value": 19}]},
        {"op": "query", "entity": "ContractServiceUnits",
         "filter": [{"op": "eq", "field": "contractServiceID", "value": 500},
                    {"op": "lte", "field": "startDate", "value": "2026-01-15"}]},
    ])
    assert [c["id"] for c in companies] == list(range(1, 523))  # 500, then the 22 with id above 500
    queries = [e for e in autotask.emulator.requests_log() if e["path"].lower().endswith("/companies/query")]
    assert len(queries) == 2
    assert [(c["id"], c["contractName"]) for c in contracts] == [(100, "Fabrikam M365")]
    assert [(s["id"], s["serviceID"], s["unitPrice"], s["adjustedPrice"]) for s in services] == [(500, 1, 22.0, None)]
    assert [(s["name"], s["billingCodeID"]) for s in catalogue] == [("M365-BP", 7001), ("M365-E3", 7002)]
    assert [(c["id"], c["emailAddress"], c["emailAddress2"]) for c in contacts] == [
        (7, "ann@fabrikam.com", "ann.lee@fabrikam.com")]
    assert [(u["startDate"], u["units"], u["price"]) for u in units] == [("2026-01-01T00:00:00Z", 20, 22.0)]


def test_autotask_client_updates_only_what_the_api_lets_it_update(autotask: RunningEmulator, tls: TlsFiles) -> None:
    autotask.emulator.reset()
    created, priced, refused, read_back = drive("autotask", tls, at_connection(autotask), [
        {"op": "create_contract_service", "fields": {"contractID": 100, "serviceID": 2, "unitCost": 30.0,
                                                     "internalDescription": "seatsync:e3"}},
        {"op": "update_contract_service", "id": 500, "changes": {"adjustedPrice": 21.5,
                                                                "invoiceDescription": "Ann, Bob and 18 more"}},
        {"op": "update_contract_service", "id": 500, "changes": {"unitPrice": 20.0}},
        {"op": "get", "entity": "ContractServices", "id": 500},
    ])
    assert (created["id"], created["serviceID"], created["unitPrice"], created["unitCost"]) == (501, 2, 36.0, 30.0)
    assert priced == {"itemId": 500}
    assert refused["status"] == 500
    assert json.loads(refused["body"])["errors"] == [
        "The field unitPrice is read-only on update: only adjustedPrice and invoiceDescription can be updated."]
    assert (read_back["unitPrice"], read_back["adjustedPrice"], read_back["invoiceDescription"]) == (
        22.0, 21.5, "Ann, Bob and 18 more")


def test_autotask_client_reads_back_the_contacts_seatsync_wrote(autotask: RunningEmulator, tls: TlsFiles) -> None:
    autotask.emulator.reset()
    seatsync = seatsync_autotask(autotask, tls)
    created, deactivated = write_contacts(seatsync, "19", "7")
    (contacts,) = drive("autotask", tls, at_connection(autotask), [
        {"op": "query", "entity": "Contacts", "filter": [{"op": "eq", "field": "companyID", "value": 19}]}])
    found = {str(c["id"]): c for c in contacts}
    assert set(found) == {"7", created}
    dee = found[created]
    assert (dee["firstName"], dee["lastName"], dee["title"], dee["emailAddress"], dee["phone"], dee["mobilePhone"],
            dee["isActive"], dee["companyID"]) == (
        "Dee", "Ray", "Finance lead", "dee@fabrikam.example", "+44 20 7946 0011", "+44 7700 900011", 1, 19)
    assert (found[deactivated]["isActive"], found[deactivated]["emailAddress"]) == (0, "ann@fabrikam.com")


def test_autotask_client_reads_back_the_tickets_seatsync_wrote(autotask: RunningEmulator, tls: TlsFiles) -> None:
    autotask.emulator.reset()
    seatsync = seatsync_autotask(autotask, tls)
    kept, cleared = write_tickets(seatsync, TicketSpec(queue="29683354"), "19")
    tickets, notes = drive("autotask", tls, at_connection(autotask), [
        {"op": "query", "entity": "Tickets", "filter": [{"op": "eq", "field": "companyID", "value": 19}]},
        {"op": "query", "entity": "TicketNotes", "filter": [{"op": "eq", "field": "ticketID", "value": int(kept)}]}])
    found = {str(t["id"]): t for t in tickets}
    assert set(found) == {kept, cleared}
    assert (found[kept]["title"], found[kept]["status"], found[kept]["queueID"], found[kept]["priority"]) == (
        "SeatSync: Billing problems - Fabrikam [SeatSync 0123456789ab]", 1, 29683354, 2)
    assert (found[cleared]["status"], found[cleared]["completedDate"] is not None) == (5, True)
    assert [n["description"] for n in notes] == ["Still open."]


def test_autotask_client_meets_the_refusals_of_contacts(autotask: RunningEmulator, tls: TlsFiles) -> None:
    autotask.emulator.reset()
    (no_last_name,) = drive("autotask", tls, at_connection(autotask), [
        {"op": "create_contact", "companyId": 19, "fields": {"firstName": "Eve", "isActive": 1,
                                                             "emailAddress": "eve@fabrikam.example"}}])
    assert no_last_name["status"] == 500
    assert json.loads(no_last_name["body"])["errors"] == ["The lastName field is required."]
    assert [c["id"] for c in autotask.emulator.state()["contacts"]] == [7]


@pytest.mark.parametrize(("changes", "error"), [
    ({"username": "nobody@msp.example"}, "AutotaskAuthError"),
    ({"integrationCode": "WRONG"}, "AutotaskAuthError"),
    ({"secret": "wrong"}, "AutotaskAuthError"),
])
def test_autotask_client_sees_refused_logins_as_the_live_api_answers_them(
        autotask: RunningEmulator, tls: TlsFiles, changes: dict[str, str], error: str) -> None:
    autotask.emulator.reset()
    (refused,) = drive("autotask", tls, at_connection(autotask, **changes),
                       [{"op": "query", "entity": "Companies", "filter": [{"op": "eq", "field": "id", "value": 1}]}])
    assert refused["error"] == error
    status = [e["status"] for e in autotask.emulator.requests_log()]
    assert status == [401] if "secret" in changes else status == [500]


# --------------------------------------------------------------------------- HaloPSA


def halo_scenario() -> dict[str, Any]:
    return {
        "today": "2026-01-15", "tenant": "seatsyncmsp", "rateLimit": None,
        "applications": [{"clientId": "seatsync-app", "clientSecret": "s3cret"}],
        "clients": [{"id": n, "name": f"Client {n:03d}"} for n in range(1, 121)],
        "users": [{"id": n, "clientId": n, "firstName": f"User{n}", "email": f"user{n}@client{n}.example"}
                  for n in range(1, 6)],
        "contracts": [{"id": 40, "clientId": 1, "ref": "C1-M365", "startDate": "2026-01-01"}],
        "items": [{"id": n, "name": f"SKU-{n}", "price": 10 + n, "cost": n, "taxCode": 2 if n % 2 else 0,
                   "nominalCode": f"4{n:03d}"} for n in range(1, 8)],
        "recurringInvoices": [{"id": -n, "clientId": n, "reference": f"Client {n} M365", "startDate": "2026-01-01"}
                              for n in range(1, 6)],
        "lines": [{"id": 500 + n, "invoiceId": -1 - n % 5, "itemId": 1 + n % 7, "quantity": 10 + n}
                  for n in range(1, 11)],
    }


@pytest.fixture(scope="module")
def halo(tls: TlsFiles) -> Iterator[RunningEmulator]:
    with RunningEmulator(HaloEmulator(halo_scenario()), tls) as server:
        yield server


def halo_connection(server: RunningEmulator, secret: str = "s3cret") -> dict[str, Any]:
    return {"baseUrl": server.url, "tenant": "seatsyncmsp", "clientId": "seatsync-app", "secret": secret}


def test_halopsa_package_reads_every_page_of_clients_items_and_recurring_invoices(
        halo: RunningEmulator, tls: TlsFiles) -> None:
    halo.emulator.reset()
    clients, items, invoices, users, contracts = drive("halopsa", tls, halo_connection(halo), [
        {"op": "clients", "pageSize": 50}, {"op": "items", "pageSize": 3}, {"op": "invoices", "pageSize": 2},
        {"op": "users", "pageSize": 2}, {"op": "contracts", "pageSize": 10}])
    assert [(u["id"], u["emailaddress"], u["client_id"]) for u in users] == [
        (n, f"user{n}@client{n}.example", n) for n in range(1, 6)]
    assert [(c["id"], c["ref"], c["client_id"]) for c in contracts] == [(40, "C1-M365", 1)]
    assert [c["id"] for c in clients] == list(range(1, 121))
    pages = [e["query"]["page_no"] for e in halo.emulator.requests_log() if e["path"] == "/api/Client"]
    assert pages == ["1", "2", "3"]
    assert [(i["name"], i["taxcode"], i["nominalcode"]) for i in items] == [
        (f"SKU-{n}", 2 if n % 2 else 0, f"4{n:03d}") for n in range(1, 8)]
    state = {i["id"]: i for i in halo.emulator.state()["recurringInvoices"]}
    assert sorted(i["id"] for i in invoices) == sorted(state)
    for invoice in invoices:
        assert [(ln["id"], ln["qty_order"], ln["tax_code"], ln["nominal_code"]) for ln in invoice["lines"]] == [
            (ln["id"], ln["qty_order"], ln["tax_code"], ln["nominal_code"]) for ln in state[invoice["id"]]["lines"]]


def test_halopsa_package_posts_an_invoice_with_its_lines(halo: RunningEmulator, tls: TlsFiles) -> None:
    halo.emulator.reset()
    changed, added, refused = drive("halopsa", tls, halo_connection(halo), [
        {"op": "post_lines", "id": -2, "lineId": 501, "changes": {"qty_order": 14}},
        {"op": "post_lines", "id": -2, "add": {"_itemid": 4, "qty_order": 2, "item_internal_reference": "seatsync:x"}},
        {"op": "post_lines", "id": -2, "lineId": 501, "changes": {"qty_order": -1}},
    ])
    assert next(ln for ln in changed["lines"] if ln["id"] == 501)["qty_order"] == 14.0
    new = next(ln for ln in added["lines"] if ln["item_internal_reference"] == "seatsync:x")
    item = next(i for i in halo.emulator.state()["items"] if i["id"] == 4)
    assert (new["qty_order"], new["unit_price"], new["tax_code"], new["nominal_code"]) == (
        2.0, 14.0, item["taxcode"], item["nominalcode"])  # a new line takes the item's tax and nominal codes
    assert refused["error"] == "ValueError"
    assert "qty_order cannot be negative" in refused["body"]


def test_halopsa_package_reads_back_the_contacts_seatsync_wrote(halo: RunningEmulator, tls: TlsFiles) -> None:
    halo.emulator.reset()
    seatsync = seatsync_halo(halo, tls)
    created, deactivated = write_contacts(seatsync, "3", "3")
    (users,) = drive("halopsa", tls, halo_connection(halo), [
        {"op": "users", "pageSize": 1, "clientId": 3, "includeInactive": True}])
    found = {str(u["id"]): u for u in users}
    assert set(found) == {"3", created}
    dee = found[created]
    assert (dee["firstname"], dee["surname"], dee["name"], dee["title"], dee["emailaddress"], dee["phonenumber"],
            dee["mobilenumber"], dee["inactive"], dee["client_id"], dee["site_id"]) == (
        "Dee", "Ray", "Dee Ray", "Finance lead", "dee@fabrikam.example", "+44 20 7946 0011", "+44 7700 900011",
        False, 3, 30)
    assert (found[deactivated]["inactive"], found[deactivated]["emailaddress"]) == (True, "user3@client3.example")


def test_halopsa_package_reads_back_the_tickets_seatsync_wrote(halo: RunningEmulator, tls: TlsFiles) -> None:
    halo.emulator.reset()
    seatsync = seatsync_halo(halo, tls)
    kept, cleared = write_tickets(seatsync, TicketSpec(queue="3"), "3")
    (tickets,) = drive("halopsa", tls, halo_connection(halo), [{"op": "tickets", "pageSize": 1, "clientId": 3}])
    found = {str(t["id"]): t for t in tickets}
    assert set(found) == {kept, cleared}
    assert (found[kept]["summary"], found[kept]["status_id"], found[kept]["tickettype_id"]) == (
        "SeatSync: Billing problems - Fabrikam [SeatSync 0123456789ab]", 1, 3)
    assert (found[cleared]["status_name"], found[cleared]["hasbeenclosed"]) == ("Closed", True)
    assert [a["note"] for a in halo.emulator.state()["tickets"][0]["actions"]] == ["Still open."]


def test_halopsa_package_meets_the_refusal_of_a_user_without_a_site(halo: RunningEmulator, tls: TlsFiles) -> None:
    halo.emulator.reset()
    (refused,) = drive("halopsa", tls, halo_connection(halo), [
        {"op": "create_user", "user": {"firstname": "Eve", "surname": "Nobody", "emailaddress": "eve@x.example"}}])
    assert refused["error"] in ("Exception", "ValueError")
    assert "site_id None is not a site" in refused["body"]
    assert len(halo.emulator.state()["users"]) == 5


def test_halopsa_package_sees_a_refused_client_as_halo_answers_it(halo: RunningEmulator, tls: TlsFiles) -> None:
    halo.emulator.reset()
    with pytest.raises(AssertionError, match=re.escape("The client ID or client secret is not valid.")):
        drive("halopsa", tls, halo_connection(halo, secret="wrong"), [{"op": "clients", "pageSize": 50}])
