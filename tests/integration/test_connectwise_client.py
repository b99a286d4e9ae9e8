"""The ConnectWise client against the ConnectWise emulator over HTTPS on loopback."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import requests

from emulators.base import RunningEmulator
from emulators.connectwise import ConnectWiseEmulator
from emulators.tls import TlsFiles, ensure_tls_files
from shared.adapters.connectwise import ConnectWiseApiError, ConnectWiseClient
from shared.adapters.http import RetryingHttp
from shared.domain.model import BillingAttributes, BillMode
from shared.errors import PsaAuthError, PsaError
from shared.ports import NewLine, PsaPort
from tests.psa_test_support import in_threads, recording_http, serve_emulators

CLIENT_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
OTHER_CLIENT_ID = "9a8b7c6d-1111-2222-3333-444455556666"


def scenario() -> dict[str, Any]:
    return {
        "codebase": "v2025_1",
        "companyId": "seatsyncmsp",
        "today": "2026-01-15",
        "credentials": [{"publicKey": "pubkey", "privateKey": "privkey", "clientId": CLIENT_ID}],
        "companies": [
            {"id": 19, "identifier": "Fabrikam", "name": "Fabrikam Ltd", "website": "fabrikam.com"},
            {"id": 20, "identifier": "Contoso", "name": "Contoso Ltd"},
            {"id": 21, "identifier": "Gone", "name": "Gone Ltd", "deleted": True},
        ],
        "contacts": [
            {"id": 7, "companyId": 19, "firstName": "Ann", "lastName": "Lee", "email": "ann@fabrikam.com"},
            {"id": 8, "companyId": 19, "firstName": "Bob", "lastName": "Kay", "emails": ["bob@fabrikam.com"]},
            {"id": 9, "companyId": 20, "firstName": "Cy", "email": "cy@contoso.com"},
        ],
        "catalog": [
            {"id": 1, "identifier": "M365-BP", "description": "Microsoft 365 Business Premium", "price": 22.00,
             "cost": 19.80},
            {"id": 2, "identifier": "M365-E3", "description": "Microsoft 365 E3", "price": 36.00, "cost": 32.40},
            {"id": 3, "identifier": "OLD-BACKUP", "description": "Retired backup", "price": 5, "cost": 1,
             "inactive": True},
        ],
        "agreementTypes": [
            {"id": 1, "name": "Microsoft 365", "prorate": True},
            {"id": 2, "name": "Annual licences", "billingCycle": "Annual"},
        ],
        "agreements": [
            {"id": 100, "name": "Fabrikam M365", "companyId": 19, "typeId": 1, "startDate": "2026-01-01"},
            {"id": 101, "name": "Fabrikam annual", "companyId": 19, "typeId": 2, "startDate": "2025-07-01",
             "endDate": "2026-06-30"},
            {"id": 200, "name": "Contoso M365", "companyId": 20, "typeId": 1, "startDate": "2025-01-01",
             "cancelled": True},
        ],
        "additions": [
            {"id": 500, "agreementId": 100, "productIdentifier": "M365-BP", "quantity": 20,
             "effectiveDate": "2026-01-01"},
            {"id": 501, "agreementId": 100, "productIdentifier": "M365-E3", "quantity": 3, "unitPrice": 34.5,
             "billCustomer": "NoCharge", "serialNumber": "seatsync:e3", "effectiveDate": "2026-01-01"},
            {"id": 502, "agreementId": 100, "productIdentifier": "M365-BP", "quantity": 2,
             "effectiveDate": "2025-12-01", "cancelledDate": "2025-12-31"},
            {"id": 510, "agreementId": 101, "productIdentifier": "M365-E3", "quantity": 10,
             "billCustomer": "DoNotBill"},
        ],
    }


@dataclass
class Psa:
    emulator: ConnectWiseEmulator
    running: RunningEmulator
    tls: TlsFiles
    sleeps: list[float] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"{self.running.url}/v2025_1/apis/3.0"

    @property
    def verify(self) -> str:
        return str(self.tls.ca_certificate)

    def http(self, sleep: Callable[[float], None] | None = None) -> RetryingHttp:
        return recording_http("ConnectWise", self.tls, sleep or self.sleeps.append)

    def client(self, *, public_key: str = "pubkey", private_key: str = "privkey", client_id: str = CLIENT_ID,
               http: RetryingHttp | None = None, **kwargs: Any) -> ConnectWiseClient:
        return ConnectWiseClient("connectwise", self.base_url, "seatsyncmsp", public_key, private_key, client_id,
                                 http=http or self.http(), **kwargs)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(method, f"{self.running.url}/_admin/{path}", json=body, verify=self.verify,
                                    timeout=10)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", "state")
        return result

    def addition(self, agreement_id: int, addition_id: int) -> dict[str, Any] | None:
        for agreement in self.state()["agreements"]:
            if agreement["id"] == agreement_id:
                for addition in agreement["additions"]:
                    if addition["id"] == addition_id:
                        return dict(addition)
        return None

    def fault(self, **rule: Any) -> None:
        self.admin("POST", "faults", rule)

    def log(self, method: str | None = None) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.admin("GET", "requests")["requests"]
        return [e for e in entries if method is None or e["method"] == method]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls_files(tmp_path_factory.mktemp("connectwise-tls"))


@pytest.fixture
def serve(tls: TlsFiles) -> Iterator[Callable[..., Psa]]:
    yield from serve_emulators(tls, ConnectWiseEmulator, scenario, Psa)


@pytest.fixture(scope="module")
def shared_server(tls: TlsFiles) -> Iterator[RunningEmulator]:
    with RunningEmulator(ConnectWiseEmulator(scenario()), tls) as running:
        yield running


@pytest.fixture
def psa(shared_server: RunningEmulator, tls: TlsFiles) -> Psa:
    """The default scenario, reset to its start (state, faults, request log) for each test."""
    emulator = shared_server.emulator
    assert isinstance(emulator, ConnectWiseEmulator)
    psa = Psa(emulator, shared_server, tls)
    psa.admin("POST", "reset")
    return psa


# --------------------------------------------------------------------------- reads


def test_get_agreement_maps_prorate_billing_cycle_dates_and_status(psa: Psa) -> None:
    client = psa.client()
    port: PsaPort = client  # the client is the PSA port (checked by mypy)
    assert port.name == "connectwise"
    agreement = client.get_agreement("100")
    assert agreement.psa == "connectwise"
    assert (agreement.agreement_id, agreement.company_id, agreement.name) == ("100", "19", "Fabrikam M365")
    assert agreement.type_name == "Microsoft 365"
    assert agreement.prorate is True
    assert agreement.active is True
    assert agreement.billing_cycle == "monthly"
    assert agreement.bill_in_advance is True
    assert agreement.start_date == date(2026, 1, 1)
    assert agreement.end_date is None

    annual = client.get_agreement("101")
    assert annual.billing_cycle == "annual"
    assert annual.prorate is False
    assert annual.end_date == date(2026, 6, 30)
    assert client.get_agreement("200").active is False
    assert client.calls == 3


def test_the_next_invoice_date_says_which_cycles_are_invoiced(psa: Psa) -> None:
    client = psa.client()
    # the scenario says nothing: every cycle up to the one containing today (15 January) is invoiced
    assert client.get_agreement("100").next_invoice_date == date(2026, 2, 1)
    assert client.get_agreement("101").next_invoice_date == date(2026, 7, 1)
    assert client.get_agreement("200").next_invoice_date is None, "a cancelled agreement is not invoiced"
    assert psa.emulator.invoice_agreement(100) == "2026-03-01T00:00:00Z"  # February invoiced ahead
    assert client.get_agreement("100").next_invoice_date == date(2026, 3, 1)
    assert client.capabilities.invoiced_when_unknown is True
    assert psa.client(invoiced_when_unknown=False).capabilities.invoiced_when_unknown is False


def test_a_scenario_says_which_cycles_are_invoiced(serve: Callable[..., Psa]) -> None:
    document = scenario()
    document["agreements"][0]["nextInvoiceDate"] = "2026-01-01"  # January's invoice not made yet
    document["agreements"][1]["nextInvoiceDate"] = None
    psa = serve(document)
    client = psa.client()
    assert [a.next_invoice_date for a in client.get_agreements(["100", "101"])] == [date(2026, 1, 1), None]


def test_get_agreement_that_does_not_exist_names_it(psa: Psa) -> None:
    with pytest.raises(ConnectWiseApiError) as caught:
        psa.client().get_agreement("999")
    assert caught.value.status == 404
    assert "ConnectWise agreement 999: HTTP 404: not found (Agreement with id 999 was not found.)" in str(caught.value)


def test_list_agreements_returns_every_agreement_of_the_company(psa: Psa) -> None:
    agreements = psa.client().list_agreements("19")
    assert [a.agreement_id for a in agreements] == ["100", "101"]
    assert psa.client().list_agreements("20")[0].active is False


def test_list_agreements_pages_through_more_than_a_thousand_and_keeps_the_conditions(serve: Callable[..., Psa]) -> None:
    section = scenario()
    section["agreements"] += [{"id": 1000 + n, "name": f"Bulk {n}", "companyId": 20, "typeId": 1,
                               "startDate": "2026-01-01"} for n in range(1500)]
    psa = serve(section)
    client = psa.client()
    agreements = client.list_agreements("20")
    assert len(agreements) == 1501
    assert [a.agreement_id for a in agreements[:3]] == ["200", "1000", "1001"]
    assert agreements[-1].agreement_id == "2499"
    assert client.calls == 2
    pages = [e["query"] for e in psa.log("GET") if e["path"].endswith("/finance/agreements")]
    assert [p["page"] for p in pages] == ["1", "2"]
    assert all(p["conditions"] == "company/id=20" and p["pageSize"] == "1000" for p in pages)


def test_list_lines_maps_additions_to_billed_lines(psa: Psa) -> None:
    lines = {line.line_id: line for line in psa.client().list_lines(["100", "101"])}
    assert list(lines) == ["500", "501", "502", "510"]
    bp = lines["500"]
    assert (bp.agreement_id, bp.company_id, bp.product_id, bp.product_identifier) == ("100", "19", "1", "M365-BP")
    assert bp.quantity == Decimal(20)
    assert isinstance(bp.quantity, Decimal)
    assert bp.unit_price == Decimal("22.0")
    assert bp.unit_cost == Decimal("19.8")
    assert bp.bill_mode is BillMode.BILLABLE
    assert bp.active
    assert bp.tag is None
    assert bp.effective_date == date(2026, 1, 1)
    assert bp.description == "Microsoft 365 Business Premium"
    e3 = lines["501"]
    assert e3.bill_mode is BillMode.NO_CHARGE
    assert e3.tag == "seatsync:e3"
    assert e3.unit_price == Decimal("34.5")
    assert lines["502"].cancelled_date == date(2025, 12, 31)
    assert not lines["502"].active
    assert lines["510"].bill_mode is BillMode.DO_NOT_BILL


def test_list_lines_pages_over_1200_additions_and_keeps_agreement_order(serve: Callable[..., Psa]) -> None:
    section = scenario()
    section["additions"] += [{"agreementId": 101, "productId": 1, "quantity": n % 7 + 1} for n in range(1200)]
    psa = serve(section)
    client = psa.client(max_workers=4)
    lines = client.list_lines(["101", "100", "101"])
    assert len(lines) == 1201 + 3
    assert [line.agreement_id for line in lines[:1201]] == ["101"] * 1201
    assert [line.line_id for line in lines[1201:]] == ["500", "501", "502"]
    ids = [int(line.line_id) for line in lines[:1201]]
    assert ids == sorted(ids)
    assert len(set(ids)) == 1201
    # one lookup of the agreements' companies, two pages for 101, one for 100
    assert client.calls == 4


def test_list_lines_of_an_unknown_agreement_fails_whole(psa: Psa) -> None:
    with pytest.raises(PsaError, match="agreement 999: HTTP 404: not found"):
        psa.client().list_lines(["100", "999"])


def test_find_agreements_with_and_or_in_and_like(psa: Psa) -> None:
    client = psa.client()
    found = client.find_agreements('(company/id=19 and type/name like "Micro*") or id in (200, 4242)')
    assert [a.agreement_id for a in found] == ["100", "200"]
    found = client.find_agreements('agreementStatus="Active" and name contains "annual"')
    assert [a.agreement_id for a in found] == ["101"]


def test_malformed_conditions_answer_400_in_connectwise_shape(psa: Psa) -> None:
    with pytest.raises(ConnectWiseApiError) as caught:
        psa.client().find_agreements('company/id=19 and (type/name = "x"')
    error = caught.value
    assert error.status == 400
    assert error.code == "InvalidObject"
    assert error.field_errors[0].field == "conditions"
    assert "expected ')' at the end" in str(error)

    response = requests.get(f"{psa.base_url}/finance/agreements", params={"conditions": "nope = 1"},
                            headers=_auth_headers(), verify=psa.verify, timeout=10)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"code", "message", "errors"}
    assert set(body["errors"][0]) == {"code", "message", "resource", "field"}


# --------------------------------------------------------------------------- writes


def test_set_quantity_patches_the_addition_and_the_psa_bills_the_new_quantity(psa: Psa) -> None:
    client = psa.client()
    line = next(line for line in client.list_lines(["100"]) if line.line_id == "500")
    updated = client.set_quantity(line, 25, date(2026, 1, 20))
    assert updated.quantity == Decimal(25)
    assert updated.line_id == "500"
    assert updated.company_id == "19"
    stored = psa.addition(100, 500)
    assert stored is not None
    assert stored["quantity"] == 25.0
    assert stored["extPrice"] == 550.0
    assert stored["effectiveDate"] == "2026-01-01T00:00:00Z"
    patches = psa.log("PATCH")
    assert [p["path"] for p in patches] == ["/v2025_1/apis/3.0/finance/agreements/100/additions/500"]


def test_set_quantity_accepts_whole_numbers_only_and_sends_nothing_otherwise(psa: Psa) -> None:
    client = psa.client()
    line = client.list_lines(["100"])[0]
    calls = client.calls
    with pytest.raises(ValueError, match="quantity must be a whole number"):
        client.set_quantity(line, 2.5, date(2026, 1, 20))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="quantity must be a whole number"):
        client.set_quantity(line, True, date(2026, 1, 20))
    assert client.calls == calls


def test_create_line_posts_an_addition_the_psa_then_bills(psa: Psa) -> None:
    client = psa.client()
    created = client.create_line(NewLine(
        agreement_id="100", product_id="2", quantity=4, effective_date=date(2026, 1, 17),
        end_date=date(2026, 1, 31), unit_price=Decimal("36.00"), unit_cost=Decimal("32.40"),
        bill_mode=BillMode.BILLABLE, description="E3 added mid-month", invoice_description="Ann Lee, Bob Kay",
        tag="seatsync:prorate:abc123",
    ))
    assert created.line_id == "511"
    assert created.company_id == "19"
    assert created.product_identifier == "M365-E3"
    assert created.quantity == Decimal(4)
    assert created.tag == "seatsync:prorate:abc123"
    assert created.effective_date == date(2026, 1, 17)
    assert created.cancelled_date == date(2026, 1, 31)
    stored = psa.addition(100, 511)
    assert stored is not None
    assert stored["billCustomer"] == "Billable"
    assert stored["unitPrice"] == 36.0
    assert stored["invoiceDescription"] == "Ann Lee, Bob Kay"
    assert stored["description"] == "E3 added mid-month"
    assert stored["proratePrice"] == 17.42  # 36.00 x 15/31 on a prorated monthly agreement
    assert [e["status"] for e in psa.log("POST") if "/additions" in e["path"]] == [201]


def test_create_line_defaults_price_and_descriptions_from_the_catalog(psa: Psa) -> None:
    created = psa.client().create_line(NewLine(agreement_id="101", product_id="1", quantity=1,
                                               effective_date=date(2026, 1, 15), bill_mode=BillMode.NO_CHARGE))
    assert created.unit_price == Decimal("22.0")
    assert created.bill_mode is BillMode.NO_CHARGE
    assert created.description == "Microsoft 365 Business Premium"
    assert created.tag is None


def test_a_field_connectwise_refuses_is_an_error_naming_the_record_and_the_field(psa: Psa) -> None:
    client = psa.client()
    with pytest.raises(ConnectWiseApiError) as caught:
        client.create_line(NewLine(agreement_id="100", product_id="1", quantity=1, effective_date=date(2026, 1, 2),
                                   billing=BillingAttributes(taxable=True, invoice_grouping="99")))
    error = caught.value
    assert (error.status, error.code, error.record) == (400, "InvalidObject", "agreement 100 new addition of product 1")
    assert [(e.field, e.code) for e in error.field_errors] == [("invoiceGrouping", "NotFound")]
    assert "invoiceGrouping: Invoice grouping with id 99 was not found." in str(error)
    with pytest.raises(ConnectWiseApiError, match="invoice grouping must be a ConnectWise invoice grouping id"):
        client.create_line(NewLine(agreement_id="100", product_id="1", quantity=1, effective_date=date(2026, 1, 2),
                                   billing=BillingAttributes(invoice_grouping="Licences")))


def test_create_line_checks_connectwise_limits_before_sending(psa: Psa) -> None:
    client = psa.client()
    with pytest.raises(ConnectWiseApiError) as caught:
        client.create_line(NewLine(agreement_id="100", product_id="1", quantity=1, effective_date=date(2026, 1, 2),
                                   invoice_description="x" * 6001, tag="t" * 51))
    error = caught.value
    assert [e.field for e in error.field_errors] == ["invoiceDescription", "serialNumber"]
    assert str(error).startswith("ConnectWise agreement 100 new addition of product 1: invoiceDescription: is 6001")
    assert "serialNumber: (the tag) is 51 characters; ConnectWise allows at most 50" in str(error)
    assert client.calls == 0


def test_connectwise_validation_errors_name_the_record_and_field(psa: Psa) -> None:
    client = psa.client()
    with pytest.raises(ConnectWiseApiError) as caught:
        client.create_line(NewLine(agreement_id="100", product_id="999", quantity=1, effective_date=date(2026, 1, 2)))
    assert caught.value.status == 400
    assert caught.value.code == "InvalidObject"
    assert str(caught.value).startswith(
        "ConnectWise agreement 100 new addition of product 999: HTTP 400: product: Product with id 999 was not found.")
    with pytest.raises(ConnectWiseApiError, match="product: Product OLD-BACKUP is inactive"):
        client.create_line(NewLine(agreement_id="100", product_id="3", quantity=1, effective_date=date(2026, 1, 2)))
    with pytest.raises(ConnectWiseApiError, match="agreementId: Agreement 200 is cancelled"):
        client.create_line(NewLine(agreement_id="200", product_id="1", quantity=1, effective_date=date(2026, 1, 2)))


def test_server_side_length_limits_answer_as_connectwise_does(psa: Psa) -> None:
    response = requests.patch(f"{psa.base_url}/finance/agreements/100/additions/501", headers=_auth_headers(),
                              json=[{"op": "replace", "path": "serialNumber", "value": "s" * 51}],
                              verify=psa.verify, timeout=10)
    assert response.status_code == 400
    assert response.json() == {"code": "InvalidObject", "message": "addition object is invalid", "errors": [
        {"code": "MaxLengthField", "message": "The field serialNumber must be a string with a maximum length of 50.",
         "resource": "addition", "field": "serialNumber"}]}


def test_update_cancel_and_delete_a_line(psa: Psa) -> None:
    client = psa.client()
    line = next(line for line in client.list_lines(["100"]) if line.line_id == "501")
    updated = client.update_line(line, invoice_description="Ann Lee", unit_price=Decimal("35.10"), tag="seatsync:e3b")
    assert updated.invoice_description == "Ann Lee"
    assert updated.unit_price == Decimal("35.1")
    assert updated.tag == "seatsync:e3b"
    cancelled = client.cancel_line(updated, date(2026, 1, 31))
    assert cancelled.cancelled_date == date(2026, 1, 31)
    assert not cancelled.active
    assert client.get_line("100", "501").cancelled_date == date(2026, 1, 31)
    client.delete_line(cancelled)
    assert psa.addition(100, 501) is None
    with pytest.raises(ConnectWiseApiError, match="agreement 100 addition 501: HTTP 404"):
        client.get_line("100", "501")


# --------------------------------------------------------------------------- retries and throttling


def test_429_with_retry_after_is_waited_for(psa: Psa) -> None:
    psa.fault(kind="throttle", path="/finance/agreements/100$", times=2, retryAfter=7)
    client = psa.client()
    assert client.get_agreement("100").agreement_id == "100"
    assert psa.sleeps == [7.0, 7.0]
    assert client.calls == 3
    assert client.http.throttled == 2


def test_rate_limit_answers_429_with_the_seconds_until_a_slot_frees(serve: Callable[..., Psa]) -> None:
    now = [1000.0]
    section = scenario()
    section["rateLimit"] = {"requestsPerMinute": 3}
    psa = serve(section, clock=lambda: now[0])

    def sleep(seconds: float) -> None:
        psa.sleeps.append(seconds)
        now[0] += seconds

    client = psa.client(http=psa.http(sleep=sleep))
    for _ in range(3):
        client.get_agreement("100")
        now[0] += 5
    assert client.get_agreement("101").agreement_id == "101"
    assert psa.sleeps == [45.0]  # the first of the three leaves the 60 s window 45 s later
    throttled = [e for e in psa.log() if e["status"] == 429]
    assert len(throttled) == 1


def test_5xx_on_get_is_retried_with_backoff(psa: Psa) -> None:
    psa.fault(kind="error", status=503, path="/additions$", method="GET", times=2)
    client = psa.client()
    assert len(client.list_lines(["100"])) == 3
    assert psa.sleeps == [1.0, 2.0]


def test_5xx_on_patch_is_retried(psa: Psa) -> None:
    client = psa.client()
    line = client.list_lines(["100"])[0]
    psa.fault(kind="error", status=502, method="PATCH", times=1)
    assert client.set_quantity(line, 21, date(2026, 1, 20)).quantity == Decimal(21)
    assert [e["status"] for e in psa.log("PATCH")] == [502, 200]


def test_post_after_5xx_is_not_retried_blindly(psa: Psa) -> None:
    psa.fault(kind="error", status=500, method="POST", times=1)
    client = psa.client()
    with pytest.raises(ConnectWiseApiError) as caught:
        client.create_line(NewLine(agreement_id="100", product_id="1", quantity=1, effective_date=date(2026, 1, 2)))
    assert caught.value.status == 500
    assert "may have been created: read the agreement's additions before trying again" in str(caught.value)
    assert len(psa.log("POST")) == 1
    assert psa.addition(100, 511) is None


# --------------------------------------------------------------------------- authentication


def test_bad_keys_raise_psa_auth_error_saying_what_to_check(psa: Psa) -> None:
    with pytest.raises(PsaAuthError) as caught:
        psa.client(private_key="wrong").list_agreements("19")
    assert caught.value.status == 401
    assert "Check the company id, the API member's public and private keys" in str(caught.value)
    assert "security role" in str(caught.value)


def test_on_cloud_a_refused_login_answers_404_and_the_error_says_so(serve: Callable[..., Psa]) -> None:
    section = scenario()
    section["cloud"] = True
    psa = serve(section)
    with pytest.raises(PsaAuthError, match="On ConnectWise cloud a refused login also answers 404"):
        psa.client(public_key="wrong").list_agreements("19")
    with pytest.raises(ConnectWiseApiError, match="On ConnectWise cloud a refused login also answers 404"):
        psa.client(public_key="wrong").get_agreement("100")


def test_an_unregistered_client_id_is_an_auth_error_naming_the_client_id(psa: Psa) -> None:
    with pytest.raises(PsaAuthError, match="ConnectWise rejected the clientId header"):
        psa.client(client_id=OTHER_CLIENT_ID).check_connection()


def test_a_request_without_client_id_is_refused(psa: Psa) -> None:
    headers = _auth_headers()
    del headers["clientId"]
    response = requests.get(f"{psa.base_url}/company/companies", headers=headers, verify=psa.verify, timeout=10)
    assert response.status_code == 400
    assert "clientId" in response.json()["message"]
    with pytest.raises(ValueError, match="ConnectWise clientId is empty"):
        psa.client(client_id=" ")


def test_an_injected_auth_fault_is_a_psa_auth_error(psa: Psa) -> None:
    psa.fault(kind="auth", times=1)
    with pytest.raises(PsaAuthError):
        psa.client().list_agreements("19")


# --------------------------------------------------------------------------- paging faults


def test_a_looping_link_header_raises_instead_of_reading_forever(serve: Callable[..., Psa]) -> None:
    section = scenario()
    section["additions"] += [{"agreementId": 101, "productId": 1, "quantity": 1} for _ in range(1500)]
    psa = serve(section)
    psa.fault(kind="broken-paging", times=1)
    with pytest.raises(PsaError) as caught:
        psa.client().list_lines(["101"])
    assert "paging is broken after page 1: the next link goes to page 1, not 2" in str(caught.value)


# --------------------------------------------------------------------------- the rest of the PSA


def test_discover_api_url_from_company_info(psa: Psa) -> None:
    url = ConnectWiseClient.discover_api_url(psa.running.url, "SeatSyncMSP", verify=psa.verify)
    assert url == psa.base_url
    with pytest.raises(PsaError, match="company 'nobody' is not known"):
        ConnectWiseClient.discover_api_url(psa.running.url, "nobody", verify=psa.verify)


def test_companies_contacts_products_and_agreement_types(psa: Psa) -> None:
    client = psa.client()
    companies = client.list_companies()
    assert [(c.company_id, c.identifier, c.website) for c in companies] == [
        ("19", "Fabrikam", "fabrikam.com"), ("20", "Contoso", None)]
    assert len(client.list_companies(conditions=None)) == 3
    contacts = client.list_contacts(company_id="19")
    assert [(c.contact_id, c.first_name, c.emails) for c in contacts] == [
        ("7", "Ann", ("ann@fabrikam.com",)), ("8", "Bob", ("bob@fabrikam.com",))]
    assert [c.contact_id for c in client.list_contacts(email="CY@contoso.com")] == ["9"]
    products = client.list_products()
    assert [(p.product_id, p.identifier, p.price) for p in products] == [
        ("1", "M365-BP", Decimal("22.0")), ("2", "M365-E3", Decimal("36.0"))]
    assert len(client.list_products(include_inactive=True)) == 3
    types = client.list_agreement_types()
    assert [(t.name, t.prorate, t.billing_cycle) for t in types] == [
        ("Microsoft 365", True, "monthly"), ("Annual licences", False, "annual")]
    assert client.check_connection()["isCloud"] is False


def test_concurrent_reads_through_one_client_are_consistent(psa: Psa) -> None:
    client = psa.client(max_workers=2)
    results: list[int] = []

    def read() -> None:
        results.append(len(client.list_lines(["100", "101"])))

    errors = in_threads(read, 8)
    assert not errors
    assert results == [4] * 8
    # every request counted exactly once, whatever the interleaving: two reads per thread plus the
    # agreements' company lookup, which threads racing before the cache fills may each make
    assert client.calls == len(psa.log())
    assert 1 + 8 * 2 <= client.calls <= 8 + 8 * 2


def test_reading_a_large_psa_takes_one_request_per_agreement(serve: Callable[..., Psa]) -> None:
    section = scenario()
    section["companies"] += [{"id": c, "identifier": f"C{c}", "name": f"Company {c}"} for c in range(1000, 1500)]
    section["agreements"] += [{"id": 10000 + (c - 1000) * 2 + k, "name": f"A{c}-{k}", "companyId": c,
                               "typeId": 1, "startDate": "2026-01-01"} for c in range(1000, 1500) for k in range(2)]
    section["additions"] += [{"agreementId": a, "productId": 1 + n % 2, "quantity": n + 1}
                             for a in range(10000, 11000) for n in range(5)]
    psa = serve(section)
    client = psa.client(max_workers=4)
    agreements = client.find_agreements("id >= 10000")
    lines = client.list_lines([a.agreement_id for a in agreements[:200]])
    assert len(agreements) == 1000
    assert len(lines) == 1000
    assert client.calls == 1 + 200


def _auth_headers() -> dict[str, str]:
    token = base64.b64encode(b"seatsyncmsp+pubkey:privkey").decode()
    return {"Authorization": f"Basic {token}", "clientId": CLIENT_ID}


def test_scenario_helper_is_not_shared_between_tests() -> None:
    first = scenario()
    first["companies"].clear()
    assert scenario()["companies"]
    assert copy.deepcopy(scenario()) == scenario()
