"""The HaloPSA client against the HaloPSA emulator over HTTPS on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from emulators.base import RunningEmulator
from emulators.halopsa import HaloEmulator
from emulators.tls import TlsFiles, ensure_tls_files
from shared.adapters.halopsa import RETRY_POLICY, HaloClient, HaloLimits, TokenCache
from shared.adapters.http import RetryingHttp
from shared.domain.model import BillMode
from shared.errors import PsaAuthError, PsaError
from shared.ports import NewLine, PsaPort
from tests.psa_test_support import FakeClock, recording_http, reset_emulator, serve_emulators

TODAY = date(2026, 1, 15)


def scenario() -> dict[str, Any]:
    return {
        "today": TODAY.isoformat(), "tenant": "seatsyncmsp",
        "applications": [{"clientId": "seatsync-app", "clientSecret": "s3cret"}],
        "clients": [{"id": 19, "name": "Fabrikam Ltd", "ref": "FAB", "website": "fabrikam.com"},
                    {"id": 20, "name": "Contoso Ltd", "inactive": True}],
        "users": [{"id": 7, "clientId": 19, "firstName": "Ann", "surname": "Lee",
                   "emails": ["ann@fabrikam.com", "ann.lee@fabrikam.com"], "title": "IT lead"},
                  {"id": 8, "clientId": 20, "firstName": "Cy", "email": "cy@contoso.com", "inactive": True}],
        "items": [{"id": 1, "name": "M365-BP", "description": "Microsoft 365 Business Premium", "price": 22,
                   "cost": 19.8},
                  {"id": 2, "name": "M365-E3", "price": 36, "cost": 32.4},
                  {"id": 3, "name": "Setup", "price": 150, "cost": 0, "recurring": False},
                  {"id": 4, "name": "Retired", "inactive": True}],
        "contracts": [{"id": 7, "clientId": 19, "ref": "FAB-M365", "type": "Managed Services",
                       "startDate": "2026-01-01"},
                      {"id": 8, "clientId": 19, "ref": "FAB-OLD", "type": "Break-fix", "startDate": "2024-01-01",
                       "endDate": "2025-12-31"}],
        "recurringInvoices": [{"id": -1, "clientId": 19, "reference": "Fabrikam M365", "startDate": "2026-01-01",
                               "contractId": 7},
                              {"id": -2, "clientId": 19, "reference": "Fabrikam backup", "startDate": "2025-11-01",
                               "period": "Quarterly"},
                              {"id": -3, "clientId": 19, "reference": "Fabrikam stopped", "startDate": "2025-01-01",
                               "disabled": True}],
        "lines": [{"id": 500, "invoiceId": -1, "itemId": 1, "quantity": 20},
                  {"id": 501, "invoiceId": -1, "itemId": 2, "quantity": 3, "unitPrice": 34.5,
                   "internalReference": "seatsync:l:e3", "longDescription": "E3 for the board"},
                  {"id": 502, "invoiceId": -1, "itemId": 1, "quantity": 1, "internalReference": "PAX8-SUB-1"},
                  {"id": 510, "invoiceId": -2, "itemId": 1, "quantity": 10, "inactive": True}],
    }


@dataclass
class Psa:
    emulator: HaloEmulator
    running: RunningEmulator
    tls: TlsFiles
    sleeps: list[float] = field(default_factory=list)

    def http(self, sleep: Callable[[float], None] | None = None) -> RetryingHttp:
        return recording_http("HaloPSA", self.tls, sleep or self.sleeps.append)

    def client(self, *, lines: str = "recurring-invoice", secret: str = "s3cret", limits: HaloLimits | None = None,
               http: RetryingHttp | None = None, tenant: str | None = "seatsyncmsp", **kwargs: Any) -> HaloClient:
        return HaloClient(name="halopsa", base_url=self.running.url, tenant=tenant, client_id="seatsync-app",
                          client_secret=secret, lines=lines, requests_per_5_minutes=250,  # type: ignore[arg-type]
                          http=http or self.http(), limits=limits or HaloLimits.create(250), today=lambda: TODAY,
                          **kwargs)

    def log(self, path: str = "", method: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.emulator.requests_log()
                if path in e["path"] and (method is None or e["method"] == method)]

    def line(self, invoice_id: int, line_id: int) -> dict[str, Any]:
        for invoice in self.emulator.state()["recurringInvoices"]:
            if invoice["id"] == invoice_id:
                for line in invoice["lines"]:
                    if line["id"] == line_id:
                        return dict(line)
        raise AssertionError(f"no line {line_id} on {invoice_id}")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls_files(tmp_path_factory.mktemp("halo-client-tls"))


@pytest.fixture(scope="module")
def shared_server(tls: TlsFiles) -> Iterator[RunningEmulator]:
    section = scenario()
    section["rateLimit"] = None  # the tests of the window start their own Halo
    with RunningEmulator(HaloEmulator(section), tls) as server:
        yield server


@pytest.fixture
def psa(shared_server: RunningEmulator, tls: TlsFiles) -> Iterator[Psa]:
    psa = Psa(reset_emulator(shared_server, HaloEmulator), shared_server, tls)
    yield psa
    # Halo ignores a key no line has without an error: the client never sends one
    assert psa.emulator.state()["ignoredKeys"] == []


@pytest.fixture
def serve(tls: TlsFiles) -> Iterator[Callable[..., Psa]]:
    yield from serve_emulators(tls, HaloEmulator, scenario, Psa)


# --------------------------------------------------------------------------- tokens


def test_one_token_serves_every_client_of_the_connection(psa: Psa) -> None:
    limits = HaloLimits.create(250)
    first = psa.client(limits=limits)
    port: PsaPort = first
    assert port.name == "halopsa"
    first.list_companies()
    psa.client(limits=limits).list_products()
    tokens = psa.log("/auth/token")
    assert len(tokens) == 1
    assert tokens[0]["query"] == {"tenant": "seatsyncmsp"}
    assert limits.tokens.fetched == 1


def test_an_expired_token_is_replaced_once_on_401(psa: Psa) -> None:
    limits = HaloLimits.create(250)
    client = psa.client(limits=limits)
    client.list_companies()
    psa.emulator.expire_tokens()
    assert len(client.list_companies()) == 2
    assert limits.tokens.fetched == 2
    assert [e["status"] for e in psa.emulator.requests_log() if e["path"] == "/api/Client"] == [200, 401, 200]


def test_a_token_near_its_expiry_is_renewed_before_use(psa: Psa) -> None:
    clock = FakeClock(100_000.0)
    limits = HaloLimits(HaloLimits.create(250).limiter, TokenCache(clock))
    client = psa.client(limits=limits)
    client.list_companies()
    clock.now += 3545  # Halo's token lives 3,600 s; within a minute of that SeatSync fetches a new one
    client.list_companies()
    assert limits.tokens.fetched == 2
    assert [e["status"] for e in psa.log("/api/Client")] == [200, 200]


def test_a_second_401_is_an_auth_error_saying_what_to_check(psa: Psa) -> None:
    psa.emulator.faults.add({"kind": "auth", "path": "/api/", "times": 2})
    with pytest.raises(PsaAuthError) as caught:
        psa.client().list_companies()
    assert "check that the API application's permissions" in str(caught.value)
    assert caught.value.status == 401


@pytest.mark.parametrize(("changes", "expected"), [
    ({"secret": "wrong"}, "Halo refused the client credentials"),
    ({"tenant": None}, "and the tenant"),
])
def test_refused_client_credentials_say_what_to_check(psa: Psa, changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(PsaAuthError) as caught:
        psa.client(**changes).list_companies()
    text = str(caught.value)
    assert expected in text
    assert "Client ID and Secret (Services)" in text
    assert caught.value.record == "token"


# --------------------------------------------------------------------------- reads


def test_clients_users_items_and_agreement_types(psa: Psa) -> None:
    client = psa.client()
    companies = client.list_companies()
    assert [(c.company_id, c.identifier, c.name, c.website, c.status) for c in companies] == [
        ("19", "FAB", "Fabrikam Ltd", "fabrikam.com", "Active"), ("20", "Contoso Ltd", "Contoso Ltd", None, "Inactive")]
    contacts = client.list_contacts()
    assert [(c.contact_id, c.company_id, c.first_name, c.last_name, c.emails, c.inactive, c.title)
            for c in contacts] == [
        ("7", "19", "Ann", "Lee", ("ann@fabrikam.com", "ann.lee@fabrikam.com"), False, "IT lead"),
        ("8", "20", "Cy", "", ("cy@contoso.com",), True, None)]
    assert [c.contact_id for c in client.list_contacts("19")] == ["7"]
    products = client.list_products()
    assert [(p.product_id, p.identifier, p.price, p.cost) for p in products] == [
        ("1", "M365-BP", Decimal("22.0"), Decimal("19.8")), ("2", "M365-E3", Decimal("36.0"), Decimal("32.4")),
        ("3", "Setup", Decimal("150.0"), Decimal("0.0"))]
    assert len(client.list_products(include_inactive=True)) == 4
    assert client.get_product("4").inactive is True
    assert [(t.type_id, t.name) for t in client.list_agreement_types()] == [("recurring-invoice", "Recurring invoice")]
    assert [(t.type_id, t.name) for t in psa.client(lines="contract").list_agreement_types()] == [
        ("1", "Managed Services"), ("2", "Break-fix")]


def test_agreements_are_recurring_invoices_with_their_billing_period(psa: Psa) -> None:
    client = psa.client()
    agreements = {a.agreement_id: a for a in client.list_agreements("19")}
    assert list(agreements) == ["-1", "-2", "-3"]
    monthly = agreements["-1"]
    assert (monthly.name, monthly.type_name, monthly.billing_cycle, monthly.active, monthly.prorate) == (
        "Fabrikam M365", "Recurring invoice", "monthly", True, True)
    assert monthly.start_date == date(2026, 1, 1)
    assert agreements["-2"].billing_cycle == "quarterly"
    assert agreements["-3"].active is False  # disabled
    assert [a.agreement_id for a in client.get_agreements(["-2", "-99", "-1"])] == ["-2", "-1"]
    with pytest.raises(PsaError) as caught:
        client.get_agreement("-99")
    assert (caught.value.record, caught.value.status) == ("recurring invoice -99", 404)
    assert "Recurring invoice -99 not found" in str(caught.value)


def test_agreements_can_be_client_contracts_billed_through_their_recurring_invoices(psa: Psa) -> None:
    client = psa.client(lines="contract")
    agreements = {a.agreement_id: a for a in client.list_agreements("19")}
    assert list(agreements) == ["7", "8"]
    assert (agreements["7"].name, agreements["7"].type_name, agreements["7"].billing_cycle, agreements["7"].active) == (
        "FAB-M365", "Managed Services", "monthly", True)
    assert (agreements["8"].billing_cycle, agreements["8"].active) == ("none", False)  # no invoice; ended
    lines = client.list_lines(["7"])
    assert [(line.agreement_id, line.line_id) for line in lines] == [("7", "500"), ("7", "501"), ("7", "502")]
    updated = client.set_quantity(lines[0], 22, TODAY)
    assert (updated.agreement_id, updated.quantity) == ("7", Decimal(22))
    assert psa.line(-1, 500)["billed_quantity"] == 22.0
    created = client.create_line(NewLine(agreement_id="7", product_id="3", quantity=1, effective_date=date(2026, 2, 1)))
    assert created.agreement_id == "7"
    with pytest.raises(PsaError, match="contract 8 has 0 linked recurring invoices"):
        client.create_line(NewLine(agreement_id="8", product_id="3", quantity=1, effective_date=TODAY))


def test_lines_carry_quantities_and_recognise_seatsync_tags(psa: Psa) -> None:
    client = psa.client()
    lines = client.list_lines(["-2", "-1"])
    assert [(line.agreement_id, line.line_id) for line in lines] == [
        ("-2", "510"), ("-1", "500"), ("-1", "501"), ("-1", "502")]
    by_id = {line.line_id: line for line in lines}
    bp = by_id["500"]
    assert (bp.company_id, bp.product_id, bp.product_identifier, bp.quantity) == ("19", "1", "M365-BP", Decimal(20))
    assert (bp.unit_price, bp.unit_cost, bp.bill_mode, bp.tag) == (Decimal("22.0"), Decimal("19.8"),
                                                                   BillMode.BILLABLE, None)
    assert bp.invoice_description == "Microsoft 365 Business Premium"
    assert by_id["501"].tag == "seatsync:l:e3"
    assert by_id["501"].invoice_description == "E3 for the board"
    assert by_id["502"].tag is None  # a reference written by someone else is not SeatSync's
    assert by_id["510"].cancelled_date == TODAY  # an inactive line
    assert not by_id["510"].active
    assert client.get_line("-1", "501") == by_id["501"]
    with pytest.raises(PsaError) as caught:
        client.get_line("-1", "510")
    assert caught.value.record == "agreement -1 line 510"


def test_an_invoiced_period_halo_lists_no_invoice_for_is_never_guessed(psa: Psa) -> None:
    """The recurring invoice says the current period is invoiced, but its invoice was deleted:
    what the period is charged for is unknown, so the lines say so (the planner reports them) and
    a change dated inside the period is refused before anything is sent."""
    assert psa.emulator.delete_invoices(-1) == 1
    client = psa.client()
    lines = {line.line_id: line for line in client.list_lines(["-1"])}
    for line in lines.values():
        assert line.period_unknown is not None
        assert "recurring invoice -1 (Fabrikam M365) has invoiced the current period" in line.period_unknown
        assert "Halo lists no invoice created from it" in line.period_unknown
        assert line.period_quantity is None and line.unreadable is None
    assert lines["500"].quantity == Decimal(20)  # what it bills from the next period on is known
    with pytest.raises(PsaError, match="charged for is unknown; nothing written on a guess") as caught:
        client.set_quantity(lines["500"], 25, TODAY)
    assert caught.value.record == "recurring invoice -1 line 500"
    assert psa.log("/api/RecurringInvoice", "POST") == []
    # a change from the next period on does not depend on what the current one was charged for
    assert client.set_quantity(lines["500"], 17, date(2026, 2, 1)).quantity == Decimal(17)
    # a period not invoiced yet needs no invoice: nothing is unknown
    quarterly = client.list_lines(["-2"])
    assert [line.period_unknown for line in quarterly] == [None]


@pytest.mark.parametrize(("value", "shown"), [
    (1e300, "1E+300, beyond the 2,147,483,647 SeatSync accepts"),
    ("many", "'many', not a number"),
    (float("nan"), "NaN, not a finite number"),
])
def test_an_impossible_invoiced_quantity_leaves_only_its_line_alone(psa: Psa, value: Any, shown: str) -> None:
    """An invoice line of the current period holding an impossible quantity makes its recurring
    line unreadable (the planner freezes it as an impossible value); the other lines and the rest
    of the read stand."""
    psa.emulator.faults.add([{"kind": "corrupt", "path": "/api/Invoice", "method": "GET",
                              "set": {"qty_order": value}, "where": {"_itemid": 2}}])
    client = psa.client()
    lines = {line.line_id: line for line in client.list_lines(["-2", "-1"])}
    assert lines["501"].unreadable == f"invoice 1001 line 100102: qty_order is {shown}"
    assert lines["501"].quantity == Decimal(0) and lines["501"].period_quantity is None
    assert [lines[i].unreadable for i in ("500", "502", "510")] == [None, None, None]
    assert (lines["500"].quantity, lines["502"].quantity) == (Decimal(20), Decimal(1))
    with pytest.raises(PsaError, match=r"invoice 1001 line 100102: qty_order is .*; nothing written"):
        client.set_quantity(replace(lines["501"], unreadable=None), 4, TODAY)  # the write checks again
    assert psa.log("/api/RecurringInvoice", "POST") == []


# --------------------------------------------------------------------------- writes


def test_a_change_inside_the_invoiced_period_is_a_pro_rata_entry(psa: Psa) -> None:
    client = psa.client()
    line = client.get_line("-1", "500")
    updated = client.set_quantity(line, 25, TODAY)
    assert (updated.quantity, updated.effective_date) == (Decimal(25), TODAY)
    stored = psa.line(-1, 500)
    assert stored["qty_order"] == 20.0  # Halo adds the entry's quantity after invoicing it
    assert [(p["date"], p["quantity"], p["unitprice"]) for p in stored["prorata_data"]] == [
        ("2026-01-15T00:00:00", 5.0, 12.06)]
    assert stored["billed_quantity"] == 25.0
    posted = psa.log("/api/RecurringInvoice", "POST")
    assert len(posted) == 1
    assert psa.line(-1, 501)["qty_order"] == 3.0  # every other line posted back unchanged
    assert psa.line(-1, 502)["item_internal_reference"] == "PAX8-SUB-1"
    assert client.get_line("-1", "500").quantity == Decimal(25)
    # a second change in the period adds to what is pending
    client.set_quantity(client.get_line("-1", "500"), 26, date(2026, 1, 20))
    assert [p["quantity"] for p in psa.line(-1, 500)["prorata_data"]] == [5.0, 1.0]
    assert client.get_line("-1", "500").quantity == Decimal(26)


def test_a_change_from_the_next_period_changes_the_quantity_on_the_line(psa: Psa) -> None:
    client = psa.client()
    line = client.get_line("-1", "500")
    updated = client.set_quantity(line, 17, date(2026, 2, 1))
    assert updated.quantity == Decimal(17)
    stored = psa.line(-1, 500)
    assert (stored["qty_order"], stored["prorata_data"]) == (17.0, [])


def test_nothing_is_written_when_the_line_already_bills_the_quantity(psa: Psa) -> None:
    client = psa.client()
    client.set_quantity(client.get_line("-1", "500"), 20, TODAY)
    assert psa.log("/api/RecurringInvoice", "POST") == []


def test_a_credit_halo_does_not_allow_is_its_error_naming_the_line(psa: Psa) -> None:
    client = psa.client()
    with pytest.raises(PsaError) as caught:
        client.set_quantity(client.get_line("-1", "500"), 18, TODAY)
    error = caught.value
    assert error.status == 400
    assert error.record == "recurring invoice -1 line 500 (pro-rata of -2 from 2026-01-15)"
    assert "negative pro-rata is not allowed" in str(error)
    assert psa.line(-1, 500)["billed_quantity"] == 20.0


def test_create_line_mid_period_starts_at_zero_with_a_pro_rata_entry(psa: Psa) -> None:
    client = psa.client()
    created = client.create_line(NewLine(agreement_id="-1", product_id="2", quantity=4, effective_date=TODAY,
                                         unit_price=Decimal("35.00"), description="E3",
                                         invoice_description="E3 for Ann and Bob", tag="seatsync:l:e3b"))
    assert (created.line_id, created.quantity, created.tag, created.unit_price) == (
        "511", Decimal(4), "seatsync:l:e3b", Decimal("35.0"))
    stored = psa.line(-1, 511)
    assert (stored["qty_order"], stored["billed_quantity"], stored["item_longdescription"]) == (
        0.0, 4.0, "E3 for Ann and Bob")
    assert stored["prorata_data"][0]["unitprice"] == 19.19  # 35.00 x 17 / 31
    invoice = next(i for i in psa.emulator.state()["recurringInvoices"] if i["id"] == -1)
    assert [line["id"] for line in invoice["lines"]] == [500, 501, 502, 511]  # the lines read, posted back


def test_create_line_from_the_next_period_sets_its_quantity(psa: Psa) -> None:
    client = psa.client()
    created = client.create_line(NewLine(agreement_id="-1", product_id="1", quantity=2,
                                         effective_date=date(2026, 2, 1)))
    assert created.quantity == Decimal(2)
    assert psa.line(-1, created_id := int(created.line_id))["qty_order"] == 2.0
    assert psa.line(-1, created_id)["prorata_data"] == []


@pytest.mark.parametrize(("changes", "message"), [
    ({"tag": "x" * 51}, "item_internal_reference (the tag) is 51 characters"),
    ({"tag": "pax8"}, "the tag must start with 'seatsync'"),
    ({"bill_mode": BillMode.DO_NOT_BILL}, "bill mode do-not-bill is not possible"),
    ({"product_id": "M365"}, "product id must be a Halo item id"),
    ({"quantity": 1.5}, "quantity must be a whole number"),
])
def test_lines_halo_cannot_hold_are_refused_before_anything_is_sent(psa: Psa, changes: dict[str, Any],
                                                                     message: str) -> None:
    client = psa.client()
    values: dict[str, Any] = {"agreement_id": "-1", "product_id": "1", "quantity": 1, "effective_date": TODAY}
    values.update(changes)
    with pytest.raises(PsaError, match=message.replace("(", r"\(").replace(")", r"\)")):
        client.create_line(NewLine(**values))
    assert client.calls == 0


def test_a_new_line_halo_refuses_is_its_error_naming_the_record(psa: Psa) -> None:
    with pytest.raises(PsaError) as caught:
        psa.client().create_line(NewLine(agreement_id="-1", product_id="4", quantity=1, effective_date=TODAY))
    assert caught.value.record == "agreement -1 new line of item 4"
    assert "item 4 is inactive" in str(caught.value)


def test_update_line_changes_the_invoice_description_and_price(psa: Psa) -> None:
    client = psa.client()
    line = client.get_line("-1", "500")
    updated = client.update_line(line, invoice_description="Ann, Bob and 18 more", unit_price=Decimal("21.5"))
    assert (updated.invoice_description, updated.unit_price) == ("Ann, Bob and 18 more", Decimal("21.5"))
    assert (psa.line(-1, 500)["item_longdescription"], psa.line(-1, 500)["unit_price"]) == (
        "Ann, Bob and 18 more", 21.5)
    assert client.update_line(line) is line
    with pytest.raises(PsaError) as caught:
        client.update_line(replace(line, line_id="999"), invoice_description="x")
    assert (caught.value.record, caught.value.status) == ("agreement -1 line 999", 404)


# --------------------------------------------------------------------------- paging and limits


def test_lists_are_read_page_by_page(serve: Callable[..., Psa]) -> None:
    section = scenario()
    section["clients"] += [{"id": 100 + n, "name": f"Client {n}"} for n in range(248)]
    psa = serve(section)
    client = psa.client()
    assert len(client.list_companies()) == 250
    pages = [e["query"] for e in psa.log("/api/Client")]
    assert [(p["page_no"], p["page_size"], p["pageinate"]) for p in pages] == [
        ("1", "100", "true"), ("2", "100", "true"), ("3", "100", "true")]


def test_broken_paging_is_detected(serve: Callable[..., Psa]) -> None:
    section = scenario()
    section["clients"] += [{"id": 100 + n, "name": f"Client {n}"} for n in range(150)]
    psa = serve(section)
    psa.emulator.faults.add({"kind": "broken-paging", "times": 1, "after": 1})  # page 2 answers page 1 again
    with pytest.raises(PsaError, match="paging is inconsistent: record 19 came back twice"):
        psa.client().list_companies()


def test_the_client_stays_inside_the_5_minute_window(serve: Callable[..., Psa]) -> None:
    clock = FakeClock(100_000.0)
    section = scenario()
    section["rateLimit"] = {"requestsPer5Minutes": 4}
    psa = serve(section, clock=clock)
    limits = HaloLimits.create(4, clock=clock, sleep=clock.sleep)
    client = psa.client(limits=limits)
    for _ in range(5):
        client.list_products()
    assert psa.emulator.state()["rateLimit"]["refused"] == 0
    assert limits.limiter.waits >= 1
    assert sum(clock.sleeps) >= 300  # six requests through a window of four: one full window waited


def test_a_429_is_waited_out_for_as_long_as_halo_asks(serve: Callable[..., Psa]) -> None:
    clock = FakeClock(100_000.0)
    section = scenario()
    section["rateLimit"] = {"requestsPer5Minutes": 3}
    psa = serve(section, clock=clock)
    client = psa.client(http=psa.http(sleep=clock.sleep))  # SeatSync's own window is larger than Halo's
    for _ in range(3):
        client.list_products()
    assert psa.emulator.state()["rateLimit"]["refused"] >= 1
    assert 300 in [int(s) for s in clock.sleeps]  # Retry-After: until the token request left the window


def test_a_429_without_retry_after_backs_off_long_enough(serve: Callable[..., Psa]) -> None:
    clock = FakeClock(100_000.0)
    section = scenario()
    section["rateLimit"] = {"requestsPer5Minutes": 2, "retryAfter": False}
    psa = serve(section, clock=clock)
    client = psa.client(http=recording_http("HaloPSA", psa.tls, clock.sleep, RETRY_POLICY))
    client.list_products()
    client.list_products()
    assert clock.sleeps == [10.0, 20.0, 40.0, 80.0, 120.0, 120.0]  # until the window moved, 390 s later


def test_reading_500_clients_and_their_invoices_takes_two_reads_per_invoice(serve: Callable[..., Psa]) -> None:
    section = scenario()
    section["clients"] += [{"id": 1000 + n, "name": f"Client {n}"} for n in range(500)]
    section["recurringInvoices"] += [{"id": -(100 + n), "clientId": 1000 + n, "reference": f"R{n}",
                                      "startDate": "2026-01-01"} for n in range(500)]
    section["lines"] += [{"invoiceId": -(100 + n), "itemId": 1, "quantity": n + 1} for n in range(500)]
    psa = serve(section)
    client = psa.client()
    assert len(client.list_companies()) == 502
    lines = client.list_lines([str(-(100 + n)) for n in range(100)])
    assert len(lines) == 100
    # token, six pages of clients, per recurring invoice one read and one of the invoice Halo created
    # for the current period (what its lines were invoiced at)
    assert client.calls == 1 + 6 + 100 + 100
