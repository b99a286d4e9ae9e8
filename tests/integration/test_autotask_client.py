"""The Autotask client against the Autotask emulator over HTTPS on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from emulators.autotask import AutotaskEmulator
from emulators.base import RunningEmulator
from emulators.tls import TlsFiles, ensure_tls_files
from shared.adapters.autotask import AutotaskClient, AutotaskLimits
from shared.adapters.http import RetryingHttp
from shared.domain.model import BillMode
from shared.errors import PsaAuthError, PsaError
from shared.ports import NewLine, PsaPort
from shared.services.bookkeeping import answered_no
from tests.psa_test_support import FakeClock, in_threads, recording_http, reset_emulator, serve_emulators

TODAY = date(2026, 1, 15)


def scenario() -> dict[str, Any]:
    return {
        "today": TODAY.isoformat(),
        "users": [{"username": "api@msp.example", "secret": "s3cret", "integrationCode": "CODE1"}],
        "contractCategories": ["Standard", "Microsoft 365"],
        "companies": [{"id": 19, "name": "Fabrikam Ltd", "number": "FAB", "website": "fabrikam.com"},
                      {"id": 20, "name": "Contoso Ltd", "active": False}],
        "contacts": [{"id": 7, "companyId": 19, "firstName": "Ann", "lastName": "Lee",
                      "emails": ["ann@fabrikam.com", "ann.lee@fabrikam.com"], "title": "IT lead"},
                     {"id": 8, "companyId": 20, "firstName": "Cy", "email": "cy@contoso.com", "active": False}],
        "services": [{"id": 1, "name": "M365-BP", "description": "Microsoft 365 Business Premium", "unitPrice": 22,
                      "unitCost": 19.8, "invoiceDescription": "Business Premium seats"},
                     {"id": 2, "name": "M365-E3", "unitPrice": 36, "unitCost": 32.4},
                     {"id": 3, "name": "Retired", "active": False}],
        "contracts": [{"id": 100, "name": "Fabrikam M365", "companyId": 19, "startDate": "2026-01-01",
                       "endDate": "2026-12-31", "category": "Microsoft 365"},
                      {"id": 101, "name": "Fabrikam annual", "companyId": 19, "startDate": "2025-07-01",
                       "endDate": "2027-06-30", "periodType": "Yearly"},
                      {"id": 102, "name": "Fabrikam old", "companyId": 19, "startDate": "2024-01-01",
                       "endDate": "2025-12-31", "periodType": "Quarterly"},
                      {"id": 103, "name": "Fabrikam hours", "companyId": 19, "startDate": "2026-01-01",
                       "endDate": "2026-12-31", "type": "BlockHours"}],
        "contractServices": [{"id": 500, "contractId": 100, "serviceId": 1, "units": 20},
                             {"id": 501, "contractId": 100, "serviceId": 2, "units": 3,
                              "internalDescription": "seatsync:e3", "unitPrice": 34.5},
                             {"id": 510, "contractId": 101, "serviceId": 2, "units": 10,
                              "internalDescription": "Renewal: call Ann in May"}],
    }


@dataclass
class Psa:
    emulator: AutotaskEmulator
    running: RunningEmulator
    tls: TlsFiles
    sleeps: list[float] = field(default_factory=list)

    def http(self) -> RetryingHttp:
        return recording_http("Autotask", self.tls, self.sleeps.append)

    def client(self, *, secret: str = "s3cret", limits: AutotaskLimits | None = None,
               zone_url: str | None = None) -> AutotaskClient:
        return AutotaskClient(name="autotask", username="api@msp.example", secret=secret, integration_code="CODE1",
                              zone_url=zone_url, discovery_url=f"{self.running.url}/ATServicesRest",
                              hourly_request_share=Decimal("0.25"), max_concurrent_requests=3, http=self.http(),
                              limits=limits or AutotaskLimits(Decimal("0.25"), 3), today=lambda: TODAY)

    def log(self, path: str = "", method: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.emulator.requests_log()
                if path.lower() in e["path"].lower() and (method is None or e["method"] == method)]

    def service(self, ident: int) -> dict[str, Any]:
        for contract in self.emulator.state()["contracts"]:
            for service in contract["services"]:
                if service["id"] == ident:
                    return dict(service)
        raise AssertionError(f"no contract service {ident}")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls_files(tmp_path_factory.mktemp("autotask-client-tls"))


@pytest.fixture(scope="module")
def shared_server(tls: TlsFiles) -> Iterator[RunningEmulator]:
    with RunningEmulator(AutotaskEmulator(scenario()), tls) as server:
        yield server


@pytest.fixture
def psa(shared_server: RunningEmulator, tls: TlsFiles) -> Psa:
    return Psa(reset_emulator(shared_server, AutotaskEmulator), shared_server, tls)


@pytest.fixture
def serve(tls: TlsFiles) -> Iterator[Callable[..., Psa]]:
    yield from serve_emulators(tls, AutotaskEmulator, scenario, Psa)


# --------------------------------------------------------------------------- zone and reads


def test_the_zone_is_discovered_once_for_every_client_of_the_connection(psa: Psa) -> None:
    limits = AutotaskLimits(Decimal("0.25"), 3)
    first = psa.client(limits=limits)
    port: PsaPort = first
    assert port.name == "autotask"
    assert first.zone_url == f"{psa.running.url}/ATServicesRest"
    first.list_companies()
    psa.client(limits=limits).list_companies()
    assert len(psa.log("zoneInformation")) == 1
    assert psa.log("zoneInformation")[0]["query"] == {"user": "api@msp.example"}


def test_a_configured_zone_is_used_without_discovery(psa: Psa) -> None:
    client = psa.client(zone_url=f"{psa.running.url}/ATServicesRest/")
    assert [c.company_id for c in client.list_companies()] == ["19", "20"]
    assert psa.log("zoneInformation") == []


def test_an_unknown_api_user_fails_zone_discovery_saying_what_to_check(psa: Psa) -> None:
    client = AutotaskClient(name="autotask", username="nobody@msp.example", secret="x", integration_code="CODE1",
                            zone_url=None, discovery_url=f"{psa.running.url}/ATServicesRest",
                            hourly_request_share=Decimal("0.25"), max_concurrent_requests=3, http=psa.http(),
                            limits=AutotaskLimits(Decimal("0.25"), 3))
    with pytest.raises(PsaAuthError, match=r"no Autotask zone was found for the API user 'nobody@msp\.example' "
                                           r"\(HTTP 500: Zone information could not be determined\)"):
        client.list_companies()
    assert psa.sleeps == [] and len(psa.log("zoneInformation")) == 1, "an unknown user is not asked again"


def test_companies_contacts_products_and_agreement_types(psa: Psa) -> None:
    client = psa.client()
    companies = client.list_companies()
    assert [(c.company_id, c.identifier, c.name, c.website, c.status) for c in companies] == [
        ("19", "FAB", "Fabrikam Ltd", "fabrikam.com", "Active"), ("20", "Contoso Ltd", "Contoso Ltd", None, "Inactive")]
    assert [c.company_id for c in client.list_companies(active_only=True)] == ["19"]
    contacts = client.list_contacts()
    assert [(c.contact_id, c.company_id, c.emails, c.inactive, c.title) for c in contacts] == [
        ("7", "19", ("ann@fabrikam.com", "ann.lee@fabrikam.com"), False, "IT lead"),
        ("8", "20", ("cy@contoso.com",), True, None)]
    assert [c.contact_id for c in client.list_contacts("20")] == ["8"]
    products = client.list_products()
    assert [(p.product_id, p.identifier, p.price, p.cost) for p in products] == [
        ("1", "M365-BP", Decimal("22.0"), Decimal("19.8")), ("2", "M365-E3", Decimal("36.0"), Decimal("32.4"))]
    assert products[0].description == "Microsoft 365 Business Premium"
    assert products[0].customer_description == "Business Premium seats"
    assert len(client.list_products(include_inactive=True)) == 3
    assert client.get_product("3").inactive is True
    types = client.list_agreement_types()
    assert [(t.type_id, t.name, t.prorate) for t in types] == [("1", "Standard", True), ("2", "Microsoft 365", True)]


def test_agreements_are_recurring_service_contracts_with_their_billing_period(psa: Psa) -> None:
    client = psa.client()
    agreements = {a.agreement_id: a for a in client.list_agreements("19")}
    assert list(agreements) == ["100", "101", "102"]  # the block hours contract holds no services
    m365 = agreements["100"]
    assert (m365.name, m365.type_name, m365.billing_cycle, m365.active, m365.prorate) == (
        "Fabrikam M365", "Microsoft 365", "monthly", True, True)
    assert (m365.start_date, m365.end_date) == (date(2026, 1, 1), date(2026, 12, 31))
    assert agreements["101"].billing_cycle == "annual"
    assert agreements["102"].billing_cycle == "quarterly"
    assert agreements["102"].active is False  # ended
    assert client.get_agreement("103").billing_cycle == "monthly"
    assert [a.agreement_id for a in client.get_agreements(["101", "999", "100", "101"])] == ["100", "101"]
    with pytest.raises(PsaError) as caught:
        client.get_agreement("999")
    assert caught.value.record == "contract 999"
    assert caught.value.status == 404


def test_lines_carry_current_units_and_recognise_seatsync_tags(psa: Psa) -> None:
    client = psa.client()
    lines = client.list_lines(["101", "100"])
    assert [(line.agreement_id, line.line_id) for line in lines] == [("101", "510"), ("100", "500"), ("100", "501")]
    by_id = {line.line_id: line for line in lines}
    bp = by_id["500"]
    assert (bp.company_id, bp.product_id, bp.product_identifier, bp.quantity) == ("19", "1", "M365-BP", Decimal(20))
    assert (bp.unit_price, bp.unit_cost, bp.bill_mode) == (Decimal("22.0"), Decimal("19.8"), BillMode.BILLABLE)
    assert bp.invoice_description == "Business Premium seats"
    assert bp.description == "Microsoft 365 Business Premium"
    assert bp.effective_date == date(2026, 1, 1)
    assert bp.tag is None
    assert by_id["501"].tag == "seatsync:e3"
    assert by_id["501"].unit_price == Decimal("34.5")
    assert by_id["510"].tag is None  # an MSP's own internal description is not a SeatSync tag
    assert by_id["510"].quantity == Decimal(10)
    assert client.get_line("100", "501") == by_id["501"]
    with pytest.raises(PsaError, match="belongs to contract 100"):
        client.get_line("101", "500")
    with pytest.raises(PsaError) as caught:
        client.list_lines(["100", "999"])
    assert caught.value.record == "contract 999"


def test_reading_lines_takes_a_few_queries_whatever_the_number_of_contracts(psa: Psa) -> None:
    client = psa.client()
    client.list_agreements("19")  # contract -> company from this read
    before = client.calls
    client.list_lines(["100", "101", "102"])
    # contract services, their units, the services' names
    assert client.calls - before == 3


# --------------------------------------------------------------------------- writes


def test_set_quantity_creates_an_adjustment_effective_on_the_date_given(psa: Psa) -> None:
    client = psa.client()
    line = client.get_line("100", "500")
    updated = client.set_quantity(line, 25, TODAY)
    assert (updated.quantity, updated.effective_date) == (Decimal(25), TODAY)
    adjustment = psa.emulator.state()["adjustments"][-1]
    assert {k: adjustment[k] for k in ("contractID", "serviceID", "contractServiceID", "effectiveDate",
                                       "unitChange", "adjustedUnitPrice")} == {
        "contractID": 100, "serviceID": 1, "contractServiceID": 500, "effectiveDate": "2026-01-15T00:00:00Z",
        "unitChange": 5, "adjustedUnitPrice": 22.0}
    assert psa.emulator.units_on(500, date(2026, 1, 14)) == 20  # Autotask prorates from the 15th itself
    assert psa.emulator.units_on(500, TODAY) == 25
    assert [e for e in psa.log("ContractServices") if e["method"] in ("PATCH", "PUT")] == []  # units: never PATCHed
    assert client.set_quantity(updated, 18, TODAY).quantity == Decimal(18)
    assert psa.emulator.state()["adjustments"][-1]["unitChange"] == -7


def test_with_prorating_disabled_the_change_takes_effect_on_the_billing_period_date(psa: Psa) -> None:
    client = psa.client()
    line = client.get_line("100", "500")
    client.set_quantity(line, 23, date(2026, 2, 1))
    assert psa.emulator.units_on(500, TODAY) == 20
    assert psa.emulator.units_on(500, date(2026, 2, 1)) == 23
    again = client.get_line("100", "500")
    assert (again.quantity, again.effective_date) == (Decimal(23), date(2026, 2, 1))  # scheduled: nothing to redo


def test_a_line_says_what_this_period_is_charged_for_and_what_the_next_bills(psa: Psa) -> None:
    client = psa.client()
    client.set_quantity(client.get_line("100", "500"), 17, date(2026, 2, 1))  # a decrease from February
    client.set_quantity(client.get_line("100", "500"), 30, date(2026, 4, 1))  # an MSP's change for April
    line = client.get_line("100", "500")
    # January is charged for 20 (today's units), February bills 17; April's change is further ahead
    # than the periods SeatSync plans (the current one and the next) and does not count
    assert (line.period_quantity, line.quantity, line.effective_date) == (Decimal(20), Decimal(17),
                                                                          date(2026, 2, 1))
    client.set_quantity(line, 20, date(2026, 2, 1))
    assert (client.get_line("100", "500").period_quantity, client.get_line("100", "500").quantity) == (
        None, Decimal(20))


def test_no_adjustment_is_written_when_the_units_already_match(psa: Psa) -> None:
    client = psa.client()
    line = client.get_line("100", "500")
    client.set_quantity(line, 20, TODAY)
    assert psa.log("ContractServiceAdjustments") == []


def test_an_effective_date_outside_the_contract_is_refused_before_writing(psa: Psa) -> None:
    client = psa.client()
    line = client.get_line("100", "500")
    with pytest.raises(PsaError) as caught:
        client.set_quantity(line, 25, date(2027, 2, 1))
    assert caught.value.record == "contract 100 service 500"
    assert "outside the contract's billing periods" in str(caught.value)
    assert psa.log("ContractServiceAdjustments") == []


def test_create_line_adds_the_service_with_its_tag_then_its_units(psa: Psa) -> None:
    client = psa.client()
    created = client.create_line(NewLine(agreement_id="101", product_id="1", quantity=4, effective_date=TODAY,
                                         unit_price=Decimal("21.00"), invoice_description="BP for Ann",
                                         tag="seatsync:bp:fab"))
    assert (created.agreement_id, created.line_id, created.quantity, created.tag) == (
        "101", "511", Decimal(4), "seatsync:bp:fab")
    writes = [(e["method"], e["path"].split("V1.0")[1]) for e in psa.emulator.requests_log()
              if e["method"] in ("POST", "PATCH") and "query" not in e["path"]]
    assert writes == [("POST", "/Contracts/101/Services"), ("POST", "/ContractServiceAdjustments")]
    stored = psa.service(511)
    assert (stored["internalDescription"], stored["invoiceDescription"], stored["unitPrice"], stored["units"]) == (
        "seatsync:bp:fab", "BP for Ann", 21.0, 4)


def test_a_line_of_zero_units_needs_no_adjustment(psa: Psa) -> None:
    client = psa.client()
    created = client.create_line(NewLine(agreement_id="101", product_id="1", quantity=0, effective_date=TODAY))
    assert created.quantity == Decimal(0)
    assert psa.log("ContractServiceAdjustments") == []


@pytest.mark.parametrize(("changes", "message"), [
    ({"end_date": date(2026, 1, 31)}, "a line with an end date is not used"),
    ({"bill_mode": BillMode.NO_CHARGE}, "bill mode no-charge is not possible"),
    ({"tag": "x" * 101}, "internalDescription (the tag) is 101 characters"),
    ({"tag": "prorate:1"}, "the tag must start with 'seatsync'"),
    ({"invoice_description": "x" * 1001}, "invoiceDescription is 1001 characters; Autotask allows at most 1000"),
    ({"product_id": "M365-BP"}, "product id must be an Autotask service id"),
    ({"quantity": -1}, "quantity cannot be negative"),
])
def test_lines_autotask_cannot_hold_are_refused_before_anything_is_sent(psa: Psa, changes: dict[str, Any],
                                                                         message: str) -> None:
    client = psa.client()
    values: dict[str, Any] = {"agreement_id": "101", "product_id": "1", "quantity": 1, "effective_date": TODAY}
    values.update(changes)
    with pytest.raises(PsaError) as caught:
        client.create_line(NewLine(**values))
    assert message in str(caught.value)
    assert caught.value.record == f"contract 101 new service {values['product_id']}"
    assert client.calls == 0


def test_a_service_already_on_the_contract_is_autotasks_error_naming_the_record(psa: Psa) -> None:
    client = psa.client()
    with pytest.raises(PsaError) as caught:
        client.create_line(NewLine(agreement_id="100", product_id="1", quantity=1, effective_date=TODAY))
    assert caught.value.status == 500
    assert caught.value.record == "contract 100 new service 1"
    assert "The Service 1 is already associated with Contract 100 (ContractService 500)" in str(caught.value)
    # a validation error answered with 500: certainly refused, so not "may have been created"
    assert caught.value.refused and "may have been created" not in str(caught.value)
    assert answered_no(caught.value)


@pytest.mark.parametrize(("call", "path"), [
    # a query naming a field the entity does not have (the live API: "Unable to find projectID in
    # the TimeEntry Entity")
    (lambda c: c._query("ContractServices", [{"op": "eq", "field": "projectID", "value": 1}], "services"),
     "/ContractServices/query"),
    # an update of a contract service that is not there (a PATCH, which is otherwise retried)
    (lambda c: c.update_line(replace(c.get_line("100", "500"), line_id="999"), invoice_description="x"),
     "/Contracts/100/Services"),
])
def test_a_request_autotask_refuses_with_500_and_a_validation_error_is_not_retried(
        psa: Psa, call: Callable[[AutotaskClient], Any], path: str) -> None:
    """Autotask answers a bad query or write with HTTP 500 and ``{"errors": [...]}`` naming what is
    wrong: it would refuse it again, so it is not retried, and the write certainly did not happen."""
    client = psa.client()
    with pytest.raises(PsaError) as caught:
        call(client)
    assert caught.value.status == 500 and caught.value.refused and answered_no(caught.value)
    assert "Autotask refused the request: " in str(caught.value)
    assert psa.sleeps == [], "not retried"
    assert [e["status"] for e in psa.log(path) if e["status"] >= 400] == [500]


def test_a_500_that_may_be_a_server_fault_is_still_retried(psa: Psa) -> None:
    psa.emulator.faults.add({"kind": "error", "path": "ContractServices/query", "status": 500, "times": 2})
    client = psa.client()
    assert [line.line_id for line in client.list_lines(["100"])] == ["500", "501"]
    assert len(psa.sleeps) == 2
    assert [e["status"] for e in psa.log("/ContractServices/query")] == [500, 500, 200]


def test_a_failed_adjustment_after_creation_says_the_service_bills_nothing_yet(psa: Psa) -> None:
    psa.emulator.faults.add({"kind": "error", "path": "ContractServiceAdjustments", "status": 500, "times": 1})
    client = psa.client()
    with pytest.raises(PsaError) as caught:
        client.create_line(NewLine(agreement_id="101", product_id="1", quantity=4, effective_date=TODAY,
                                   tag="seatsync:bp"))
    assert "contract service 511 was created but its units were not set" in str(caught.value)
    assert psa.service(511)["units"] == 0
    assert len(psa.log("ContractServiceAdjustments", "POST")) == 1  # a create that may have happened is not retried


def test_update_line_changes_the_invoice_description_and_price(psa: Psa) -> None:
    client = psa.client()
    line = client.get_line("100", "500")
    updated = client.update_line(line, invoice_description="Ann, Bob and 18 more", unit_price=Decimal("21.5"))
    assert (updated.invoice_description, updated.unit_price) == ("Ann, Bob and 18 more", Decimal("21.5"))
    patch = psa.log("/Contracts/100/Services", "PATCH")
    assert len(patch) == 1
    stored = psa.service(500)
    # unitPrice is read-only after creation: the new price is the adjusted price the service bills at
    assert (stored["invoiceDescription"], stored["unitPrice"], stored["adjustedPrice"]) == (
        "Ann, Bob and 18 more", 22.0, 21.5)
    assert patch[0]["status"] == 200
    assert client.get_line("100", "500").unit_price == Decimal("21.5")
    assert client.update_line(line) is line
    ghost = replace(line, line_id="999")
    with pytest.raises(PsaError) as caught:
        client.update_line(ghost, invoice_description="x")
    assert caught.value.record == "contract 100 service 999"
    assert "Unable to find the ContractService with id 999 on Contract 100." in str(caught.value)


# --------------------------------------------------------------------------- errors, paging, limits


def test_an_unknown_integration_code_answered_with_500_is_a_refused_login(psa: Psa) -> None:
    client = AutotaskClient(name="autotask", username="api@msp.example", secret="s3cret", integration_code="WRONG",
                            zone_url=None, discovery_url=f"{psa.running.url}/ATServicesRest",
                            hourly_request_share=Decimal("0.25"), max_concurrent_requests=3, http=psa.http(),
                            limits=AutotaskLimits(Decimal("0.25"), 3), today=lambda: TODAY)
    with pytest.raises(PsaAuthError) as caught:
        client.list_companies()
    assert caught.value.status == 500
    assert "integration code (API tracking identifier)" in str(caught.value)
    assert "Login failed" in str(caught.value)
    assert psa.sleeps == [], "a refused login is not retried, although Autotask answers it with 500"
    assert [e["status"] for e in psa.log("ThresholdInformation")] == [500]


def test_refused_credentials_say_what_to_check(psa: Psa) -> None:
    with pytest.raises(PsaAuthError) as caught:
        psa.client(secret="wrong").list_companies()
    text = str(caught.value)
    assert caught.value.status == 401
    assert "API User (system)" in text
    assert "integration code (API tracking identifier)" in text
    assert "Authorization has been denied for this request." in text


def test_queries_follow_next_page_urls_with_the_same_body(serve: Callable[..., Psa]) -> None:
    section = scenario()
    section["contracts"] += [{"id": 1000 + n, "name": f"Bulk {n}", "companyId": 20, "startDate": "2026-01-01",
                              "endDate": "2026-12-31"} for n in range(1205)]
    psa = serve(section)
    client = psa.client()
    agreements = client.list_agreements("20")
    assert len(agreements) == 1205
    assert len({a.agreement_id for a in agreements}) == 1205
    pages = [e for e in psa.emulator.requests_log() if "/Contracts/query" in e["path"]]
    assert [e["path"].rsplit("/", 1)[-1] for e in pages] == ["query", "next", "next"]
    assert all(e["method"] == "POST" for e in pages)


def test_a_looping_next_page_is_detected(serve: Callable[..., Psa]) -> None:
    section = scenario()
    section["companies"] += [{"id": 1000 + n, "name": f"Bulk {n}"} for n in range(600)]
    psa = serve(section)
    psa.emulator.faults.add({"kind": "broken-paging", "times": 1})
    with pytest.raises(PsaError, match="paging is inconsistent: record 19 came back twice"):
        psa.client().list_companies()


def test_throttling_and_thread_limit_answers_are_waited_out(psa: Psa) -> None:
    psa.emulator.faults.add({"kind": "throttle", "path": "Companies", "times": 2, "retryAfter": 4})
    assert len(psa.client().list_companies()) == 2
    assert psa.sleeps == [4.0, 4.0]


def test_the_hourly_budget_reads_threshold_information_and_counts_every_request(psa: Psa) -> None:
    clock = FakeClock(50_000.0)
    limits = AutotaskLimits(Decimal("0.25"), 3, clock=clock, sleep=clock.sleep)
    client = psa.client(limits=limits)
    client.list_companies()
    assert [e["path"].rsplit("/", 1)[-1] for e in psa.emulator.requests_log()] == [
        "zoneInformation", "ThresholdInformation", "query"]
    assert limits.budget.database_estimate() == 2  # the reading (1, itself counted) plus the query
    assert limits.budget.own_usage() == 2
    clock.now += 61
    client.list_products()
    assert len(psa.log("ThresholdInformation")) == 2  # read again after a minute


def test_seatsync_stops_before_the_database_reaches_its_block(psa: Psa) -> None:
    psa.emulator.set_other_usage(9_000)
    clock = FakeClock(50_000.0)
    limits = AutotaskLimits(Decimal("0.25"), 3, clock=clock, sleep=clock.sleep)
    client = psa.client(limits=limits)
    with pytest.raises(PsaError) as caught:
        client.list_companies()
    assert "SeatSync stops at 90% so that the database is never blocked" in str(caught.value)
    assert psa.log("Companies") == []  # nothing more was sent
    assert psa.emulator.state()["refused"]["threshold"] == 0


def test_seatsync_slows_down_when_the_database_is_past_half(psa: Psa) -> None:
    psa.emulator.set_other_usage(6_000)
    clock = FakeClock(50_000.0)
    limits = AutotaskLimits(Decimal("0.25"), 3, clock=clock, sleep=clock.sleep)
    psa.client(limits=limits).list_companies()
    # the first reading goes out before the database's count is known; the query after it is paced at the
    # steady rate of SeatSync's share, 3,600 s / 2,500 requests
    assert clock.sleeps == [1.44]
    assert limits.budget.paced == 1


def test_concurrent_clients_of_one_connection_keep_to_three_requests_per_endpoint(serve: Callable[..., Psa]) -> None:
    section = scenario()
    section["latencySeconds"] = 0.15
    psa = serve(section)
    limits = AutotaskLimits(Decimal("0.25"), 3)

    def read() -> None:
        psa.client(limits=limits).list_products()

    errors = in_threads(read, 7)
    assert not errors
    state = psa.emulator.state()
    assert state["refused"]["threads"] == 0
    assert state["peakConcurrency"]["Services"] == 3
    assert limits.peak["Services"] == 3


def test_reading_500_companies_and_their_lines_takes_24_requests(serve: Callable[..., Psa]) -> None:
    section = scenario()
    section["companies"] += [{"id": 1000 + n, "name": f"Company {n}"} for n in range(500)]
    section["contracts"] += [{"id": 5000 + n, "name": f"M365 {n}", "companyId": 1000 + n, "startDate": "2026-01-01",
                              "endDate": "2026-12-31"} for n in range(500)]
    section["contractServices"] += [{"contractId": 5000 + n, "serviceId": 1 + n % 2, "units": n + 1}
                                    for n in range(500)]
    psa = serve(section)
    client = psa.client()
    assert len(client.list_companies()) == 502
    lines = client.list_lines([str(5000 + n) for n in range(500)])
    assert len(lines) == 500
    assert lines[-1].quantity == Decimal(500)
    # zone, threshold, companies (2 pages); in chunks of 200 contracts: their companies, their services, the
    # services' units (12 monthly records each, 5 pages a chunk); the services' names
    assert client.calls == 24
    json.dumps(psa.emulator.state())  # the state is plain JSON
